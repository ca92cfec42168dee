import type { StoredBytes, TensorInfo } from './statedict.js';

/**
 * Bytes per chunk when streaming tensor values: small enough to stay in the CPU cache between the
 * read and the work on it, large enough that each read call is cheap. A multiple of every
 * element size, so chunks never split an element.
 */
export const CHUNK_BYTES = 1 << 20;

/** A reusable chunk buffer, not pooled (its `.buffer` holds only it, so typed views can be taken). */
export function chunkBuffer(bytes = CHUNK_BYTES): Buffer {
  return Buffer.allocUnsafeSlow(bytes);
}

/**
 * A tensor's value bytes in order, in chunks: read into `buffer` again and again where the file
 * stores them as-is (memory bounded by the buffer, whatever the tensor's size), otherwise one
 * `read()` handed out in pieces. Each chunk is valid until the next is asked for.
 */
export async function* tensorChunks(tensor: TensorInfo, buffer: Uint8Array = chunkBuffer()): AsyncGenerator<Uint8Array> {
  const stored = tensor.stored;
  if (!stored) {
    const bytes = await tensor.read();
    for (let at = 0; at < bytes.length; at += buffer.length) yield bytes.subarray(at, at + buffer.length);
    return;
  }
  yield* storedChunks(stored, tensor.byteLength, buffer, `tensor '${tensor.source}'`);
}

/** `byteLength` stored bytes in order, read into `buffer` again and again; each chunk is valid until the next. */
export function* storedChunks(stored: StoredBytes, byteLength: number, buffer: Uint8Array, what: string): Generator<Uint8Array> {
  for (let at = 0; at < byteLength; at += buffer.length) {
    yield stored.file.readInto(stored.offset + at, buffer.subarray(0, Math.min(buffer.length, byteLength - at)), what);
  }
}
