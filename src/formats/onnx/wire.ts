import type { RandomAccessFile } from '../../core/file.js';
import { invalidInput } from '../../core/errors.js';

/**
 * A protobuf wire-format walker over a file range. It never decodes a length-delimited payload
 * unless asked, so a tensor's raw_data is skipped by offset arithmetic, not read.
 */
export const WIRE_VARINT = 0;
export const WIRE_FIXED64 = 1;
export const WIRE_BYTES = 2;
export const WIRE_FIXED32 = 5;

export interface Field {
  readonly no: number;
  readonly wire: number;
  /** Offset of the tag, for error messages. */
  readonly at: number;
  /** Payload range: the varint / fixed bytes, or the length-delimited content. */
  readonly start: number;
  readonly end: number;
  /** The decoded value of a varint field (two's complement 64-bit as stored). */
  readonly varint: bigint;
}

export interface Range {
  readonly start: number;
  readonly end: number;
}

/** Reads a varint at `pos` that must end before `end`. */
export function readVarint(file: RandomAccessFile, pos: number, end: number, what: string): { value: bigint; next: number } {
  let result = 0n;
  let shift = 0n;
  for (let i = 0; i < 10; i++) {
    if (pos + i >= end) {
      throw invalidInput(file.path, `offset ${pos}`, `${what}: varint runs past the end of its message (truncated?)`);
    }
    const b = file.byteAt(pos + i);
    result |= BigInt(b & 0x7f) << shift;
    if ((b & 0x80) === 0) return { value: BigInt.asUintN(64, result), next: pos + i + 1 };
    shift += 7n;
  }
  throw invalidInput(file.path, `offset ${pos}`, `${what}: varint longer than 10 bytes`);
}

/** Small non-negative varint (tags, lengths) as a number, or an error when it is not a safe integer. */
function readLength(file: RandomAccessFile, pos: number, end: number, what: string): { value: number; next: number } {
  const { value, next } = readVarint(file, pos, end, what);
  if (value > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw invalidInput(file.path, `offset ${pos}`, `${what}: value ${value} is too large`);
  }
  return { value: Number(value), next };
}

/** Iterates the fields of the message stored in [start, end). `what` names it in errors. */
export function* fields(file: RandomAccessFile, range: Range, what: string): Generator<Field> {
  let pos = range.start;
  const end = range.end;
  while (pos < end) {
    const at = pos;
    const tag = readLength(file, pos, end, `${what}: field tag`);
    pos = tag.next;
    const no = Math.floor(tag.value / 8);
    const wire = tag.value & 7;
    if (no === 0) throw invalidInput(file.path, `offset ${at}`, `${what}: field number 0 is not valid protobuf`);
    switch (wire) {
      case WIRE_VARINT: {
        const v = readVarint(file, pos, end, `${what}: field ${no}`);
        yield { no, wire, at, start: pos, end: v.next, varint: v.value };
        pos = v.next;
        break;
      }
      case WIRE_FIXED64:
      case WIRE_FIXED32: {
        const size = wire === WIRE_FIXED64 ? 8 : 4;
        if (pos + size > end) {
          throw invalidInput(file.path, `offset ${at}`, `${what}: field ${no} needs ${size} bytes past the end of its message (truncated?)`);
        }
        yield { no, wire, at, start: pos, end: pos + size, varint: 0n };
        pos += size;
        break;
      }
      case WIRE_BYTES: {
        const len = readLength(file, pos, end, `${what}: field ${no} length`);
        const start = len.next;
        if (start + len.value > end) {
          throw invalidInput(
            file.path,
            `offset ${at}`,
            `${what}: field ${no} declares ${len.value} bytes but only ${end - start} remain in its message (truncated?)`,
          );
        }
        yield { no, wire, at, start, end: start + len.value, varint: 0n };
        pos = start + len.value;
        break;
      }
      default:
        throw invalidInput(file.path, `offset ${at}`, `${what}: field ${no} has wire type ${wire}; expected 0, 1, 2 or 5`);
    }
  }
}

/** Requires a wire type for a known field; a mismatch means the bytes are not this message. */
export function expectWire(file: RandomAccessFile, f: Field, wire: number, what: string): void {
  if (f.wire !== wire) {
    throw invalidInput(file.path, `offset ${f.at}`, `${what}: field ${f.no} has wire type ${f.wire}, expected ${wire}`);
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: false });

export function readString(file: RandomAccessFile, f: Field, what: string): string {
  expectWire(file, f, WIRE_BYTES, what);
  return utf8.decode(file.bytesAt(f.start, f.end - f.start, what));
}

export function int64Of(f: Field): bigint {
  return BigInt.asIntN(64, f.varint);
}

/**
 * Appends the elements of a repeated varint field, packed (wire 2) or not (wire 0): protobuf
 * allows either whatever the schema says, and real ONNX files use both.
 */
export function readRepeatedVarints(file: RandomAccessFile, f: Field, out: bigint[], what: string): void {
  if (f.wire === WIRE_VARINT) {
    out.push(f.varint);
    return;
  }
  expectWire(file, f, WIRE_BYTES, what);
  let pos = f.start;
  while (pos < f.end) {
    const v = readVarint(file, pos, f.end, what);
    out.push(v.value);
    pos = v.next;
  }
}
