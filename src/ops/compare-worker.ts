import { parentPort } from 'node:worker_threads';
import { RandomAccessFile } from '../core/file.js';
import { postableError } from '../core/errors.js';
import { compareStored, pairBuffers, type PairStats } from './value-stats.js';
import { StatsAccumulator, StoredReader, storedStatsAndHash, type StatsPart } from './stats.js';
import { CHUNK_BYTES } from '../core/chunks.js';
import type { CompareReply, PoolRequest, StatsPartRequest, StatsResult } from './compare-pool.js';

/** Compares stored tensor pairs and takes stored tensors' statistics for compare-pool.ts: each request names the files, the worker opens them once. */
const files = new Map<string, RandomAccessFile>();
const buffers = pairBuffers();
const fileAt = (path: string) => {
  let file = files.get(path);
  if (!file) files.set(path, (file = RandomAccessFile.open(path)));
  return file;
};

function run(request: PoolRequest): PairStats | StatsResult | StatsPart {
  if (request.kind === 'compare') {
    return compareStored(
      { ...request, a: { file: fileAt(request.a.path), offset: request.a.offset }, b: { file: fileAt(request.b.path), offset: request.b.offset } },
      buffers,
      request.what,
      request.stats,
    );
  }
  if (request.kind === 'statsPart') return statsPart(request);
  return storedStatsAndHash({ file: fileAt(request.path), offset: request.offset }, request.byteLength, request.dtype, request.hash, buffers.a, buffers.scratch, request.what);
}

/** Pass 1 over a part of a tensor, or pass 2 from `start`, read chunk by chunk. */
function statsPart(request: StatsPartRequest): StatsPart {
  const stats = new StatsAccumulator(request.dtype, buffers.scratch, true);
  if (request.start) stats.resumeSpread(request.start);
  const reader = new StoredReader({ file: fileAt(request.path), offset: request.offset }, request.byteLength, buffers.a, request.what, false);
  for (let at = 0; at < request.byteLength; at += CHUNK_BYTES) {
    const chunk = reader.read(at);
    if (request.start) stats.spread(chunk);
    else stats.range(chunk);
  }
  return stats.part();
}

parentPort!.on('message', (request: PoolRequest) => {
  let reply: CompareReply;
  try {
    reply = { id: request.id, ok: true, result: run(request) };
  } catch (err) {
    reply = { id: request.id, ok: false, error: postableError(err) };
  }
  parentPort!.postMessage(reply);
});

process.on('exit', () => {
  for (const file of files.values()) file.close();
});
