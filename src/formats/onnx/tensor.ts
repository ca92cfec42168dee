import * as path from 'node:path';
import { RandomAccessFile, resolveInsideFolder } from '../../core/file.js';
import { isLocalPath, locationSize } from '../../core/location.js';
import { byteLengthOf, dtypeBits, numelOf, type DType } from '../../core/dtype.js';
import { invalidInput } from '../../core/errors.js';
import type { StoredBytes } from '../../core/statedict.js';
import {
  expectWire, fields, readRepeatedVarints, readString,
  WIRE_BYTES, WIRE_FIXED32, WIRE_FIXED64, WIRE_VARINT,
  type Field, type Range,
} from './wire.js';
import { FIELD, ONNX_DTYPES, TYPED_FIELD_NAMES, typedFieldFor, type TypedField } from './dtypes.js';

/** What a TensorProto says about itself, with payloads as file ranges (never read here). */
export interface TensorProtoInfo {
  readonly at: number;
  name?: string;
  dims: number[];
  dataType?: number;
  raw?: Range;
  typed: Map<TypedField, Field[]>;
  external: Map<string, string>;
  dataLocation: number;
  hasSegment: boolean;
}

/** A resolved tensor: type, shape, size and how to fetch its values. */
export interface TensorPayload {
  readonly dtype: DType;
  readonly shape: number[];
  readonly byteLength: number;
  /** raw_data: the values as-is in the file, for streaming. */
  readonly stored?: StoredBytes;
  read(): Uint8Array;
  readStrings(): Uint8Array[];
}

export function emptyTensorProto(at: number): TensorProtoInfo {
  return { at, dims: [], typed: new Map(), external: new Map(), dataLocation: 0, hasSegment: false };
}

export function parseTensorProto(file: RandomAccessFile, range: Range, what: string): TensorProtoInfo {
  const t = emptyTensorProto(range.start);
  const dims: bigint[] = [];
  for (const f of fields(file, range, what)) {
    switch (f.no) {
      case FIELD.dims:
        readRepeatedVarints(file, f, dims, `${what}: dims`);
        break;
      case FIELD.dataType:
        expectWire(file, f, WIRE_VARINT, what);
        t.dataType = Number(BigInt.asIntN(32, f.varint));
        break;
      case FIELD.segment:
        t.hasSegment = true;
        break;
      case FIELD.name:
        t.name = readString(file, f, `${what}: name`);
        break;
      case FIELD.rawData:
        expectWire(file, f, WIRE_BYTES, what);
        t.raw = { start: f.start, end: f.end };
        break;
      case FIELD.externalData: {
        expectWire(file, f, WIRE_BYTES, what);
        let key = '';
        let value = '';
        for (const kv of fields(file, f, `${what}: external_data`)) {
          if (kv.no === 1) key = readString(file, kv, `${what}: external_data key`);
          else if (kv.no === 2) value = readString(file, kv, `${what}: external_data value`);
        }
        t.external.set(key, value);
        break;
      }
      case FIELD.dataLocation:
        expectWire(file, f, WIRE_VARINT, what);
        t.dataLocation = Number(f.varint);
        break;
      case FIELD.floatData:
      case FIELD.int32Data:
      case FIELD.stringData:
      case FIELD.int64Data:
      case FIELD.doubleData:
      case FIELD.uint64Data: {
        const list = t.typed.get(f.no) ?? [];
        list.push(f);
        t.typed.set(f.no, list);
        break;
      }
      default:
        break; // doc_string, metadata_props and fields newer than this reader: not needed to list
    }
  }
  t.dims = dims.map((d) => {
    const v = BigInt.asIntN(64, d);
    if (v < 0n || v > BigInt(Number.MAX_SAFE_INTEGER)) {
      throw invalidInput(file.path, `offset ${range.start}`, `${what}: dim ${v} is negative or too large`);
    }
    return Number(v);
  });
  return t;
}

