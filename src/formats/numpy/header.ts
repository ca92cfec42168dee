import type { DType } from '../../core/dtype.js';
import { usageError } from '../../core/errors.js';
import { hasNpyMagic, NPY_MAGIC } from './match.js';

/**
 * The `.npy` header: magic, version, a little-endian length, then a Python dict literal such as
 * `{'descr': '<f4', 'fortran_order': False, 'shape': (784, 128), }`. Parsed by a tiny literal
 * parser (strings, booleans, integer tuples), never evaluated.
 */
/** numpy itself refuses longer headers unless told to trust the file. */
export const MAX_HEADER = 10_000;

export interface NpyHeader {
  dtype: DType;
  /** `>`: values are stored big-endian and are swapped when read. */
  bigEndian: boolean;
  fortranOrder: boolean;
  shape: number[];
  /** Offset of the data from the start of the .npy. */
  dataOffset: number;
}

const DESCR: Record<string, DType> = {
  f8: 'float64', f4: 'float32', f2: 'float16', i8: 'int64', i4: 'int32', i2: 'int16', i1: 'int8',
  u8: 'uint64', u4: 'uint32', u2: 'uint16', u1: 'uint8', b1: 'bool', c8: 'complex64', c16: 'complex128',
};

const DTYPE_DESCR: Partial<Record<DType, string>> = Object.fromEntries(Object.entries(DESCR).map(([k, v]) => [v, k]));

/** The dtype of a numpy type code without its byte-order character (`f4`, `u1`, `c16`), if plain numbers. */
export function dtypeOfCode(code: string): DType | undefined {
  return Object.hasOwn(DESCR, code) ? DESCR[code] : undefined;
}

export function descrOf(dtype: DType): string | undefined {
  const code = DTYPE_DESCR[dtype];
  if (!code) return undefined;
  return `${code.endsWith('1') ? '|' : '<'}${code}`;
}

/** How many bytes hold magic, version and length: 10 for v1, 12 for v2/v3. */
export function preambleLength(bytes: Uint8Array): number {
  return bytes[6] === 1 ? 10 : 12;
}

