import { createHash } from 'node:crypto';
import { halfToNumber, isNumeric } from '../core/decode.js';
import type { DType } from '../core/dtype.js';
import { CHUNK_BYTES, chunkBuffer } from '../core/chunks.js';
import type { StoredBytes, TensorInfo } from '../core/statedict.js';

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

/**
 * Elements per block of pass 1: each block's sum is taken on its own, then added to the total, so
 * results do not depend on how a tensor is cut into pieces as long as pieces are whole blocks.
 * Also the elements decoded to float64 at a time for dtypes without a native typed array.
 */
const BLOCK = 1 << 16;

/** True when `tensorStats` can read this dtype (floats, integers, booleans). */
export function hasStats(dtype: DType): boolean {
  return isNumeric(dtype);
}

/** Where each running sum of a tensor lives in one Float64Array: every accumulator stays a double, so the loops stay monomorphic. */
const enum Sum { Min, Max, Total, Zeros, Subnormal, Finite, Count, Nan, PosInf, NegInf, Squares, Tiny, Mean, Scale }
const SUM_LENGTH = 14;
const LAST_BIN = HISTOGRAM_BINS - 1;
/**
 * Pass 2 counts pairs of consecutive values: one increment per two elements, at bin(v0)·SPAN +
 * bin(v1), in two interleaved tables so that consecutive increments rarely wait on each other.
 * A bin is 0…32 (32 only for values at max, counted in the last bin when the pairs are added up).
 */
const SPAN = HISTOGRAM_BINS + 1;
const PAIRS = SPAN * SPAN;

// Each kernel exists once per array type (Float32Array read in place, Float64Array for float64
// and every decoded dtype) so each call site sees one type. The common case, a block without NaN or
// infinities, takes the fast loops: no per-element test for them, min/max as conditional moves. A
// NaN or an infinity shows in the block's sum, and that block alone is then read again carefully.

/** Pass 1 over one block without special values; false (nothing recorded) when the block holds one. */
function rangeFast32(values: Float32Array, start: number, end: number, s: Float64Array): boolean {
  let min = s[Sum.Min]!, max = s[Sum.Max]!, total = 0, zeros = 0, subnormal = 0;
  const tiny = s[Sum.Tiny]!;
  for (let i = start; i < end; i++) {
    const v = values[i]!;
    total += v;
    min = v < min ? v : min;
    max = v > max ? v : max;
    if (Math.abs(v) < tiny) {
      if (v === 0) zeros++;
      else subnormal++;
    }
  }
  if (!Number.isFinite(total) || min === -Infinity || max === Infinity) return false;
  s[Sum.Min] = min; s[Sum.Max] = max; s[Sum.Total] += total; s[Sum.Zeros] += zeros; s[Sum.Subnormal] += subnormal;
  s[Sum.Finite] += end - start; s[Sum.Count] += end - start;
  return true;
}

/**
 * rangeFast32 over two blocks at once, [start, start + length) and the next (length BLOCK but in
 * warmUp): two sums that
 * do not wait on each other, each block's added to the total in order as before. Each block keeps
 * its own min and max, the first block's winning ties (as one pass in order would: −0 and 0).
 */
function rangeTwoBlocks32(values: Float32Array, start: number, length: number, s: Float64Array): boolean {
  let minA = s[Sum.Min]!, maxA = s[Sum.Max]!, minB = minA, maxB = maxA, totalA = 0, totalB = 0, zeros = 0, subnormal = 0;
  const tiny = s[Sum.Tiny]!;
  const end = start + length;
  for (let i = start; i < end; i++) {
    const a = values[i]!, b = values[i + length]!;
    totalA += a;
    totalB += b;
    minA = a < minA ? a : minA;
    maxA = a > maxA ? a : maxA;
    minB = b < minB ? b : minB;
    maxB = b > maxB ? b : maxB;
    if (Math.abs(a) < tiny) {
      if (a === 0) zeros++;
      else subnormal++;
    }
    if (Math.abs(b) < tiny) {
      if (b === 0) zeros++;
      else subnormal++;
    }
  }
  if (!Number.isFinite(totalA) || !Number.isFinite(totalB) || minA === -Infinity || minB === -Infinity || maxA === Infinity || maxB === Infinity) return false;
  s[Sum.Min] = minB < minA ? minB : minA; s[Sum.Max] = maxB > maxA ? maxB : maxA;
  s[Sum.Total] += totalA; s[Sum.Total] += totalB; s[Sum.Zeros] += zeros; s[Sum.Subnormal] += subnormal;
  s[Sum.Finite] += 2 * length; s[Sum.Count] += 2 * length;
  return true;
}

