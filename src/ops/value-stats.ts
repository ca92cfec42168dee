import { CHUNK_BYTES } from '../core/chunks.js';
import type { StoredBytes } from '../core/statedict.js';
import { SideBuffers, StatsAccumulator, StatsScratch, StoredReader, type TensorStats } from './stats.js';
import { BLOCK, kernelMemory, type KernelMemory } from './stats-kernels.js';

/**
 * Element-wise comparison statistics, accumulated chunk after chunk into one Float64Array so the
 * loops below stay monomorphic (every accumulator a double, no object shapes in the hot path).
 */
export const enum Acc { MaxAbs, SumAbs, Dot, NormA, NormB, Outside }
export const ACC_LENGTH = 6;

export type FloatArray = Float32Array | Float64Array;

/**
 * Adds pairs to `acc` (a chunk, or whole tensors): in the WebAssembly kernels (stats-kernels.wat),
 * in place where both sides were read into the thread's KernelMemory, else a block at a time
 * copied there. A block where a NaN shows up (in |a − b|, so in its sum) is redone by the exact
 * loop: NaN on one side only is outside the tolerance, NaN on both sides counts as equal. Sums are
 * reduced per block and added in order, so results do not depend on how a tensor is cut into
 * chunks of whole blocks.
 */
export function accumulate(va: FloatArray, vb: FloatArray, atol: number, rtol: number, acc: Float64Array): void {
  const narrow = va instanceof Float32Array && vb instanceof Float32Array;
  const [a, b] = narrow ? [va, vb] : [toFloat64Array(va), toFloat64Array(vb)];
  const memory = kernelMemory();
  const width = narrow ? 4 : 8;
  if (memory.holds(a, width) && memory.holds(b, width)) {
    compareAt(memory, a.byteOffset, b.byteOffset, a.length, narrow, atol, rtol, acc);
    return;
  }
  const [blockA, blockB] = memory.blocks;
  const View = narrow ? Float32Array : Float64Array;
  for (let start = 0; start < a.length; start += BLOCK) {
    const end = Math.min(a.length, start + BLOCK);
    new View(memory.memory.buffer, blockA, end - start).set(a.subarray(start, end));
    new View(memory.memory.buffer, blockB, end - start).set(b.subarray(start, end));
    compareAt(memory, blockA, blockB, end - start, narrow, atol, rtol, acc);
  }
}

export const toFloat64Array = (v: FloatArray): Float64Array => (v instanceof Float64Array ? v : Float64Array.from(v));

/** `count` pairs at byte offsets `at` and `bt` of memory, through the kernel but for the blocks holding NaN. */
function compareAt(memory: KernelMemory, at: number, bt: number, count: number, narrow: boolean, atol: number, rtol: number, acc: Float64Array): void {
  const width = narrow ? 4 : 8;
  const compare = narrow ? memory.kernels.compare32 : memory.kernels.compare64;
  let done = 0;
  while (done < count) {
    memory.accumulators.set(acc);
    done += compare(at + done * width, bt + done * width, count - done, atol, rtol);
    acc.set(memory.accumulators);
    if (done === count) return;
    const end = Math.min(count, done + BLOCK);
    const View = narrow ? Float32Array : Float64Array;
    exactPairs(new View(memory.memory.buffer, at, count), new View(memory.memory.buffer, bt, count), done, end, atol, rtol, acc);
    done = end;
  }
}

// The exact loop, for blocks holding NaN only (one loop for both array types: measured 5% slower
// than a copy per type). Its sums start from zero and are added at the end, as the kernel adds
// each block's.
function exactPairs(va: FloatArray, vb: FloatArray, start: number, end: number, atol: number, rtol: number, acc: Float64Array): void {
  let maxAbs = acc[Acc.MaxAbs]!, sumAbs = 0, dot = 0, normA = 0, normB = 0, outside = acc[Acc.Outside]!;
  for (let i = start; i < end; i++) {
    const x = va[i]!, y = vb[i]!;
    dot += x * y; normA += x * x; normB += y * y;
    const d = Math.abs(x - y);
    if (d !== d) {
      if (x === x || y === y) outside++; // NaN on one side only; NaN on both counts as equal
      continue;
    }
    sumAbs += d;
    maxAbs = d > maxAbs ? d : maxAbs;
    outside += d > atol + rtol * Math.abs(y) || d === Infinity ? 1 : 0; // ∞ on one side only differs whatever the tolerance
  }
  acc[Acc.MaxAbs] = maxAbs; acc[Acc.SumAbs] += sumAbs; acc[Acc.Dot] += dot; acc[Acc.NormA] += normA; acc[Acc.NormB] += normB; acc[Acc.Outside] = outside;
}