/** Number of elements in a typed field, counting packed varints only when `exact` is asked. */
function typedElementCount(file: RandomAccessFile, no: TypedField, list: Field[], what: string): number | undefined {
  let n = 0;
  for (const f of list) {
    if (no === FIELD.stringData) {
      expectWire(file, f, WIRE_BYTES, what);
      n += 1;
    } else if (no === FIELD.floatData || no === FIELD.doubleData) {
      const size = no === FIELD.floatData ? 4 : 8;
      if (f.wire === WIRE_BYTES) {
        if ((f.end - f.start) % size !== 0) {
          throw invalidInput(file.path, `offset ${f.at}`, `${what}: packed ${TYPED_FIELD_NAMES[no]} is ${f.end - f.start} bytes, not a multiple of ${size}`);
        }
        n += (f.end - f.start) / size;
      } else {
        expectWire(file, f, size === 4 ? WIRE_FIXED32 : WIRE_FIXED64, what);
        n += 1;
      }
    } else if (f.wire === WIRE_VARINT) {
      n += 1;
    } else {
      // Packed varints: counting them means reading the payload, which listing avoids.
      return undefined;
    }
  }
  return n;
}

/** How many elements the typed field must hold for a tensor of `numel` elements. */
function expectedTypedCount(dtype: DType, numel: number): number {
  if (dtype === 'complex64' || dtype === 'complex128') return numel * 2;
  if (dtypeBits(dtype) < 8) return byteLengthOf(dtype, numel); // one packed byte per int32
  return numel;
}

interface ResolveContext {
  readonly file: RandomAccessFile;
  readonly folder: string;
  /**
   * Local external data files held open by the state dict (closed with it), so their tensors
   * stream from them like raw_data does; without it, each read opens its file.
   */
  readonly dataFiles?: Map<string, RandomAccessFile>;
}

/** Held open at most: past this many (per-tensor layouts of large models), each read opens its file. */
const HELD_DATA_FILES = 64;

/**
 * Validates a TensorProto against its declared type and shape and returns how to read it.
 * Every size is checked here, before any payload is touched.
 */
