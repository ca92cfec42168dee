import * as path from 'node:path';
import { RandomAccessFile } from '../../core/file.js';
import { invalidInput } from '../../core/errors.js';
import { byteLengthOf, dtypeBits, numelOf } from '../../core/dtype.js';
import { canonicalName, uniqueNames } from '../../core/names.js';
import type { Layout, OpenOptions, StateDict, TensorInfo } from '../../core/statedict.js';
import { graphRole, roleFromName, type GraphView } from '../../core/roles.js';
import type { Detection, FormatReader } from '../types.js';
import { stillDetected } from '../probe.js';
import { onnxFormat } from './match.js';
import { walkModel, type FoundTensor, type GraphNode, type NodeUse } from './model.js';
import { resolveTensor, type TensorPayload } from './tensor.js';

/** Protobuf messages are limited to 2 GiB; larger models must use external data. */
export const MAX_ONNX_FILE = 2 ** 31 - 1;

/** The main graph's nodes of each opened model (fine-tuning reads them). */
const graphs = new WeakMap<StateDict, GraphNode[]>();

export function graphNodesOf(dict: StateDict): GraphNode[] | undefined {
  return graphs.get(dict);
}

export const onnxReader: FormatReader = { ...onnxFormat, open: openOnnx };

export async function openOnnx(file: string, _options: OpenOptions = {}, detection?: Detection): Promise<StateDict> {
  const raf = RandomAccessFile.open(file);
  const dataFiles = new Map<string, RandomAccessFile>();
  const closeAll = () => {
    raf.close();
    for (const data of dataFiles.values()) data.close();
  };
  try {
    if (raf.size > MAX_ONNX_FILE) {
      throw invalidInput(file, undefined, `file is ${raf.size} bytes; a single ONNX protobuf must be under 2 GiB (large models keep tensors in external data)`);
    }
    if (raf.size === 0) throw invalidInput(file, undefined, 'file is empty; expected an ONNX ModelProto');
    const model = stillDetected(detection, raf)?.onnxModel ?? walkModel(raf);
    const ctx = { file: raf, folder: path.dirname(file), dataFiles };
    const payloads = model.tensors.map((t) => payloadOf(ctx, t));
    const names = uniqueNames(model.tensors.map((t) => ({ name: canonicalName(t.source), scope: t.scope })));
    const graph: GraphView = { usesOf: (name) => model.uses.get(name) ?? [], producerOf: (name) => model.producers.get(name) };
    const tensors: TensorInfo[] = model.tensors.map((t, i) => {
      const p = payloads[i]!;
      const layout = layoutFromUses(model.uses.get(t.source), p.shape.length);
      // A tensor no node reads (left over by the exporter) has only its name to go by.
      const fromGraph = graphRole(t.source, p, graph);
      const info: TensorInfo = {
        name: names[i]!,
        source: t.source,
        dtype: p.dtype,
        shape: p.shape,
        byteLength: p.byteLength,
        origin: t.origin,
        ...(layout ? { layout } : {}),
        ...(fromGraph ? { role: fromGraph, roleFrom: 'graph' as const } : { role: roleFromName(t.source, p.dtype), roleFrom: 'names' as const }),
        location: { file, offset: t.proto.at, scope: t.scope, external: t.proto.dataLocation === 1 },
        read: async () => p.read(),
        readStrings: async () => p.readStrings(),
        ...(p.stored ? { stored: p.stored } : {}),
      };
      return info;
    });
    const metadata = {
      irVersion: model.irVersion,
      producerName: model.producerName ?? '',
      producerVersion: model.producerVersion ?? '',
      domain: model.domain ?? '',
      modelVersion: model.modelVersion,
      graphName: model.graphName ?? '',
      opsetImport: model.opsetImport,
      metadataProps: model.metadataProps,
      inputs: model.inputs,
      outputs: model.outputs,
      ...(model.docString ? { docString: model.docString } : {}),
    };
    const dict: StateDict = { format: 'onnx', path: file, metadata, tensors, close: async () => closeAll(), bytesRead: () => raf.bytesRead + [...dataFiles.values()].reduce((n, d) => n + d.bytesRead, 0) };
    graphs.set(dict, model.nodes);
    return dict;
  } catch (err) {
    closeAll();
    throw err;
  }
}