/** Parses the header; `fail(where, what)` makes the caller's error. Returns the data offset too. */
export function parseNpyHeader(bytes: Uint8Array, fail: (where: string, what: string) => Error): NpyHeader {
  if (bytes.length < 10 || !hasNpyMagic(bytes)) throw fail('offset 0', 'not a .npy: expected the \\x93NUMPY magic');
  const major = bytes[6]!;
  if (major < 1 || major > 3) throw fail('offset 6', `.npy version ${major}.${bytes[7]} is not 1, 2 or 3`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const pre = preambleLength(bytes);
  if (bytes.length < pre) throw fail('offset 8', 'header length is cut off');
  const length = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  if (length > MAX_HEADER) throw fail('offset 8', `header of ${length} bytes is longer than the ${MAX_HEADER} numpy accepts`);
  if (pre + length > bytes.length) throw fail(`offset ${pre}`, `header of ${length} bytes runs past the end of the data`);
  const text = new TextDecoder(major === 3 ? 'utf-8' : 'latin1').decode(bytes.subarray(pre, pre + length));
  const dict = parseDictLiteral(text, (what) => fail(`offset ${pre}`, `header ${what}: ${JSON.stringify(text.trim().slice(0, 120))}`));
  const descr = dict.descr;
  if (typeof descr !== 'string') throw fail(`offset ${pre}`, "header has no 'descr' string (structured dtypes are not supported)");
  const m = /^([<>|=])([a-zA-Z]\d+)$/.exec(descr);
  const dtype = m ? dtypeOfCode(m[2]!) : undefined;
  if (!m || !dtype) {
    throw fail(`offset ${pre}`, descr.includes('O') ? `dtype '${descr}' holds Python objects (pickled); refusing to read it` : `unsupported dtype '${descr}'`);
  }
  if (typeof dict.fortran_order !== 'boolean') throw fail(`offset ${pre}`, "header has no boolean 'fortran_order'");
  const shape = dict.shape;
  if (!Array.isArray(shape) || !shape.every((d) => typeof d === 'number' && Number.isSafeInteger(d) && d >= 0)) {
    throw fail(`offset ${pre}`, "header 'shape' must be a tuple of non-negative integers");
  }
  return { dtype, bigEndian: m[1] === '>' && !m[2]!.endsWith('1'), fortranOrder: dict.fortran_order, shape: shape as number[], dataOffset: pre + length };
}

type Literal = string | number | boolean | null | Literal[] | { [key: string]: Literal };

/** A Python literal subset: dicts with string keys, strings, ints, True/False/None, tuples. */
export function parseDictLiteral(text: string, fail: (what: string) => Error): Record<string, Literal> {
  let pos = 0;
  const skip = () => {
    while (pos < text.length && /\s/.test(text[pos]!)) pos++;
  };
  const expect = (c: string) => {
    skip();
    if (text[pos] !== c) throw fail(`expected '${c}' at character ${pos}`);
    pos++;
  };
  const value = (depth: number): Literal => {
    if (depth > 8) throw fail('is nested too deeply');
    skip();
    const c = text[pos];
    if (c === "'" || c === '"') {
      const end = text.indexOf(c, pos + 1);
      if (end < 0) throw fail('has an unterminated string');
      const s = text.slice(pos + 1, end);
      pos = end + 1;
      return s;
    }
    if (c === '(' || c === '[') {
      const close = c === '(' ? ')' : ']';
      pos++;
      const items: Literal[] = [];
      for (;;) {
        skip();
        if (text[pos] === close) {
          pos++;
          return items;
        }
        items.push(value(depth + 1));
        skip();
        if (text[pos] === ',') pos++;
        else if (text[pos] !== close) throw fail(`expected ',' or '${close}' at character ${pos}`);
      }
    }
    if (c === '{') {
      pos++;
      const out: Record<string, Literal> = {};
      for (;;) {
        skip();
        if (text[pos] === '}') {
          pos++;
          return out;
        }
        const key = value(depth + 1);
        if (typeof key !== 'string') throw fail('has a key that is not a string');
        expect(':');
        out[key] = value(depth + 1);
        skip();
        if (text[pos] === ',') pos++;
        else if (text[pos] !== '}') throw fail(`expected ',' or '}' at character ${pos}`);
      }
    }
    const word = /^(True|False|None|-?\d+)(L?)/.exec(text.slice(pos));
    if (!word) throw fail(`has an unexpected character at ${pos}`);
    pos += word[0].length;
    if (word[1] === 'True') return true;
    if (word[1] === 'False') return false;
    if (word[1] === 'None') return null;
    return Number(word[1]);
  };
  const result = value(0);
  skip();
  if (pos !== text.length) throw fail('has trailing characters');
  if (typeof result !== 'object' || result === null || Array.isArray(result)) throw fail('is not a dict');
  return result;
}

/** The header bytes for writing: v1.0 when it fits, padded so data starts on a 64-byte boundary. */
export function encodeNpyHeader(dtype: DType, shape: readonly number[]): Uint8Array {
  const descr = descrOf(dtype);
  if (!descr) throw usageError(`.npy cannot store ${dtype}; choose another format with --to`);
  const tuple = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  let dict = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${tuple}, }`;
  const v1 = 10 + dict.length + 1 <= 65535 + 10;
  const pre = v1 ? 10 : 12;
  const total = Math.ceil((pre + dict.length + 1) / 64) * 64;
  dict = dict.padEnd(total - pre - 1, ' ') + '\n';
  const out = new Uint8Array(total);
  out.set(NPY_MAGIC, 0);
  out[6] = v1 ? 1 : 2;
  out[7] = 0;
  const view = new DataView(out.buffer);
  if (v1) view.setUint16(8, dict.length, true);
  else view.setUint32(8, dict.length, true);
  out.set(new TextEncoder().encode(dict), pre);
  return out;
}
