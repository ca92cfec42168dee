import { RandomAccessFile } from '../../core/file.js';
import { invalidInput } from '../../core/errors.js';
import { alignedView } from '../../core/cast.js';
import { byteLengthOf, numelOf } from '../../core/dtype.js';
import { affineLabel, dequantizeAffine } from '../../core/encoding.js';
import { canonicalName, uniqueNames } from '../../core/names.js';
import { graphRole, roleFromName, type GraphUse, type GraphView } from '../../core/roles.js';
import type { Layout, StateDict, TensorInfo } from '../../core/statedict.js';
import type { FormatReader } from '../types.js';
import { tfliteFormat } from './match.js';
import { readTfliteModel, type TfliteModel, type TfliteTensor } from './model.js';

/**
 * TFLite flatbuffers: every tensor of every subgraph that has a buffer with bytes. Affine
 * quantized tensors (int8 weights, int32 biases) keep their integers as the stored form and read
 * as float32 (scale × (q − zero point), per channel where there are several scales).
 */
export const tfliteReader: FormatReader = { ...tfliteFormat, open: openTflite };

const INTEGER_TYPES = new Set(['int8', 'uint8', 'int16', 'int32', 'int64', 'int4']);

/**
 * TFLite ops in the terms of the shared role rules (core/roles.ts): op name and input index as
 * the ONNX op of the same meaning takes them. LSTM-family weights and biases all count as learned.
 */
function asGraphUse(opcode: string, input: number): { opType: string; inputIndex: number } {
  switch (opcode) {
    case 'CONV_2D': case 'DEPTHWISE_CONV_2D': case 'CONV_3D': return { opType: 'Conv', inputIndex: input };
    case 'FULLY_CONNECTED': return { opType: 'Gemm', inputIndex: input };
    case 'TRANSPOSE_CONV': return { opType: 'ConvTranspose', inputIndex: input === 1 ? 1 : input === 3 ? 2 : 0 };
    case 'BATCH_MATMUL': return { opType: 'MatMul', inputIndex: input };
    case 'EMBEDDING_LOOKUP': return { opType: 'Gather', inputIndex: input === 1 ? 0 : 1 };
    case 'GATHER': return { opType: 'Gather', inputIndex: input };
    case 'LSTM': case 'UNIDIRECTIONAL_SEQUENCE_LSTM': case 'BIDIRECTIONAL_SEQUENCE_LSTM': case 'RNN': case 'UNIDIRECTIONAL_SEQUENCE_RNN': case 'SVDF':
      return { opType: 'LSTM', inputIndex: input === 0 ? 0 : 1 };
    case 'PRELU': return { opType: 'PRelu', inputIndex: input };
    case 'ADD': return { opType: 'Add', inputIndex: input };
    case 'SUB': return { opType: 'Sub', inputIndex: input };
    case 'MUL': return { opType: 'Mul', inputIndex: input };
    case 'DIV': return { opType: 'Div', inputIndex: input };
    case 'RESHAPE': return { opType: 'Reshape', inputIndex: input };
    case 'TRANSPOSE': return { opType: 'Transpose', inputIndex: input };
    case 'DEQUANTIZE': return { opType: 'DequantizeLinear', inputIndex: input };
    case 'CAST': return { opType: 'Cast', inputIndex: input };
    default: return { opType: opcode, inputIndex: input };
  }
}

/** The axis order of a weight from the op that reads it: TFLite keeps output channels first. */
const LAYOUTS: Readonly<Record<string, Layout>> = { CONV_2D: 'OHWI', TRANSPOSE_CONV: 'OHWI', DEPTHWISE_CONV_2D: 'IHWO', FULLY_CONNECTED: 'OI' };

function graphOf(model: TfliteModel, subgraph: number): { view: GraphView; layouts: Map<number, Layout> } {
  const key = (i: number) => String(i);
  const uses = new Map<string, GraphUse[]>();
  const producers = new Map<string, { opType: string; inputs: string[] }>();
  const layouts = new Map<number, Layout>();
  for (const op of model.operators.filter((o) => o.subgraph === subgraph)) {
    const inputs = op.inputs.map(key);
    const outputs = op.outputs.map(key);
    op.inputs.forEach((tensor, input) => {
      if (tensor < 0) return; // an optional input left out
      const use = asGraphUse(op.opcode, input);
      uses.set(key(tensor), [...(uses.get(key(tensor)) ?? []), { ...use, inputs, outputs }]);
      if (input === 1 && LAYOUTS[op.opcode]) layouts.set(tensor, LAYOUTS[op.opcode]!);
    });
    for (const out of outputs) producers.set(out, { opType: asGraphUse(op.opcode, 0).opType, inputs });
  }
  return { view: { usesOf: (name) => uses.get(name) ?? [], producerOf: (name) => producers.get(name) }, layouts };
}