function rangeFast64(values: Float64Array, start: number, end: number, s: Float64Array): boolean {
  let min = s[Sum.Min]!, max = s[Sum.Max]!, total = 0, zeros = 0, subnormal = 0;
  const tiny = s[Sum.Tiny]!;
  for (let i = start; i < end; i++) {
    const v = values[i]!;
    total += v;
    min = v < min ? v : min;
    max = v > max ? v : max;
    if (Math.abs(v) < tiny) {
      if (v === 0) zeros++;
      else subnormal++;
    }
  }
  if (!Number.isFinite(total) || min === -Infinity || max === Infinity) return false;
  s[Sum.Min] = min; s[Sum.Max] = max; s[Sum.Total] += total; s[Sum.Zeros] += zeros; s[Sum.Subnormal] += subnormal;
  s[Sum.Finite] += end - start; s[Sum.Count] += end - start;
  return true;
}

/** Pass 1 with a test per element: NaN and ±Infinity counted apart, left out of the rest (added to the total one by one). */
function rangeCareful32(values: Float32Array, start: number, end: number, s: Float64Array): void {
  let min = s[Sum.Min]!, max = s[Sum.Max]!, total = s[Sum.Total]!, zeros = 0, subnormal = 0, finite = 0, nan = 0, posInf = 0, negInf = 0;
  const tiny = s[Sum.Tiny]!;
  for (let i = start; i < end; i++) {
    const v = values[i]!;
    // v − v is 0 for finite values, NaN for NaN and ±Infinity.
    if (v - v !== 0) {
      if (v !== v) nan++;
      else if (v > 0) posInf++;
      else negInf++;
      continue;
    }
    finite++;
    total += v;
    if (v < min) min = v;
    if (v > max) max = v;
    if (v === 0) zeros++;
    else if (Math.abs(v) < tiny) subnormal++;
  }
  s[Sum.Min] = min; s[Sum.Max] = max; s[Sum.Total] = total; s[Sum.Zeros] += zeros; s[Sum.Subnormal] += subnormal;
  s[Sum.Finite] += finite; s[Sum.Count] += end - start; s[Sum.Nan] += nan; s[Sum.PosInf] += posInf; s[Sum.NegInf] += negInf;
}

function rangeCareful64(values: Float64Array, start: number, end: number, s: Float64Array): void {
  let min = s[Sum.Min]!, max = s[Sum.Max]!, total = s[Sum.Total]!, zeros = 0, subnormal = 0, finite = 0, nan = 0, posInf = 0, negInf = 0;
  const tiny = s[Sum.Tiny]!;
  for (let i = start; i < end; i++) {
    const v = values[i]!;
    if (v - v !== 0) {
      if (v !== v) nan++;
      else if (v > 0) posInf++;
      else negInf++;
      continue;
    }
    finite++;
    total += v;
    if (v < min) min = v;
    if (v > max) max = v;
    if (v === 0) zeros++;
    else if (Math.abs(v) < tiny) subnormal++;
  }
  s[Sum.Min] = min; s[Sum.Max] = max; s[Sum.Total] = total; s[Sum.Zeros] += zeros; s[Sum.Subnormal] += subnormal;
  s[Sum.Finite] += finite; s[Sum.Count] += end - start; s[Sum.Nan] += nan; s[Sum.PosInf] += posInf; s[Sum.NegInf] += negInf;
}

/**
 * Pass 2 (mean and range known), for tensors without NaN or infinities: squared deviations from
 * the mean, added in element order, and the pair counts; an odd last element goes to `bins`.
 */
