import { invalidInput } from '../core/errors.js';
import type { RandomAccessFile } from '../core/file.js';
import { byteLengthOf, numelOf, type DType } from '../core/dtype.js';
import type { Layout, RoleEvidence, TensorInfo, TensorOrigin, TensorRole } from '../core/statedict.js';

/** What a reader knows of a tensor stored as one contiguous little-endian range of a file. */
export interface RangeSpec {
  readonly name: string;
  readonly source: string;
  readonly dtype: DType;
  readonly shape: readonly number[];
  readonly offset: number;
  readonly origin: TensorOrigin;
  readonly role?: TensorRole;
  readonly roleFrom?: RoleEvidence;
  readonly layout?: Layout;
}

/** The byte length of `shape` elements of `dtype`, or an error naming the tensor when the count overflows. */
export function rangeByteLength(file: string, where: string, dtype: DType, shape: readonly number[]): number {
  const numel = numelOf(shape);
  if (numel === undefined) throw invalidInput(file, where, `shape [${shape.join(', ')}] has too many elements`);
  return byteLengthOf(dtype, numel);
}

/** A tensor whose values are `byteLength` bytes at `offset` of `raf`, read on demand. */
export function rangeTensor(raf: RandomAccessFile, spec: RangeSpec): TensorInfo {
  const where = `tensor '${spec.source}'`;
  const byteLength = rangeByteLength(raf.path, where, spec.dtype, spec.shape);
  const { offset, ...described } = spec;
  return {
    ...described,
    byteLength,
    read: async () => raf.read(offset, byteLength, where),
    readStrings: async () => {
      throw invalidInput(raf.path, where, `is ${spec.dtype}, not strings`);
    },
  };
}
