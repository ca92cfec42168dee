import type { RandomAccessFile } from '../../core/file.js';
import { invalidInput } from '../../core/errors.js';
import type { TensorOrigin } from '../../core/statedict.js';
import {
  expectWire, fields, int64Of, readString, readRepeatedVarints,
  WIRE_BYTES, WIRE_FIXED32, WIRE_VARINT, type Field, type Range,
} from './wire.js';
import { countVarints, emptyTensorProto, parseTensorProto, type TensorProtoInfo } from './tensor.js';
import { FIELD, ONNX_DTYPES } from './dtypes.js';

/** Nested subgraphs (If/Loop/Scan bodies) deeper than this are refused rather than recursed. */
export const MAX_GRAPH_DEPTH = 64;

/** A tensor found in the model, before its payload is resolved. */
export interface FoundTensor {
  readonly source: string;
  readonly origin: TensorOrigin;
  /** The If/Loop branch it sits in (`node/attribute`), used to tell apart equal names. */
  readonly scope: string;
  readonly proto: TensorProtoInfo;
  /** Sparse tensors: indices and dense shape. */
  readonly sparse?: { indices: TensorProtoInfo; dims: number[] };
  readonly what: string;
}

export interface NodeUse {
  readonly opType: string;
  readonly inputIndex: number;
  readonly transB?: boolean;
  /** The consuming node's inputs and outputs, for following a value through the graph. */
  readonly inputs: readonly string[];
  readonly outputs: readonly string[];
}

export interface ValueInfo {
  readonly name: string;
  readonly dtype?: string;
  /** Numbers for fixed dims, names for symbolic ones, null where unknown. */
  readonly shape?: (number | string | null)[];
}

/** A node of the main graph, with its scalar and list attributes (for the fine-tuning analysis). */
export interface GraphNode {
  readonly name: string;
  readonly opType: string;
  readonly domain: string;
  readonly inputs: readonly string[];
  readonly outputs: readonly string[];
  readonly attributes: Readonly<Record<string, number | number[] | string>>;
}

export interface ModelWalk {
  irVersion?: number;
  producerName?: string;
  producerVersion?: string;
  domain?: string;
  modelVersion?: number;
  docString?: string;
  graphName?: string;
  opsetImport: Record<string, number>;
  metadataProps: Record<string, string>;
  inputs: ValueInfo[];
  outputs: ValueInfo[];
  tensors: FoundTensor[];
  /** Every node input that reads a tensor, for layout hints and roles. */
  uses: Map<string, NodeUse[]>;
  /** The node computing each value (every scope), for roles. */
  producers: Map<string, { opType: string; inputs: readonly string[] }>;
  /** The main graph's nodes in order. */
  nodes: GraphNode[];
}

const MODEL = { irVersion: 1, producerName: 2, producerVersion: 3, domain: 4, modelVersion: 5, docString: 6, graph: 7, opsetImport: 8, metadataProps: 14, trainingInfo: 20, functions: 25 } as const;
const GRAPH = { node: 1, name: 2, initializer: 5, input: 11, output: 12, sparseInitializer: 15 } as const;
const NODE = { input: 1, output: 2, name: 3, opType: 4, attribute: 5, domain: 7 } as const;
const ATTR = { name: 1, f: 2, i: 3, s: 4, t: 5, g: 6, floats: 7, ints: 8, strings: 9, tensors: 10, graphs: 11, sparseTensor: 22 } as const;

/** The wire types every known top-level ModelProto field must have. */
const MODEL_WIRE: Record<number, number> = {
  1: WIRE_VARINT, 2: WIRE_BYTES, 3: WIRE_BYTES, 4: WIRE_BYTES, 5: WIRE_VARINT, 6: WIRE_BYTES,
  7: WIRE_BYTES, 8: WIRE_BYTES, 14: WIRE_BYTES, 20: WIRE_BYTES, 25: WIRE_BYTES, 26: WIRE_BYTES,
};

/**
 * Cheap structural test: the file starts with ModelProto's ir_version and every top-level field
 * has a number and wire type ModelProto allows. Payloads are skipped, so this reads very little.
 * A file that is cut short still counts as ONNX, so the reader can say where it ends.
 */
