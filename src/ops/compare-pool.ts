import { availableParallelism } from 'node:os';
import type { Worker } from 'node:worker_threads';
import { startWorker } from '../core/worker.js';
import { CkptError, ExitCode, fromPostedError, type PostedError } from '../core/errors.js';
import type { DType } from '../core/dtype.js';
import type { StoredBytes } from '../core/statedict.js';
import { StatsAccumulator, type StatsPart, type TensorStats } from './stats.js';
import { CHUNK_BYTES } from '../core/chunks.js';
import { ACC_LENGTH, addAccumulators, type PairStats, type StoredPair } from './value-stats.js';

export interface CompareRequest {
  kind: 'compare';
  id: number;
  a: { path: string; offset: number };
  b: { path: string; offset: number };
  byteLength: number;
  dtype: StoredPair['dtype'];
  atol: number;
  rtol: number;
  what: [string, string];
  /** Also each side's statistics, from the same read. */
  stats: boolean;
}

/** Statistics of one stored tensor, and its SHA-256 from the same read when `hash`. */
export interface StatsRequest {
  kind: 'stats';
  id: number;
  path: string;
  offset: number;
  byteLength: number;
  dtype: DType;
  hash: boolean;
  what: string;
}

export interface StatsResult { stats: TensorStats; sha256?: string }

/** One pass over a part of a stored tensor (a large one's statistics taken on every worker): pass 2 with `start`, the state after pass 1 of every part. */
export interface StatsPartRequest {
  kind: 'statsPart';
  id: number;
  path: string;
  offset: number;
  byteLength: number;
  dtype: DType;
  what: string;
  start?: Float64Array;
}

export type PoolRequest = CompareRequest | StatsRequest | StatsPartRequest;

type PoolResult = PairStats | StatsResult | StatsPart;

export type CompareReply =
  | { id: number; ok: true; result: PoolResult }
  | { id: number; ok: false; error: PostedError };

/** Below this many bytes to compare, starting threads costs more than it saves. */
export const POOL_MIN_BYTES = 64 << 20;

/** Threads for comparing: every core, up to the four that memory bandwidth keeps busy. */
export const poolThreads = (): number => Math.min(availableParallelism(), 4);

/** Threads for reading `bytes` of stored tensors: `given` when set, else poolThreads from POOL_MIN_BYTES up, else one. */
export const threadsFor = (bytes: number, given?: number): number => given ?? (bytes >= POOL_MIN_BYTES ? poolThreads() : 1);

/**
 * A pair this large (an embedding matrix, a 3 GiB tensor) is compared in parts on every worker, so
 * one tensor does not leave the other cores idle; the parts' sums are added in order, so the
 * result only depends on the tensor's size and the thread count. A tensor's statistics (without
 * its hash, which reads in order) are taken in parts the same way, with the same result as in one
 * pass: each pass's block sums are added in order.
 */
export const SPLIT_BYTES = 256 << 20;

/** The [start, end) byte ranges a pair is compared in: whole chunks, one part per thread for pairs of SPLIT_BYTES or more. */
export function pairParts(byteLength: number, threads: number): [number, number][] {
  if (byteLength < SPLIT_BYTES || threads <= 1) return [[0, byteLength]];
  const chunks = Math.ceil(byteLength / CHUNK_BYTES);
  const per = Math.ceil(chunks / threads) * CHUNK_BYTES;
  const parts: [number, number][] = [];
  for (let start = 0; start < byteLength; start += per) parts.push([start, Math.min(byteLength, start + per)]);
  return parts;
}

/**
 * Worker threads that compare stored tensor pairs (compareStored) or take one stored tensor's
 * statistics (storedStats), one whole pair or tensor per request so results are the same as on the
 * main thread. Requests wait in order for a free worker.
 */
export class ComparePool {
  private readonly idle: Worker[] = [];
  private readonly queue: { request: PoolRequest; settle: Settle }[] = [];
  private readonly pending = new Map<number, { worker: Worker; settle: Settle }>();
  private next = 0;

