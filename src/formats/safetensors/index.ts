import { RandomAccessFile } from '../../core/file.js';
import { invalidInput } from '../../core/errors.js';
import { dtypeBits, numelOf, type DType } from '../../core/dtype.js';
import { float4e2m1ToFloat32 } from '../../core/minifloat.js';
import { canonicalName, uniqueNames } from '../../core/names.js';
import type { StateDict, TensorInfo } from '../../core/statedict.js';
import type { FormatReader } from '../types.js';
import { safetensorsFormat } from './match.js';
import { roleByName } from '../../core/roles.js';

/**
 * safetensors: `[u64 LE N][N bytes JSON header][data]`. Every offset is checked before any read,
 * as the reference implementation does: sorted, contiguous from 0, sizes matching dtype × shape,
 * ending exactly at the end of the file.
 */
export const MAX_HEADER = 100_000_000;

/**
 * Sub-byte float codes read as an encoding (stored codes → float32), by their stored type's name,
 * with their width. F4 is two codes a byte, the first in the low nibble: how the safetensors Python
 * binding writes it, from torch's `float4_e2m1fn_x2`. F6 is sized by the safetensors crate (6 bits
 * an element, four elements in three bytes) but neither the crate nor any writer of it states the
 * bit order inside those bytes: listed and hashed as stored, values refused.
 */
export const ENCODED_DTYPES: Readonly<Record<string, { stored: string; bits: number }>> = {
  F4: { stored: 'float4e2m1', bits: 4 },
  F6_E2M3: { stored: 'float6e2m3', bits: 6 },
  F6_E3M2: { stored: 'float6e3m2', bits: 6 },
};

export const SAFETENSORS_DTYPES: Readonly<Record<string, DType>> = {
  BOOL: 'bool', U8: 'uint8', I8: 'int8', U16: 'uint16', I16: 'int16', U32: 'uint32', I32: 'int32', U64: 'uint64', I64: 'int64',
  F16: 'float16', BF16: 'bfloat16', F32: 'float32', F64: 'float64', C64: 'complex64',
  F8_E5M2: 'float8e5m2', F8_E4M3: 'float8e4m3fn', F8_E8M0: 'float8e8m0', F8_E4M3FNUZ: 'float8e4m3fnuz', F8_E5M2FNUZ: 'float8e5m2fnuz', F4: 'float4e2m1',
};

export const safetensorsReader: FormatReader = { ...safetensorsFormat, open: openSafetensors };

interface Entry { name: string; code: string; dtype: DType | undefined; shape: number[]; begin: number; end: number }

/** Tensor names in the header's own order: JSON.parse would move integer-like keys first. */
function keyOrder(text: string): string[] {
  const keys: string[] = [];
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"') {
      let j = i + 1;
      while (j < text.length && text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
      if (depth === 1) {
        let k = j + 1;
        while (/\s/.test(text[k] ?? '')) k++;
        if (text[k] === ':') keys.push(JSON.parse(text.slice(i, j + 1)) as string);
      }
      i = j;
    } else if (c === '{' || c === '[') depth++;
    else if (c === '}' || c === ']') depth--;
  }
  return keys;
}