export function looksLikeOnnx(file: RandomAccessFile): boolean {
  let count = 0;
  try {
    for (const f of fields(file, { start: 0, end: file.size }, 'model')) {
      if (count === 0 && (f.no !== MODEL.irVersion || f.wire !== WIRE_VARINT || f.varint > 100n)) return false;
      if (MODEL_WIRE[f.no] !== f.wire) return false;
      count++;
    }
    return count > 1;
  } catch {
    return count > 1;
  }
}

export function walkModel(file: RandomAccessFile): ModelWalk {
  const model: ModelWalk = {
    opsetImport: {}, metadataProps: {}, inputs: [], outputs: [], tensors: [], uses: new Map(), producers: new Map(), nodes: [],
  };
  const range = { start: 0, end: file.size };
  let graph: Field | undefined;
  const later: (() => void)[] = [];
  for (const f of fields(file, range, 'ModelProto')) {
    const expected = MODEL_WIRE[f.no];
    if (expected !== undefined) expectWire(file, f, expected, 'ModelProto');
    switch (f.no) {
      case MODEL.irVersion: model.irVersion = Number(int64Of(f)); break;
      case MODEL.producerName: model.producerName = readString(file, f, 'producer_name'); break;
      case MODEL.producerVersion: model.producerVersion = readString(file, f, 'producer_version'); break;
      case MODEL.domain: model.domain = readString(file, f, 'domain'); break;
      case MODEL.modelVersion: model.modelVersion = Number(int64Of(f)); break;
      case MODEL.docString: model.docString = readString(file, f, 'doc_string'); break;
      case MODEL.graph: graph = f; break;
      case MODEL.opsetImport: {
        let domain = '';
        let version = 0;
        for (const g of fields(file, f, 'opset_import')) {
          if (g.no === 1) domain = readString(file, g, 'opset_import.domain');
          else if (g.no === 2 && g.wire === WIRE_VARINT) version = Number(int64Of(g));
        }
        model.opsetImport[domain === 'ai.onnx' ? '' : domain] = version;
        break;
      }
      case MODEL.metadataProps: {
        const [key, value] = stringPair(file, f, 'metadata_props');
        model.metadataProps[key] = value;
        break;
      }
      case MODEL.trainingInfo:
        later.push(() => {
          for (const g of fields(file, f, 'training_info')) {
            if (g.no === 1 || g.no === 2) {
              expectWire(file, g, WIRE_BYTES, 'training_info');
              walkGraph(file, g, model, `training_info/${g.no === 1 ? 'initialization' : 'algorithm'}`, 1, false, model.tensors);
            }
          }
        });
        break;
      case MODEL.functions:
        later.push(() => walkFunction(file, f, model));
        break;
      default:
        break;
    }
  }
  if (!graph) throw invalidInput(file.path, undefined, 'ModelProto has no graph (field 7); not an ONNX model');
  walkGraph(file, graph, model, '', 0, true, model.tensors);
  for (const run of later) run();
  return model;
}

function stringPair(file: RandomAccessFile, f: Field, what: string): [string, string] {
  let key = '';
  let value = '';
  for (const g of fields(file, f, what)) {
    if (g.no === 1) key = readString(file, g, `${what}.key`);
    else if (g.no === 2) value = readString(file, g, `${what}.value`);
  }
  return [key, value];
}

/**
 * Appends a graph's tensors to `out` in a stable order: its initializers, its sparse
 * initializers, then per node its Constant and the tensors of the node's subgraphs. Nodes are
 * walked as they come (one pass over the file) and their tensors placed after the initializers.
 */