function spreadFast32(values: Float32Array, start: number, end: number, s: Float64Array, pairs: Float64Array, bins: Float64Array): void {
  let squares = s[Sum.Squares]!;
  const mean = s[Sum.Mean]!, min = s[Sum.Min]!, scale = s[Sum.Scale]!;
  let i = start;
  for (; i + 3 < end; i += 4) {
    const v0 = values[i]!, v1 = values[i + 1]!, v2 = values[i + 2]!, v3 = values[i + 3]!;
    const d0 = v0 - mean, d1 = v1 - mean, d2 = v2 - mean, d3 = v3 - mean;
    squares += d0 * d0;
    squares += d1 * d1;
    squares += d2 * d2;
    squares += d3 * d3;
    pairs[(((v0 - min) * scale) | 0) * SPAN + (((v1 - min) * scale) | 0)]!++;
    pairs[PAIRS + (((v2 - min) * scale) | 0) * SPAN + (((v3 - min) * scale) | 0)]!++;
  }
  for (; i < end; i++) {
    const v = values[i]!;
    const d = v - mean;
    squares += d * d;
    const b = ((v - min) * scale) | 0;
    bins[b > LAST_BIN ? LAST_BIN : b]!++;
  }
  s[Sum.Squares] = squares;
}

function spreadFast64(values: Float64Array, start: number, end: number, s: Float64Array, pairs: Float64Array, bins: Float64Array): void {
  let squares = s[Sum.Squares]!;
  const mean = s[Sum.Mean]!, min = s[Sum.Min]!, scale = s[Sum.Scale]!;
  let i = start;
  for (; i + 3 < end; i += 4) {
    const v0 = values[i]!, v1 = values[i + 1]!, v2 = values[i + 2]!, v3 = values[i + 3]!;
    const d0 = v0 - mean, d1 = v1 - mean, d2 = v2 - mean, d3 = v3 - mean;
    squares += d0 * d0;
    squares += d1 * d1;
    squares += d2 * d2;
    squares += d3 * d3;
    pairs[(((v0 - min) * scale) | 0) * SPAN + (((v1 - min) * scale) | 0)]!++;
    pairs[PAIRS + (((v2 - min) * scale) | 0) * SPAN + (((v3 - min) * scale) | 0)]!++;
  }
  for (; i < end; i++) {
    const v = values[i]!;
    const d = v - mean;
    squares += d * d;
    const b = ((v - min) * scale) | 0;
    bins[b > LAST_BIN ? LAST_BIN : b]!++;
  }
  s[Sum.Squares] = squares;
}

/** Pass 2 skipping NaN and ±Infinity, for tensors that hold some. */
function spreadCareful32(values: Float32Array, start: number, end: number, s: Float64Array, bins: Float64Array): void {
  let squares = s[Sum.Squares]!;
  const mean = s[Sum.Mean]!, min = s[Sum.Min]!, scale = s[Sum.Scale]!;
  for (let i = start; i < end; i++) {
    const v = values[i]!;
    if (v - v !== 0) continue;
    const d = v - mean;
    squares += d * d;
    const b = ((v - min) * scale) | 0;
    bins[b > LAST_BIN ? LAST_BIN : b]!++;
  }
  s[Sum.Squares] = squares;
}

function spreadCareful64(values: Float64Array, start: number, end: number, s: Float64Array, bins: Float64Array): void {
  let squares = s[Sum.Squares]!;
  const mean = s[Sum.Mean]!, min = s[Sum.Min]!, scale = s[Sum.Scale]!;
  for (let i = start; i < end; i++) {
    const v = values[i]!;
    if (v - v !== 0) continue;
    const d = v - mean;
    squares += d * d;
    const b = ((v - min) * scale) | 0;
    bins[b > LAST_BIN ? LAST_BIN : b]!++;
  }
  s[Sum.Squares] = squares;
}

