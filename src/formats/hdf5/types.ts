import { Cursor, fail, Hdf5Unsupported, utf8 } from './bytes.js';

/** An HDF5 datatype, as far as a weights reader needs to know it. */
export type Datatype =
  | { kind: 'integer'; size: number; bigEndian: boolean; signed: boolean; precision: number; bitOffset: number }
  | { kind: 'float'; size: number; bigEndian: boolean; exponentSize: number; mantissaSize: number; precision: number; bitOffset: number }
  /** Fixed-length string; padding 0 = NUL-terminated, 1 = NUL-padded, 2 = space-padded. */
  | { kind: 'string'; size: number; padding: number }
  | { kind: 'vlen-string'; size: number; padding: number }
  | { kind: 'vlen-sequence'; size: number; base: Datatype }
  | { kind: 'enum'; size: number; base: Datatype; names: string[] }
  | { kind: 'compound'; size: number; members: string[] }
  | { kind: 'other'; size: number; name: string };

const CLASS_NAMES = ['integer', 'float', 'time', 'string', 'bitfield', 'opaque', 'compound', 'reference', 'enum', 'variable-length', 'array'];

/** A datatype message (or the datatype inside an attribute, an enum, a variable-length type). */
export function parseDatatype(c: Cursor, depth = 0): Datatype {
  if (depth > 16) throw fail(c.place, 'datatype nested deeper than 16 levels');
  const classAndVersion = c.u8('datatype class');
  const kind = classAndVersion & 0x0f;
  const version = classAndVersion >> 4;
  if (version < 1 || version > 5) throw fail(c.place, `datatype version ${version} is not one HDF5 writes (1–5)`);
  const bits = c.u8() | (c.u8() << 8) | (c.u8() << 16);
  const size = c.u32('datatype size');
  switch (kind) {
    case 0: {
      const bitOffset = c.u16();
      const precision = c.u16();
      return { kind: 'integer', size, bigEndian: (bits & 1) === 1, signed: (bits & 8) !== 0, precision, bitOffset };
    }
    case 1: {
      const bitOffset = c.u16();
      const precision = c.u16();
      c.skip(1);
      const exponentSize = c.u8();
      c.skip(1);
      const mantissaSize = c.u8();
      c.skip(4);
      if (bits & 0x40) return { kind: 'other', size, name: 'VAX-order float' };
      return { kind: 'float', size, bigEndian: (bits & 1) === 1, exponentSize, mantissaSize, precision, bitOffset };
    }
    case 3:
      return { kind: 'string', size, padding: bits & 0x0f };
    case 6:
      return { kind: 'compound', size, members: compoundMembers(c, version, bits & 0xffff, size, depth) };
    case 8: {
      const base = parseDatatype(c, depth + 1);
      const names: string[] = [];
      for (let i = 0; i < (bits & 0xffff); i++) {
        names.push(paddedName(c, version, 'enum member name'));
      }
      c.skip((bits & 0xffff) * base.size, 'enum values');
      return { kind: 'enum', size, base, names };
    }
    case 9: {
      const base = parseDatatype(c, depth + 1);
      if ((bits & 0x0f) === 1) return { kind: 'vlen-string', size, padding: (bits >> 4) & 0x0f };
      return { kind: 'vlen-sequence', size, base };
    }
    case 2: case 4: case 5: case 7: case 10:
      return { kind: 'other', size, name: CLASS_NAMES[kind]! };
    default:
      throw fail(c.place, `datatype class ${kind} is not one HDF5 defines (0–10)`);
  }
}

/** A member name: NUL-terminated, padded to a multiple of 8 bytes (from its own start) before version 3. */
function paddedName(c: Cursor, version: number, what: string): string {
  const start = c.at;
  const name = c.cString(c.left, what);
  if (version < 3) c.skip((8 - ((c.at - start) % 8)) % 8, what);
  return name;
}

/** A compound's member names (for messages: the reader never reads compound values). */
function compoundMembers(c: Cursor, version: number, count: number, size: number, depth: number): string[] {
  const names: string[] = [];
  const offsetBytes = size < 256 ? 1 : size < 65536 ? 2 : size < 16777216 ? 3 : 4;
  for (let i = 0; i < count; i++) {
    names.push(paddedName(c, version, 'compound member name'));
    if (version === 1) {
      c.skip(4 + 1 + 3 + 4 + 4 + 16);
    } else {
      c.skip(version === 2 ? 4 : offsetBytes);
    }
    parseDatatype(c, depth + 1);
  }
  return names;
}

