import { RandomAccessFile } from '../../core/file.js';
import { invalidInput } from '../../core/errors.js';
import { dequantizeBlocks } from '../../core/ggml.js';
import { canonicalName, uniqueNames } from '../../core/names.js';
import { roleByName } from '../../core/roles.js';
import type { Metadata, StateDict, TensorInfo } from '../../core/statedict.js';
import type { FormatReader } from '../types.js';
import { ggufFormat } from './match.js';
import { readGgufHeader, type GgufHeader, type GgufTensorInfo } from './header.js';

/**
 * GGUF (llama.cpp, ggml): every tensor of the header, shape as ggml's `ne` reversed (row-major,
 * slowest first, as gguf-py and Hugging Face list them). Plain ggml types are their dtype; block
 * types (q4_0, q8_0, q4_k…) keep their blocks as the stored form and read as float32.
 */
export const ggufReader: FormatReader = { ...ggufFormat, open: openGguf };

async function openGguf(file: string): Promise<StateDict> {
  const raf = RandomAccessFile.open(file);
  try {
    const header = readGgufHeader(raf);
    const names = uniqueNames(header.tensors.map((t) => ({ name: canonicalName(t.name) })));
    const tensors = header.tensors.map((t, i) => tensorOf(file, raf, header, t, names[i]!));
    return { format: 'gguf', path: file, metadata: metadataOf(header), tensors, close: async () => raf.close(), bytesRead: () => raf.bytesRead };
  } catch (err) {
    raf.close();
    throw err;
  }
}

function tensorOf(file: string, raf: RandomAccessFile, header: GgufHeader, t: GgufTensorInfo, name: string): TensorInfo {
  const shape = [...t.ne].reverse();
  const readStored = async () => raf.read(header.dataOffset + t.offset, t.byteLength, `tensor '${t.name}'`);
  const readStrings = async (): Promise<Uint8Array[]> => {
    throw invalidInput(file, `tensor '${t.name}'`, `is ${t.type.name}, not strings`);
  };
  const common = { name, source: t.name, shape, origin: 'weight' as const, readStrings };
  if (t.type.dtype) {
    return { ...common, dtype: t.type.dtype, byteLength: t.byteLength, ...roleByName(name, t.type.dtype), read: readStored };
  }
  const type = t.type;
  return {
    ...common,
    dtype: 'float32',
    byteLength: t.numel * 4,
    ...roleByName(name, 'float32'),
    encoding: { stored: type.name, label: type.name, byteLength: t.byteLength, readStored },
    read: async () => {
      if (!type.dequantize) throw invalidInput(file, `tensor '${t.name}'`, `${type.name} blocks index a codebook ckpt does not carry: listed and hashed, but their values cannot be read as float32`);
      const values = dequantizeBlocks(type, await readStored());
      return new Uint8Array(values.buffer);
    },
  };
}

/** The header as JSON: key-values in file order (64-bit integers beyond 2^53 as strings, long arrays summarized). */
function metadataOf(header: GgufHeader): Metadata {
  const json = (v: unknown): unknown => (typeof v === 'bigint' ? v.toString() : Array.isArray(v) ? v.map(json) : v && typeof v === 'object' ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, json(x)])) : v);
  const architecture = header.values.get('general.architecture');
  return {
    version: header.version,
    alignment: header.alignment,
    dataOffset: header.dataOffset,
    ...(typeof architecture === 'string' ? { architecture } : {}),
    values: Object.fromEntries([...header.values].map(([k, v]) => [k, json(v)])),
    valueTypes: Object.fromEntries(header.valueTypes),
  };
}
