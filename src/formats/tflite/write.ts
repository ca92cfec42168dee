import { writeAll, writeAtomic, yieldToSignals } from '../../core/atomic.js';
import { usageError } from '../../core/errors.js';
import { RandomAccessFile } from '../../core/file.js';
import { alignedView } from '../../core/cast.js';
import { quantizeAffine } from '../../core/encoding.js';
import type { TensorInfo } from '../../core/statedict.js';
import type { FormatWriter } from '../writers.js';
import { readTfliteModel, type TfliteBuffer, type TfliteTensor } from './model.js';

/** Integer range of each type TFLite quantizes to. */
const RANGES: Readonly<Record<string, [number, number]>> = {
  int4: [-8, 7], int8: [-128, 127], uint8: [0, 255], int16: [-32768, 32767], int32: [-(2 ** 31), 2 ** 31 - 1], int64: [-(2 ** 53), 2 ** 53],
};

/** Quantized levels as the stored type's little-endian bytes (int4 two per byte, low nibble first). */
function encodeIntegers(levels: Float64Array, type: string): Uint8Array {
  switch (type) {
    case 'int8': return new Uint8Array(Int8Array.from(levels).buffer);
    case 'uint8': return Uint8Array.from(levels);
    case 'int16': return new Uint8Array(Int16Array.from(levels).buffer);
    case 'int32': return new Uint8Array(Int32Array.from(levels).buffer);
    case 'int64': return new Uint8Array(BigInt64Array.from(levels, (v) => BigInt(v)).buffer);
    case 'int4': {
      const out = new Uint8Array(Math.ceil(levels.length / 2));
      levels.forEach((v, i) => { out[i >> 1]! |= (v & 0xf) << ((i & 1) * 4); });
      return out;
    }
    default: throw new Error(`${type} is not a quantized type`);
  }
}

/** New values for a tensor in its stored form: quantized with the tensor's own scales where it has them. */
async function storedBytes(original: TensorInfo, replacement: TensorInfo): Promise<Uint8Array> {
  const values = await replacement.read();
  const encoding = original.encoding;
  if (!encoding?.affine) return values;
  const floats = alignedView(values, Float32Array);
  const [min, max] = RANGES[encoding.stored]!;
  return encodeIntegers(quantizeAffine(floats, original.shape, encoding.affine, min, max), encoding.stored);
}

/**
 * TFLite output is the source model with its buffers replaced in place: the same flatbuffer
 * (operators, quantization, metadata, signatures) and new weights. Tensors keep their names,
 * dtypes and shapes; new values for a quantized tensor are quantized with its own scales.
 */
export const tfliteWriter: FormatWriter = {
  format: 'tflite',
  extensions: ['.tflite'],
  holdsStrings: true,
  async write(out, tensors, source) {
    if (source.format !== 'tflite') throw usageError(`writing TFLite needs a TFLite model to put the weights in; '${source.path}' is ${source.format}`);
    const byName = new Map(tensors.map((t) => [t.tensor.name, t]));
    const missing = source.tensors.filter((t) => !byName.has(t.name));
    if (missing.length) throw usageError(`a TFLite model needs every constant its operators read; ${missing.length} would be left out: ${missing.map((t) => t.name).join(', ')}`);
    const renamed = tensors.find((t) => t.name !== t.tensor.source && t.name !== t.tensor.name);
    if (renamed) throw usageError(`TFLite output keeps the model's tensor names; '${renamed.tensor.source}' cannot become '${renamed.name}'`);
    const raf = RandomAccessFile.open(source.path);
    try {
      const model = readTfliteModel(raf);
      const stored: TfliteTensor[] = model.tensors.filter((t) => t.buffer !== 0 && model.buffers[t.buffer]);
      // Only tensors whose values changed are written; each buffer at most once.
      const edits = new Map<number, { buffer: TfliteBuffer; read: () => Promise<Uint8Array>; name: string }>();
      source.tensors.forEach((original, i) => {
        const given = byName.get(original.name)!.tensor;
        if (given === original) return;
        if (given.dtype !== original.dtype || given.shape.join() !== original.shape.join()) {
          throw usageError(`'${original.name}' is ${original.dtype} [${original.shape.join(',')}] in the TFLite model; new values must keep that (got ${given.dtype} [${given.shape.join(',')}])`);
        }
        const index = stored[i]!.buffer;
        const other = edits.get(index);
        if (other) throw usageError(`'${original.name}' and '${other.name}' share one buffer in the TFLite model; they cannot take different values`);
        edits.set(index, { buffer: model.buffers[index]!, name: original.name, read: () => storedBytes(original, given) });
      });
      const ordered = [...edits.values()].sort((a, b) => a.buffer.start - b.buffer.start);
      await writeAtomic(out, async (fd) => {
        let at = 0;
        const copyUntil = (end: number) => {
          for (; at < end; at += Math.min(1 << 24, end - at)) writeAll(fd, raf.read(at, Math.min(1 << 24, end - at), 'model'));
        };
        for (const edit of ordered) {
          await yieldToSignals();
          copyUntil(edit.buffer.start);
          const bytes = await edit.read();
          if (bytes.length !== edit.buffer.length) throw new Error(`'${edit.name}' makes ${bytes.length} bytes for a buffer of ${edit.buffer.length}`);
          writeAll(fd, bytes);
          at += bytes.length;
        }
        copyUntil(raf.size);
      });
      return { format: 'tflite', notes: edits.size ? [`${edits.size} buffer(s) replaced in the source model's flatbuffer`] : [] };
    } finally {
      raf.close();
    }
  },
};
