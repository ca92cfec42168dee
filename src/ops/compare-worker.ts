import { parentPort } from 'node:worker_threads';
import { RandomAccessFile } from '../core/file.js';
import { postableError } from '../core/errors.js';
import { compareStored, pairBuffers } from './value-stats.js';
import type { CompareReply, CompareRequest } from './compare-pool.js';

/** Compares stored tensor pairs for compare-pool.ts: each request names the files, the worker opens them once. */
const files = new Map<string, RandomAccessFile>();
const buffers = pairBuffers();
const fileAt = (path: string) => {
  let file = files.get(path);
  if (!file) files.set(path, (file = RandomAccessFile.open(path)));
  return file;
};

parentPort!.on('message', (request: CompareRequest) => {
  let reply: CompareReply;
  try {
    const { bitIdentical, acc } = compareStored(
      { ...request, a: { file: fileAt(request.a.path), offset: request.a.offset }, b: { file: fileAt(request.b.path), offset: request.b.offset } },
      buffers,
      request.what,
    );
    reply = { id: request.id, ok: true, bitIdentical, acc };
  } catch (err) {
    reply = { id: request.id, ok: false, error: postableError(err) };
  }
  parentPort!.postMessage(reply);
});

process.on('exit', () => {
  for (const file of files.values()) file.close();
});
