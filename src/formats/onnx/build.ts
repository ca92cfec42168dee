import { createRequire } from 'node:module';
import type onnxProto from 'onnx-proto';
import type { DType } from '../../core/dtype.js';
import { ONNX_DTYPE_NUMBER } from './dtypes.js';

/**
 * Builds new ONNX models from plain descriptions (samples, test fixtures, generated graphs) with
 * onnx-proto. It is for models written from scratch only: onnx-proto knows the ONNX 1.10 schema
 * and drops newer fields, so existing models are never decoded and re-encoded through it.
 */
let loaded: typeof onnxProto.onnx | undefined;
/** onnx-proto (protobuf.js, CommonJS) on first use: loading it costs more than all of start-up, and only model building needs it. */
const onnxSchema = (): typeof onnxProto.onnx => (loaded ??= (createRequire(import.meta.url)('onnx-proto') as typeof onnxProto).onnx);

export type AttributeValue =
  | number | number[] | string
  | { floats: number[] } | { float: number } | { tensor: onnxProto.onnx.ITensorProto } | { graph: GraphSpec };

export interface NodeSpec {
  op: string;
  inputs: string[];
  outputs: string[];
  name?: string;
  attributes?: Record<string, AttributeValue>;
  domain?: string;
}

export interface ValueSpec {
  name: string;
  dtype: DType;
  /** Numbers for fixed dims, strings for symbolic ones. */
  shape: (number | string)[];
}

/** A graph: the model's main graph or a subgraph (a Loop body). */
export interface GraphSpec {
  graphName: string;
  nodes: NodeSpec[];
  initializers: onnxProto.onnx.ITensorProto[];
  inputs: ValueSpec[];
  outputs: ValueSpec[];
}

export interface ModelSpec extends GraphSpec {
  opset?: number;
  irVersion?: number;
  producerName?: string;
  producerVersion?: string;
  docString?: string;
}

export function tensorProto(name: string, dtype: DType, shape: readonly number[], raw: Uint8Array): onnxProto.onnx.ITensorProto {
  return { name, dataType: ONNX_DTYPE_NUMBER[dtype], dims: [...shape], rawData: raw };
}

export function float32Tensor(name: string, shape: readonly number[], values: Float32Array): onnxProto.onnx.ITensorProto {
  return tensorProto(name, 'float32', shape, new Uint8Array(values.buffer, values.byteOffset, values.byteLength));
}

function attribute(name: string, value: AttributeValue): onnxProto.onnx.IAttributeProto {
  const T = onnxSchema().AttributeProto.AttributeType;
  if (typeof value === 'number') {
    return Number.isInteger(value) ? { name, type: T.INT, i: value } : { name, type: T.FLOAT, f: value };
  }
  if (typeof value === 'string') return { name, type: T.STRING, s: new TextEncoder().encode(value) };
  if (Array.isArray(value)) return { name, type: T.INTS, ints: value };
  if ('floats' in value) return { name, type: T.FLOATS, floats: value.floats };
  if ('float' in value) return { name, type: T.FLOAT, f: value.float };
  if ('graph' in value) return { name, type: T.GRAPH, g: graphProto(value.graph) };
  return { name, type: T.TENSOR, t: value.tensor };
}

export function valueInfo(spec: ValueSpec): onnxProto.onnx.IValueInfoProto {
  return {
    name: spec.name,
    type: {
      tensorType: {
        elemType: ONNX_DTYPE_NUMBER[spec.dtype],
        shape: { dim: spec.shape.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  };
}

function graphProto(spec: GraphSpec): onnxProto.onnx.IGraphProto {
  return {
    name: spec.graphName,
    node: spec.nodes.map((n, i) => ({
      name: n.name ?? `${n.op}_${i}`,
      opType: n.op,
      input: n.inputs,
      output: n.outputs,
      ...(n.domain ? { domain: n.domain } : {}),
      attribute: Object.entries(n.attributes ?? {}).map(([k, v]) => attribute(k, v)),
    })),
    initializer: spec.initializers,
    input: spec.inputs.map(valueInfo),
    output: spec.outputs.map(valueInfo),
  };
}

export function encodeModel(spec: ModelSpec): Uint8Array {
  const onnx = onnxSchema();
  const model = onnx.ModelProto.create({
    irVersion: spec.irVersion ?? 8,
    producerName: spec.producerName ?? 'ckpt',
    producerVersion: spec.producerVersion ?? '',
    ...(spec.docString ? { docString: spec.docString } : {}),
    opsetImport: [{ domain: '', version: spec.opset ?? 17 }],
    graph: graphProto(spec),
  });
  return onnx.ModelProto.encode(model).finish();
}
