import * as path from 'node:path';
import { RandomAccessFile, readTextFile, resolveInsideFolder } from '../../core/file.js';
import { invalidInput } from '../../core/errors.js';
import type { DType } from '../../core/dtype.js';
import { canonicalName, uniqueNames } from '../../core/names.js';
import { graphRole, roleFromName, type GraphUse, type GraphView } from '../../core/roles.js';
import type { StateDict } from '../../core/statedict.js';
import type { FormatReader } from '../types.js';
import { openvinoFormat } from './match.js';
import { rangeByteLength, rangeTensor } from '../range-tensor.js';
import { childrenNamed, parseXml, type XmlElement } from './xml.js';

/**
 * OpenVINO IR: the `.xml` graph names every `Const` layer's element type, shape and byte range;
 * the values are in the `.bin` of the same stem beside it. The model is opened by its `.xml`.
 */

const ELEMENT_TYPES: Readonly<Record<string, DType>> = {
  f64: 'float64', f32: 'float32', f16: 'float16', bf16: 'bfloat16', f8e4m3: 'float8e4m3fn', f8e5m2: 'float8e5m2',
  i64: 'int64', i32: 'int32', i16: 'int16', i8: 'int8', i4: 'int4',
  u64: 'uint64', u32: 'uint32', u16: 'uint16', u8: 'uint8', u4: 'uint4', boolean: 'bool',
};

/** OpenVINO op types under the names the role rules know (ONNX's); Convert and FakeQuantize pass their input on. */
const OP_NAMES: Readonly<Record<string, string>> = {
  Convolution: 'Conv', GroupConvolution: 'Conv', ConvolutionBackpropData: 'ConvTranspose', GroupConvolutionBackpropData: 'ConvTranspose',
  MatMul: 'MatMul', Multiply: 'Mul', Add: 'Add', Subtract: 'Sub', Divide: 'Div', PRelu: 'PRelu', PReLU: 'PRelu',
  BatchNormInference: 'BatchNormalization', Convert: 'Cast', FakeQuantize: 'Identity', Reshape: 'Reshape', Transpose: 'Transpose',
  Squeeze: 'Squeeze', Unsqueeze: 'Unsqueeze', Gather: 'Gather', MVN: 'MeanVarianceNormalization',
};

const MAX_XML_BYTES = 256 << 20;

export const openvinoReader: FormatReader = { ...openvinoFormat, open: openOpenvino };

interface Port { readonly layer: string; readonly port: string }
interface Layer { readonly id: string; readonly name: string; readonly type: string; readonly element: XmlElement; readonly inputs: readonly string[]; readonly outputs: readonly string[] }

async function openOpenvino(xmlPath: string): Promise<StateDict> {
  const xml = readTextFile(xmlPath);
  if (xml.length > MAX_XML_BYTES) throw invalidInput(xmlPath, undefined, `a ${xml.length}-byte IR graph is more than ckpt reads`);
  const fail = (where: string, detail: string) => invalidInput(xmlPath, where, detail);
  const net = parseXml(xml, (line, detail) => fail(`line ${line}`, detail));
  if (net.name !== 'net') throw fail(`line ${net.line}`, `root element is <${net.name}>, expected <net>`);
  const irVersion = net.attributes.get('version') ?? '';
  if (Number(irVersion) < 10) throw fail(`line ${net.line}`, `IR version '${irVersion}' is not supported; ckpt reads IR v10 and v11`);
  const layers = layersOf(net, fail);
  const graph = graphOf(net, layers, fail);

  const stem = path.basename(xmlPath).replace(/\.[^.]*$/, '');
  const binPath = resolveInsideFolder(xmlPath, path.dirname(xmlPath), `${stem}.bin`, 'weights file');
  const raf = RandomAccessFile.open(binPath);
  try {
    const consts = [...layers.values()].filter((l) => l.type === 'Const');
    const names = uniqueNames(consts.map((c) => ({ name: canonicalName(c.name) })));
    const ranges = new Set<string>();
    let shared = 0;
    const tensors = consts.map((c, i) => {
      const where = `line ${c.element.line}, Const '${c.name}'`;
      const data = childrenNamed(c.element, 'data')[0];
      if (!data) throw fail(where, 'has no <data> element');
      const attr = (key: string) => {
        const v = data.attributes.get(key);
        if (v === undefined) throw fail(where, `<data> has no ${key}`);
        return v;
      };
      const elementType = attr('element_type');
      const dtype = ELEMENT_TYPES[elementType];
      if (!dtype) throw fail(where, `element_type '${elementType}' is not supported`);
      const shapeText = attr('shape').trim();
      const shape = shapeText === '' ? [] : shapeText.split(',').map((d) => Number(d.trim()));
      if (shape.some((d) => !Number.isSafeInteger(d) || d < 0)) throw fail(where, `shape '${shapeText}' is not a list of non-negative integers`);
      const [offset, size] = [Number(attr('offset')), Number(attr('size'))];
      if (!Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(size) || size < 0) throw fail(where, 'offset and size must be non-negative integers');
      const expected = rangeByteLength(xmlPath, where, dtype, shape);
      if (size !== expected) throw fail(where, `size ${size} does not match ${dtype} [${shape.join(', ')}] (${expected} bytes)`);
      if (offset + size > raf.size) throw invalidInput(binPath, `${where} of ${path.basename(xmlPath)}`, `range [${offset}, ${offset + size}) lies past the end of the file at ${raf.size} (truncated?)`);
      const key = `${offset}:${size}`;
      if (ranges.has(key)) shared++;
      ranges.add(key);
      const value = `${c.id}:${c.outputs[0] ?? '0'}`;
      // A dequantization scale is part of the weight it scales.
      const scaling = graph.usesOf(value).find((u) => u.opType === 'DequantizeLinear' && u.inputIndex > 0);
      const fromGraph = graphRole(scaling?.outputs[0] ?? value, { dtype, shape }, graph);
      return rangeTensor(raf, {
        name: names[i]!, source: c.name, dtype, shape, offset, origin: 'constant',
        ...(fromGraph ? { role: fromGraph, roleFrom: 'graph' as const } : { role: roleFromName(c.name, dtype), roleFrom: 'names' as const }),
      });
    });
    const metadata = { openvino: { irVersion: Number(irVersion), name: net.attributes.get('name') ?? '', layers: layers.size, sharedRanges: shared }, weightsFile: path.basename(binPath) };
    return { format: 'openvino', path: xmlPath, metadata, tensors, close: async () => raf.close(), bytesRead: () => raf.bytesRead };
  } catch (err) {
    raf.close();
    throw err;
  }
}

