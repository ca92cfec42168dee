import { createHash } from 'node:crypto';
import { halfToNumber, isNumeric } from '../core/decode.js';
import type { DType } from '../core/dtype.js';
import { CHUNK_BYTES } from '../core/chunks.js';
import type { StoredBytes, TensorInfo } from '../core/statedict.js';
import { BLOCK, kernelMemory, type KernelMemory, type SideRegion } from './stats-kernels.js';

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

/** True when `tensorStats` can read this dtype (floats, integers, booleans). */
export function hasStats(dtype: DType): boolean {
  return isNumeric(dtype);
}

/** Where each running sum of a tensor lives in one Float64Array: every accumulator stays a double, so the loops stay monomorphic. */
const enum Sum { Min, Max, Total, Zeros, Subnormal, Finite, Count, Nan, PosInf, NegInf, Squares, Tiny, Mean, Scale }
const SUM_LENGTH = 14;
const LAST_BIN = HISTOGRAM_BINS - 1;
// The common case, a block without NaN or infinities, runs in the WebAssembly kernels
// (stats-kernels.wat). A NaN or an infinity shows in the block's sum, and that block alone is then
// read again here, with a test per element; so is pass 2 of a tensor that holds one. One loop
// serves float32 and float64 views (measured 5% slower than one copy per array type, on blocks
// that hold special values only).

/** Pass 1 over one block with a test per element: NaN and ±Infinity counted apart, left out of the rest; returns the block's sum. */
function rangeCareful(values: Float32Array | Float64Array, s: Float64Array): number {
  let min = s[Sum.Min]!, max = s[Sum.Max]!, total = 0, zeros = 0, subnormal = 0, finite = 0, nan = 0, posInf = 0, negInf = 0;
  const tiny = s[Sum.Tiny]!;
  for (let i = 0; i < values.length; i++) {
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
  s[Sum.Min] = min; s[Sum.Max] = max; s[Sum.Zeros] += zeros; s[Sum.Subnormal] += subnormal;
  s[Sum.Finite] += finite; s[Sum.Count] += values.length; s[Sum.Nan] += nan; s[Sum.PosInf] += posInf; s[Sum.NegInf] += negInf;
  return total;
}

/** Pass 2 over one block skipping NaN and ±Infinity, for tensors that hold some; returns the block's squared deviations. */
function spreadCareful(values: Float32Array | Float64Array, s: Float64Array, bins: Float64Array): number {
  let squares = 0;
  const mean = s[Sum.Mean]!, min = s[Sum.Min]!, scale = s[Sum.Scale]!;
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (v - v !== 0) continue;
    const d = v - mean;
    squares += d * d;
    const b = ((v - min) * scale) | 0;
    bins[b > LAST_BIN ? LAST_BIN : b]!++;
  }
  return squares;
}

/**
 * Buffers reused from block to block and tensor to tensor: a block of the thread's KernelMemory
 * (values decoded, or copied in from outside it), misaligned bytes.
 */
