import * as fs from 'node:fs';
import type { RandomAccessFile } from './file.js';
import { invalidInput } from './errors.js';
import { zlib } from './on-demand.js';

/**
 * A ZIP reader that reads the central directory only, so listing a multi-GB archive touches a few
 * kilobytes. Stored members can be read in ranges (lazy tensor reads); deflated members are
 * inflated whole, capped at their declared size (zip bombs stop there).
 */
export interface ZipEntry {
  readonly name: string;
  /** 0 = stored, 8 = deflated. */
  readonly method: number;
  readonly compressedSize: number;
  readonly size: number;
  readonly crc32: number;
  /** Offset of the member's local header. */
  readonly localHeaderOffset: number;
}

const EOCD = 0x06054b50;
const ZIP64_LOCATOR = 0x07064b50;
const ZIP64_EOCD = 0x06064b50;
const CENTRAL = 0x02014b50;
const LOCAL = 0x04034b50;
const MAX_ENTRIES = 1_000_000;

export function isZip(head: Uint8Array): boolean {
  return head.length >= 4 && head[0] === 0x50 && head[1] === 0x4b && head[2] === 0x03 && head[3] === 0x04;
}

function view(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function safeNumber(file: RandomAccessFile, value: bigint, what: string): number {
  if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw invalidInput(file.path, undefined, `zip: ${what} ${value} is too large`);
  return Number(value);
}

export function readZipDirectory(file: RandomAccessFile): ZipEntry[] {
  const fail = (where: string, detail: string) => invalidInput(file.path, where, `zip: ${detail}`);
  const tailLength = Math.min(file.size, 22 + 65535);
  const tail = file.read(file.size - tailLength, tailLength, 'zip end of central directory');
  let eocd = -1;
  for (let i = tail.length - 22; i >= 0; i--) {
    if (view(tail).getUint32(i, true) === EOCD) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw fail(`end of file`, 'no end-of-central-directory record (truncated or not a zip)');
  const e = view(tail);
  let count: number = e.getUint16(eocd + 10, true);
  let dirSize: number = e.getUint32(eocd + 12, true);
  let dirOffset: number = e.getUint32(eocd + 16, true);
  const eocdOffset = file.size - tailLength + eocd;
  if (count === 0xffff || dirSize === 0xffffffff || dirOffset === 0xffffffff) {
    const locatorAt = eocdOffset - 20;
    const locator = view(file.read(locatorAt, 20, 'zip64 locator'));
    if (locator.getUint32(0, true) !== ZIP64_LOCATOR) throw fail(`offset ${locatorAt}`, 'zip64 locator missing');
    const recordAt = safeNumber(file, locator.getBigUint64(8, true), 'zip64 record offset');
    const record = view(file.read(recordAt, 56, 'zip64 end of central directory'));
    if (record.getUint32(0, true) !== ZIP64_EOCD) throw fail(`offset ${recordAt}`, 'zip64 end-of-central-directory signature missing');
    count = safeNumber(file, record.getBigUint64(32, true), 'entry count');
    dirSize = safeNumber(file, record.getBigUint64(40, true), 'directory size');
    dirOffset = safeNumber(file, record.getBigUint64(48, true), 'directory offset');
  }
  if (count > MAX_ENTRIES) throw fail(`offset ${eocdOffset}`, `${count} entries is more than the ${MAX_ENTRIES} allowed`);
  if (dirOffset + dirSize > file.size) throw fail(`offset ${eocdOffset}`, `central directory ${dirOffset}+${dirSize} is past the end of the file`);
  const dir = file.read(dirOffset, dirSize, 'zip central directory');
  const d = view(dir);
  const entries: ZipEntry[] = [];
  const decoder = new TextDecoder();
  let pos = 0;
  for (let i = 0; i < count; i++) {
    const where = `offset ${dirOffset + pos}`;
    if (pos + 46 > dir.length || d.getUint32(pos, true) !== CENTRAL) throw fail(where, `central directory entry ${i} is missing or corrupt`);
    const flags = d.getUint16(pos + 8, true);
    const method = d.getUint16(pos + 10, true);
    const crc32 = d.getUint32(pos + 16, true);
    let compressedSize: number = d.getUint32(pos + 20, true);
    let size: number = d.getUint32(pos + 24, true);
    const nameLength = d.getUint16(pos + 28, true);
    const extraLength = d.getUint16(pos + 30, true);
    const commentLength = d.getUint16(pos + 32, true);
    let localHeaderOffset: number = d.getUint32(pos + 42, true);
    const end = pos + 46 + nameLength + extraLength + commentLength;
    if (end > dir.length) throw fail(where, `central directory entry ${i} runs past the directory`);
    const name = decoder.decode(dir.subarray(pos + 46, pos + 46 + nameLength));
    // ZIP64: the extra field carries the 64-bit values whose 32-bit slots are saturated.
    let x = pos + 46 + nameLength;
    const extraEnd = x + extraLength;
    while (x + 4 <= extraEnd) {
      const id = d.getUint16(x, true);
      const len = d.getUint16(x + 2, true);
      if (id === 0x0001) {
        let y = x + 4;
        const next = (what: string) => {
          if (y + 8 > x + 4 + len) throw fail(where, `zip64 extra field of '${name}' is too short`);
          const v = safeNumber(file, d.getBigUint64(y, true), what);
          y += 8;
          return v;
        };
        if (size === 0xffffffff) size = next('size');
        if (compressedSize === 0xffffffff) compressedSize = next('compressed size');
        if (localHeaderOffset === 0xffffffff) localHeaderOffset = next('header offset');
      }
      x += 4 + len;
    }
    if (flags & 1) throw fail(where, `member '${name}' is encrypted`);
    if (method !== 0 && method !== 8) throw fail(where, `member '${name}' uses compression method ${method}; expected stored (0) or deflate (8)`);
    if (method === 0 && compressedSize !== size) throw fail(where, `stored member '${name}' has compressed size ${compressedSize} ≠ size ${size}`);
    if (localHeaderOffset + 30 + compressedSize > file.size) throw fail(where, `member '${name}' extends past the end of the file`);
    entries.push({ name, method, compressedSize, size, crc32, localHeaderOffset });
    pos = end;
  }
  return entries;
}

/** Rejects member names that would escape a folder if extracted (`..`, absolute paths). */
export function isSafeMemberName(name: string): boolean {
  if (name === '' || name.startsWith('/') || name.startsWith('\\') || /^[a-zA-Z]:/.test(name)) return false;
  return !name.split(/[\\/]/).includes('..');
}

/** Offset of the member's data, from its local header (whose extra field may differ from the directory's). */
export function zipDataOffset(file: RandomAccessFile, entry: ZipEntry): number {
  const header = view(file.read(entry.localHeaderOffset, 30, `zip local header of '${entry.name}'`));
  if (header.getUint32(0, true) !== LOCAL) {
    throw invalidInput(file.path, `offset ${entry.localHeaderOffset}`, `zip: local header of '${entry.name}' is missing`);
  }
  const start = entry.localHeaderOffset + 30 + header.getUint16(26, true) + header.getUint16(28, true);
  if (start + entry.compressedSize > file.size) {
    throw invalidInput(file.path, `offset ${entry.localHeaderOffset}`, `zip: member '${entry.name}' extends past the end of the file`);
  }
  return start;
}

/**
 * CRC-32 of `parts` in order, as ZIP stores it. Empty parts are skipped: a zero-length buffer can
 * have no memory behind it, and zlib's crc32 of a null pointer is 0, not the running value.
 */
export function crc32Of(parts: readonly Uint8Array[], initial = 0): number {
  let crc = initial;
  for (const p of parts) if (p.length) crc = zlib().crc32(p, crc);
  return crc;
}

/** Throws exit 3 naming the member when `crc` (of its uncompressed bytes) is not the one the directory records. */
export function checkZipCrc(file: RandomAccessFile, entry: ZipEntry, crc: number): void {
  if (crc !== entry.crc32) {
    throw invalidInput(file.path, `member '${entry.name}'`, `zip: CRC-32 is ${hex(crc)}, the directory records ${hex(entry.crc32)}: the data is damaged`);
  }
}

const hex = (n: number) => `0x${n.toString(16).padStart(8, '0')}`;

/** Checks a stored member's CRC-32 by reading it in bounded chunks; for callers that read only part of it. */
export function verifyStoredMember(file: RandomAccessFile, entry: ZipEntry, dataStart: number): void {
  const CHUNK = 16 << 20;
  let crc = 0;
  for (let at = 0; at < entry.size; at += CHUNK) crc = crc32Of([file.read(dataStart + at, Math.min(CHUNK, entry.size - at), `zip member '${entry.name}'`)], crc);
  checkZipCrc(file, entry, crc);
}

/** A whole member's bytes, CRC-checked; deflated data is inflated to at most its declared size. */
export function readZipEntry(file: RandomAccessFile, entry: ZipEntry, maxSize: number): Uint8Array {
  if (entry.size > maxSize) {
    throw invalidInput(file.path, `offset ${entry.localHeaderOffset}`, `zip: member '${entry.name}' declares ${entry.size} bytes, more than the ${maxSize} allowed`);
  }
  const start = zipDataOffset(file, entry);
  const data = file.read(start, entry.compressedSize, `zip member '${entry.name}'`);
  if (entry.method === 0) {
    checkZipCrc(file, entry, crc32Of([data]));
    return data;
  }
  let out: Buffer;
  try {
    out = zlib().inflateRawSync(data, { maxOutputLength: Math.max(1, entry.size) });
  } catch (err) {
    throw invalidInput(file.path, `offset ${start}`, `zip: member '${entry.name}' does not inflate to its declared ${entry.size} bytes (${(err as Error).message})`);
  }
  if (out.length !== entry.size) {
    throw invalidInput(file.path, `offset ${start}`, `zip: member '${entry.name}' inflates to ${out.length} bytes, declared ${entry.size}`);
  }
  checkZipCrc(file, entry, crc32Of([out]));
  return out;
}

/**
 * Writes a ZIP of STORED members to an open file descriptor, one member at a time (the caller
 * holds one member's bytes), with ZIP64 records when offsets or sizes pass 4 GiB.
 * `align` pads the local header's extra field so member data starts on that boundary.
 */
export class ZipWriter {
  private offset = 0;
  private readonly central: Uint8Array[] = [];
  private count = 0;

  constructor(private readonly write: (bytes: Uint8Array) => void, private readonly align = 1) {}

  add(name: string, parts: readonly Uint8Array[]): void {
    const size = parts.reduce((n, p) => n + p.length, 0);
    this.addMember(name, size, crc32Of(parts), () => {
      for (const p of parts) this.emit(p);
    });
  }

  /** A member copied from a file in 16 MiB pieces (read twice: its CRC goes before its data). */
  addFile(name: string, file: string): void {
    const fd = fs.openSync(file, 'r');
    try {
      const size = fs.fstatSync(fd).size;
      const buffer = Buffer.allocUnsafe(Math.min(size, 16 << 20) || 1);
      const pieces = (each: (bytes: Uint8Array) => void) => {
        for (let at = 0; at < size;) {
          const n = fs.readSync(fd, buffer, 0, Math.min(buffer.length, size - at), at);
          if (n <= 0) throw new Error(`${file} ended at byte ${at} of ${size}`);
          each(buffer.subarray(0, n));
          at += n;
        }
      };
      let crc = 0;
      pieces((bytes) => (crc = crc32Of([bytes], crc)));
      this.addMember(name, size, crc, () => pieces((bytes) => this.emit(bytes)));
    } finally {
      fs.closeSync(fd);
    }
  }

  private addMember(name: string, size: number, crc: number, emitData: () => void): void {
    const nameBytes = new TextEncoder().encode(name);
    const big = size >= 0xffffffff || this.offset >= 0xffffffff;
    const zip64Local = big ? 20 : 0;
    const headerEnd = this.offset + 30 + nameBytes.length + zip64Local;
    const padding = (this.align - (headerEnd % this.align)) % this.align;
    // An extra field is at least 4 bytes: a shorter gap grows by one alignment step.
    const padBlock = padding === 0 ? 0 : padding < 4 ? padding + this.align : padding;
    const extraLength = zip64Local + padBlock;
    const local = new Uint8Array(30 + nameBytes.length + extraLength);
    const v = new DataView(local.buffer);
    v.setUint32(0, LOCAL, true);
    v.setUint16(4, big ? 45 : 20, true);
    v.setUint16(8, 0, true); // stored
    v.setUint32(14, crc, true);
    v.setUint32(18, big ? 0xffffffff : size, true);
    v.setUint32(22, big ? 0xffffffff : size, true);
    v.setUint16(26, nameBytes.length, true);
    v.setUint16(28, extraLength, true);
    local.set(nameBytes, 30);
    let x = 30 + nameBytes.length;
    if (big) {
      v.setUint16(x, 0x0001, true);
      v.setUint16(x + 2, 16, true);
      v.setBigUint64(x + 4, BigInt(size), true);
      v.setBigUint64(x + 12, BigInt(size), true);
      x += 20;
    }
    if (padBlock) {
      // An unknown extra-field id that readers skip: it only moves the data to the boundary.
      v.setUint16(x, 0xd935, true);
      v.setUint16(x + 2, padBlock - 4, true);
    }
    const localOffset = this.offset;
    this.emit(local);
    emitData();

    const bigOffset = localOffset >= 0xffffffff;
    const zip64 = big || bigOffset;
    const extra = zip64 ? 4 + (big ? 16 : 0) + (bigOffset ? 8 : 0) : 0;
    const entry = new Uint8Array(46 + nameBytes.length + extra);
    const c = new DataView(entry.buffer);
    c.setUint32(0, CENTRAL, true);
    c.setUint16(4, zip64 ? 45 : 20, true);
    c.setUint16(6, zip64 ? 45 : 20, true);
    c.setUint32(16, crc, true);
    c.setUint32(20, big ? 0xffffffff : size, true);
    c.setUint32(24, big ? 0xffffffff : size, true);
    c.setUint16(28, nameBytes.length, true);
    c.setUint16(30, extra, true);
    c.setUint32(42, bigOffset ? 0xffffffff : localOffset, true);
    entry.set(nameBytes, 46);
    if (zip64) {
      let y = 46 + nameBytes.length;
      c.setUint16(y, 0x0001, true);
      c.setUint16(y + 2, extra - 4, true);
      y += 4;
      if (big) {
        c.setBigUint64(y, BigInt(size), true);
        c.setBigUint64(y + 8, BigInt(size), true);
        y += 16;
      }
      if (bigOffset) c.setBigUint64(y, BigInt(localOffset), true);
    }
    this.central.push(entry);
    this.count++;
  }

  finish(): void {
    const dirOffset = this.offset;
    for (const e of this.central) this.emit(e);
    const dirSize = this.offset - dirOffset;
    const zip64 = this.count >= 0xffff || dirOffset >= 0xffffffff;
    if (zip64) {
      const record = new Uint8Array(56 + 20);
      const r = new DataView(record.buffer);
      r.setUint32(0, ZIP64_EOCD, true);
      r.setBigUint64(4, 44n, true);
      r.setUint16(12, 45, true);
      r.setUint16(14, 45, true);
      r.setBigUint64(24, BigInt(this.count), true);
      r.setBigUint64(32, BigInt(this.count), true);
      r.setBigUint64(40, BigInt(dirSize), true);
      r.setBigUint64(48, BigInt(dirOffset), true);
      r.setUint32(56, ZIP64_LOCATOR, true);
      r.setBigUint64(64, BigInt(this.offset), true);
      r.setUint32(72, 1, true);
      this.emit(record);
    }
    const end = new Uint8Array(22);
    const e = new DataView(end.buffer);
    e.setUint32(0, EOCD, true);
    e.setUint16(8, zip64 ? 0xffff : this.count, true);
    e.setUint16(10, zip64 ? 0xffff : this.count, true);
    e.setUint32(12, zip64 ? 0xffffffff : dirSize, true);
    e.setUint32(16, zip64 ? 0xffffffff : dirOffset, true);
    this.emit(end);
  }

  private emit(bytes: Uint8Array): void {
    this.write(bytes);
    this.offset += bytes.length;
  }
}