function layersOf(net: XmlElement, fail: (where: string, detail: string) => Error): Map<string, Layer> {
  const layers = new Map<string, Layer>();
  for (const element of childrenNamed(net, 'layers').flatMap((l) => childrenNamed(l, 'layer'))) {
    const id = element.attributes.get('id');
    const name = element.attributes.get('name');
    const type = element.attributes.get('type');
    if (id === undefined || name === undefined || type === undefined) throw fail(`line ${element.line}`, '<layer> needs id, name and type');
    if (layers.has(id)) throw fail(`line ${element.line}`, `layer id ${id} given twice`);
    const ports = (kind: string) => childrenNamed(element, kind).flatMap((p) => childrenNamed(p, 'port')).map((p) => p.attributes.get('id') ?? '')
      .sort((a, b) => Number(a) - Number(b));
    layers.set(id, { id, name, type, element, inputs: ports('input'), outputs: ports('output') });
  }
  return layers;
}

/** The IR's edges as the role rules read a graph: values are `layer:port` of their producer. */
function graphOf(net: XmlElement, layers: ReadonlyMap<string, Layer>, fail: (where: string, detail: string) => Error): GraphView {
  const feeding = new Map<string, string>();
  for (const edge of childrenNamed(net, 'edges').flatMap((e) => childrenNamed(e, 'edge'))) {
    const a = (k: string) => edge.attributes.get(k) ?? '';
    const from: Port = { layer: a('from-layer'), port: a('from-port') };
    if (!layers.has(from.layer) || !layers.has(a('to-layer'))) throw fail(`line ${edge.line}`, `edge ${from.layer} → ${a('to-layer')} names a layer that does not exist`);
    feeding.set(`${a('to-layer')}:${a('to-port')}`, `${from.layer}:${from.port}`);
  }
  const inputsOf = (l: Layer) => l.inputs.map((p) => feeding.get(`${l.id}:${p}`) ?? '');
  const opTypeOf = (l: Layer) => {
    const producer = layers.get((inputsOf(l)[0] ?? '').split(':')[0]!);
    // Multiply(Convert(int8 weights), scale) is how OpenVINO dequantizes compressed weights.
    if (l.type === 'Multiply' && producer?.type === 'Convert') return 'DequantizeLinear';
    return OP_NAMES[l.type] ?? l.type;
  };
  const uses = new Map<string, GraphUse[]>();
  for (const l of layers.values()) {
    const inputs = inputsOf(l);
    const outputs = l.outputs.map((p) => `${l.id}:${p}`);
    const opType = opTypeOf(l);
    inputs.forEach((value, inputIndex) => {
      if (!uses.has(value)) uses.set(value, []);
      uses.get(value)!.push({ opType, inputIndex, inputs, outputs });
    });
  }
  return {
    usesOf: (name) => uses.get(name) ?? [],
    producerOf: (name) => {
      const l = layers.get(name.split(':')[0]!);
      return l ? { opType: opTypeOf(l), inputs: inputsOf(l) } : undefined;
    },
  };
}
