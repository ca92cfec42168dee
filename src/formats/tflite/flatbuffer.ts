import type { RandomAccessFile } from '../../core/file.js';
import { invalidInput } from '../../core/errors.js';

/** Pages of the file kept while walking: tables, vectors and strings lie scattered through the flatbuffer. */
const PAGE = 64 * 1024;
const MAX_PAGES = 1024;

/**
 * A read-only FlatBuffers walker over a file, through a page cache: tables are found by their
 * vtables, vectors and strings by their offsets, and every position is checked against the file
 * before it is read, so a damaged file fails with its offset rather than reading elsewhere. Only
 * the pages holding structure are read, never the weights' bytes.
 */
export class FlatBuffer {
  private readonly pages = new Map<number, Uint8Array>();

  constructor(readonly file: RandomAccessFile) {}

  private fail(at: number, what: string): never {
    throw invalidInput(this.file.path, `offset ${at}`, what);
  }

  /** `n` bytes at `at`, from the cached page that holds them (or read directly when they span pages). */
  bytes(at: number, n: number, what: string): Uint8Array {
    if (!Number.isSafeInteger(at) || at < 0 || at + n > this.file.size) this.fail(at, `${what} lies outside the file (${this.file.size} bytes; truncated or damaged?)`);
    const page = Math.floor(at / PAGE);
    if (Math.floor((at + n - 1) / PAGE) !== page || n === 0) return this.file.read(at, n, what);
    let bytes = this.pages.get(page);
    if (!bytes) {
      if (this.pages.size >= MAX_PAGES) this.pages.clear();
      bytes = this.file.read(page * PAGE, Math.min(PAGE, this.file.size - page * PAGE), what);
      this.pages.set(page, bytes);
    }
    return bytes.subarray(at - page * PAGE, at - page * PAGE + n);
  }

  private view(at: number, n: number, what: string): DataView {
    const b = this.bytes(at, n, what);
    return new DataView(b.buffer, b.byteOffset, n);
  }

  u8(at: number): number { return this.view(at, 1, 'a byte').getUint8(0); }
  i8(at: number): number { return this.view(at, 1, 'a byte').getInt8(0); }
  u16(at: number): number { return this.view(at, 2, 'a 16-bit value').getUint16(0, true); }
  u32(at: number): number { return this.view(at, 4, 'a 32-bit value').getUint32(0, true); }
  i32(at: number): number { return this.view(at, 4, 'a 32-bit value').getInt32(0, true); }
  f32(at: number): number { return this.view(at, 4, 'a float').getFloat32(0, true); }
  i64(at: number): number { return Number(this.view(at, 8, 'a 64-bit value').getBigInt64(0, true)); }
  u64(at: number): number {
    const v = this.view(at, 8, 'a 64-bit value').getBigUint64(0, true);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) this.fail(at, `64-bit value ${v} is too large`);
    return Number(v);
  }

  /** The root table, whose offset is the file's first word. */
  root(): Table {
    return this.table(this.u32(0), 'the root table');
  }

  table(at: number, what: string): Table {
    const vtable = at - this.i32(at);
    const vtableSize = this.u16(vtable);
    if (vtableSize < 4 || vtableSize % 2 !== 0) this.fail(vtable, `${what}: a vtable of ${vtableSize} bytes is not FlatBuffers`);
    return new Table(this, at, vtable, vtableSize, what);
  }

  /** Where an offset field points: the word's own position plus its value. */
  follow(at: number): number {
    return at + this.u32(at);
  }
}

export class Table {
  constructor(
    private readonly fb: FlatBuffer,
    readonly at: number,
    private readonly vtable: number,
    private readonly vtableSize: number,
    readonly what: string,
  ) {}

  /** The position of field `index`'s value, or undefined when it is absent (default). */
  field(index: number): number | undefined {
    const slot = 4 + 2 * index;
    if (slot >= this.vtableSize) return undefined;
    const offset = this.fb.u16(this.vtable + slot);
    return offset === 0 ? undefined : this.at + offset;
  }

  u8(index: number, fallback = 0): number { const p = this.field(index); return p === undefined ? fallback : this.fb.u8(p); }
  i8(index: number, fallback = 0): number { const p = this.field(index); return p === undefined ? fallback : this.fb.i8(p); }
  u32(index: number, fallback = 0): number { const p = this.field(index); return p === undefined ? fallback : this.fb.u32(p); }
  i32(index: number, fallback = 0): number { const p = this.field(index); return p === undefined ? fallback : this.fb.i32(p); }
  u64(index: number, fallback = 0): number { const p = this.field(index); return p === undefined ? fallback : this.fb.u64(p); }

  child(index: number, what: string): Table | undefined {
    const p = this.field(index);
    return p === undefined ? undefined : this.fb.table(this.fb.follow(p), what);
  }

  /** A vector field: its element count and where its first element lies. */
  vector(index: number, elementSize: number, what: string): { length: number; start: number } | undefined {
    const p = this.field(index);
    if (p === undefined) return undefined;
    const at = this.fb.follow(p);
    const length = this.fb.u32(at);
    if (at + 4 + length * elementSize > this.fb.file.size) throw invalidInput(this.fb.file.path, `offset ${at}`, `${this.what}: ${what} of ${length} elements runs past the end of the file`);
    return { length, start: at + 4 };
  }

  tables(index: number, what: string): Table[] {
    const v = this.vector(index, 4, what);
    if (!v) return [];
    return Array.from({ length: v.length }, (_, i) => this.fb.table(this.fb.follow(v.start + 4 * i), `${what} ${i}`));
  }

  /** A vector of little-endian numbers, read at once into a typed array. */
  private numbers<T extends Int32Array | Float32Array | BigInt64Array>(index: number, make: (buffer: ArrayBuffer) => T, width: number, what: string): T | undefined {
    const v = this.vector(index, width, what);
    return v ? make(Uint8Array.from(this.fb.bytes(v.start, v.length * width, what)).buffer) : undefined;
  }

  ints(index: number, what: string): number[] {
    return Array.from(this.numbers(index, (b) => new Int32Array(b), 4, what) ?? []);
  }

  floats(index: number, what: string): number[] {
    return Array.from(this.numbers(index, (b) => new Float32Array(b), 4, what) ?? []);
  }

  longs(index: number, what: string): number[] {
    return Array.from(this.numbers(index, (b) => new BigInt64Array(b), 8, what) ?? [], Number);
  }

  string(index: number, what: string): string | undefined {
    const v = this.vector(index, 1, what);
    return v ? new TextDecoder().decode(this.fb.bytes(v.start, v.length, what)) : undefined;
  }
}
