import { writeAll, writeAtomic, yieldToSignals } from '../../core/atomic.js';
import { usageError } from '../../core/errors.js';
import { chunkBuffer, tensorChunks } from '../../core/chunks.js';
import type { FormatWriter, OutputTensor } from '../writers.js';
import { ENCODED_DTYPES, SAFETENSORS_DTYPES } from './index.js';
import { writeSharded } from '../sharded/write.js';

/** Chunks larger than for reading: fewer write calls, memory still bounded. */
const WRITE_CHUNK = 8 << 20;

const CODE: Record<string, string> = Object.fromEntries(Object.entries(SAFETENSORS_DTYPES).map(([code, dtype]) => [dtype, code]));

/**
 * safetensors in the reference writer's layout: tensors in the given order, contiguous, the
 * header padded with spaces to a multiple of 8; one tensor in memory at a time, or one chunk where
 * the source stores its values as-is.
 */
export async function writeSafetensors(out: string, tensors: readonly OutputTensor[], metadata: Record<string, string> = {}): Promise<void> {
  const write = safetensorsWriterFor(tensors, metadata);
  await writeAtomic(out, write);
}

/** The function that writes `tensors` as one safetensors file to a descriptor (a shard, or the whole file). */
export function safetensorsWriterFor(tensors: readonly OutputTensor[], metadata: Record<string, string> = {}): (fd: number) => Promise<void> {
  const bad = tensors.find((t) => !CODE[t.tensor.dtype]);
  if (bad) throw usageError(`safetensors cannot store '${bad.name}' (${bad.tensor.dtype})`);
  // Built entry by entry: a JS object would put integer-like names ("664") first.
  const entries: string[] = [];
  if (Object.keys(metadata).length) entries.push(`"__metadata__":${JSON.stringify(metadata)}`);
  let offset = 0;
  for (const t of tensors) {
    const entry = { dtype: CODE[t.tensor.dtype], shape: [...t.tensor.shape], data_offsets: [offset, offset + t.tensor.byteLength] };
    entries.push(`${JSON.stringify(t.name)}:${JSON.stringify(entry)}`);
    offset += t.tensor.byteLength;
  }
  const json = Buffer.from(`{${entries.join(',')}}`);
  const headerBytes = Buffer.concat([json, Buffer.alloc((8 - (json.length % 8)) % 8, 0x20)]);
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(headerBytes.length));
  return async (fd) => {
    writeAll(fd, length);
    writeAll(fd, headerBytes);
    const buffer = chunkBuffer(WRITE_CHUNK);
    for (const t of tensors) {
      await yieldToSignals();
      let written = 0;
      for await (const chunk of tensorChunks(t.tensor, buffer)) {
        writeAll(fd, chunk);
        written += chunk.length;
      }
      if (written !== t.tensor.byteLength) throw new Error(`'${t.name}' read ${written} bytes, expected ${t.tensor.byteLength}`);
    }
  };
}

/**
 * An F4 tensor whose values are still those of its file goes back as its stored codes (its float32
 * view is eight times their size); one with new values has lost its encoding and is written as them.
 */
function storedForm(t: OutputTensor): OutputTensor {
  const e = t.tensor.encoding;
  if (e?.stored !== ENCODED_DTYPES.F4!.stored) return t;
  return { ...t, tensor: { ...t.tensor, dtype: 'float4e2m1', byteLength: e.byteLength, read: () => e.readStored(), encoding: undefined } };
}

export const safetensorsWriter: FormatWriter = {
  format: 'safetensors',
  extensions: ['.safetensors'],
  takes: ['shardSize'],
  async write(out, given, source, options = {}) {
    const tensors = given.map(storedForm);
    const kept = source.format === 'safetensors' ? (source.metadata.metadata as Record<string, string>) : { format: 'pt' };
    if (options.shardSize !== undefined) {
      return { format: 'safetensors', notes: await writeSharded(out, tensors, options.shardSize, (shard) => safetensorsWriterFor(shard, kept)) };
    }
    await writeSafetensors(out, tensors, kept);
    return { format: 'safetensors', notes: [] };
  },
};
