import type { Metadata, RoleEvidence, TensorInfo, TensorRole } from '../core/statedict.js';
import type { TensorStats } from '../ops/stats.js';
import { storedByteLength } from '../core/encoding.js';
import { parsePatterns } from '../ops/select.js';
import { filterTensors, nameTree, sameValues, totals, type Totals, type TreeNode } from '../ops/summary.js';
import { withModel, type ModelInput, type Progress } from './common.js';

export interface InspectOptions {
  /** Also list optimizer state and other non-model tensors (when the model is given as a path). */
  all?: boolean;
  /** Only tensors whose canonical name matches one of these patterns (see parsePattern). */
  filter?: readonly string[];
  /** Add each tensor's SHA-256 (reads every tensor). */
  hash?: boolean;
  /** Add the tensors grouped by dotted name prefix. */
  tree?: boolean;
  /** Add each numeric tensor's statistics (reads every tensor). */
  stats?: boolean;
  /** With hash or stats: the bytes read so far, of the tensors' total. */
  onProgress?: Progress;
}

/** One tensor in the `inspect --json` contract. */
export interface TensorJson {
  name: string;
  source: string;
  dtype: string;
  shape: number[];
  byteLength: number;
  origin: string;
  layout?: string;
  role?: TensorRole;
  roleFrom?: RoleEvidence;
  group?: string;
  /** An encoded tensor: `dtype` and `sha256` are of the stored form, the values read as `dequantized`. */
  encoding?: {
    label: string; dequantized: string; scale?: number[]; zeroPoint?: number[]; axis?: number;
    /** TF.js uint8/uint16: value = q × scale + min. */
    range?: { min: number; scale: number };
    originalDtype?: string;
  };
  sha256?: string;
  /** With --hash: an earlier tensor with the same dtype, shape and values. */
  sameAs?: string;
  /** With --stats (numeric dtypes). */
  stats?: TensorStats;
}

/** A group of tensors by dotted name prefix, or (with `tensor`) one tensor. */
export interface TreeJson {
  name: string;
  /** A leaf: the tensor's canonical name. */
  tensor?: string;
  parameters: number;
  bytes: number;
  tensors?: number;
  children?: TreeJson[];
}

/** What `ckpt inspect --json` prints. */
export interface InspectResult {
  format: string;
  metadata: Metadata;
  totals: Totals;
  tensors: TensorJson[];
  tree?: TreeJson[];
}

/** The listing of a checkpoint: its format, metadata, totals and tensors, with hashes and a name tree when asked. */
export async function inspect(model: ModelInput, options: InspectOptions = {}): Promise<InspectResult> {
  return withModel(model, { all: options.all }, async (dict) => {
    const tensors = filterTensors(dict, parsePatterns(options.filter));
    const read = options.hash || options.stats ? await readAll(tensors, options.hash === true, options.stats === true, options.onProgress) : undefined;
    const hashes = read?.hashes;
    const same = hashes ? sameValues(tensors, hashes) : new Map<TensorInfo, string>();
    return {
      format: dict.format,
      metadata: dict.metadata,
      totals: totals(tensors),
      tensors: tensors.map((t) => tensorJson(t, hashes?.get(t), same.get(t), read?.stats.get(t))),
      ...(options.tree ? { tree: nameTree(tensors).map(treeJson) } : {}),
    };
  });
}

function treeJson(n: TreeNode): TreeJson {
  return n.tensor
    ? { name: n.name, tensor: n.tensor.name, parameters: n.parameters, bytes: n.bytes }
    : { name: n.name, parameters: n.parameters, bytes: n.bytes, tensors: n.tensors, children: n.children.map(treeJson) };
}

/**
 * Reads each tensor once (memory bounded by the largest, or by chunks where the file stores it
 * as-is), for its hash and/or statistics: a hash alone streams (and hashes an encoded tensor's
 * stored bytes); with statistics, a plain tensor's hash comes from the same read.
 */
async function readAll(tensors: readonly TensorInfo[], hash: boolean, stats: boolean, onProgress?: Progress) {
  // Loaded here: a plain listing reads no values.
  const { readTensors } = await import('../ops/tensor-stats.js');
  const hashes = new Map<TensorInfo, string | undefined>();
  const statistics = new Map<TensorInfo, TensorStats>();
  const total = tensors.reduce((n, t) => n + t.byteLength, 0);
  let done = 0;
  for await (const read of readTensors(tensors, { hash, stats })) {
    if (read.stats) statistics.set(read.tensor, read.stats);
    if (hash) hashes.set(read.tensor, read.sha256);
    onProgress?.((done += read.tensor.byteLength), total);
  }
  return { hashes, stats: statistics };
}

export function tensorJson(t: TensorInfo, sha256?: string, sameAs?: string, stats?: TensorStats): TensorJson {
  return {
    name: t.name,
    source: t.source,
    dtype: t.encoding?.stored ?? t.dtype,
    shape: [...t.shape],
    byteLength: storedByteLength(t),
    origin: t.origin,
    ...(t.layout ? { layout: t.layout } : {}),
    ...(t.role ? { role: t.role, roleFrom: t.roleFrom } : {}),
    ...(t.group && t.group !== 'model' ? { group: t.group } : {}),
    ...(t.encoding ? { encoding: encodingJson(t) } : {}),
    ...(sha256 ? { sha256 } : {}),
    ...(sameAs ? { sameAs } : {}),
    ...(stats ? { stats } : {}),
  };
}

function encodingJson(t: TensorInfo): NonNullable<TensorJson['encoding']> {
  const e = t.encoding!;
  return {
    label: e.label,
    dequantized: t.dtype,
    ...(e.affine ? { scale: [...e.affine.scale], zeroPoint: [...e.affine.zeroPoint], axis: e.affine.axis } : {}),
    ...(e.range ? { range: { min: e.range.min, scale: e.range.scale } } : {}),
    ...(e.originalDtype !== undefined ? { originalDtype: e.originalDtype } : {}),
  };
}