function payloadOf(ctx: { file: RandomAccessFile; folder: string }, t: FoundTensor): TensorPayload {
  if (!t.source) throw invalidInput(ctx.file.path, `offset ${t.proto.at}`, `${t.what}: tensor has no name`);
  const values = resolveTensor(ctx, t.proto, t.what);
  if (!t.sparse) return values;
  return densify(ctx, t, values, resolveTensor(ctx, t.sparse.indices, `${t.what} indices`), t.sparse.dims);
}

/** Sparse tensors are listed with their dense shape and read as dense values. */
function densify(
  ctx: { file: RandomAccessFile }, t: FoundTensor, values: TensorPayload, indices: TensorPayload, dims: number[],
): TensorPayload {
  const fail = (detail: string) => invalidInput(ctx.file.path, `offset ${t.proto.at}`, `${t.what}: ${detail}`);
  const bits = dtypeBits(values.dtype);
  if (values.dtype === 'string' || bits < 8) throw fail(`sparse ${values.dtype} tensors are not supported`);
  if (indices.dtype !== 'int64') throw fail(`indices are ${indices.dtype}, expected int64`);
  const numel = numelOf(dims);
  if (numel === undefined) throw fail(`dense shape [${dims.join(',')}] has too many elements`);
  const nnz = values.shape[0] ?? 0;
  if (values.shape.length !== 1) throw fail(`values have shape [${values.shape.join(',')}], expected [NNZ]`);
  const rank = dims.length;
  const linear = indices.shape.length === 1;
  if (!(linear && indices.shape[0] === nnz) && !(indices.shape.length === 2 && indices.shape[0] === nnz && indices.shape[1] === rank)) {
    throw fail(`indices have shape [${indices.shape.join(',')}], expected [${nnz}] or [${nnz},${rank}]`);
  }
  const width = bits / 8;
  const byteLength = byteLengthOf(values.dtype, numel);
  return {
    dtype: values.dtype,
    shape: dims,
    byteLength,
    readStrings: values.readStrings,
    read: () => {
      const src = values.read();
      const indexBytes = indices.read();
      const idx = new DataView(indexBytes.buffer, indexBytes.byteOffset, indexBytes.byteLength);
      const out = new Uint8Array(byteLength);
      let previous = -1;
      for (let k = 0; k < nnz; k++) {
        let at = 0;
        if (linear) at = Number(idx.getBigInt64(k * 8, true));
        else {
          for (let d = 0; d < rank; d++) {
            const i = Number(idx.getBigInt64((k * rank + d) * 8, true));
            if (i < 0 || i >= dims[d]!) throw fail(`index ${i} out of range for dim ${d} of size ${dims[d]}`);
            at = at * dims[d]! + i;
          }
        }
        if (at < 0 || at >= numel) throw fail(`linear index ${at} out of range for ${numel} elements`);
        if (at <= previous) throw fail('indices are not strictly ascending');
        previous = at;
        out.set(src.subarray(k * width, (k + 1) * width), at * width);
      }
      return out;
    },
  };
}

const SPATIAL = ['W', 'HW', 'DHW'];

/** The weight layout implied by the nodes that consume a tensor, when they all agree. */
export function layoutFromUses(uses: NodeUse[] | undefined, rank: number): Layout | undefined {
  if (!uses?.length) return undefined;
  const layouts = new Set<Layout | undefined>(uses.map((u) => layoutOfUse(u, rank)));
  if (layouts.size !== 1) return undefined;
  return [...layouts][0];
}

function layoutOfUse(use: NodeUse, rank: number): Layout | undefined {
  const spatial = SPATIAL[rank - 3];
  if (use.inputIndex !== 1) return undefined;
  switch (use.opType) {
    case 'Conv':
      return spatial ? `OI${spatial}` : undefined;
    case 'ConvTranspose':
      return spatial ? `IO${spatial}` : undefined;
    case 'Gemm':
      return rank === 2 ? (use.transB ? 'OI' : 'IO') : undefined;
    case 'MatMul':
      return rank === 2 ? 'IO' : undefined;
    default:
      return undefined;
  }
}