  constructor(private readonly threads: number) {
    for (let i = 0; i < threads; i++) {
      const worker = startWorker(new URL('./compare-worker.js', import.meta.url));
      worker.on('message', (reply: CompareReply) => this.done(worker, reply));
      worker.on('error', (err) => this.failAll(err));
      worker.on('exit', () => this.failAll(new Error('a compare worker stopped')));
      this.idle.push(worker);
    }
  }

  /** Compares a pair; a large one without statistics in parts on several workers (see SPLIT_BYTES). */
  async compare(pair: StoredPair, what: [string, string], stats = false): Promise<PairStats> {
    const parts = stats ? [[0, pair.byteLength] as [number, number]] : pairParts(pair.byteLength, this.threads);
    const results = await Promise.all(parts.map(([start, end]) => this.submit({
      kind: 'compare',
      id: this.next++,
      a: { path: pair.a.file.path, offset: pair.a.offset + start },
      b: { path: pair.b.file.path, offset: pair.b.offset + start },
      byteLength: end - start, dtype: pair.dtype, atol: pair.atol, rtol: pair.rtol, what, stats,
    }) as Promise<PairStats>));
    if (results.length === 1) return results[0]!;
    const acc = new Float64Array(ACC_LENGTH);
    for (const part of results) addAccumulators(acc, part.acc);
    return { bitIdentical: results.every((r) => r.bitIdentical), acc };
  }

  /** A stored tensor's statistics; a large one without its hash in parts on several workers (see SPLIT_BYTES). */
  async stats(stored: StoredBytes, byteLength: number, dtype: DType, hash: boolean, what: string): Promise<StatsResult> {
    const parts = hash ? [] : pairParts(byteLength, this.threads);
    if (parts.length <= 1) {
      return this.submit({ kind: 'stats', id: this.next++, path: stored.file.path, offset: stored.offset, byteLength, dtype, hash, what }) as Promise<StatsResult>;
    }
    const pass = (start?: Float64Array) => Promise.all(parts.map(([from, to]) => this.submit({
      kind: 'statsPart', id: this.next++, path: stored.file.path, offset: stored.offset + from, byteLength: to - from, dtype, what, ...(start ? { start } : {}),
    }) as Promise<StatsPart>));
    const whole = new StatsAccumulator(dtype);
    whole.addRanges(await pass());
    whole.addSpreads(await pass(whole.spreadStart()));
    return { stats: whole.result() };
  }

  private submit(request: PoolRequest): Promise<PoolResult> {
    return new Promise((resolve, reject) => {
      this.queue.push({ request, settle: { resolve, reject } });
      this.dispatch();
    });
  }

  async close(): Promise<void> {
    const workers = [...this.idle, ...[...this.pending.values()].map((p) => p.worker)];
    this.idle.length = 0;
    this.queue.length = 0;
    this.pending.clear();
    await Promise.all(workers.map((w) => w.terminate()));
  }

  private dispatch(): void {
    while (this.idle.length && this.queue.length) {
      const worker = this.idle.pop()!;
      const { request, settle } = this.queue.shift()!;
      this.pending.set(request.id, { worker, settle });
      worker.postMessage(request);
    }
  }

  private done(worker: Worker, reply: CompareReply): void {
    const entry = this.pending.get(reply.id);
    this.pending.delete(reply.id);
    this.idle.push(worker);
    if (reply.ok) entry?.settle.resolve(reply.result);
    else entry?.settle.reject(fromPostedError(reply.error));
    this.dispatch();
  }

  private failAll(err: Error): void {
    const failure = new CkptError(ExitCode.internal, undefined, undefined, `comparing values in a worker thread failed: ${err.message}`);
    for (const p of [...this.pending.values(), ...this.queue]) p.settle.reject(failure);
    this.pending.clear();
    this.queue.length = 0;
  }
}

interface Settle { resolve: (result: PoolResult) => void; reject: (err: Error) => void }