/** Buffers reused from block to block and tensor to tensor: decoded values, bfloat16 widening, misaligned bytes. */
export class StatsScratch {
  readonly decoded = new Float64Array(BLOCK);
  readonly wide = new Float32Array(BLOCK);
  private copy = new Uint8Array(0);
  /** `bytes` where a view of `width`-byte elements can be taken: in place, or copied when misaligned. */
  aligned(bytes: Uint8Array, width: number): Uint8Array {
    if (bytes.byteOffset % width === 0) return bytes;
    if (this.copy.length < bytes.length) this.copy = new Uint8Array(bytes.length);
    const copy = this.copy.subarray(0, bytes.length);
    copy.set(bytes);
    return copy;
  }
}

/**
 * The statistics of one tensor, fed its little-endian bytes in two passes: `range` (min, max, sum,
 * counts) over every piece in order, then `spread` (squared deviations, histogram) over every
 * piece again in order. Pieces of pass 1 must be whole blocks of BLOCK elements but the last (any
 * multiple of 512 KiB is), so results do not depend on how the tensor is cut.
 */
export class StatsAccumulator {
  private readonly sums = new Float64Array(SUM_LENGTH);
  private readonly bins = new Float64Array(HISTOGRAM_BINS);
  private readonly pairs = new Float64Array(2 * PAIRS);
  private readonly width: number;
  private spreading = false;
  private clean = true;

  constructor(readonly dtype: DType, private readonly scratch = new StatsScratch()) {
    warmUp();
    this.width = elementBytes(dtype);
    this.sums[Sum.Min] = Infinity;
    this.sums[Sum.Max] = -Infinity;
    // Integers have no subnormals: below the smallest positive double only 0 is.
    this.sums[Sum.Tiny] = SMALLEST_NORMAL[dtype] ?? Number.MIN_VALUE;
  }

  range(piece: Uint8Array): void {
    const s = this.sums;
    const bytes = this.scratch.aligned(piece, this.width);
    const count = Math.floor(bytes.byteLength / this.width);
    if (this.dtype === 'float32') {
      const values = new Float32Array(bytes.buffer, bytes.byteOffset, count);
      let at = 0;
      for (; at + 2 * BLOCK <= count; at += 2 * BLOCK) {
        if (rangeTwoBlocks32(values, at, BLOCK, s)) continue;
        // A special value in one of them: each block on its own.
        if (!rangeFast32(values, at, at + BLOCK, s)) rangeCareful32(values, at, at + BLOCK, s);
        if (!rangeFast32(values, at + BLOCK, at + 2 * BLOCK, s)) rangeCareful32(values, at + BLOCK, at + 2 * BLOCK, s);
      }
      for (; at < count; at += BLOCK) {
        const end = Math.min(count, at + BLOCK);
        if (!rangeFast32(values, at, end, s)) rangeCareful32(values, at, end, s);
      }
      return;
    }
    for (let at = 0; at < count; at += BLOCK) {
      const values = this.float64Block(bytes, at, Math.min(count, at + BLOCK));
      if (!rangeFast64(values, 0, values.length, s)) rangeCareful64(values, 0, values.length, s);
    }
  }

  spread(piece: Uint8Array): void {
    const s = this.sums;
    if (!this.spreading) {
      this.spreading = true;
      s[Sum.Mean] = s[Sum.Total]! / Math.max(1, s[Sum.Finite]!);
      // Bins per unit of value; with one distinct value every value lands in bin 0.
      const range = s[Sum.Max]! - s[Sum.Min]!;
      s[Sum.Scale] = range > 0 && Number.isFinite(range) ? HISTOGRAM_BINS / range : 0;
      this.clean = s[Sum.Nan]! + s[Sum.PosInf]! + s[Sum.NegInf]! === 0;
    }
    const bytes = this.scratch.aligned(piece, this.width);
    const count = Math.floor(bytes.byteLength / this.width);
    if (this.dtype === 'float32') {
      const values = new Float32Array(bytes.buffer, bytes.byteOffset, count);
      if (this.clean) spreadFast32(values, 0, count, s, this.pairs, this.bins);
      else spreadCareful32(values, 0, count, s, this.bins);
      return;
    }
    for (let at = 0; at < count; at += BLOCK) {
      const values = this.float64Block(bytes, at, Math.min(count, at + BLOCK));
      if (this.clean) spreadFast64(values, 0, values.length, s, this.pairs, this.bins);
      else spreadCareful64(values, 0, values.length, s, this.bins);
    }
  }

