import { halfToNumber, isNumeric } from '../core/decode.js';
import type { DType } from '../core/dtype.js';
import type { TensorInfo } from '../core/statedict.js';

/** Equal-width bins from the smallest to the largest finite value. */
export const HISTOGRAM_BINS = 32;

/**
 * The `stats` object of `inspect --stats --json` (schemas/inspect.schema.json). min, max, mean
 * and std are over the finite values (null when there is none); `zeros` is a fraction of all
 * elements; `histogram` counts the finite values in HISTOGRAM_BINS equal bins over [min, max]
 * (all in the first bin when min equals max).
 */
export interface TensorStats {
  min: number | null;
  max: number | null;
  mean: number | null;
  std: number | null;
  zeros: number;
  nan: number;
  posInf: number;
  negInf: number;
  subnormal: number;
  histogram: number[];
}

/** The smallest positive normal value of each float dtype: nonzero values below it are subnormal. */
const SMALLEST_NORMAL: Partial<Record<DType, number>> = {
  float64: 2 ** -1022, float32: 2 ** -126, bfloat16: 2 ** -126, float16: 2 ** -14,
};

/** Elements decoded to float64 at a time for dtypes without a native typed array: bounds the scratch memory. */
const CHUNK = 1 << 16;

/** True when `tensorStats` can read this dtype (floats, integers, booleans). */
export function hasStats(dtype: DType): boolean {
  return isNumeric(dtype);
}

/**
 * The running sums of one tensor, in doubles whatever the dtype. Pass 1 finds the range, the sum
 * and the special values; pass 2 (knowing mean and range) the squared deviations and the histogram.
 */
class Accumulator {
  count = 0;
  finite = 0;
  min = Infinity;
  max = -Infinity;
  sum = 0;
  zeros = 0;
  nan = 0;
  posInf = 0;
  negInf = 0;
  subnormal = 0;
  squares = 0;
  readonly bins = new Float64Array(HISTOGRAM_BINS);

  constructor(readonly smallestNormal: number) {}

  /** A non-finite value (pass 1's slow path). */
  special(v: number): void {
    if (v !== v) this.nan++;
    else if (v > 0) this.posInf++;
    else this.negInf++;
  }

  result(): TensorStats {
    const any = this.finite > 0;
    const mean = any ? this.sum / this.finite : null;
    return {
      min: any ? this.min : null,
      max: any ? this.max : null,
      mean,
      std: any ? Math.sqrt(this.squares / this.finite) : null,
      zeros: this.count ? this.zeros / this.count : 0,
      nan: this.nan,
      posInf: this.posInf,
      negInf: this.negInf,
      subnormal: this.subnormal,
      histogram: Array.from(this.bins),
    };
  }
}

// The kernels run on Float64Array only (float32 chunks are widened into a reused buffer by a native
// copy), so each call site stays monomorphic. The common case, a chunk without NaN or infinities,
// takes the fast loops: no per-element test for them, min/max as conditional moves. A NaN or an
// infinity shows in the chunk's sum, and that chunk alone is then read again carefully.

/** Pass 1 without special values; false (nothing recorded) when the chunk holds one. */
function rangeFast(a: Accumulator, values: Float64Array, length: number): boolean {
  let min = a.min;
  let max = a.max;
  let sum = 0;
  let zeros = 0;
  let subnormal = 0;
  const tiny = a.smallestNormal;
  for (let i = 0; i < length; i++) {
    const v = values[i]!;
    sum += v;
    min = v < min ? v : min;
    max = v > max ? v : max;
    const magnitude = v < 0 ? -v : v;
    if (magnitude < tiny) {
      if (v === 0) zeros++;
      else subnormal++;
    }
  }
  if (!Number.isFinite(sum) || min === -Infinity || max === Infinity) return false;
  Object.assign(a, { min, max, sum: a.sum + sum, zeros: a.zeros + zeros, subnormal: a.subnormal + subnormal, finite: a.finite + length, count: a.count + length });
  return true;
}

