import { parentPort } from 'node:worker_threads';
import { RandomAccessFile } from '../core/file.js';
import { postableError } from '../core/errors.js';
import { compareStored, pairBuffers, type PairStats } from './value-stats.js';
import { storedStatsAndHash } from './stats.js';
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
  return storedStatsAndHash({ file: fileAt(request.path), offset: request.offset }, request.byteLength, request.dtype, request.hash, buffers.a, buffers.scratch, request.what);
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
