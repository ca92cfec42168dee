import { CkptError, ExitCode, invalidInput } from '../../core/errors.js';

/**
 * A valid HDF5 feature this reader does not implement (a filter such as szip, shared messages,
 * virtual datasets…): exit 3 naming the file, the object and the feature. Callers that have
 * another HDF5 reader (the Keras reader keeps h5wasm) may fall back to it instead.
 */
export class Hdf5Unsupported extends CkptError {
  constructor(file: string, where: string, readonly feature: string) {
    super(ExitCode.invalidInput, file, where, `uses ${feature}, which ckpt's HDF5 reader does not support`);
  }
}

/** Where the reader is: the file as the user named it and the object being read, for messages. */
export interface Place {
  readonly file: string;
  readonly where: string;
}

export const fail = (place: Place, detail: string) => invalidInput(place.file, place.where, detail);

/**
 * Little-endian fields of a block of HDF5 metadata, read in order; offsets and lengths have the
 * widths the superblock declares. Reading past the block is invalid input naming the place.
 */
export class Cursor {
  at = 0;

  constructor(
    readonly bytes: Uint8Array,
    readonly place: Place,
    readonly offsetSize: number,
    readonly lengthSize: number,
    /** File position of bytes[0], for messages. */
    readonly position = 0,
  ) {}

  get left(): number {
    return this.bytes.length - this.at;
  }

  need(n: number, what: string): void {
    if (n < 0 || this.at + n > this.bytes.length) {
      throw fail(this.place, `${what} at offset ${this.position + this.at} runs past the end of its ${this.bytes.length}-byte block`);
    }
  }

  skip(n: number, what = 'field'): void {
    this.need(n, what);
    this.at += n;
  }

  u8(what = 'field'): number {
    this.need(1, what);
    return this.bytes[this.at++]!;
  }

  u16(what = 'field'): number {
    return this.uint(2, what);
  }

  u32(what = 'field'): number {
    return this.uint(4, what);
  }

  /** An unsigned little-endian integer of `size` bytes (≤ 8), refused above 2^53. */
  uint(size: number, what = 'field'): number {
    this.need(size, what);
    const value = readUint(this.bytes, this.at, size);
    if (value === undefined) throw fail(this.place, `${what} at offset ${this.position + this.at} is larger than 2^53`);
    this.at += size;
    return value;
  }

  /** A file address, or undefined for HDF5's "undefined address" (all bits set). */
  address(what = 'address'): number | undefined {
    this.need(this.offsetSize, what);
    if (this.bytes.subarray(this.at, this.at + this.offsetSize).every((b) => b === 0xff)) {
      this.at += this.offsetSize;
      return undefined;
    }
    return this.uint(this.offsetSize, what);
  }

  length(what = 'length'): number {
    return this.uint(this.lengthSize, what);
  }

  take(n: number, what = 'field'): Uint8Array {
    this.need(n, what);
    const out = this.bytes.subarray(this.at, this.at + n);
    this.at += n;
    return out;
  }

  /** Bytes up to a NUL (or the end of `limit` bytes), the NUL consumed. */
  cString(limit: number, what = 'name'): string {
    const end = Math.min(this.bytes.length, this.at + limit);
    let stop = this.at;
    while (stop < end && this.bytes[stop] !== 0) stop++;
    if (stop === end) throw fail(this.place, `${what} at offset ${this.position + this.at} has no terminating NUL`);
    const text = utf8(this.bytes.subarray(this.at, stop));
    this.at = stop + 1;
    return text;
  }

  signature(expected: string, what: string): void {
    const got = this.take(4, what);
    if (String.fromCharCode(...got) !== expected) {
      throw fail(this.place, `${what} at offset ${this.position + this.at - 4}: expected signature '${expected}', found ${JSON.stringify(String.fromCharCode(...got))}`);
    }
  }
}

/** The NUL-terminated name at `offset` of a local heap's data. */
export function heapName(heap: Uint8Array, offset: number, place: Place, what: string): string {
  if (offset >= heap.length) throw fail(place, `${what} at heap offset ${offset} lies outside the ${heap.length}-byte local heap`);
  const names = new Cursor(heap, place, 8, 8);
  names.at = offset;
  return names.cString(heap.length - offset, what);
}

export function readUint(bytes: Uint8Array, at: number, size: number): number | undefined {
  let value = 0;
  for (let i = size - 1; i >= 0; i--) {
    value = value * 256 + bytes[at + i]!;
    if (value > Number.MAX_SAFE_INTEGER) return undefined;
  }
  return value;
}

/** Big-endian elements of `width` bytes (2, 4 or 8; others are left as they are) to little-endian, in place. */
export function swapBytes(bytes: Uint8Array, width: number): void {
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
  if (width === 2) buffer.swap16();
  else if (width === 4) buffer.swap32();
  else if (width === 8) buffer.swap64();
}

const decoder = new TextDecoder();
export const utf8 = (bytes: Uint8Array) => decoder.decode(bytes);