function walkGraph(
  file: RandomAccessFile, range: Range, model: ModelWalk, scope: string, depth: number, top: boolean, out: FoundTensor[],
): void {
  if (depth > MAX_GRAPH_DEPTH) {
    throw invalidInput(file.path, `offset ${range.start}`, `subgraphs nested deeper than ${MAX_GRAPH_DEPTH} levels`);
  }
  const what = scope ? `graph ${scope}` : 'graph';
  const initializers: FoundTensor[] = [];
  const sparse: FoundTensor[] = [];
  const fromNodes: FoundTensor[] = [];
  for (const f of fields(file, range, what)) {
    switch (f.no) {
      case GRAPH.node:
        expectWire(file, f, WIRE_BYTES, what);
        walkNode(file, f, model, scope, depth, fromNodes);
        break;
      case GRAPH.name:
        if (top) model.graphName = readString(file, f, `${what}.name`);
        break;
      case GRAPH.initializer: {
        expectWire(file, f, WIRE_BYTES, what);
        const label = `${what}.initializer[${initializers.length}]`;
        const proto = parseTensorProto(file, f, label);
        const source = proto.name ?? '';
        initializers.push({ source, origin: 'initializer', scope, proto, what: `initializer '${source}'` });
        break;
      }
      case GRAPH.sparseInitializer:
        expectWire(file, f, WIRE_BYTES, what);
        sparse.push(parseSparse(file, f, `${what}.sparse_initializer[${sparse.length}]`, scope, 'sparse_initializer'));
        break;
      case GRAPH.input:
      case GRAPH.output:
        if (top) {
          expectWire(file, f, WIRE_BYTES, what);
          (f.no === GRAPH.input ? model.inputs : model.outputs).push(parseValueInfo(file, f));
        }
        break;
      default:
        break;
    }
  }
  out.push(...initializers, ...sparse, ...fromNodes);
  if (top) {
    // Inputs that are initializers (required before IR 4) are weights, not model inputs.
    const weightNames = new Set(initializers.map((t) => t.source));
    model.inputs = model.inputs.filter((i) => !weightNames.has(i.name));
  }
}

function walkFunction(file: RandomAccessFile, range: Range, model: ModelWalk): void {
  let name = '';
  const nodes: Field[] = [];
  for (const f of fields(file, range, 'function')) {
    if (f.no === 1) name = readString(file, f, 'function.name');
    else if (f.no === 7) {
      expectWire(file, f, WIRE_BYTES, 'function');
      nodes.push(f);
    }
  }
  for (const node of nodes) walkNode(file, node, model, `function/${name}`, 1, model.tensors);
}

interface Attribute {
  name: string;
  field: Field;
  parts: Map<number, Field[]>;
}

function walkNode(file: RandomAccessFile, range: Field, model: ModelWalk, scope: string, depth: number, out: FoundTensor[]): void {
  const what = `node at offset ${range.start}`;
  const inputs: string[] = [];
  const outputs: string[] = [];
  let name = '';
  let opType = '';
  let domain = '';
  const attributes: Attribute[] = [];
  for (const f of fields(file, range, what)) {
    switch (f.no) {
      case NODE.input: inputs.push(readString(file, f, `${what}.input`)); break;
      case NODE.output: outputs.push(readString(file, f, `${what}.output`)); break;
      case NODE.name: name = readString(file, f, `${what}.name`); break;
      case NODE.opType: opType = readString(file, f, `${what}.op_type`); break;
      case NODE.domain: domain = readString(file, f, `${what}.domain`); break;
      case NODE.attribute: {
        expectWire(file, f, WIRE_BYTES, what);
        attributes.push(parseAttribute(file, f, what));
        break;
      }
      default:
        break;
    }
  }
  const label = name || outputs[0] || opType;
  if (scope === '') model.nodes.push({ name, opType, domain, inputs, outputs, attributes: simpleAttributes(file, attributes) });
  const isConstant = opType === 'Constant' && (domain === '' || domain === 'ai.onnx');
  if (isConstant) {
    const found = constantTensor(file, attributes, outputs[0] ?? name, scope, `Constant node '${label}'`);
    if (found) out.push(found);
  }
  for (const output of outputs) if (output) model.producers.set(output, { opType, inputs });
  const transB = attributes.find((a) => a.name === 'transB')?.parts.get(ATTR.i)?.[0];
  inputs.forEach((input, inputIndex) => {
    if (!input) return;
    const use: NodeUse = { opType, inputIndex, inputs, outputs, ...(transB ? { transB: transB.varint !== 0n } : {}) };
    const list = model.uses.get(input);
    if (list) list.push(use);
    else model.uses.set(input, [use]);
  });
  for (const attr of attributes) {
    const subScope = scope ? `${scope}/${label}/${attr.name}` : `${label}/${attr.name}`;
    for (const g of attr.parts.get(ATTR.g) ?? []) {
      expectWire(file, g, WIRE_BYTES, `${what}.attribute '${attr.name}'`);
      walkGraph(file, g, model, subScope, depth + 1, false, out);
    }
    (attr.parts.get(ATTR.graphs) ?? []).forEach((g, i) => {
      expectWire(file, g, WIRE_BYTES, `${what}.attribute '${attr.name}'`);
      walkGraph(file, g, model, `${subScope}/${i}`, depth + 1, false, out);
    });
  }
}