async function openTflite(file: string): Promise<StateDict> {
  const raf = RandomAccessFile.open(file);
  try {
    const model = readTfliteModel(raf);
    const stored = model.tensors.filter((t) => t.buffer !== 0 && model.buffers[t.buffer]);
    const names = uniqueNames(stored.map((t) => ({ name: canonicalName(t.name), scope: model.subgraphNames[t.subgraph] })));
    const graphs = model.subgraphNames.map((_, s) => graphOf(model, s));
    const tensors = stored.map((t, i) => tensorOf(file, raf, model, t, names[i]!, graphs[t.subgraph]!));
    const metadata = {
      version: model.version,
      ...(model.description ? { description: model.description } : {}),
      subgraphs: model.subgraphNames,
      operators: [...new Set(model.opcodes)],
      ...(Object.keys(model.metadataBuffers).length ? { metadata: Object.keys(model.metadataBuffers) } : {}),
      ...(Object.keys(model.dynamicShapes).length ? { dynamicShapes: model.dynamicShapes } : {}),
    };
    return { format: 'tflite', path: file, metadata, tensors, close: async () => raf.close(), bytesRead: () => raf.bytesRead };
  } catch (err) {
    raf.close();
    throw err;
  }
}

function tensorOf(file: string, raf: RandomAccessFile, model: TfliteModel, t: TfliteTensor, name: string, graph: { view: GraphView; layouts: Map<number, Layout> }): TensorInfo {
  const where = `tensor '${t.name}'`;
  const buffer = model.buffers[t.buffer]!;
  const numel = numelOf(t.shape);
  if (numel === undefined) throw invalidInput(file, where, `shape [${t.shape.join(',')}] has too many elements`);
  if (t.type !== 'string' && buffer.length !== byteLengthOf(t.type, numel)) {
    throw invalidInput(file, where, `buffer ${t.buffer} holds ${buffer.length} bytes, but ${t.type} [${t.shape.join(',')}] takes ${byteLengthOf(t.type, numel)}`);
  }
  const readStored = async () => raf.read(buffer.start, buffer.length, where);
  const quantization = t.quantization && INTEGER_TYPES.has(t.type) ? t.quantization : undefined;
  const dtype = quantization ? 'float32' as const : t.type;
  const fromGraph = graphRole(String(t.index), { dtype, shape: t.shape }, graph.view);
  const layout = graph.layouts.get(t.index);
  const common = {
    name, source: t.name, shape: t.shape, origin: 'weight' as const,
    ...(layout ? { layout } : {}),
    ...(fromGraph ? { role: fromGraph, roleFrom: 'graph' as const } : { role: roleFromName(name, dtype), roleFrom: 'names' as const }),
  };
  const notStrings = async (): Promise<Uint8Array[]> => {
    throw invalidInput(file, where, `is ${t.type}, not strings`);
  };
  if (t.type === 'string') {
    return {
      ...common, dtype: 'string', byteLength: buffer.length,
      read: async () => { throw invalidInput(file, where, 'is a string tensor (use readStrings)'); },
      readStrings: async () => splitStrings(file, where, await readStored()),
    };
  }
  if (!quantization) return { ...common, dtype: t.type, byteLength: buffer.length, read: readStored, readStrings: notStrings };
  return {
    ...common,
    dtype: 'float32',
    byteLength: numel * 4,
    encoding: { stored: t.type, label: affineLabel(t.type, quantization), byteLength: buffer.length, affine: quantization, readStored },
    read: async () => new Uint8Array(dequantizeAffine(integers(await readStored(), t.type, numel), t.shape, quantization).buffer),
    readStrings: notStrings,
  };
}

/** Stored integers widened to numbers; int4 packs two per byte, low nibble first. */
export function integers(bytes: Uint8Array, type: string, numel: number): ArrayLike<number> {
  switch (type) {
    case 'int8': return alignedView(bytes, Int8Array);
    case 'uint8': return bytes;
    case 'int16': return alignedView(bytes, Int16Array);
    case 'int32': return alignedView(bytes, Int32Array);
    case 'int64': return Array.from(alignedView(bytes, BigInt64Array), Number);
    case 'int4': return Array.from({ length: numel }, (_, i) => {
      const nibble = (bytes[i >> 1]! >> ((i & 1) * 4)) & 0xf;
      return nibble >= 8 ? nibble - 16 : nibble;
    });
    default: throw new Error(`${type} is not an integer type`);
  }
}

/** TFLite's string buffer: int32 count, count + 1 int32 offsets from the buffer start, then the bytes. */
function splitStrings(file: string, where: string, bytes: Uint8Array): Uint8Array[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const bad = () => invalidInput(file, where, 'string buffer offsets do not fit the buffer');
  if (bytes.length < 4) throw bad();
  const count = view.getInt32(0, true);
  if (count < 0 || 4 * (count + 2) > bytes.length) throw bad();
  return Array.from({ length: count }, (_, i) => {
    const start = view.getInt32(4 + 4 * i, true);
    const end = view.getInt32(8 + 4 * i, true);
    if (start < 0 || end < start || end > bytes.length) throw bad();
    return bytes.subarray(start, end);
  });
}