/** `part`, the accumulators of the elements after those of `into`, added to `into`. */
export function addAccumulators(into: Float64Array, part: Float64Array): void {
  into[Acc.MaxAbs] = Math.max(into[Acc.MaxAbs]!, part[Acc.MaxAbs]!);
  for (const sum of [Acc.SumAbs, Acc.Dot, Acc.NormA, Acc.NormB, Acc.Outside]) into[sum] = into[sum]! + part[sum]!;
}

/** Two stored tensors of one float dtype, compared straight from their files. */
export interface StoredPair {
  a: StoredBytes;
  b: StoredBytes;
  byteLength: number;
  dtype: 'float32' | 'float64';
  atol: number;
  rtol: number;
}

/** What comparing a pair gives before it is turned into a report: `acc` as above; with statistics, each side's. */
export interface PairStats {
  bitIdentical: boolean;
  acc: Float64Array;
  stats?: [TensorStats, TensorStats];
}

/** Buffers one thread reuses for every pair it compares. */
export interface PairBuffers { a: SideBuffers; b: SideBuffers; scratch: StatsScratch }
export const pairBuffers = (): PairBuffers => ({ a: new SideBuffers(0), b: new SideBuffers(1), scratch: new StatsScratch() });

/**
 * Streams both tensors chunk by chunk through `buffers`: memory bounded by two chunks. With
 * `withStats`, each side's statistics from the same read: pass 1 on each chunk as it is compared,
 * pass 2 on the tensors held in `buffers` (read again only beyond HOLD_BYTES).
 */
export function compareStored(pair: StoredPair, buffers: PairBuffers, what: [string, string], withStats = false): PairStats {
  const acc = new Float64Array(ACC_LENGTH);
  let bitIdentical = true;
  const readers = [new StoredReader(pair.a, pair.byteLength, buffers.a, what[0], withStats), new StoredReader(pair.b, pair.byteLength, buffers.b, what[1], withStats)] as const;
  const stats = withStats ? [new StatsAccumulator(pair.dtype, buffers.scratch), new StatsAccumulator(pair.dtype, buffers.scratch)] as const : undefined;
  for (let at = 0; at < pair.byteLength; at += CHUNK_BYTES) {
    const [chunkA, chunkB] = [readers[0].read(at), readers[1].read(at)];
    bitIdentical &&= chunkA.equals(chunkB);
    if (pair.dtype === 'float32') accumulate(floatView(Float32Array, chunkA), floatView(Float32Array, chunkB), pair.atol, pair.rtol, acc);
    else accumulate(floatView(Float64Array, chunkA), floatView(Float64Array, chunkB), pair.atol, pair.rtol, acc);
    stats?.[0].range(chunkA);
    stats?.[1].range(chunkB);
  }
  if (!stats) return { bitIdentical, acc };
  stats.forEach((side, i) => {
    for (const chunk of readers[i]!.again()) side.spread(chunk);
  });
  return { bitIdentical, acc, stats: [stats[0].result(), stats[1].result()] };
}

/** A chunk as floats in place (chunks start at multiples of CHUNK_BYTES in their buffers, so they are aligned). */
const floatView = <T extends Float32Array | Float64Array>(Type: { new (buffer: ArrayBufferLike, offset: number, length: number): T; BYTES_PER_ELEMENT: number }, chunk: Uint8Array): T =>
  new Type(chunk.buffer, chunk.byteOffset, chunk.byteLength / Type.BYTES_PER_ELEMENT);