/** How a datatype reads in messages: `float32 (big-endian)`, `compound {a, b}`. */
export function describeDatatype(t: Datatype): string {
  switch (t.kind) {
    case 'integer': return `${t.signed ? '' : 'u'}int${t.size * 8}${t.bigEndian ? ' (big-endian)' : ''}`;
    case 'float': return `float${t.size * 8}${t.bigEndian ? ' (big-endian)' : ''}`;
    case 'string': return `fixed-length string of ${t.size} bytes`;
    case 'vlen-string': return 'variable-length string';
    case 'vlen-sequence': return `variable-length sequence of ${describeDatatype(t.base)}`;
    case 'enum': return `enum {${t.names.join(', ')}} of ${describeDatatype(t.base)}`;
    case 'compound': return `compound {${t.members.join(', ')}}`;
    case 'other': return t.name;
  }
}

export interface Dataspace {
  /** Empty for a scalar. */
  dims: number[];
  /** Maximum dimensions when the file gives them; undefined for an unlimited one. */
  maxDims?: (number | undefined)[];
  /** A null dataspace holds no value at all. */
  isNull: boolean;
}

export function parseDataspace(c: Cursor): Dataspace {
  const version = c.u8('dataspace version');
  if (version !== 1 && version !== 2) throw fail(c.place, `dataspace version ${version} is not 1 or 2`);
  const rank = c.u8('dataspace rank');
  if (rank > 32) throw fail(c.place, `dataspace of rank ${rank}; HDF5 allows at most 32`);
  const flags = c.u8();
  let isNull = false;
  if (version === 1) c.skip(5);
  else {
    const type = c.u8();
    if (type > 2) throw fail(c.place, `dataspace type ${type} is not scalar, simple or null`);
    isNull = type === 2;
  }
  const dims = Array.from({ length: rank }, () => c.length('dimension'));
  if (!(flags & 1)) return { dims, isNull };
  const maxDims = dims.map(() => (c.bytes.subarray(c.at, c.at + c.lengthSize).every((b) => b === 0xff) ? (c.skip(c.lengthSize), undefined) : c.length('maximum dimension')));
  return { dims, isNull, maxDims };
}

export function elementCount(space: Dataspace): number {
  if (space.isNull) return 0;
  let n = 1;
  for (const d of space.dims) n *= d;
  return n;
}

export interface Filter {
  id: number;
  name: string;
  optional: boolean;
  values: number[];
}

const FILTER_NAMES: Record<number, string> = { 1: 'deflate', 2: 'shuffle', 3: 'fletcher32', 4: 'szip', 5: 'nbit', 6: 'scaleoffset' };
/** The filters this reader decodes. */
const DECODED = new Set([1, 2, 3]);

export function parseFilterPipeline(c: Cursor): Filter[] {
  const version = c.u8('filter pipeline version');
  if (version !== 1 && version !== 2) throw fail(c.place, `filter pipeline version ${version} is not 1 or 2`);
  const count = c.u8();
  if (version === 1) c.skip(6);
  const filters: Filter[] = [];
  for (let i = 0; i < count; i++) {
    const id = c.u16('filter id');
    const nameLength = version === 1 || id >= 256 ? c.u16() : 0;
    const flags = c.u16();
    const valueCount = c.u16();
    let name = FILTER_NAMES[id] ?? `filter ${id}`;
    if (nameLength > 0) {
      const raw = c.take(version === 1 ? Math.ceil(nameLength / 8) * 8 : nameLength, 'filter name');
      const end = raw.indexOf(0);
      name = `${utf8(raw.subarray(0, end < 0 ? raw.length : end))} (filter ${id})`;
    }
    const values = Array.from({ length: valueCount }, () => c.u32('filter parameter'));
    if (version === 1 && valueCount % 2 === 1) c.skip(4);
    filters.push({ id, name, optional: (flags & 1) === 1, values });
  }
  return filters;
}

/** Refuses a pipeline with a filter the reader cannot undo (szip, n-bit, plugins…). */
export function checkFilters(filters: Filter[], file: string, where: string): void {
  for (const f of filters) if (!DECODED.has(f.id)) throw new Hdf5Unsupported(file, where, `the ${f.name} compression filter`);
}
