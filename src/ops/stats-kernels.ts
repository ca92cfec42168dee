import { CHUNK_BYTES } from '../core/chunks.js';
import { WASM_BASE64 } from './stats-kernels-wasm.js';

/** The WebAssembly SIMD kernels of stats-kernels.wat; pointers are byte offsets in KernelMemory. */
export interface StatsKernels {
  /** Pass 1 over `count` values at `at` from the running min and max: the values done (count, or the start of the first block holding NaN or an infinity); min, max, their sum, zeros and subnormals in `results`. */
  range32(at: number, count: number, tiny: number, min: number, max: number): number;
  range64(at: number, count: number, tiny: number, min: number, max: number): number;
  /** Pass 2 over `count` values without NaN or infinities: their squared deviations from `mean`; their bins counted in the tables (see drainTables). */
  spread32(at: number, count: number, mean: number, min: number, scale: number): number;
  spread64(at: number, count: number, mean: number, min: number, scale: number): number;
  /** Compares `count` pairs at `a` and `b`, adding to `accumulators`: the pairs done (count, or the start of the first block where |a − b| is NaN). */
  compare32(a: number, b: number, count: number, atol: number, rtol: number): number;
  compare64(a: number, b: number, count: number, atol: number, rtol: number): number;
}

/**
 * Values per block: the kernels reduce each block's sums on their own, then add them in order, so
 * results do not depend on how a tensor is cut into pieces as long as the pieces are whole blocks.
 */
export const BLOCK = 1 << 16;

const PAGE = 65536;

/** Where one side's tensors are read: a chunk, and a whole tensor (reserved by SideBuffers on first use; -1 before). */
export interface SideRegion { chunkAt: number; wholeAt: number }
/** The kernels' area at the start of the memory (see stats-kernels.wat): two tables counting pairs of bins, one of single bins, pass 1 results. */
const BINS = 33;
const PAIR_TABLES = [0, 4608];
const SINGLE_TABLE = 9216;
const RESULTS = 9472;
const ACCUMULATORS = 9536;

/**
 * This thread's WebAssembly memory: the kernels' area in its first page, then the buffers that
 * tensors are read into (SideBuffers, StatsScratch), so the kernels work on values where they were
 * read, without a copy. Views of it are valid until the next `allocate`, which may grow the memory
 * and so detach them: take them again after.
 */
export class KernelMemory {
  readonly memory = new WebAssembly.Memory({ initial: 1 });
  private top = PAGE;
  private compiled?: StatsKernels;
  private viewsOf?: ArrayBuffer;
  private resultsView = new Float64Array(0);
  private countersView = new Int32Array(0);
  private accumulatorsView = new Float64Array(0);
  /**
   * Two blocks (BLOCK float64s each) where values from outside this memory are copied or decoded
   * for the kernels: the statistics use the first, a comparison one per side. Allocated first, so
   * no later allocation detaches the values being copied.
   */
  readonly blocks: readonly [number, number] = [this.allocate(BLOCK * 8), this.allocate(BLOCK * 8)];
  /** The regions SideBuffers read into, by side (see SideBuffers): allocated once per thread, whatever the number of reads. */
  private readonly sides: SideRegion[] = [];

  /** The byte offset of `bytes` more of memory, page-aligned; pages that are never written cost no resident memory. */
  allocate(bytes: number): number {
    const at = this.top;
    this.top += Math.ceil(bytes / PAGE) * PAGE;
    const missing = this.top / PAGE - this.memory.buffer.byteLength / PAGE;
    if (missing > 0) this.memory.grow(missing);
    return at;
  }

  /** The regions of `side` (0 or 1), its chunk allocated on first use. */
  side(side: number): SideRegion {
    return (this.sides[side] ??= { chunkAt: this.allocate(CHUNK_BYTES), wholeAt: -1 });
  }

  bytes(at: number, length: number): Buffer {
    return Buffer.from(this.memory.buffer, at, length);
  }

  /** True when `piece` lies in this memory at a multiple of `width` bytes: the kernels can read it in place. */
  holds(piece: ArrayBufferView, width: number): boolean {
    return piece.buffer === this.memory.buffer && piece.byteOffset % width === 0;
  }

  /** The kernels, compiled on first use (a few KB; nothing WebAssembly runs for commands without statistics). */
  get kernels(): StatsKernels {
    if (!this.compiled) {
      const module = new WebAssembly.Module(Buffer.from(WASM_BASE64, 'base64'));
      this.compiled = new WebAssembly.Instance(module, { env: { memory: this.memory } }).exports as unknown as StatsKernels;
    }
    return this.compiled;
  }

  /** Pass 1 results of the last range call: min, max, total, zeros, subnormal. */
  get results(): Float64Array {
    this.refreshViews();
    return this.resultsView;
  }

  /** The running accumulators of compare32/compare64, in value-stats.ts's Acc order. */
  get accumulators(): Float64Array {
    this.refreshViews();
    return this.accumulatorsView;
  }

  /** Adds the bins counted by spread32/spread64 to `bins` (bin 32, the largest values, to the last) and clears the tables. */
  drainTables(bins: Float64Array): void {
    this.refreshViews();
    const counters = this.countersView;
    const last = bins.length - 1;
    for (const table of PAIR_TABLES) {
      for (let at = table / 4, first = 0; first < BINS; first++) {
        for (let second = 0; second < BINS; second++, at++) {
          const count = counters[at]!;
          if (count === 0) continue;
          bins[first < last ? first : last]! += count;
          bins[second < last ? second : last]! += count;
          counters[at] = 0;
        }
      }
    }
    for (let bin = 0, at = SINGLE_TABLE / 4; bin < BINS; bin++, at++) {
      bins[bin < last ? bin : last]! += counters[at]!;
      counters[at] = 0;
    }
  }

  private refreshViews(): void {
    const buffer = this.memory.buffer;
    if (this.viewsOf === buffer) return;
    this.viewsOf = buffer;
    this.resultsView = new Float64Array(buffer, RESULTS, 5);
    this.countersView = new Int32Array(buffer, 0, RESULTS / 4);
    this.accumulatorsView = new Float64Array(buffer, ACCUMULATORS, 6);
  }
}

let threadMemory: KernelMemory | undefined;
/** The KernelMemory of this thread (each worker has its own). */
export const kernelMemory = (): KernelMemory => (threadMemory ??= new KernelMemory());