/** int, float, string, ints and floats attributes; tensors and graphs are left out. */
function simpleAttributes(file: RandomAccessFile, attributes: Attribute[]): Record<string, number | number[] | string> {
  const out: Record<string, number | number[] | string> = {};
  for (const attr of attributes) {
    const one = (no: number) => attr.parts.get(no)?.[0];
    const i = one(ATTR.i);
    const f = one(ATTR.f);
    const s = one(ATTR.s);
    if (i) out[attr.name] = Number(int64Of(i));
    else if (f && f.wire === WIRE_FIXED32) {
      const bytes = file.bytesAt(f.start, 4);
      out[attr.name] = new DataView(bytes.buffer, bytes.byteOffset, 4).getFloat32(0, true);
    }
    else if (s) out[attr.name] = readString(file, s, `attribute ${attr.name}`);
    else if (attr.parts.has(ATTR.ints)) {
      const values: bigint[] = [];
      for (const g of attr.parts.get(ATTR.ints)!) readRepeatedVarints(file, g, values, `attribute ${attr.name}`);
      out[attr.name] = values.map((v) => Number(BigInt.asIntN(64, v)));
    }
  }
  return out;
}

function parseAttribute(file: RandomAccessFile, range: Field, nodeWhat: string): Attribute {
  const attr: Attribute = { name: '', field: range, parts: new Map() };
  for (const f of fields(file, range, `${nodeWhat}.attribute`)) {
    if (f.no === ATTR.name) attr.name = readString(file, f, `${nodeWhat}.attribute.name`);
    else {
      const list = attr.parts.get(f.no) ?? [];
      list.push(f);
      attr.parts.set(f.no, list);
    }
  }
  return attr;
}

/**
 * The tensor a Constant node produces, from whichever attribute carries it: `value`,
 * `sparse_value`, or the opset-12 scalar/list forms. Those forms become a synthetic
 * TensorProto over the attribute's own bytes, so they read like any other tensor.
 */
function constantTensor(file: RandomAccessFile, attributes: Attribute[], output: string, scope: string, what: string): FoundTensor | undefined {
  const attr = attributes[0];
  if (!attr) return undefined;
  const base = { source: output, origin: 'constant' as const, scope, what };
  const only = (no: number): Field[] => attr.parts.get(no) ?? [];
  const synthetic = (dataType: number, dims: number[], typed: number, list: Field[]): TensorProtoInfo => {
    const proto = emptyTensorProto(attr.field.start);
    proto.dataType = dataType;
    proto.dims = dims;
    if (list.length) proto.typed.set(typed as never, list);
    return proto;
  };
  switch (attr.name) {
    case 'value': {
      const t = only(ATTR.t)[0];
      if (!t) throw invalidInput(file.path, `offset ${attr.field.start}`, `${what}: attribute 'value' holds no tensor`);
      expectWire(file, t, WIRE_BYTES, what);
      return { ...base, proto: parseTensorProto(file, t, what) };
    }
    case 'sparse_value': {
      const t = only(ATTR.sparseTensor)[0];
      if (!t) throw invalidInput(file.path, `offset ${attr.field.start}`, `${what}: attribute 'sparse_value' holds no sparse tensor`);
      expectWire(file, t, WIRE_BYTES, what);
      return parseSparse(file, t, what, scope, 'constant', output);
    }
    case 'value_float': {
      const f = only(ATTR.f);
      if (f.length !== 1) throw invalidInput(file.path, `offset ${attr.field.start}`, `${what}: value_float has ${f.length} values, expected 1`);
      expectWire(file, f[0]!, WIRE_FIXED32, what);
      return { ...base, proto: synthetic(1, [], FIELD.floatData, f) };
    }
    case 'value_floats': {
      const list = only(ATTR.floats);
      const count = list.reduce((n, f) => n + (f.wire === WIRE_BYTES ? (f.end - f.start) / 4 : 1), 0);
      return { ...base, proto: synthetic(1, [Math.floor(count)], FIELD.floatData, list) };
    }
    case 'value_int': {
      const f = only(ATTR.i);
      if (f.length !== 1) throw invalidInput(file.path, `offset ${attr.field.start}`, `${what}: value_int has ${f.length} values, expected 1`);
      expectWire(file, f[0]!, WIRE_VARINT, what);
      return { ...base, proto: synthetic(7, [], FIELD.int64Data, f) };
    }
    case 'value_ints': {
      const list = only(ATTR.ints);
      return { ...base, proto: synthetic(7, [countVarints(file, list, what)], FIELD.int64Data, list) };
    }
    case 'value_string': {
      const list = only(ATTR.s);
      if (list.length !== 1) throw invalidInput(file.path, `offset ${attr.field.start}`, `${what}: value_string has ${list.length} values, expected 1`);
      return { ...base, proto: synthetic(8, [], FIELD.stringData, list) };
    }
    case 'value_strings': {
      const list = only(ATTR.strings);
      return { ...base, proto: synthetic(8, [list.length], FIELD.stringData, list) };
    }
    default:
      throw invalidInput(file.path, `offset ${attr.field.start}`, `${what}: unknown Constant attribute '${attr.name}'`);
  }
}