export class StatsScratch {
  readonly memory = kernelMemory();
  /** Where `block` lies in memory: BLOCK float64s, the thread's first KernelMemory block. */
  readonly blockAt = this.memory.blocks[0];
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
 * Pass 1 or pass 2 over a part of a tensor (a worker's share of a large one): the sums and
 * histogram so far, and each block's sum of that pass (totals, or squared deviations), which the
 * whole tensor's accumulator adds in order, so the result is the same as in one pass.
 */
export interface StatsPart { sums: Float64Array; bins: Float64Array; blockSums: Float64Array }

/**
 * The statistics of one tensor, fed its little-endian bytes in two passes: `range` (min, max, sum,
 * counts) over every piece in order, then `spread` (squared deviations, histogram) over every
 * piece again in order. Pieces must be whole blocks of BLOCK elements but the last (any multiple
 * of 512 KiB is), so results do not depend on how the tensor is cut. float32 values run through
 * the float32 kernels, and bfloat16 ones widened to float32 (exactly); every other dtype through
 * the float64 ones: float64 values as they are, the others decoded a block at a time.
 */
export class StatsAccumulator {
  private readonly sums = new Float64Array(SUM_LENGTH);
  private readonly bins = new Float64Array(HISTOGRAM_BINS);
  private readonly width: number;
  /** Bytes per value the kernels read: 4 for float32 and bfloat16, else 8. */
  private readonly kernelWidth: number;
  /** float32 and float64: the kernels read the bytes as they are. */
  private readonly native: boolean;
  private readonly memory: KernelMemory;
  private spreading = false;
  private clean = true;
  /** Each block's sum of the pass under way, in order, when the accumulator takes a part of a tensor (see StatsPart). */
  private readonly blockSums: number[] | undefined;

  constructor(readonly dtype: DType, private readonly scratch = new StatsScratch(), part = false) {
    warmUp(scratch);
    this.memory = scratch.memory;
    this.width = elementBytes(dtype);
    this.kernelWidth = dtype === 'float32' || dtype === 'bfloat16' ? 4 : 8;
    this.native = dtype === 'float32' || dtype === 'float64';
    this.blockSums = part ? [] : undefined;
    this.sums[Sum.Min] = Infinity;
    this.sums[Sum.Max] = -Infinity;
    // Integers have no subnormals: below the smallest positive double only 0 is.
    this.sums[Sum.Tiny] = SMALLEST_NORMAL[dtype] ?? Number.MIN_VALUE;
  }

  range(piece: Uint8Array): void {
    this.eachRun(piece, (at, count) => this.rangeAt(at, count));
  }

  spread(piece: Uint8Array): void {
    if (!this.spreading) this.startSpread();
    this.eachRun(piece, (at, count) => this.spreadAt(at, count));
  }

  /** What this accumulator, made with `part`, has taken of its part of a tensor so far. */
  part(): StatsPart {
    return { sums: this.sums, bins: this.bins, blockSums: Float64Array.from(this.blockSums!) };
  }

  /** Adds pass 1 of a tensor's parts, in order (as if this accumulator had read them): mins and maxes, counts, block sums. */
  addRanges(parts: readonly StatsPart[]): void {
    const s = this.sums;
    for (const { sums, blockSums } of parts) {
      // Strictly smaller or larger: of equal values the earlier part's wins, as in one pass.
      if (sums[Sum.Min]! < s[Sum.Min]!) s[Sum.Min] = sums[Sum.Min]!;
      if (sums[Sum.Max]! > s[Sum.Max]!) s[Sum.Max] = sums[Sum.Max]!;
      for (const count of [Sum.Zeros, Sum.Subnormal, Sum.Finite, Sum.Count, Sum.Nan, Sum.PosInf, Sum.NegInf]) s[count] += sums[count]!;
      for (const sum of blockSums) s[Sum.Total] += sum;
    }
  }

  /** The state pass 2 of every part starts from (`resumeSpread`), once pass 1 of every part is added. */
  spreadStart(): Float64Array {
    this.startSpread();
    return this.sums.slice();
  }

  /** Takes pass 2 of a part from the state spreadStart gave. */
  resumeSpread(start: Float64Array): void {
    this.sums.set(start);
    this.spreading = true;
    this.clean = this.isClean();
  }

  /** Adds pass 2 of a tensor's parts, in order: squared deviations by block, histogram counts. */
  addSpreads(parts: readonly StatsPart[]): void {
    for (const { bins, blockSums } of parts) {
      for (const sum of blockSums) this.sums[Sum.Squares] += sum;
      bins.forEach((count, bin) => { this.bins[bin] += count; });
    }
  }

  result(): TensorStats {
    const s = this.sums;
    const finite = s[Sum.Finite]!;
    const any = finite > 0;
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
      histogram: Array.from(this.bins),
    };
  }

  /**
   * Calls `run(at, count)` with the piece's values in KernelMemory as the kernels read them: in
   * place when the piece was read there (float32 and float64), else a block at a time, copied
   * (float32, float64) or decoded (other dtypes) into the scratch block.
   */
  private eachRun(piece: Uint8Array, run: (at: number, count: number) => void): void {
    const width = this.width;
    const count = Math.floor(piece.byteLength / width);
    if (this.native && this.memory.holds(piece, width)) {
      run(piece.byteOffset, count);
      return;
    }
    const bytes = this.native ? piece : this.scratch.aligned(piece, width);
    for (let start = 0; start < count; start += BLOCK) {
      const end = Math.min(count, start + BLOCK);
      const part = bytes.subarray(start * width, end * width);
      if (this.native) this.memory.bytes(this.scratch.blockAt, part.length).set(part);
      else decodeInto(part, this.dtype, this.memory.memory.buffer, this.scratch.blockAt, end - start);
      run(this.scratch.blockAt, end - start);
    }
  }

  private startSpread(): void {
    const s = this.sums;
    this.spreading = true;
    s[Sum.Mean] = s[Sum.Total]! / Math.max(1, s[Sum.Finite]!);
    // Bins per unit of value; with one distinct value every value lands in bin 0.
    const range = s[Sum.Max]! - s[Sum.Min]!;
    s[Sum.Scale] = range > 0 && Number.isFinite(range) ? HISTOGRAM_BINS / range : 0;
    this.clean = this.isClean();
  }

  private isClean(): boolean {
    return this.sums[Sum.Nan]! + this.sums[Sum.PosInf]! + this.sums[Sum.NegInf]! === 0;
  }

  /** `length` values of the kernels' width at byte `at` of the thread's kernel memory. */
  private kernelBlock(at: number, length: number): Float32Array | Float64Array {
    return this.kernelWidth === 4 ? new Float32Array(this.memory.memory.buffer, at, length) : new Float64Array(this.memory.memory.buffer, at, length);
  }

  /**
   * Pass 1 over `count` values at `at`, a block at a time: in the kernel, but for a block holding
   * NaN or an infinity; each block's sum added to the total in order.
   */
  private rangeAt(at: number, count: number): void {
    const s = this.sums;
    const kernels = this.memory.kernels;
    const range = this.kernelWidth === 4 ? kernels.range32 : kernels.range64;
    for (let start = 0; start < count; start += BLOCK) {
      const length = Math.min(BLOCK, count - start);
      const blockAt = at + start * this.kernelWidth;
      let sum: number;
      if (range(blockAt, length, s[Sum.Tiny]!, s[Sum.Min]!, s[Sum.Max]!) === length) {
        const results = this.memory.results;
        s[Sum.Min] = results[0]!; s[Sum.Max] = results[1]!; sum = results[2]!; s[Sum.Zeros] += results[3]!; s[Sum.Subnormal] += results[4]!;
        s[Sum.Finite] += length; s[Sum.Count] += length;
      } else {
        sum = rangeCareful(this.kernelBlock(blockAt, length), s);
      }
      s[Sum.Total] += sum;
      this.blockSums?.push(sum);
    }
  }

  /** Pass 2 over `count` values at `at`, a block at a time, each block's squared deviations added in order. */
  private spreadAt(at: number, count: number): void {
    const s = this.sums;
    const kernels = this.memory.kernels;
    const spread = this.kernelWidth === 4 ? kernels.spread32 : kernels.spread64;
    for (let start = 0; start < count; start += BLOCK) {
      const length = Math.min(BLOCK, count - start);
      const blockAt = at + start * this.kernelWidth;
      let sum: number;
      if (this.clean) {
        // A scale of 0, or one too large to hold (a float64 range below 2^-1019), puts every value
        // in bin 0, as `| 0` does with NaN and ∞; the kernel gets 0 and 0 for them, so that its
        // positions (v − min)·scale are always finite (see stats-kernels.wat).
        const scale = s[Sum.Scale]! < Infinity ? s[Sum.Scale]! : 0;
        sum = spread(blockAt, length, s[Sum.Mean]!, scale === 0 ? 0 : s[Sum.Min]!, scale);
      } else {
        sum = spreadCareful(this.kernelBlock(blockAt, length), s, this.bins);
      }
      s[Sum.Squares] += sum;
      this.blockSums?.push(sum);
    }
    // Once per run: the tables are the thread's, and the next run may be another accumulator's.
    if (this.clean) this.memory.drainTables(this.bins);
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
function warmUp(scratch: StatsScratch): void {
  if (warm) return;
  warm = true;
  const ordinary = [0.5, -2, 0, 1e-40, 3, -0.25, 1, 2];
  const special = [NaN, Infinity, -Infinity, 0, 1e-40, 1, -1, 2];
  for (let i = 0; i < 16; i++) {
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

/**
 * Decodes one aligned block of `length` values (at most BLOCK) into `memory` at `at`, without
 * allocating: bfloat16 as float32 (its high half), every other dtype as float64.
 */
function decodeInto(part: Uint8Array, dtype: DType, memory: ArrayBuffer, at: number, length: number): void {
  const { buffer, byteOffset } = part;
  if (dtype === 'bfloat16') {
    const bits = new Uint16Array(buffer, byteOffset, length);
    const wide = new Uint32Array(memory, at, length);
    for (let i = 0; i < length; i++) wide[i] = bits[i]! << 16;
    return;
  }
  const out = new Float64Array(memory, at, length);
  switch (dtype) {
    case 'float16': {
      const table = halfValues();
      const bits = new Uint16Array(buffer, byteOffset, length);
      for (let i = 0; i < length; i++) out[i] = table[bits[i]!]!;
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

/**
 * The buffers one thread reads one side's tensors through (0, or 1 for the second side of a
 * comparison), in the thread's KernelMemory (the kernels read them in place): a chunk, and a whole
 * tensor of up to HOLD_BYTES (reserved on first use; only the pages written take memory). Every
 * SideBuffers of a side in a thread shares that memory: each tensor is read and used in one
 * synchronous stretch, so no other read lands in it meanwhile, and memory does not grow with reads.
 */
export class SideBuffers {
  private readonly memory = kernelMemory();
  private readonly region: SideRegion;
  constructor(side = 0) {
    this.region = this.memory.side(side);
  }
  /** The chunk buffer: a view valid until memory is allocated again (as by `canHold`). */
  get chunk(): Buffer {
    return this.memory.bytes(this.region.chunkAt, CHUNK_BYTES);
  }
  /** Whether a whole tensor of `bytes` fits in `whole`: true up to HOLD_BYTES. */
  canHold(bytes: number): boolean {
    if (bytes > HOLD_BYTES) return false;
    if (this.region.wholeAt < 0) this.region.wholeAt = this.memory.allocate(HOLD_BYTES);
    return true;
  }
  /** The first `bytes` of the buffer for a whole tensor, after canHold(bytes). */
  whole(bytes: number): Buffer {
    return this.memory.bytes(this.region.wholeAt, bytes);
  }
}

/**
 * One stored tensor read chunk by chunk (CHUNK_BYTES, whole blocks for StatsAccumulator) in pass 1,
 * and its bytes again for pass 2: from memory when `hold` and it fits, else from the file. Every
 * buffer it needs is allocated when it is made, so the chunks it hands out stay valid (see KernelMemory).
 */
export class StoredReader {
  private readonly held: boolean;

  constructor(private readonly stored: StoredBytes, readonly byteLength: number, private readonly buffers: SideBuffers, private readonly what: string, hold: boolean) {
    this.held = hold && buffers.canHold(byteLength);
  }

  /** The chunk at `at` (a multiple of CHUNK_BYTES), valid until the next read when not held. */
  read(at: number): Buffer {
    const length = Math.min(CHUNK_BYTES, this.byteLength - at);
    const target = this.held ? this.buffers.whole(this.byteLength).subarray(at, at + length) : this.buffers.chunk.subarray(0, length);
    return this.stored.file.readInto(this.stored.offset + at, target, this.what);
  }

  /** Every chunk again, in order, for pass 2. */
  *again(): Generator<Uint8Array> {
    for (let at = 0; at < this.byteLength; at += CHUNK_BYTES) {
      yield this.held ? this.buffers.whole(this.byteLength).subarray(at, Math.min(this.byteLength, at + CHUNK_BYTES)) : this.read(at);
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