async function openSafetensors(file: string): Promise<StateDict> {
  const raf = RandomAccessFile.open(file);
  try {
    const fail = (where: string, what: string) => invalidInput(file, where, what);
    if (raf.size < 8) throw fail('offset 0', `file is ${raf.size} bytes; a safetensors file starts with an 8-byte header length`);
    const n = new DataView(raf.read(0, 8, 'header length').slice().buffer).getBigUint64(0, true);
    if (n > BigInt(MAX_HEADER)) throw fail('offset 0', `header length ${n} is over the ${MAX_HEADER} allowed`);
    if (8n + n > BigInt(raf.size)) throw fail('offset 0', `header length ${n} runs past the end of the file (${raf.size} bytes)`);
    const headerBytes = raf.read(8, Number(n), 'header');
    let text: string;
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(headerBytes);
    } catch {
      throw fail('offset 8', 'header is not valid UTF-8');
    }
    if (!text.startsWith('{')) throw fail('offset 8', "header must be a JSON object starting with '{'");
    let header: Record<string, unknown>;
    try {
      header = JSON.parse(text) as Record<string, unknown>;
    } catch (err) {
      throw fail('offset 8', `header is not valid JSON (${(err as Error).message})`);
    }
    const order = keyOrder(text);
    if (new Set(order).size !== order.length) throw fail('header', `duplicate tensor name '${order.find((k, i) => order.indexOf(k) !== i)}'`);
    const metadataValue = header.__metadata__;
    const metadata: Record<string, string> = {};
    if (metadataValue !== undefined) {
      if (typeof metadataValue !== 'object' || metadataValue === null || Array.isArray(metadataValue)) throw fail('header __metadata__', 'must be an object of strings');
      for (const [k, v] of Object.entries(metadataValue)) {
        if (typeof v !== 'string') throw fail(`header __metadata__.${k}`, 'metadata values must be strings');
        metadata[k] = v;
      }
    }
    const entries: Entry[] = order.filter((k) => k !== '__metadata__').map((name) => {
      const where = `header '${name}'`;
      const e = header[name] as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
      if (typeof e !== 'object' || e === null) throw fail(where, 'expected {dtype, shape, data_offsets}');
      const code = typeof e.dtype === 'string' ? e.dtype : '';
      const encoded = Object.hasOwn(ENCODED_DTYPES, code) ? ENCODED_DTYPES[code] : undefined;
      const dtype = !encoded && Object.hasOwn(SAFETENSORS_DTYPES, code) ? SAFETENSORS_DTYPES[code] : undefined;
      if (!encoded && !dtype) throw fail(where, `unknown dtype ${JSON.stringify(e.dtype)}`);
      const typeName = encoded?.stored ?? dtype!;
      const bits = encoded?.bits ?? dtypeBits(dtype!);
      const shape = e.shape;
      if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) throw fail(where, 'shape must be a list of non-negative integers');
      const offsets = e.data_offsets;
      if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isSafeInteger(o) && o >= 0) || offsets[1] < offsets[0]) {
        throw fail(where, 'data_offsets must be [begin, end] with 0 ≤ begin ≤ end');
      }
      const numel = numelOf(shape as number[]);
      if (numel === undefined) throw fail(where, 'shape has too many elements');
      // As the reference crate: a tensor fills whole bytes, numel × bits / 8 of them.
      if ((numel * bits) % 8 !== 0) throw fail(where, `${numel} elements of ${typeName} do not fill whole bytes (${bits} bits each)`);
      if (offsets[1] - offsets[0] !== (numel * bits) / 8) {
        throw fail(where, `data_offsets span ${offsets[1] - offsets[0]} bytes, expected ${(numel * bits) / 8} for ${typeName} [${shape.join(',')}]`);
      }
      return { name, code, dtype, shape: shape as number[], begin: offsets[0], end: offsets[1] };
    });
    const sorted = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end);
    let expected = 0;
    for (const e of sorted) {
      if (e.begin !== expected) throw fail(`header '${e.name}'`, e.begin < expected ? `data overlaps the previous tensor (begins at ${e.begin}, before ${expected})` : `gap before the data (begins at ${e.begin}, expected ${expected})`);
      expected = e.end;
    }
    const dataStart = 8 + Number(n);
    if (dataStart + expected !== raf.size) throw fail('data', `tensors end at ${dataStart + expected} but the file is ${raf.size} bytes`);
    const names = uniqueNames(entries.map((e) => ({ name: canonicalName(e.name) })));
    const tensors: TensorInfo[] = entries.map((e, i) => {
      const readStored = async () => raf.read(dataStart + e.begin, e.end - e.begin, `tensor '${e.name}'`);
      const readStrings = async (): Promise<Uint8Array[]> => {
        throw invalidInput(file, `tensor '${e.name}'`, `is ${e.dtype ?? ENCODED_DTYPES[e.code]!.stored}, not strings`);
      };
      const common = { name: names[i]!, source: e.name, shape: e.shape, origin: 'weight' as const, readStrings };
      if (e.dtype) {
        return { ...common, dtype: e.dtype, byteLength: e.end - e.begin, ...roleByName(names[i]!, e.dtype), read: readStored, stored: { file: raf, offset: dataStart + e.begin } };
      }
      const stored = ENCODED_DTYPES[e.code]!.stored;
      const numel = numelOf(e.shape)!;
      return {
        ...common,
        dtype: 'float32',
        byteLength: numel * 4,
        ...roleByName(names[i]!, 'float32'),
        encoding: { stored, label: stored, byteLength: e.end - e.begin, readStored },
        read: async () => {
          if (e.code !== 'F4') {
            throw invalidInput(file, `tensor '${e.name}'`, `${e.code} values are not read: the safetensors crate sizes them (four 6-bit elements in three bytes) but states no bit order within those bytes, and no writer of ${e.code} (the Python bindings have none) shows one; listed and hashed as stored`);
          }
          return new Uint8Array(float4e2m1ToFloat32(await readStored(), numel).buffer);
        },
      };
    });
    return { format: 'safetensors', path: file, metadata: { metadata }, tensors, close: async () => raf.close(), bytesRead: () => raf.bytesRead };
  } catch (err) {
    raf.close();
    throw err;
  }
}