  result(): TensorStats {
    const s = this.sums;
    const finite = s[Sum.Finite]!;
    const any = finite > 0;
    const histogram = Array.from(this.bins);
    for (let at = 0; at < this.pairs.length; at++) {
      const count = this.pairs[at]!;
      if (count === 0) continue;
      const pair = at % PAIRS;
      histogram[Math.min(LAST_BIN, Math.floor(pair / SPAN))]! += count;
      histogram[Math.min(LAST_BIN, pair % SPAN)]! += count;
    }
    return {
      min: any ? s[Sum.Min]! : null,
      max: any ? s[Sum.Max]! : null,
      mean: any ? s[Sum.Total]! / finite : null,
      std: any ? Math.sqrt(s[Sum.Squares]! / finite) : null,
      zeros: s[Sum.Count] ? s[Sum.Zeros]! / s[Sum.Count]! : 0,
      nan: s[Sum.Nan]!,
      posInf: s[Sum.PosInf]!,
      negInf: s[Sum.NegInf]!,
      subnormal: s[Sum.Subnormal]!,
      histogram,
    };
  }

  /** Elements [start, end) of aligned `bytes` as doubles: float64 in place, other dtypes decoded into the scratch block. */
  private float64Block(bytes: Uint8Array, start: number, end: number): Float64Array {
    if (this.dtype === 'float64') return new Float64Array(bytes.buffer, bytes.byteOffset + start * 8, end - start);
    const out = this.scratch.decoded.subarray(0, end - start);
    decodeInto(bytes.subarray(start * this.width, end * this.width), this.dtype, out, this.scratch.wide);
    return out;
  }
}

let warm = false;
/**
 * Runs every kernel on a few small inputs, once per thread, before any real tensor. V8 records type
 * feedback lazily: a kernel whose first call is a long loop gets compiled on the stack (OSR) with
 * no feedback for the code around the loop, bails out of it at the end of every later call and
 * stays in that slow state (7 ns per element instead of 2, measured). Small calls first give
 * every site its feedback, so the kernels are compiled whole.
 */
function warmUp(): void {
  if (warm) return;
  warm = true;
  const ordinary = [0.5, -2, 0, 1e-40, 3, -0.25, 1, 2];
  const special = [NaN, Infinity, -Infinity, 0, 1e-40, 1, -1, 2];
  const scratch = new StatsScratch();
  for (let i = 0; i < 16; i++) {
    rangeTwoBlocks32(Float32Array.from(i % 4 ? ordinary : special), 0, ordinary.length / 2, new Float64Array(SUM_LENGTH));
    for (const values of [ordinary, special]) {
      for (const bytes of [new Uint8Array(Float32Array.from(values).buffer), new Uint8Array(Float64Array.from(values).buffer)]) {
        const stats = new StatsAccumulator(bytes.length === values.length * 4 ? 'float32' : 'float64', scratch);
        stats.range(bytes);
        stats.spread(bytes);
      }
    }
  }
}

/** Statistics of little-endian values of `dtype` held in memory. */
export function valueStats(bytes: Uint8Array, dtype: DType, scratch = new StatsScratch()): TensorStats {
  const stats = new StatsAccumulator(dtype, scratch);
  stats.range(bytes);
  stats.spread(bytes);
  return stats.result();
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

/** Decodes one aligned block (at most BLOCK elements) into `out` without allocating. */
function decodeInto(part: Uint8Array, dtype: DType, out: Float64Array, wide: Float32Array): void {
  const length = out.length;
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
      out.set(new Typed(buffer as ArrayBuffer, byteOffset, length));
    }
  }
}