function parseSparse(
  file: RandomAccessFile, range: Range, what: string, scope: string, origin: TensorOrigin, name?: string,
): FoundTensor {
  let values: TensorProtoInfo | undefined;
  let indices: TensorProtoInfo | undefined;
  const dims: bigint[] = [];
  for (const f of fields(file, range, what)) {
    if (f.no === 1) values = parseTensorProto(file, f, `${what}.values`);
    else if (f.no === 2) indices = parseTensorProto(file, f, `${what}.indices`);
    else if (f.no === 3) readRepeatedVarints(file, f, dims, `${what}.dims`);
  }
  if (!values || !indices) {
    throw invalidInput(file.path, `offset ${range.start}`, `${what}: sparse tensor without values or indices`);
  }
  const dense = dims.map((d) => {
    const v = BigInt.asIntN(64, d);
    if (v < 0n || v > BigInt(Number.MAX_SAFE_INTEGER)) {
      throw invalidInput(file.path, `offset ${range.start}`, `${what}: dense dim ${v} is negative or too large`);
    }
    return Number(v);
  });
  const source = name ?? values.name ?? '';
  return { source, origin, scope, proto: values, sparse: { indices, dims: dense }, what: `sparse tensor '${source}'` };
}

function parseValueInfo(file: RandomAccessFile, range: Range): ValueInfo {
  let name = '';
  let dtype: string | undefined;
  let shape: (number | string | null)[] | undefined;
  for (const f of fields(file, range, 'value_info')) {
    if (f.no === 1) name = readString(file, f, 'value_info.name');
    else if (f.no === 2 && f.wire === WIRE_BYTES) {
      for (const t of fields(file, f, 'value_info.type')) {
        if (t.no !== 1 || t.wire !== WIRE_BYTES) continue; // only tensor types carry a shape
        for (const g of fields(file, t, 'tensor_type')) {
          if (g.no === 1 && g.wire === WIRE_VARINT) dtype = ONNX_DTYPES[Number(g.varint)] ?? `type ${g.varint}`;
          else if (g.no === 2 && g.wire === WIRE_BYTES) {
            shape = [];
            for (const d of fields(file, g, 'shape')) {
              if (d.no !== 1 || d.wire !== WIRE_BYTES) continue;
              let dim: number | string | null = null;
              for (const v of fields(file, d, 'dim')) {
                if (v.no === 1 && v.wire === WIRE_VARINT) dim = Number(int64Of(v));
                else if (v.no === 2) dim = readString(file, v, 'dim_param');
              }
              shape.push(dim);
            }
          }
        }
      }
    }
  }
  return { name, ...(dtype ? { dtype } : {}), ...(shape ? { shape } : {}) };
}
