import type { TensorInfo } from '../core/statedict.js';
import { tensorSha256 } from '../ops/hash.js';
import { progress } from '../cli/format.js';

/** One tensor in the `inspect --json` contract. */
export interface TensorJson {
  name: string;
  source: string;
  dtype: string;
  shape: number[];
  byteLength: number;
  origin: string;
  layout?: string;
  role?: string;
  roleFrom?: string;
  group?: string;
  sha256?: string;
  /** With --hash: an earlier tensor with the same dtype, shape and values. */
  sameAs?: string;
}

export async function hashAll(tensors: readonly TensorInfo[]): Promise<Map<TensorInfo, string | undefined>> {
  const bar = progress('hashing', tensors.length);
  const hashes = new Map<TensorInfo, string | undefined>();
  try {
    for (const t of tensors) {
      hashes.set(t, await tensorSha256(t));
      bar.tick();
    }
  } finally {
    bar.done();
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
