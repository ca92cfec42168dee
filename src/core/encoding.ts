import type { TensorInfo } from './statedict.js';

/**
 * Affine quantization as TFLite stores it: real = scale × (q − zeroPoint), one (scale, zero point)
 * for the whole tensor or one per slice along `axis`.
 */
export interface AffineQuantization {
  readonly scale: readonly number[];
  readonly zeroPoint: readonly number[];
  /** The quantized dimension; meaningful when there is more than one scale. */
  readonly axis: number;
}

/**
 * Affine over a value range, as TF.js stores uint8/uint16 weights: real = q × scale + min, with
 * no zero point (0 need not be representable).
 */
export interface RangeQuantization {
  readonly min: number;
  readonly scale: number;
}

/**
 * How a tensor is stored when that is not its elementwise dtype: GGUF blocks with scales, affine
 * integers (TFLite, TF.js), TF.js float16 storage of float32 weights, 4- and 6-bit floats. The
 * tensor's own `dtype`, `byteLength` and `read()` are then the dequantized float view that plans,
 * diffs and writers work on; the stored form stays here, and is what `--hash` hashes (so hashes
 * match the format's own tools).
 */
export interface TensorEncoding {
  /** The stored type, lowercase: a dtype name (`int8`) or a block type (`q4_k`). */
  readonly stored: string;
  /** What a listing shows before the arrow: `q4_k`, `int8 per-channel(axis 0)`, `uint8 affine`. */
  readonly label: string;
  /** Bytes as stored in the file. */
  readonly byteLength: number;
  readonly affine?: AffineQuantization;
  readonly range?: RangeQuantization;
  /** The dtype the file says the values had before they were encoded (TF.js `original_dtype`), where it says so. */
  readonly originalDtype?: string;
  /** The bytes exactly as stored. */
  readStored(): Promise<Uint8Array>;
}

/** `int8 per-channel(axis 0)` or `uint8 per-tensor`: the label of affine quantization with zero points. */
export function affineLabel(stored: string, q: AffineQuantization): string {
  return q.scale.length > 1 ? `${stored} per-channel(axis ${q.axis})` : `${stored} per-tensor`;
}

/** The type a listing shows: `q4_k → float32` for an encoded tensor, its dtype otherwise. */
export function typeLabel(t: Pick<TensorInfo, 'dtype' | 'encoding'>): string {
  return t.encoding ? `${t.encoding.label} → ${t.dtype}` : t.dtype;
}

/** Bytes the tensor takes in its file (stored form), for totals and listings. */
export function storedByteLength(t: Pick<TensorInfo, 'byteLength' | 'encoding'>): number {
  return t.encoding ? t.encoding.byteLength : t.byteLength;
}

/** The bytes as the file stores them: what `--hash` hashes. */
export function readStored(t: TensorInfo): Promise<Uint8Array> {
  return t.encoding ? t.encoding.readStored() : t.read();
}

/**
 * real = scale × (q − zeroPoint) for integer elements `q` (already widened), into float32; per
 * channel along `axis` of `shape` where there are several scales. Computed in float32 as TFLite's
 * reference dequantize kernel does.
 */
export function dequantizeAffine(values: ArrayLike<number>, shape: readonly number[], q: AffineQuantization): Float32Array {
  const out = new Float32Array(values.length);
  if (q.scale.length <= 1) {
    const scale = Math.fround(q.scale[0] ?? 1);
    const zero = q.zeroPoint[0] ?? 0;
    for (let i = 0; i < values.length; i++) out[i] = Math.fround(scale * (values[i]! - zero));
    return out;
  }
  // Elements of one channel repeat every `inner` elements, channels cycle every `inner × channels`.
  const channels = shape[q.axis] ?? 1;
  const inner = shape.slice(q.axis + 1).reduce((n, d) => n * d, 1);
  for (let i = 0; i < values.length; i++) {
    const c = Math.floor(i / inner) % channels;
    out[i] = Math.fround(Math.fround(q.scale[c]!) * (values[i]! - (q.zeroPoint[c] ?? 0)));
  }
  return out;
}

/**
 * Float32 → stored integers with the tensor's own affine parameters: q = round(real / scale) +
 * zeroPoint, clamped to [min, max]. What writing new values into a quantized tensor needs.
 */
export function quantizeAffine(values: Float32Array, shape: readonly number[], q: AffineQuantization, min: number, max: number): Float64Array {
  const out = new Float64Array(values.length);
  const channels = q.scale.length <= 1 ? 1 : shape[q.axis] ?? 1;
  const inner = q.scale.length <= 1 ? values.length || 1 : shape.slice(q.axis + 1).reduce((n, d) => n * d, 1);
  for (let i = 0; i < values.length; i++) {
    const c = q.scale.length <= 1 ? 0 : Math.floor(i / inner) % channels;
    const scale = Math.fround(q.scale[c] ?? 1);
    const level = scale === 0 ? 0 : Math.round(values[i]! / scale);
    out[i] = Math.min(max, Math.max(min, level + (q.zeroPoint[c] ?? 0)));
  }
  return out;
}
