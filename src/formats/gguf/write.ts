import { writeAll, writeAtomic, yieldToSignals } from '../../core/atomic.js';
import { usageError } from '../../core/errors.js';
import { RandomAccessFile } from '../../core/file.js';
import { ggmlType, ggmlTypeOfDType, type GgmlType } from '../../core/ggml.js';
import type { StateDict } from '../../core/statedict.js';
import type { FormatWriter, OutputTensor } from '../writers.js';
import { readGgufHeader } from './header.js';
import { GGUF_MAGIC } from './match.js';

const ALIGNMENT = 32;

/** A tensor as GGUF stores it: its ggml type and the bytes of that type. */
export interface GgufOutput {
  readonly name: string;
  readonly shape: readonly number[];
  readonly type: GgmlType;
  readonly byteLength: number;
  read(): Promise<Uint8Array>;
}

const u32 = (v: number) => { const b = Buffer.alloc(4); b.writeUInt32LE(v); return b; };
const u64 = (v: number) => { const b = Buffer.alloc(8); b.writeBigUInt64LE(BigInt(v)); return b; };
const ggufString = (s: string) => { const b = Buffer.from(s); return Buffer.concat([u64(b.length), b]); };
const padTo = (n: number) => (ALIGNMENT - (n % ALIGNMENT)) % ALIGNMENT;

/**
 * GGUF v3: the given key-value section (raw, `count` entries), then tensor infos (ne = shape
 * reversed) and each tensor's data at the next multiple of 32 bytes, one tensor in memory at a time.
 */
export async function writeGguf(out: string, tensors: readonly GgufOutput[], keyValues: { bytes: Uint8Array; count: number }): Promise<void> {
  const infos: Buffer[] = [];
  let offset = 0;
  for (const t of tensors) {
    const ne = t.shape.length ? [...t.shape].reverse() : [1];
    infos.push(ggufString(t.name), u32(ne.length), ...ne.map(u64), u32(t.type.id), u64(offset));
    offset += t.byteLength + padTo(t.byteLength);
  }
  const head = Buffer.concat([u32(GGUF_MAGIC), u32(3), u64(tensors.length), u64(keyValues.count), keyValues.bytes, ...infos]);
  await writeAtomic(out, async (fd) => {
    writeAll(fd, head);
    writeAll(fd, new Uint8Array(padTo(head.length)));
    for (const t of tensors) {
      await yieldToSignals();
      const bytes = await t.read();
      if (bytes.length !== t.byteLength) throw new Error(`'${t.name}' read ${bytes.length} bytes, expected ${t.byteLength}`);
      writeAll(fd, bytes);
      writeAll(fd, new Uint8Array(padTo(bytes.length)));
    }
  });
}

/** One key-value entry, a string: what a GGUF from another format says of itself. */
export function stringKeyValue(key: string, value: string): Uint8Array {
  return Buffer.concat([ggufString(key), u32(8), ggufString(value)]);
}

/** The source's own key-values when it is a GGUF (copied byte for byte: tokenizers stay whole). */
function keyValuesOf(source: StateDict): { bytes: Uint8Array; count: number } {
  if (source.format !== 'gguf') return { bytes: stringKeyValue('general.source', `ckpt convert from ${source.format}`), count: 1 };
  const raf = RandomAccessFile.open(source.path);
  try {
    const { keyValues, alignment } = readGgufHeader(raf);
    if (alignment !== ALIGNMENT) throw usageError(`'${source.path}' aligns its data to ${alignment} bytes; ckpt writes GGUF aligned to ${ALIGNMENT}`);
    return { bytes: Uint8Array.from(raf.read(keyValues.start, keyValues.end - keyValues.start, 'key-values')), count: keyValues.count };
  } finally {
    raf.close();
  }
}

/**
 * GGUF from float and integer tensors (f32, f16, bf16, f64, i8–i64), and GGUF blocks copied as
 * stored: quantizing is left to llama.cpp, whose quantizers are the reference.
 */
export const ggufWriter: FormatWriter = {
  format: 'gguf',
  extensions: ['.gguf'],
  async write(out, tensors: readonly OutputTensor[], source) {
    const outputs = tensors.map(({ name, tensor }): GgufOutput => {
      // Blocks are copied only where the values are the source's own: new values are written as their dtype.
      const blocks = tensor.encoding && source.format === 'gguf' && source.tensors.includes(tensor) ? ggmlTypeByName(tensor.encoding.stored) : undefined;
      if (blocks) return { name, shape: tensor.shape, type: blocks, byteLength: tensor.encoding!.byteLength, read: () => tensor.encoding!.readStored() };
      const type = ggmlTypeOfDType(tensor.dtype);
      if (!type) throw usageError(`GGUF cannot store '${name}' (${tensor.dtype}); ggml has f32, f16, bf16, f64 and i8–i64 (convert --dtype float16 casts floats)`);
      if ((tensor.shape.at(-1) ?? 1) % type.blockSize !== 0) throw usageError(`'${name}' does not fill whole ${type.name} blocks`);
      return { name, shape: tensor.shape, type, byteLength: tensor.byteLength, read: () => tensor.read() };
    });
    await writeGguf(out, outputs, keyValuesOf(source));
    const requantize = tensors.filter(({ tensor }) => tensor.encoding && !source.tensors.includes(tensor)).map(({ name }) => name);
    const scalars = tensors.filter(({ tensor }) => tensor.shape.length === 0).map(({ name }) => name);
    return {
      format: 'gguf',
      notes: [
        ...(requantize.length ? [`${requantize.length} block-quantized tensor(s) got new values and are written as f32: quantize again with llama.cpp's llama-quantize (${requantize.join(', ')})`] : []),
        ...(scalars.length ? [`${scalars.length} scalar(s) written with shape [1]: a ggml tensor has at least one dimension (${scalars.join(', ')})`] : []),
      ],
    };
  },
};

function ggmlTypeByName(name: string): GgmlType | undefined {
  for (let id = 0; id < 64; id++) if (ggmlType(id)?.name === name) return ggmlType(id);
  return undefined;
}
