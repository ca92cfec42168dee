/**
 * Protobuf wire-format decoding of small in-memory messages (index values and the object graph).
 * Only the fields a caller asks for are interpreted; unknown fields are skipped.
 */
export interface Field {
  readonly no: number;
  readonly wire: number;
  /** The value of a varint field (unsigned 64-bit as stored). */
  readonly varint: bigint;
  /** The payload of a length-delimited or fixed-width field. */
  readonly bytes: Uint8Array;
}

export type Fail = (what: string) => Error;

/** A varint at `pos`; returns the value and the position after it. */
function readVarint(bytes: Uint8Array, pos: number, end: number, fail: Fail, what: string): { value: bigint; next: number } {
  let value = 0n;
  for (let i = 0; i < 10; i++) {
    if (pos + i >= end) throw fail(`${what}: varint runs past the end (truncated?)`);
    const b = bytes[pos + i]!;
    value |= BigInt(b & 0x7f) << BigInt(7 * i);
    if (!(b & 0x80)) return { value: BigInt.asUintN(64, value), next: pos + i + 1 };
  }
  throw fail(`${what}: varint longer than 10 bytes`);
}

/** A varint that must be a safe non-negative integer (lengths, offsets, counts). */
export function readLength(bytes: Uint8Array, pos: number, end: number, fail: Fail, what: string): { value: number; next: number } {
  const { value, next } = readVarint(bytes, pos, end, fail, what);
  if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw fail(`${what}: ${value} is too large`);
  return { value: Number(value), next };
}

export function* fieldsOf(bytes: Uint8Array, fail: Fail, what: string): Generator<Field> {
  let pos = 0;
  while (pos < bytes.length) {
    const tag = readLength(bytes, pos, bytes.length, fail, `${what}: field tag`);
    pos = tag.next;
    const no = Math.floor(tag.value / 8);
    const wire = tag.value % 8;
    if (no === 0) throw fail(`${what}: field number 0 is not valid protobuf`);
    if (wire === 0) {
      const v = readVarint(bytes, pos, bytes.length, fail, `${what}: field ${no}`);
      yield { no, wire, varint: v.value, bytes: bytes.subarray(pos, v.next) };
      pos = v.next;
    } else if (wire === 1 || wire === 5 || wire === 2) {
      let size = wire === 1 ? 8 : 4;
      if (wire === 2) {
        const len = readLength(bytes, pos, bytes.length, fail, `${what}: field ${no} length`);
        size = len.value;
        pos = len.next;
      }
      if (pos + size > bytes.length) throw fail(`${what}: field ${no} needs ${size} bytes but ${bytes.length - pos} remain (truncated?)`);
      yield { no, wire, varint: 0n, bytes: bytes.subarray(pos, pos + size) };
      pos += size;
    } else {
      throw fail(`${what}: field ${no} has wire type ${wire}; expected 0, 1, 2 or 5`);
    }
  }
}

/** Requires the wire type a known field must have: anything else means the bytes are not this message. */
export function expectWire(f: Field, wire: number, fail: Fail, what: string): Field {
  if (f.wire !== wire) throw fail(`${what}: field ${f.no} has wire type ${f.wire}, expected ${wire}`);
  return f;
}

export function int64Of(f: Field): bigint {
  return BigInt.asIntN(64, f.varint);
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

export function stringOf(f: Field, fail: Fail, what: string): string {
  expectWire(f, 2, fail, what);
  try {
    return utf8.decode(f.bytes);
  } catch {
    throw fail(`${what}: field ${f.no} is not valid UTF-8`);
  }
}
