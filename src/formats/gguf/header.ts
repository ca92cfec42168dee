import type { RandomAccessFile } from '../../core/file.js';
import { numelOf } from '../../core/dtype.js';
import { invalidInput } from '../../core/errors.js';
import { ggmlType, type GgmlType } from '../../core/ggml.js';
import { GGUF_MAGIC } from './match.js';

/**
 * The GGUF header (v2/v3, little-endian): magic `GGUF`, version, tensor and key-value counts (u64),
 * the key-values, the tensor infos, then the data section at the next multiple of
 * `general.alignment` (32 by default). Walked through the file's block cache: only the header is read.
 */
export const VALUE_TYPES = ['uint8', 'int8', 'uint16', 'int16', 'uint32', 'int32', 'float32', 'bool', 'string', 'array', 'uint64', 'int64', 'float64'] as const;
export type ValueTypeName = (typeof VALUE_TYPES)[number];

const SCALAR_WIDTHS: Partial<Record<ValueTypeName, number>> = { uint8: 1, int8: 1, bool: 1, uint16: 2, int16: 2, uint32: 4, int32: 4, float32: 4, uint64: 8, int64: 8, float64: 8 };

/** A long array (a tokenizer's vocabulary) is kept as its length and first elements. */
export const ARRAY_KEPT = 16;

export interface ArraySummary {
  readonly type: 'array';
  readonly of: ValueTypeName;
  readonly length: number;
  readonly first: unknown[];
}

export type GgufValue = number | bigint | boolean | string | unknown[] | ArraySummary;

export interface GgufTensorInfo {
  readonly name: string;
  /** ggml's dims, fastest first. */
  readonly ne: readonly number[];
  readonly type: GgmlType;
  /** From the start of the data section. */
  readonly offset: number;
  readonly byteLength: number;
  readonly numel: number;
}

export interface GgufHeader {
  readonly version: number;
  readonly alignment: number;
  readonly dataOffset: number;
  /** Where the key-value section lies in the file (a GGUF writer copies it whole). */
  readonly keyValues: { readonly start: number; readonly end: number; readonly count: number };
  /** Key-values in file order; long arrays summarized. */
  readonly values: Map<string, GgufValue>;
  /** Each key's value type, as gguf_dump shows it. */
  readonly valueTypes: Map<string, string>;
  readonly tensors: readonly GgufTensorInfo[];
}

const MAX_DIMS = 4;

