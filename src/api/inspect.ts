import type { Metadata, RoleEvidence, TensorInfo, TensorRole } from '../core/statedict.js';
import { tensorSha256 } from '../ops/hash.js';
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
  sha256?: string;
  /** With --hash: an earlier tensor with the same dtype, shape and values. */
  sameAs?: string;
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
    const hashes = options.hash ? await hashAll(tensors, options.onProgress) : undefined;
    const same = hashes ? sameValues(tensors, hashes) : new Map<TensorInfo, string>();
    return {
      format: dict.format,
      metadata: dict.metadata,
      totals: totals(tensors),
      tensors: tensors.map((t) => tensorJson(t, hashes?.get(t), same.get(t))),
      ...(options.tree ? { tree: nameTree(tensors).map(treeJson) } : {}),
    };
  });
}

function treeJson(n: TreeNode): TreeJson {
  return n.tensor
    ? { name: n.name, tensor: n.tensor.name, parameters: n.parameters, bytes: n.bytes }
    : { name: n.name, parameters: n.parameters, bytes: n.bytes, tensors: n.tensors, children: n.children.map(treeJson) };
}

export async function hashAll(tensors: readonly TensorInfo[], onProgress?: Progress): Promise<Map<TensorInfo, string | undefined>> {
  const hashes = new Map<TensorInfo, string | undefined>();
  for (const t of tensors) {
    hashes.set(t, await tensorSha256(t));
    onProgress?.(hashes.size, tensors.length);
  }
  return hashes;
}

export function tensorJson(t: TensorInfo, sha256?: string, sameAs?: string): TensorJson {
  return {
    name: t.name,
    source: t.source,
    dtype: t.dtype,
    shape: [...t.shape],
    byteLength: t.byteLength,
    origin: t.origin,
    ...(t.layout ? { layout: t.layout } : {}),
    ...(t.role ? { role: t.role, roleFrom: t.roleFrom } : {}),
    ...(t.group && t.group !== 'model' ? { group: t.group } : {}),
    ...(sha256 ? { sha256 } : {}),
    ...(sameAs ? { sameAs } : {}),
  };
}