export function resolveTensor(ctx: ResolveContext, t: TensorProtoInfo, what: string): TensorPayload {
  const { file } = ctx;
  const where = `offset ${t.at}`;
  if (t.dataType === undefined || t.dataType === 0) {
    throw invalidInput(file.path, where, `${what}: data_type is missing or UNDEFINED`);
  }
  const dtype = ONNX_DTYPES[t.dataType];
  if (!dtype) throw invalidInput(file.path, where, `${what}: unknown data_type ${t.dataType} (this reader knows 1-26)`);
  if (t.hasSegment) throw invalidInput(file.path, where, `${what}: segmented tensors are not supported`);
  const shape = t.dims;
  const numel = numelOf(shape);
  if (numel === undefined) throw invalidInput(file.path, where, `${what}: shape [${shape.join(',')}] has too many elements`);
  const typedFields = [...t.typed.keys()];
  const external = t.dataLocation === 1 || t.external.size > 0;

  if (t.dataLocation !== 0 && t.dataLocation !== 1) {
    throw invalidInput(file.path, where, `${what}: data_location ${t.dataLocation} is not DEFAULT (0) or EXTERNAL (1)`);
  }
  if (external) {
    if (t.dataLocation !== 1) throw invalidInput(file.path, where, `${what}: external_data given but data_location is not EXTERNAL`);
    if (t.raw || typedFields.length) throw invalidInput(file.path, where, `${what}: external data mixed with raw_data or typed values`);
    if (dtype === 'string') throw invalidInput(file.path, where, `${what}: string tensors cannot use external data`);
    return externalPayload(ctx, t, dtype, shape, numel, what);
  }

  if (dtype === 'string') {
    if (t.raw) throw invalidInput(file.path, where, `${what}: string tensor with raw_data; expected string_data`);
    const extra = typedFields.filter((f) => f !== FIELD.stringData);
    if (extra.length) throw invalidInput(file.path, where, `${what}: string tensor with ${TYPED_FIELD_NAMES[extra[0]!]}`);
    const list = t.typed.get(FIELD.stringData) ?? [];
    if (list.length !== numel) {
      throw invalidInput(file.path, where, `${what}: string_data has ${list.length} elements, expected ${numel} for shape [${shape.join(',')}]`);
    }
    for (const f of list) expectWire(file, f, WIRE_BYTES, `${what}: string_data`);
    const byteLength = list.reduce((n, f) => n + (f.end - f.start), 0);
    return {
      dtype, shape, byteLength,
      read: () => { throw invalidInput(file.path, where, `${what}: is a string tensor; use readStrings()`); },
      readStrings: () => list.map((f) => file.read(f.start, f.end - f.start, `${what}: string_data`)),
    };
  }

  const byteLength = byteLengthOf(dtype, numel);
  const notString = () => { throw invalidInput(file.path, where, `${what}: is a ${dtype} tensor, not strings`); };
  if (t.raw) {
    if (typedFields.length) throw invalidInput(file.path, where, `${what}: has both raw_data and ${TYPED_FIELD_NAMES[typedFields[0]!]}`);
    const raw = t.raw;
    const length = raw.end - raw.start;
    if (length !== byteLength) {
      throw invalidInput(file.path, where, `${what}: raw_data is ${length} bytes, expected ${byteLength} for ${dtype} [${shape.join(',')}]`);
    }
    return { dtype, shape, byteLength, stored: { file, offset: raw.start }, read: () => file.read(raw.start, length, `${what}: raw_data`), readStrings: notString };
  }

  if (typedFields.length === 0) {
    if (numel !== 0) throw invalidInput(file.path, where, `${what}: has no data for ${numel} elements of ${dtype} [${shape.join(',')}]`);
    return { dtype, shape, byteLength: 0, read: () => new Uint8Array(0), readStrings: notString };
  }
  const expectedField = typedFieldFor(dtype);
  if (typedFields.length > 1 || typedFields[0] !== expectedField) {
    const found = typedFields.map((f) => TYPED_FIELD_NAMES[f]).join(', ');
    throw invalidInput(file.path, where, `${what}: ${dtype} values in ${found}; expected ${TYPED_FIELD_NAMES[expectedField]}`);
  }
  const list = t.typed.get(expectedField)!;
  const expectedCount = expectedTypedCount(dtype, numel);
  const count = typedElementCount(file, expectedField, list, what);
  const countError = (n: number) =>
    invalidInput(file.path, where, `${what}: ${TYPED_FIELD_NAMES[expectedField]} has ${n} elements, expected ${expectedCount} for ${dtype} [${shape.join(',')}]`);
  if (count !== undefined && count !== expectedCount) throw countError(count);
  return {
    dtype, shape, byteLength, readStrings: notString,
    read: () => {
      const out = decodeTypedValues(file, expectedField, list, dtype, byteLength, what);
      if (out.count !== expectedCount) throw countError(out.count);
      return out.bytes;
    },
  };
}