export function readGgufHeader(file: RandomAccessFile): GgufHeader {
  const fail = (at: number, what: string) => invalidInput(file.path, `offset ${at}`, what);
  let at = 0;
  const take = (n: number, what: string): DataView => {
    if (at + n > file.size) throw fail(at, `${what} needs ${n} bytes but the file ends at ${file.size} (truncated?)`);
    const bytes = file.bytesAt(at, n, what);
    at += n;
    return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  };
  const u32 = (what: string) => take(4, what).getUint32(0, true);
  const u64 = (what: string): number => {
    const start = at;
    const v = take(8, what).getBigUint64(0, true);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw fail(start, `${what} ${v} is too large`);
    return Number(v);
  };
  const string = (what: string): string => {
    const start = at;
    const n = u64(`${what} length`);
    if (n > file.size - at) throw fail(start, `${what} of ${n} bytes runs past the end of the file (${file.size} bytes)`);
    const bytes = n <= 65536 ? file.bytesAt(at, n, what) : file.read(at, n, what);
    at += n;
    try {
      return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    } catch {
      throw fail(start, `${what} is not valid UTF-8`);
    }
  };

  const magic = u32('magic');
  if (magic !== GGUF_MAGIC) throw fail(0, "expected the magic 'GGUF'");
  const version = u32('version');
  if (version === 1) throw fail(4, 'GGUF version 1 (32-bit counts, 2023) is not read; convert the model again with a current llama.cpp');
  if (version > 0xffff && (version & 0xffff) === 0) throw fail(4, `a big-endian GGUF (version ${version >>> 24} byte-swapped) is not read; ckpt reads little-endian GGUF`);
  if (version !== 2 && version !== 3) throw fail(4, `GGUF version ${version} is not one ckpt reads (2 or 3)`);
  const tensorCount = u64('tensor count');
  const kvCount = u64('key-value count');
  // Each tensor info takes at least 8 + 4 + 4 + 8 bytes, each key-value at least 8 + 4 + 1.
  if (tensorCount > file.size / 24) throw fail(8, `tensor count ${tensorCount} cannot fit in a file of ${file.size} bytes`);
  if (kvCount > file.size / 13) throw fail(16, `key-value count ${kvCount} cannot fit in a file of ${file.size} bytes`);

  const scalar = (type: number, where: number): number | bigint | boolean | string => {
    switch (VALUE_TYPES[type]) {
      case 'uint8': return take(1, 'value').getUint8(0);
      case 'int8': return take(1, 'value').getInt8(0);
      case 'uint16': return take(2, 'value').getUint16(0, true);
      case 'int16': return take(2, 'value').getInt16(0, true);
      case 'uint32': return take(4, 'value').getUint32(0, true);
      case 'int32': return take(4, 'value').getInt32(0, true);
      case 'float32': return take(4, 'value').getFloat32(0, true);
      case 'float64': return take(8, 'value').getFloat64(0, true);
      case 'uint64': return safe(take(8, 'value').getBigUint64(0, true));
      case 'int64': return safe(take(8, 'value').getBigInt64(0, true));
      case 'bool': {
        const b = take(1, 'value').getUint8(0);
        if (b > 1) throw fail(at - 1, `a bool must be 0 or 1, not ${b}`);
        return b === 1;
      }
      case 'string': return string('string value');
      default: throw fail(where, `unknown value type ${type}`);
    }
  };
  const values = new Map<string, GgufValue>();
  const valueTypes = new Map<string, string>();
  const keyValuesStart = at;
  for (let i = 0; i < kvCount; i++) {
    const keyAt = at;
    const key = string(`key ${i}`);
    if (values.has(key)) throw fail(keyAt, `duplicate key '${key}'`);
    const typeAt = at;
    const type = u32(`type of '${key}'`);
    if (VALUE_TYPES[type] === 'array') {
      const elementAt = at;
      const elementType = u32(`element type of '${key}'`);
      const of = VALUE_TYPES[elementType];
      if (!of || of === 'array') throw fail(elementAt, `'${key}': arrays of ${of ?? `type ${elementType}`} are not GGUF`);
      const length = u64(`length of '${key}'`);
      if (length > file.size - at) throw fail(elementAt, `'${key}' claims ${length} elements, more than the file holds`);
      const first: unknown[] = [];
      for (let j = 0; j < Math.min(length, ARRAY_KEPT); j++) first.push(scalar(elementType, elementAt));
      // The rest is skipped, not decoded: strings by their lengths, numbers by their width.
      const width = SCALAR_WIDTHS[of];
      if (width !== undefined) {
        const rest = (length - first.length) * width;
        if (at + rest > file.size) throw fail(at, `'${key}' runs past the end of the file (${file.size} bytes; truncated?)`);
        at += rest;
      } else {
        for (let j = first.length; j < length; j++) {
          const start = at;
          const n = u64(`length of string ${j} of '${key}'`);
          if (n > file.size - at) throw fail(start, `string ${j} of '${key}' runs past the end of the file`);
          at += n;
        }
      }
      values.set(key, length <= ARRAY_KEPT ? first : { type: 'array', of, length, first });
      valueTypes.set(key, `array[${of}]`);
    } else {
      if (!VALUE_TYPES[type]) throw fail(typeAt, `'${key}' has unknown value type ${type}`);
      values.set(key, scalar(type, typeAt));
      valueTypes.set(key, VALUE_TYPES[type]!);
    }
  }
  const keyValues = { start: keyValuesStart, end: at, count: kvCount };
  const alignmentValue = values.get('general.alignment') ?? 32;
  if (typeof alignmentValue !== 'number' || !Number.isInteger(alignmentValue) || alignmentValue <= 0 || (alignmentValue & (alignmentValue - 1)) !== 0) {
    throw fail(0, `general.alignment must be a power of two, not ${String(alignmentValue)}`);
  }
  const alignment = alignmentValue;

  const infos: Omit<GgufTensorInfo, 'byteLength' | 'numel'>[] = [];
  const names = new Set<string>();
  for (let i = 0; i < tensorCount; i++) {
    const infoAt = at;
    const name = string(`name of tensor ${i}`);
    if (names.has(name)) throw fail(infoAt, `duplicate tensor name '${name}'`);
    names.add(name);
    const dims = u32(`dimension count of '${name}'`);
    if (dims > MAX_DIMS) throw fail(infoAt, `'${name}' has ${dims} dimensions; ggml has at most ${MAX_DIMS}`);
    const ne = Array.from({ length: dims }, (_, d) => u64(`dimension ${d} of '${name}'`));
    const typeAt = at;
    const typeId = u32(`type of '${name}'`);
    const type = ggmlType(typeId);
    if (!type) throw fail(typeAt, `'${name}' has ggml type ${typeId}, which ckpt does not know`);
    const offset = u64(`offset of '${name}'`);
    infos.push({ name, ne, type, offset });
  }
  const dataOffset = Math.ceil(at / alignment) * alignment;
  const tensors = infos.map((info): GgufTensorInfo => {
    const where = (what: string) => invalidInput(file.path, `tensor '${info.name}'`, what);
    const numel = numelOf(info.ne);
    if (numel === undefined) throw where(`shape [${info.ne.join(',')}] has too many elements`);
    if ((info.ne[0] ?? 1) % info.type.blockSize !== 0) throw where(`its first dimension ${info.ne[0] ?? 1} is not a multiple of ${info.type.name}'s block of ${info.type.blockSize}`);
    const byteLength = (numel / info.type.blockSize) * info.type.typeSize;
    if (info.offset % alignment !== 0) throw where(`offset ${info.offset} is not a multiple of the alignment ${alignment}`);
    if (dataOffset + info.offset + byteLength > file.size) {
      throw where(`data at ${dataOffset + info.offset}..${dataOffset + info.offset + byteLength} runs past the end of the file (${file.size} bytes; truncated?)`);
    }
    return { ...info, byteLength, numel };
  });
  const sorted = [...tensors].sort((a, b) => a.offset - b.offset);
  sorted.forEach((t, i) => {
    const next = sorted[i + 1];
    if (next && t.offset + t.byteLength > next.offset) throw invalidInput(file.path, `tensor '${next.name}'`, `data at offset ${next.offset} overlaps '${t.name}' (${t.offset}..${t.offset + t.byteLength})`);
  });
  return { version, alignment, dataOffset, keyValues, values, valueTypes, tensors };
}

/** 64-bit integers as numbers where exact, bigints beyond. */
function safe(v: bigint): number | bigint {
  return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
}
