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
  encoding?: { label: string; dequantized: string; scale?: number[]; zeroPoint?: number[]; axis?: number };
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
 * Reads each tensor once, one at a time (memory bounded by the largest), for its hash and/or
 * statistics: a hash alone streams (and hashes an encoded tensor's stored bytes); statistics
 * read the values, which a plain tensor's hash then reuses.
 */
async function readAll(tensors: readonly TensorInfo[], hash: boolean, stats: boolean, onProgress?: Progress) {
  // Loaded here: a plain listing reads no values.
  const [{ bytesSha256, tensorSha256 }, { hasStats, StatsScratch, valueStats }] = await Promise.all([import('../ops/hash.js'), import('../ops/stats.js')]);
  const hashes = new Map<TensorInfo, string | undefined>();
  const statistics = new Map<TensorInfo, TensorStats>();
  const total = tensors.reduce((n, t) => n + t.byteLength, 0);
  const scratch = new StatsScratch();
  let done = 0;
  for (const t of tensors) {
    const bytes = stats && hasStats(t.dtype) ? await t.read() : undefined;
    if (bytes) statistics.set(t, valueStats(bytes, t.dtype, scratch));
    if (hash) hashes.set(t, bytes && !t.encoding ? bytesSha256(bytes) : await tensorSha256(t));
    onProgress?.((done += t.byteLength), total);
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
  return { label: e.label, dequantized: t.dtype, ...(e.affine ? { scale: [...e.affine.scale], zeroPoint: [...e.affine.zeroPoint], axis: e.affine.axis } : {}) };
}
