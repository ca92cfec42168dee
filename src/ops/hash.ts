import { createHash } from 'node:crypto';
import { chunkBuffer, tensorChunks } from '../core/chunks.js';
import type { TensorInfo } from '../core/statedict.js';
import { readStored } from '../core/encoding.js';

let sharedBuffer: Buffer | undefined;

/**
 * SHA-256 of a tensor's values as little-endian bytes of its dtype, row-major: the `--hash`
 * contract, comparable across formats. An encoded tensor (GGUF blocks, TFLite int8) hashes its
 * stored bytes, as the format's own tools do. Strings have no hash. Plain tensors stream through
 * one reused buffer, so hashing costs no allocation per tensor and memory stays bounded for any
 * tensor size.
 */
export async function tensorSha256(tensor: TensorInfo): Promise<string | undefined> {
  if (tensor.dtype === 'string') return undefined;
  if (tensor.encoding) return createHash('sha256').update(await readStored(tensor)).digest('hex');
  const hash = createHash('sha256');
  // Hashes may run concurrently (Promise.all over tensors): each takes the shared buffer or its own.
  const buffer = sharedBuffer ?? chunkBuffer();
  sharedBuffer = undefined;
  try {
    for await (const chunk of tensorChunks(tensor, buffer)) hash.update(chunk);
  } finally {
    sharedBuffer = buffer;
  }
  return hash.digest('hex');
}

export function bytesSha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}
