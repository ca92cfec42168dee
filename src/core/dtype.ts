/**
 * The normalized dtype set shared by every format. Names are the stable, lowercase strings of the
 * `inspect --json` contract; widths are in bits so that packed sub-byte types size correctly.
 */
export const DTYPE_BITS = {
  float64: 64,
  float32: 32,
  float16: 16,
  bfloat16: 16,
  float8e4m3fn: 8,
  float8e4m3fnuz: 8,
  float8e5m2: 8,
  float8e5m2fnuz: 8,
  float8e8m0: 8,
  float4e2m1: 4,
  int64: 64,
  int32: 32,
  int16: 16,
  int8: 8,
  int4: 4,
  int2: 2,
  uint64: 64,
  uint32: 32,
  uint16: 16,
  uint8: 8,
  uint4: 4,
  uint2: 2,
  bool: 8,
  complex64: 64,
  complex128: 128,
  /** Variable width: byteLength is the sum of the encoded strings. */
  string: 0,
} as const;

export type DType = keyof typeof DTYPE_BITS;

export function isDType(name: string): name is DType {
  return Object.prototype.hasOwnProperty.call(DTYPE_BITS, name);
}

export function dtypeBits(dtype: DType): number {
  return DTYPE_BITS[dtype];
}

/** Element count of a shape, or undefined when a dim is invalid or the product is not a safe integer. */
export function numelOf(shape: readonly number[]): number | undefined {
  let n = 1;
  for (const d of shape) {
    if (!Number.isSafeInteger(d) || d < 0) return undefined;
    n *= d;
    if (!Number.isSafeInteger(n)) return undefined;
  }
  return n;
}

/** Bytes of a fixed-width tensor: ceil(numel * bits / 8), sub-byte types packed. */
export function byteLengthOf(dtype: DType, numel: number): number {
  const bits = dtypeBits(dtype);
  if (bits % 8 === 0) return numel * (bits / 8);
  return Math.ceil((numel * bits) / 8);
}

export function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** `[3,3,16,32]`: a shape in messages and plan entries. */
export const shapeText = (shape: readonly number[]): string => `[${shape.join(',')}]`;
