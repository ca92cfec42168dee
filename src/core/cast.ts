import type { DType } from './dtype.js';

/**
 * Casts between floating dtypes and narrowing of integers, on little-endian bytes. Rounding is to
 * nearest, ties to even, as numpy's `astype` and torch's `.to()` do: halves overflow to ±infinity
 * at 65520, small values round to subnormals and then to ±0, NaN stays NaN (quieted, sign kept).
 */

export const CAST_FLOATS: readonly DType[] = ['float64', 'float32', 'float16', 'bfloat16'];

export function isCastableFloat(dtype: DType): boolean {
  return CAST_FLOATS.includes(dtype);
}

/** float32 bits → float16 bits, round to nearest even. */
export function float32BitsToHalf(bits: number): number {
  const sign = (bits >>> 16) & 0x8000;
  const exponent = (bits >>> 23) & 0xff;
  const mantissa = bits & 0x7fffff;
  if (exponent === 0xff) return sign | (mantissa ? 0x7e00 | (mantissa >>> 13) : 0x7c00);
  const e = exponent - 112; // the half's biased exponent
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    // A half subnormal: units of 2^-24. Below 2^-25 everything rounds to zero.
    if (e < -10) return sign;
    const significand = mantissa | 0x800000;
    const shift = 14 - e;
    let half = significand >>> shift;
    const rest = significand & ((1 << shift) - 1);
    const midpoint = 1 << (shift - 1);
    if (rest > midpoint || (rest === midpoint && half & 1)) half++;
    return sign | half;
  }
  // A carry out of the mantissa bumps the exponent, up to infinity: the encoding makes it right.
  let half = (e << 10) | (mantissa >>> 13);
  const rest = mantissa & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && half & 1)) half++;
  return sign | half;
}

/** float32 bits → bfloat16 bits (the high half), round to nearest even. */
export function float32BitsToBfloat16(bits: number): number {
  if ((bits & 0x7fffffff) > 0x7f800000) return (bits >>> 16) | 0x40;
  return ((bits + 0x7fff + ((bits >>> 16) & 1)) / 0x10000) & 0xffff;
}

/**
 * IEEE half → single, as bits: subnormal halves become normal floats, infinities stay infinite
 * and NaNs keep their payload (shifted into place), as tfjs-core's lookup tables do.
 */
export function float16BitsToFloat32Bits(half: number): number {
  const sign = (half & 0x8000) << 16;
  const exponent = (half >> 10) & 0x1f;
  const mantissa = half & 0x3ff;
  if (exponent === 0x1f) return (sign | 0x7f800000 | (mantissa << 13)) >>> 0;
  if (exponent !== 0) return (sign | ((exponent + 112) << 23) | (mantissa << 13)) >>> 0;
  if (mantissa === 0) return sign >>> 0;
  // Subnormal: shift the mantissa up until its leading bit becomes the implicit one.
  let m = mantissa;
  let e = 113;
  while ((m & 0x400) === 0) {
    m <<= 1;
    e--;
  }
  return (sign | (e << 23) | ((m & 0x3ff) << 13)) >>> 0;
}

const scratch = new DataView(new ArrayBuffer(4));

function float32Bits(value: number): number {
  scratch.setFloat32(0, value, true);
  return scratch.getUint32(0, true);
}

/**
 * A float64 value as float32 bits rounded to odd: exact values stay, inexact ones are truncated
 * toward zero with the lowest bit set. Rounding that to a type with at least two fewer mantissa
 * bits (half, bfloat16) gives the correctly rounded result, with no double-rounding error.
 */
function float32BitsRoundedToOdd(value: number): number {
  const nearest = Math.fround(value);
  const bits = float32Bits(nearest);
  if (nearest === value || Number.isNaN(value)) return bits;
  const truncated = Math.abs(nearest) > Math.abs(value) ? bits - 1 : bits;
  return (truncated | 1) >>> 0;
}

/** A number → float16 bits, correctly rounded (to nearest, ties to even). */
export function numberToHalf(value: number): number {
  return float32BitsToHalf(float32BitsRoundedToOdd(value));
}

/** A number → bfloat16 bits, correctly rounded (to nearest, ties to even). */
export function numberToBfloat16(value: number): number {
  return float32BitsToBfloat16(float32BitsRoundedToOdd(value));
}