/** Converts typed-field elements into the little-endian bytes of `dtype`. */
function decodeTypedValues(
  file: RandomAccessFile, no: TypedField, list: Field[], dtype: DType, byteLength: number, what: string,
): { bytes: Uint8Array; count: number } {
  if (no === FIELD.floatData || no === FIELD.doubleData) {
    // Fixed-width fields are already little-endian IEEE values: copy them.
    const size = no === FIELD.floatData ? 4 : 8;
    const total = list.reduce((n, f) => n + (f.end - f.start), 0);
    if (total !== byteLength) return { bytes: new Uint8Array(0), count: total / size };
    const out = new Uint8Array(byteLength);
    let pos = 0;
    for (const f of list) {
      out.set(file.read(f.start, f.end - f.start, `${what}: ${TYPED_FIELD_NAMES[no]}`), pos);
      pos += f.end - f.start;
    }
    return { bytes: out, count: total / size };
  }
  const values: bigint[] = [];
  for (const f of list) readRepeatedVarints(file, f, values, `${what}: ${TYPED_FIELD_NAMES[no]}`);
  // Sub-byte types keep one packed byte per int32 element.
  const width = dtypeBits(dtype) < 8 ? 1 : dtypeBits(dtype) / 8;
  if (values.length * width !== byteLength) return { bytes: new Uint8Array(0), count: values.length };
  const out = new Uint8Array(byteLength);
  const view = new DataView(out.buffer);
  values.forEach((v, i) => {
    const at = i * width;
    if (width === 8) view.setBigUint64(at, BigInt.asUintN(64, v), true);
    else if (width === 4) view.setUint32(at, Number(BigInt.asUintN(32, v)), true);
    else if (width === 2) view.setUint16(at, Number(BigInt.asUintN(16, v)), true);
    else out[at] = Number(BigInt.asUintN(8, v));
  });
  return { bytes: out, count: values.length };
}

function externalPayload(
  ctx: ResolveContext, t: TensorProtoInfo, dtype: DType, shape: number[], numel: number, what: string,
): TensorPayload {
  const { file } = ctx;
  const where = `offset ${t.at}`;
  const location = t.external.get('location');
  if (location === undefined) throw invalidInput(file.path, where, `${what}: external data without a 'location'`);
  const dataPath = resolveInsideFolder(file.path, ctx.folder, location, `${what}: external data`);
  const size = locationSize(dataPath);
  const parseNumber = (key: string): number | undefined => {
    const text = t.external.get(key);
    if (text === undefined) return undefined;
    if (!/^\d+$/.test(text) || !Number.isSafeInteger(Number(text))) {
      throw invalidInput(file.path, where, `${what}: external data ${key} '${text}' is not a non-negative integer`);
    }
    return Number(text);
  };
  const offset = parseNumber('offset') ?? 0;
  const byteLength = byteLengthOf(dtype, numel);
  const length = parseNumber('length') ?? size - offset;
  const shown = path.basename(dataPath);
  if (offset + length > size) {
    throw invalidInput(file.path, where, `${what}: external range ${offset}+${length} is past the end of ${shown} (${size} bytes)`);
  }
  if (length !== byteLength) {
    throw invalidInput(file.path, where, `${what}: external length ${length} bytes, expected ${byteLength} for ${dtype} [${shape.join(',')}]`);
  }
  const held = heldDataFile(ctx, dataPath);
  return {
    dtype, shape, byteLength,
    ...(held ? { stored: { file: held, offset } } : {}),
    readStrings: () => { throw invalidInput(file.path, where, `${what}: is a ${dtype} tensor, not strings`); },
    read: () => {
      if (held) return held.read(offset, length, `${what}: external data`);
      const data = RandomAccessFile.open(dataPath);
      try {
        return data.read(offset, length, `${what}: external data`);
      } finally {
        data.close();
      }
    },
  };
}

function heldDataFile(ctx: ResolveContext, dataPath: string): RandomAccessFile | undefined {
  const files = ctx.dataFiles;
  if (!files || !isLocalPath(dataPath)) return undefined;
  let data = files.get(dataPath);
  if (!data && files.size < HELD_DATA_FILES) {
    data = RandomAccessFile.open(dataPath);
    files.set(dataPath, data);
  }
  return data;
}

/** Counts elements of a packed or unpacked repeated field in an attribute (small, so read). */
export function countVarints(file: RandomAccessFile, list: Field[], what: string): number {
  const values: bigint[] = [];
  for (const f of list) readRepeatedVarints(file, f, values, what);
  return values.length;
}

