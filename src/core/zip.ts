import * as zlib from 'node:zlib';
import type { RandomAccessFile } from './file.js';
import { invalidInput } from './errors.js';

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

/** A whole member's bytes; deflated data is inflated to at most its declared size. */
export function readZipEntry(file: RandomAccessFile, entry: ZipEntry, maxSize: number): Uint8Array {
  if (entry.size > maxSize) {
    throw invalidInput(file.path, `offset ${entry.localHeaderOffset}`, `zip: member '${entry.name}' declares ${entry.size} bytes, more than the ${maxSize} allowed`);
  }
  const start = zipDataOffset(file, entry);
  const data = file.read(start, entry.compressedSize, `zip member '${entry.name}'`);
  if (entry.method === 0) return data;
  let out: Buffer;
  try {
    out = zlib.inflateRawSync(data, { maxOutputLength: Math.max(1, entry.size) });
  } catch (err) {
    throw invalidInput(file.path, `offset ${start}`, `zip: member '${entry.name}' does not inflate to its declared ${entry.size} bytes (${(err as Error).message})`);
  }
  if (out.length !== entry.size) {
    throw invalidInput(file.path, `offset ${start}`, `zip: member '${entry.name}' inflates to ${out.length} bytes, declared ${entry.size}`);
  }
  return out;
}