/** The elements as an aligned typed array over the same bytes where possible. */
export function alignedView<T>(bytes: Uint8Array, of: { new (b: ArrayBufferLike, o: number, n: number): T; BYTES_PER_ELEMENT: number }): T {
  const aligned = bytes.byteOffset % of.BYTES_PER_ELEMENT === 0 ? bytes : bytes.slice();
  return new of(aligned.buffer, aligned.byteOffset, aligned.byteLength / of.BYTES_PER_ELEMENT);
}

const asBytes = (array: ArrayBufferView) => new Uint8Array(array.buffer, array.byteOffset, array.byteLength);

/** float32 bits of every element of a float tensor (widening is exact; float64 rounds to nearest). */
function float32BitsOf(bytes: Uint8Array, from: DType): Uint32Array {
  if (from === 'float32') return alignedView(bytes, Uint32Array);
  if (from === 'float64') return new Uint32Array(Float32Array.from(alignedView(bytes, Float64Array)).buffer);
  const halves = alignedView(bytes, Uint16Array);
  const out = new Uint32Array(halves.length);
  if (from === 'float16') for (let i = 0; i < halves.length; i++) out[i] = float16BitsToFloat32Bits(halves[i]!);
  else for (let i = 0; i < halves.length; i++) out[i] = halves[i]! << 16 >>> 0;
  return out;
}

/** Little-endian bytes of one float dtype → another (float64, float32, float16, bfloat16). */
export function castFloats(bytes: Uint8Array, from: DType, to: DType): Uint8Array {
  if (from === to) return bytes;
  if (!isCastableFloat(from) || !isCastableFloat(to)) throw new Error(`cannot cast ${from} to ${to}`);
  if (to === 'float64') {
    const out = new Float64Array(bytes.byteLength / (from === 'float32' ? 4 : 2));
    const bits = float32BitsOf(bytes, from);
    out.set(new Float32Array(bits.buffer, bits.byteOffset, bits.length));
    return asBytes(out);
  }
  if (to === 'float32') return asBytes(float32BitsOf(bytes, from));
  const round = to === 'float16' ? float32BitsToHalf : float32BitsToBfloat16;
  if (from === 'float64') {
    const values = alignedView(bytes, Float64Array);
    const out = new Uint16Array(values.length);
    const byNumber = to === 'float16' ? numberToHalf : numberToBfloat16;
    for (let i = 0; i < values.length; i++) out[i] = byNumber(values[i]!);
    return asBytes(out);
  }
  const bits = float32BitsOf(bytes, from);
  const out = new Uint16Array(bits.length);
  for (let i = 0; i < bits.length; i++) out[i] = round(bits[i]!);
  return asBytes(out);
}

/** Integer dtypes that an int32 can hold every value of. */
const WIDENS_TO_INT32: readonly DType[] = ['int8', 'int16', 'uint8', 'uint16', 'int32'];
/** Integer dtypes whose values fit int32 only when small enough. */
const NARROWS_TO_INT32: readonly DType[] = ['int64', 'uint64', 'uint32'];

export function castsToInt32(dtype: DType): 'widen' | 'narrow' | undefined {
  return WIDENS_TO_INT32.includes(dtype) ? 'widen' : NARROWS_TO_INT32.includes(dtype) ? 'narrow' : undefined;
}

/** The first value int32 cannot hold, where a narrowing fails. */
export interface OutOfRange {
  index: number;
  value: bigint;
}

/**
 * Integer bytes → int32 bytes. Returns the first value out of int32's range instead when there is
 * one (int64, uint64, uint32 sources), so the caller can name the tensor and the value.
 */
export function integersToInt32(bytes: Uint8Array, from: DType): Uint8Array | OutOfRange {
  if (from === 'int32') return bytes;
  if (from === 'int64' || from === 'uint64') {
    const values = from === 'int64' ? alignedView(bytes, BigInt64Array) : alignedView(bytes, BigUint64Array);
    const out = new Int32Array(values.length);
    for (let i = 0; i < values.length; i++) {
      const v = values[i]!;
      if (v > 2147483647n || v < -2147483648n) return { index: i, value: v };
      out[i] = Number(v);
    }
    return asBytes(out);
  }
  const arrays = { int8: Int8Array, int16: Int16Array, uint8: Uint8Array, uint16: Uint16Array, uint32: Uint32Array } as const;
  const type = arrays[from as keyof typeof arrays];
  if (!type) throw new Error(`cannot cast ${from} to int32`);
  const values = alignedView(bytes, type as unknown as typeof Uint32Array);
  const out = new Int32Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (v > 2147483647) return { index: i, value: BigInt(v) };
    out[i] = v;
  }
  return asBytes(out);
}
