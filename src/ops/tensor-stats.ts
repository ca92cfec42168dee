import { LocalFile } from '../core/file.js';
import type { TensorInfo } from '../core/statedict.js';
import { ComparePool, pairParts, threadsFor, type StatsResult } from './compare-pool.js';
import { bytesSha256, tensorSha256 } from './hash.js';
import { hasStats, SideBuffers, StatsScratch, storedStatsAndHash, valueStats, type TensorStats } from './stats.js';

export interface TensorRead {
  tensor: TensorInfo;
  /** Numeric tensors, with `stats`. */
  stats?: TensorStats;
  /** With `hash` (see tensorSha256); none for strings. */
  sha256?: string;
}

export interface ReadOptions {
  stats: boolean;
  hash: boolean;
  /** Worker threads for stored tensors of local files; by default every core when there are enough bytes. Results are the same either way. */
  threads?: number;
}

/** Stored as-is in a local file: a worker can open it by path and read it in chunks. */
const onWorker = (t: TensorInfo): boolean => hasStats(t.dtype) && !t.encoding && t.stored?.file instanceof LocalFile;

/**
 * Each tensor's statistics and/or hash, in the tensors' order, every tensor read once. Tensors
 * stored as-is in local files stream in chunks through reused buffers, on worker threads where
 * there are enough bytes (all queued at once, taken in order); the others are read whole here.
 */
export async function* readTensors(tensors: readonly TensorInfo[], options: ReadOptions): AsyncGenerator<TensorRead> {
  const pooled = options.stats ? tensors.filter(onWorker) : [];
  const bytes = pooled.reduce((n, t) => n + t.byteLength, 0);
  const wanted = threadsFor(bytes, options.threads);
  // A large tensor without its hash is read in parts on every thread (see SPLIT_BYTES).
  const shares = pooled.reduce((n, t) => n + (options.hash ? 1 : pairParts(t.byteLength, wanted).length), 0);
  const threads = Math.min(shares, wanted);
  const pool = threads > 1 ? new ComparePool(threads) : undefined;
  const running = new Map<TensorInfo, Promise<StatsResult>>();
  const what = (t: TensorInfo) => `tensor '${t.source}'`;
  for (const t of pool ? pooled : []) {
    const result = pool!.stats(t.stored!, t.byteLength, t.dtype, options.hash, what(t));
    result.catch(() => {}); // awaited in order below; a failure before then must not go unhandled
    running.set(t, result);
  }
  const buffers = new SideBuffers();
  const scratch = new StatsScratch();
  try {
    for (const t of tensors) {
      const result = running.get(t);
      if (result) {
        yield { tensor: t, ...(await result) };
      } else if (options.stats && onWorker(t)) {
        yield { tensor: t, ...storedStatsAndHash(t.stored!, t.byteLength, t.dtype, options.hash, buffers, scratch, what(t)) };
      } else if (options.stats && hasStats(t.dtype)) {
        const values = await t.read();
        const sha256 = options.hash ? (t.encoding ? await tensorSha256(t) : bytesSha256(values)) : undefined;
        yield { tensor: t, stats: valueStats(values, t.dtype, scratch), ...(sha256 ? { sha256 } : {}) };
      } else {
        const sha256 = options.hash ? await tensorSha256(t) : undefined;
        yield { tensor: t, ...(sha256 ? { sha256 } : {}) };
      }
    }
  } finally {
    await pool?.close();
  }
}
