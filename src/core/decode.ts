import { dtypeBits, type DType } from './dtype.js';
import { numberToBfloat16, numberToHalf } from './cast.js';

export { numberToHalf } from './cast.js';

/** float16 bits → number (IEEE 754 half precision). */
export function halfToNumber(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exponent = (h >> 10) & 0x1f;
  const fraction = h & 0x3ff;
  if (exponent === 0) return sign * fraction * 2 ** -24;
  if (exponent === 0x1f) return fraction ? NaN : sign * Infinity;
  return sign * (1 + fraction / 1024) * 2 ** (exponent - 15);
}

const NUMERIC: ReadonlySet<DType> = new Set<DType>([
  'float64', 'float32', 'float16', 'bfloat16', 'int64', 'int32', 'int16', 'int8', 'uint64', 'uint32', 'uint16', 'uint8', 'bool',
]);

/** True when `toFloat64` can decode this dtype (value comparisons need it). */
export function isNumeric(dtype: DType): boolean {
  return NUMERIC.has(dtype);
}

/**
 * Values as float64, for comparisons across dtypes (float16 vs float32, int vs float). 64-bit
 * integers beyond 2^53 lose precision here; bit-identity is checked on the bytes instead.
 */
export function toFloat64(bytes: Uint8Array, dtype: DType): Float64Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const width: Partial<Record<DType, number>> = {
    float64: 8, float32: 4, float16: 2, bfloat16: 2, int64: 8, int32: 4, int16: 2, int8: 1, uint64: 8, uint32: 4, uint16: 2, uint8: 1, bool: 1,
  };
  const w = width[dtype];
  if (!w) throw new Error(`cannot decode ${dtype} values as numbers`);
  const n = bytes.byteLength / w;
  const out = new Float64Array(n);
  const scratch = new DataView(new ArrayBuffer(4));
  for (let i = 0; i < n; i++) {
    const at = i * w;
    switch (dtype) {
      case 'float64': out[i] = view.getFloat64(at, true); break;
      case 'float32': out[i] = view.getFloat32(at, true); break;
      case 'float16': out[i] = halfToNumber(view.getUint16(at, true)); break;
      case 'bfloat16':
        // bfloat16 is the high half of a float32.
        scratch.setUint16(0, view.getUint16(at, true), false);
        out[i] = scratch.getFloat32(0, false);
        break;
      case 'int64': out[i] = Number(view.getBigInt64(at, true)); break;
      case 'uint64': out[i] = Number(view.getBigUint64(at, true)); break;
      case 'int32': out[i] = view.getInt32(at, true); break;
      case 'uint32': out[i] = view.getUint32(at, true); break;
      case 'int16': out[i] = view.getInt16(at, true); break;
      case 'uint16': out[i] = view.getUint16(at, true); break;
      case 'int8': out[i] = view.getInt8(at); break;
      default: out[i] = view.getUint8(at); break;
    }
  }
  return out;
}

/**
 * Reorders row-major `values` of `shape` by `permutation` (numpy.transpose semantics): output
 * axis k is input axis permutation[k].
 */
export function transpose(values: Float64Array, shape: readonly number[], permutation: readonly number[]): Float64Array {
  const rank = shape.length;
  const outShape = permutation.map((p) => shape[p]!);
  const inStrides = new Array<number>(rank).fill(1);
  for (let d = rank - 2; d >= 0; d--) inStrides[d] = inStrides[d + 1]! * shape[d + 1]!;
  const out = new Float64Array(values.length);
  const index = new Array<number>(rank).fill(0);
  for (let i = 0; i < values.length; i++) {
    let from = 0;
    for (let k = 0; k < rank; k++) from += index[k]! * inStrides[permutation[k]!]!;
    out[i] = values[from]!;
    for (let k = rank - 1; k >= 0; k--) {
      if (++index[k]! < outShape[k]!) break;
      index[k] = 0;
    }
  }
  return out;
}

/** `transpose` on raw little-endian elements of `width` bytes (any fixed-width dtype). */
export function transposeBytes(bytes: Uint8Array, shape: readonly number[], permutation: readonly number[], width: number): Uint8Array {
  const rank = shape.length;
  const outShape = permutation.map((p) => shape[p]!);
  const inStrides = new Array<number>(rank).fill(1);
  for (let d = rank - 2; d >= 0; d--) inStrides[d] = inStrides[d + 1]! * shape[d + 1]!;
  const count = bytes.length / width;
  const out = new Uint8Array(bytes.length);
  const index = new Array<number>(rank).fill(0);
  for (let i = 0; i < count; i++) {
    let from = 0;
    for (let k = 0; k < rank; k++) from += index[k]! * inStrides[permutation[k]!]!;
    out.set(bytes.subarray(from * width, (from + 1) * width), i * width);
    for (let k = rank - 1; k >= 0; k--) {
      if (++index[k]! < outShape[k]!) break;
      index[k] = 0;
    }
  }
  return out;
}

const FLOAT_DTYPES: ReadonlySet<DType> = new Set<DType>(['float64', 'float32', 'float16', 'bfloat16']);

export function isFloat(dtype: DType): boolean {
  return FLOAT_DTYPES.has(dtype);
}

/** Encodes float64 values as little-endian bytes of a float dtype (for dtype casts in plans). */
export function fromFloat64(values: Float64Array, dtype: DType): Uint8Array {
  const width = dtype === 'float64' ? 8 : dtype === 'float32' ? 4 : 2;
  const out = new Uint8Array(values.length * width);
  const view = new DataView(out.buffer);
  values.forEach((v, i) => {
    if (dtype === 'float64') view.setFloat64(i * 8, v, true);
    else if (dtype === 'float32') view.setFloat32(i * 4, v, true);
    else if (dtype === 'float16') view.setUint16(i * 2, numberToHalf(v), true);
    else if (dtype === 'bfloat16') view.setUint16(i * 2, numberToBfloat16(v), true);
    else throw new Error(`cannot encode ${dtype} from numbers`);
  });
  return out;
}

/** Big-endian elements → little-endian, in a copy; complex numbers swap each part. */
export function swapToLittleEndian(bytes: Uint8Array, dtype: DType): Uint8Array {
  const width = dtypeBits(dtype) / (dtype.startsWith('complex') ? 16 : 8);
  if (width <= 1) return bytes;
  const out = Uint8Array.from(bytes);
  for (let i = 0; i < out.length; i += width) out.subarray(i, i + width).reverse();
  return out;
}

/** Column-major (Fortran-order) elements of `shape` → row-major. */
export function fortranToRowMajor(bytes: Uint8Array, shape: readonly number[], width: number): Uint8Array {
  if (shape.length < 2) return bytes;
  const reversed = [...shape].reverse();
  return transposeBytes(bytes, reversed, reversed.map((_, i) => reversed.length - 1 - i), width);
}