function elementBytes(dtype: DType): number {
  return dtype === 'float64' || dtype === 'int64' || dtype === 'uint64' ? 8 : dtype === 'float32' || dtype === 'int32' || dtype === 'uint32' ? 4
    : dtype === 'float16' || dtype === 'bfloat16' || dtype === 'int16' || dtype === 'uint16' ? 2 : 1;
}

/**
 * Tensors up to this size are held in memory between the two passes, so each is read once; larger
 * ones are read again for pass 2, a chunk at a time (memory stays bounded whatever their size).
 */
export const HOLD_BYTES = 64 << 20;

/** The buffers one thread reads one side's tensors through, reused from tensor to tensor: a chunk, and a whole tensor of up to HOLD_BYTES. */
export class SideBuffers {
  readonly chunk = chunkBuffer();
  private whole = chunkBuffer(0);
  /** A buffer for a whole tensor of `bytes` (grown as needed), or undefined beyond HOLD_BYTES. */
  holding(bytes: number): Buffer | undefined {
    if (bytes > HOLD_BYTES) return undefined;
    if (this.whole.length < bytes) this.whole = chunkBuffer(Math.max(bytes, CHUNK_BYTES));
    return this.whole;
  }
}

/**
 * One stored tensor read chunk by chunk (CHUNK_BYTES, whole blocks for StatsAccumulator) in pass 1,
 * and its bytes again for pass 2: from memory when `hold` and it fits, else from the file.
 */
export class StoredReader {
  private readonly held: Buffer | undefined;

  constructor(private readonly stored: StoredBytes, readonly byteLength: number, private readonly buffers: SideBuffers, private readonly what: string, hold: boolean) {
    this.held = hold ? buffers.holding(byteLength) : undefined;
  }

  /** The chunk at `at` (a multiple of CHUNK_BYTES), valid until the next read when not held. */
  read(at: number): Buffer {
    const length = Math.min(CHUNK_BYTES, this.byteLength - at);
    const target = this.held ? this.held.subarray(at, at + length) : this.buffers.chunk.subarray(0, length);
    return this.stored.file.readInto(this.stored.offset + at, target, this.what);
  }

  /** Every chunk again, in order, for pass 2. */
  *again(): Generator<Uint8Array> {
    for (let at = 0; at < this.byteLength; at += CHUNK_BYTES) {
      yield this.held ? this.held.subarray(at, Math.min(this.byteLength, at + CHUNK_BYTES)) : this.read(at);
    }
  }
}

/**
 * Statistics of a tensor stored as-is (TensorInfo.stored), streamed through `buffers`; `onChunk`
 * sees every byte once, in order (a hash of the same read).
 */
export function storedStats(reader: StoredReader, dtype: DType, scratch: StatsScratch, onChunk?: (chunk: Uint8Array) => void): TensorStats {
  const stats = new StatsAccumulator(dtype, scratch);
  for (let at = 0; at < reader.byteLength; at += CHUNK_BYTES) {
    const chunk = reader.read(at);
    stats.range(chunk);
    onChunk?.(chunk);
  }
  for (const chunk of reader.again()) stats.spread(chunk);
  return stats.result();
}

/** storedStats of a whole stored tensor, read through `buffers` and held for pass 2, with its SHA-256 from the same read when `hash`. */
export function storedStatsAndHash(stored: StoredBytes, byteLength: number, dtype: DType, hash: boolean, buffers: SideBuffers, scratch: StatsScratch, what: string): { stats: TensorStats; sha256?: string } {
  const sha256 = hash ? createHash('sha256') : undefined;
  const stats = storedStats(new StoredReader(stored, byteLength, buffers, what, true), dtype, scratch, sha256 && ((chunk) => sha256.update(chunk)));
  return { stats, ...(sha256 ? { sha256: sha256.digest('hex') } : {}) };
}

/** Reads one tensor and returns its statistics; undefined for dtypes without numbers (strings, complex, packed). */
export async function tensorStats(tensor: TensorInfo, scratch?: StatsScratch): Promise<TensorStats | undefined> {
  if (!hasStats(tensor.dtype)) return undefined;
  return valueStats(await tensor.read(), tensor.dtype, scratch);
}
