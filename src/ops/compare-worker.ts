import { parentPort } from 'node:worker_threads';
import { RandomAccessFile } from '../core/file.js';
import { postableError } from '../core/errors.js';
import { createHash } from 'node:crypto';
import { compareStored, pairBuffers, type PairStats } from './value-stats.js';
import { StoredReader, storedStats } from './stats.js';
import type { CompareReply, PoolRequest, StatsResult } from './compare-pool.js';

/** Compares stored tensor pairs and takes stored tensors' statistics for compare-pool.ts: each request names the files, the worker opens them once. */
const files = new Map<string, RandomAccessFile>();
const buffers = pairBuffers();
const fileAt = (path: string) => {
  let file = files.get(path);
  if (!file) files.set(path, (file = RandomAccessFile.open(path)));
  return file;
};

function run(request: PoolRequest): PairStats | StatsResult {
  if (request.kind === 'compare') {
    return compareStored(
      { ...request, a: { file: fileAt(request.a.path), offset: request.a.offset }, b: { file: fileAt(request.b.path), offset: request.b.offset } },
      buffers,
      request.what,
      request.stats,
    );
  }
  const hash = request.hash ? createHash('sha256') : undefined;
  const reader = new StoredReader({ file: fileAt(request.path), offset: request.offset }, request.byteLength, buffers.a, request.what, true);
  const stats = storedStats(reader, request.dtype, buffers.scratch, hash && ((chunk) => hash.update(chunk)));
  return { stats, ...(hash ? { sha256: hash.digest('hex') } : {}) };
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