/** Pass 1 with a test per element: NaN and ±Infinity counted apart, left out of the rest. */
function rangeCareful(a: Accumulator, values: Float64Array, length: number): void {
  let { min, max, sum, zeros, subnormal, finite } = a;
  const tiny = a.smallestNormal;
  for (let i = 0; i < length; i++) {
    const v = values[i]!;
    // v − v is 0 for finite values, NaN for NaN and ±Infinity.
    if (v - v !== 0) {
      a.special(v);
      continue;
    }
    finite++;
    sum += v;
    if (v < min) min = v;
    if (v > max) max = v;
    if (v === 0) zeros++;
    else if (v < tiny && v > -tiny) subnormal++;
  }
  Object.assign(a, { min, max, sum, zeros, subnormal, finite, count: a.count + length });
}

/** Pass 2: squared deviations from the mean and the histogram; `careful` skips special values. */
function spreadFast(a: Accumulator, values: Float64Array, length: number, mean: number, scale: number): void {
  let squares = a.squares;
  const { bins, min } = a;
  const last = HISTOGRAM_BINS - 1;
  for (let i = 0; i < length; i++) {
    const v = values[i]!;
    const d = v - mean;
    squares += d * d;
    const bin = ((v - min) * scale) | 0;
    bins[bin > last ? last : bin]!++;
  }
  a.squares = squares;
}

function spreadCareful(a: Accumulator, values: Float64Array, length: number, mean: number, scale: number): void {
  let squares = a.squares;
  const { bins, min } = a;
  const last = HISTOGRAM_BINS - 1;
  for (let i = 0; i < length; i++) {
    const v = values[i]!;
    if (v - v !== 0) continue;
    const d = v - mean;
    squares += d * d;
    const bin = ((v - min) * scale) | 0;
    bins[bin > last ? last : bin]!++;
  }
  a.squares = squares;
}

/** Buffers reused from chunk to chunk and tensor to tensor: decoded values, bfloat16 widening. */
export class StatsScratch {
  private decoded = new Float64Array(0);
  private wide = new Float32Array(0);
  chunk(length: number): Float64Array {
    if (this.decoded.length < length) this.decoded = new Float64Array(length);
    return this.decoded;
  }
  float32(length: number): Float32Array {
    if (this.wide.length < length) this.wide = new Float32Array(length);
    return this.wide;
  }
}

/**
 * Statistics of little-endian values of `dtype`, CHUNK elements at a time: float64 read in place
 * (copied once when misaligned), float32 widened, other dtypes decoded, into reused buffers.
 */
export function valueStats(bytes: Uint8Array, dtype: DType, scratch = new StatsScratch()): TensorStats {
  // Integers have no subnormals: below the smallest positive double only 0 is.
  const a = new Accumulator(SMALLEST_NORMAL[dtype] ?? Number.MIN_VALUE);
  const width = elementBytes(dtype);
  const aligned = bytes.byteOffset % width === 0 ? bytes : Uint8Array.from(bytes);
  const count = Math.floor(aligned.byteLength / width);
  const eachChunk = (visit: (values: Float64Array, length: number) => void) => {
    for (let at = 0; at < count; at += CHUNK) {
      const length = Math.min(CHUNK, count - at);
      if (dtype === 'float64') visit(new Float64Array(aligned.buffer, aligned.byteOffset + at * 8, length), length);
      else if (dtype === 'float32') {
        const values = scratch.chunk(CHUNK);
        values.set(new Float32Array(aligned.buffer, aligned.byteOffset + at * 4, length));
        visit(values, length);
      } else {
        const values = scratch.chunk(CHUNK);
        decodeInto(aligned.subarray(at * width, (at + length) * width), dtype, values, scratch);
        visit(values, length);
      }
    }
  };
  eachChunk((values, length) => {
    if (!rangeFast(a, values, length)) rangeCareful(a, values, length);
  });
  const mean = a.sum / Math.max(1, a.finite);
  const scale = binScale(a);
  const clean = a.nan + a.posInf + a.negInf === 0;
  eachChunk((values, length) => (clean ? spreadFast : spreadCareful)(a, values, length, mean, scale));
  return a.result();
}

