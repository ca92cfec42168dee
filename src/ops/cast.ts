import { byteLengthOf, numelOf, type DType } from '../core/dtype.js';
import { castFloats, isCastableFloat } from '../core/cast.js';
import { tensorChunks } from '../core/chunks.js';
import { usageError } from '../core/errors.js';
import { withValues, type TensorInfo } from '../core/statedict.js';
import { parsePatterns, type Pattern } from './select.js';

/** The dtypes `--dtype` writes floating tensors as. */
export const WRITE_DTYPES = ['float32', 'float16', 'bfloat16'] as const;
export type WriteDType = (typeof WRITE_DTYPES)[number];

export interface DtypeOptions {
  /** Floating tensors (float64, float32, float16, bfloat16) are written as this. */
  dtype?: WriteDType;
  /** Tensors whose canonical name matches keep their dtype. */
  keepDtype?: readonly Pattern[];
}

export function parseDtypeOptions(dtype: string | undefined, keep: readonly string[] | undefined): DtypeOptions {
  if (dtype !== undefined && !(WRITE_DTYPES as readonly string[]).includes(dtype)) {
    throw usageError(`--dtype ${dtype}: expected one of ${WRITE_DTYPES.join(', ')}`);
  }
  if (keep?.length && dtype === undefined) throw usageError('--keep-dtype needs --dtype (it exempts tensors from it)');
  return { ...(dtype ? { dtype: dtype as WriteDType } : {}), ...(keep?.length ? { keepDtype: parsePatterns(keep) } : {}) };
}

/**
 * The tensor with its values cast to another float dtype when read; nothing is read before. The
 * values are cast chunk by chunk into the result: where they are stored as-is, a read holds the
 * cast tensor and one chunk, not the source tensor too.
 */
export function castTensor(tensor: TensorInfo, dtype: DType): TensorInfo {
  if (tensor.dtype === dtype) return tensor;
  const byteLength = byteLengthOf(dtype, numelOf(tensor.shape)!);
  return withValues(tensor, {
    dtype,
    byteLength,
    read: async () => {
      const cast = new Uint8Array(byteLength);
      let at = 0;
      for await (const chunk of tensorChunks(tensor)) {
        const part = castFloats(chunk, tensor.dtype, dtype);
        cast.set(part, at);
        at += part.length;
      }
      return cast;
    },
  });
}

/**
 * Applies `--dtype` to the tensors to write: floating tensors are cast (integers, booleans and
 * other types are left as they are), except those `--keep-dtype` names. Says what it did.
 */
export function applyDtype<T extends { tensor: TensorInfo }>(tensors: readonly T[], options: DtypeOptions): { tensors: T[]; notes: string[] } {
  const to = options.dtype;
  if (!to) return { tensors: [...tensors], notes: [] };
  const keep = options.keepDtype ?? [];
  const kept = (t: TensorInfo) => keep.some((p) => p.test(t.name));
  let cast = 0;
  const keptNames: string[] = [];
  const out = tensors.map((t) => {
    if (!isCastableFloat(t.tensor.dtype) || t.tensor.dtype === to) return t;
    if (kept(t.tensor)) {
      keptNames.push(`${t.tensor.name} (${t.tensor.dtype})`);
      return t;
    }
    cast++;
    return { ...t, tensor: castTensor(t.tensor, to) };
  });
  const notes = [`${cast} floating tensor(s) written as ${to} (--dtype, rounded to nearest even)`];
  if (keptNames.length) notes.push(`${keptNames.length} kept their dtype (--keep-dtype): ${keptNames.slice(0, 8).join(', ')}${keptNames.length > 8 ? ', …' : ''}`);
  for (const p of keep) {
    if (!tensors.some((t) => p.test(t.tensor.name))) notes.push(`--keep-dtype '${p.text}' matched no tensor`);
  }
  return { tensors: out, notes };
}
