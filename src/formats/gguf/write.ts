import { writeAll, writeAtomic, yieldToSignals } from '../../core/atomic.js';
import { usageError } from '../../core/errors.js';
import { RandomAccessFile } from '../../core/file.js';
import { ggmlBlockTypes, ggmlTypeOfDType, type GgmlType } from '../../core/ggml.js';
import type { StateDict } from '../../core/statedict.js';
import { dtypeBits } from '../../core/dtype.js';
import type { FormatWriter, OutputTensor, QuantizationReport } from '../writers.js';
import { ggufRuleFor, keptFloatReason, quantizeTensor } from './quantize.js';
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
 * GGUF from float and integer tensors (f32, f16, bf16, f64, i8–i64), float weights quantized to
 * ggml blocks where `--quantize` says (ggml's reference quantizers, byte for byte), and GGUF
 * blocks copied as stored.
 */
export const ggufWriter: FormatWriter = {
  format: 'gguf',
  extensions: ['.gguf'],
  takes: ['ggufQuantize'],
  async write(out, tensors: readonly OutputTensor[], source, options = {}) {
    const rules = options.ggufQuantize ?? [];
    const quantization: QuantizationReport = { quantized: [], unquantized: [] };
    const copied: string[] = [];
    const outputs = tensors.map(({ name, tensor }): GgufOutput => {
      const rule = rules.length ? ggufRuleFor(tensor.name, rules) : undefined;
      // Blocks are copied only where the values are the source's own: new values are written as their dtype.
      const blocks = tensor.encoding && source.format === 'gguf' && source.tensors.includes(tensor) ? ggmlBlockTypes().find((t) => t.name === tensor.encoding!.stored) : undefined;
      if (blocks && (!rule || rule === blocks)) {
        if (rule) copied.push(name);
        return { name, shape: tensor.shape, type: blocks, byteLength: tensor.encoding!.byteLength, read: () => tensor.encoding!.readStored() };
      }
      const reason = rule && keptFloatReason(tensor, rule);
      if (rule && !reason) {
        quantization.quantized.push({ name, type: rule.name });
        const byteLength = (tensor.byteLength / (dtypeBits(tensor.dtype) / 8) / rule.blockSize) * rule.typeSize;
        return { name, shape: tensor.shape, type: rule, byteLength, read: () => quantizeTensor(tensor, rule, source.path) };
      }
      if (reason) quantization.unquantized.push({ name, reason });
      const type = ggmlTypeOfDType(tensor.dtype);
      if (!type) throw usageError(`GGUF cannot store '${name}' (${tensor.dtype}); ggml has f32, f16, bf16, f64 and i8–i64 (convert --dtype float16 casts floats)`);
      if ((tensor.shape.at(-1) ?? 1) % type.blockSize !== 0) throw usageError(`'${name}' does not fill whole ${type.name} blocks`);
      return { name, shape: tensor.shape, type, byteLength: tensor.byteLength, read: () => tensor.read() };
    });
    await writeGguf(out, outputs, keyValuesOf(source));
    const quantizedNames = new Set(quantization.quantized.map((q) => q.name));
    const requantize = tensors.filter(({ name, tensor }) => tensor.encoding && !source.tensors.includes(tensor) && !quantizedNames.has(name)).map(({ name }) => name);
    const scalars = tensors.filter(({ tensor }) => tensor.shape.length === 0).map(({ name }) => name);
    return {
      format: 'gguf',
      notes: [
        ...quantizationNotes(quantization),
        ...(copied.length ? [`${copied.length} tensor(s) already of their --quantize type, blocks copied as stored: ${copied.join(', ')}`] : []),
        ...(requantize.length ? [`${requantize.length} block-quantized tensor(s) got new values and are written as f32: quantize them again with --quantize (${requantize.join(', ')})`] : []),
        ...(scalars.length ? [`${scalars.length} scalar(s) written with shape [1]: a ggml tensor has at least one dimension (${scalars.join(', ')})`] : []),
      ],
      ...(rules.length ? { quantization } : {}),
    };
  },
};

/** `12 tensor(s) quantized to q4_0`, and the selected tensors that stayed float grouped by why. */
function quantizationNotes(report: QuantizationReport): string[] {
  const byType = new Map<string, number>();
  for (const q of report.quantized) byType.set(q.type, (byType.get(q.type) ?? 0) + 1);
  const byReason = new Map<string, string[]>();
  for (const u of report.unquantized) byReason.set(u.reason, [...(byReason.get(u.reason) ?? []), u.name]);
  const listed = (names: string[]) => `${names.slice(0, 6).join(', ')}${names.length > 6 ? `, … (${names.length})` : ''}`;
  return [
    ...[...byType].map(([type, count]) => `${count} tensor(s) quantized to ${type} (ggml's reference quantizer)`),
    ...(report.unquantized.length
      ? [`${report.unquantized.length} selected tensor(s) stay float, as llama.cpp leaves them: ${[...byReason].map(([reason, names]) => `${reason}: ${listed(names)}`).join('; ')}`]
      : []),
  ];
}