let halfTable: Float64Array | undefined;
/** Every float16 bit pattern's value, built once: decoding is then one load per element. */
function halfValues(): Float64Array {
  if (!halfTable) {
    halfTable = new Float64Array(65536);
    for (let h = 0; h < 65536; h++) halfTable[h] = halfToNumber(h);
  }
  return halfTable;
}

/** Decodes one aligned chunk into `out` without allocating; returns the element count. */
function decodeInto(part: Uint8Array, dtype: DType, out: Float64Array, scratch: StatsScratch): number {
  const length = Math.floor(part.byteLength / elementBytes(dtype));
  const { buffer, byteOffset } = part;
  switch (dtype) {
    case 'float16': {
      const table = halfValues();
      const bits = new Uint16Array(buffer, byteOffset, length);
      for (let i = 0; i < length; i++) out[i] = table[bits[i]!]!;
      break;
    }
    case 'bfloat16': {
      // bfloat16 is the high half of a float32.
      const bits = new Uint16Array(buffer, byteOffset, length);
      const wide = scratch.float32(length);
      const wideBits = new Uint32Array(wide.buffer, 0, length);
      for (let i = 0; i < length; i++) wideBits[i] = bits[i]! << 16;
      for (let i = 0; i < length; i++) out[i] = wide[i]!;
      break;
    }
    case 'int64': case 'uint64': {
      const words = dtype === 'int64' ? new BigInt64Array(buffer, byteOffset, length) : new BigUint64Array(buffer, byteOffset, length);
      for (let i = 0; i < length; i++) out[i] = Number(words[i]!);
      break;
    }
    default: {
      const Typed = { int32: Int32Array, uint32: Uint32Array, int16: Int16Array, uint16: Uint16Array, int8: Int8Array }[dtype as string] ?? Uint8Array;
      const values = new Typed(buffer as ArrayBuffer, byteOffset, length);
      for (let i = 0; i < length; i++) out[i] = values[i]!;
    }
  }
  return length;
}

/** Bins per unit of value; with one distinct value every value lands in bin 0. */
function binScale(a: Accumulator): number {
  const range = a.max - a.min;
  return range > 0 && Number.isFinite(range) ? HISTOGRAM_BINS / range : 0;
}

function elementBytes(dtype: DType): number {
  return dtype === 'float64' || dtype === 'int64' || dtype === 'uint64' ? 8 : dtype === 'float32' || dtype === 'int32' || dtype === 'uint32' ? 4
    : dtype === 'float16' || dtype === 'bfloat16' || dtype === 'int16' || dtype === 'uint16' ? 2 : 1;
}

/** Reads one tensor and returns its statistics; undefined for dtypes without numbers (strings, complex, packed). */
export async function tensorStats(tensor: TensorInfo, scratch?: StatsScratch): Promise<TensorStats | undefined> {
  if (!hasStats(tensor.dtype)) return undefined;
  return valueStats(await tensor.read(), tensor.dtype, scratch);
}

/** Statistics of each numeric tensor by name, one tensor read at a time (diff --html: both sides' histograms). */
export async function statsByName(tensors: readonly TensorInfo[], onTensor?: (t: TensorInfo) => void): Promise<Record<string, TensorStats>> {
  const out: Record<string, TensorStats> = {};
  const scratch = new StatsScratch();
  for (const t of tensors) {
    const stats = await tensorStats(t, scratch);
    if (stats) out[t.name] = stats;
    onTensor?.(t);
  }
  return out;
}
