import type { RandomAccessFile } from '../../core/file.js';
import { invalidInput } from '../../core/errors.js';
import { crc32c, maskCrc } from './crc32c.js';
import { readLength, type Fail } from './proto.js';
import { snappyUncompress } from './snappy.js';
import { hasTableMagic } from './match.js';

/**
 * A LevelDB-format table (google/leveldb `doc/table_format.md`), as TensorBundle writes its
 * `.index`: data blocks, a metaindex block, an index block of data-block handles, and a 48-byte
 * footer ending in a magic number. Every block's masked CRC32C is checked, keys must be strictly
 * increasing, and every length, offset and restart point must lie inside its block.
 */
const FOOTER_LENGTH = 48;
/** Each block is followed by a compression type byte and a masked CRC32C. */
const TRAILER_LENGTH = 5;
/** Blocks hold kilobytes of keys and small values; one that claims to inflate past this is refused. */
const MAX_BLOCK = 64 << 20;

export interface TableEntry {
  readonly key: Uint8Array;
  readonly value: Uint8Array;
}

interface BlockHandle {
  readonly offset: number;
  readonly size: number;
}

/** Every key/value of the table, in key order. */
export function readTable(raf: RandomAccessFile): TableEntry[] {
  const footerAt = raf.size - FOOTER_LENGTH;
  if (footerAt < 0) throw invalidInput(raf.path, 'offset 0', `file is ${raf.size} bytes; a table ends with a ${FOOTER_LENGTH}-byte footer (truncated?)`);
  const footer = raf.read(footerAt, FOOTER_LENGTH, 'table footer');
  const failFooter: Fail = (what) => invalidInput(raf.path, `footer at offset ${footerAt}`, what);
  if (!hasTableMagic(footer)) throw failFooter('wrong magic number; expected a LevelDB table (TensorFlow checkpoint .index) ending in 57 fb 80 8b 24 75 47 db');
  const handles = footer.subarray(0, FOOTER_LENGTH - 8);
  const meta = decodeHandle(handles, 0, failFooter, 'metaindex handle');
  const index = decodeHandle(handles, meta.next, failFooter, 'index handle');
  // TensorBundle writes no filter, so the metaindex is empty; its checksum is still checked.
  readBlock(raf, meta.handle, 'metaindex block', footerAt);
  const out: TableEntry[] = [];
  let previous: Uint8Array | undefined;
  for (const indexEntry of blockEntries(raf, index.handle, 'index block', footerAt)) {
    const failIndex: Fail = (what) => invalidInput(raf.path, `index block at offset ${index.handle.offset}`, what);
    const data = decodeHandle(indexEntry.value, 0, failIndex, 'data block handle');
    if (data.next !== indexEntry.value.length) throw failIndex('a data block handle has trailing bytes');
    const where = `data block at offset ${data.handle.offset}`;
    const entries = blockEntries(raf, data.handle, 'data block', footerAt);
    for (const entry of entries) {
      if (previous && compareBytes(entry.key, previous) <= 0) {
        throw invalidInput(raf.path, where, `key '${printable(entry.key)}' does not sort after '${printable(previous)}'; keys must be strictly increasing`);
      }
      previous = entry.key;
      out.push(entry);
    }
    if (previous && compareBytes(previous, indexEntry.key) > 0) {
      throw invalidInput(raf.path, where, `its last key '${printable(previous)}' sorts after the index key '${printable(indexEntry.key)}' that should bound it`);
    }
  }
  return out;
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
}

/** A key for messages: text as is, other bytes escaped. */
export function printable(key: Uint8Array): string {
  return Array.from(key, (b) => (b >= 0x20 && b < 0x7f && b !== 0x27 ? String.fromCharCode(b) : `\\x${b.toString(16).padStart(2, '0')}`)).join('');
}

function decodeHandle(bytes: Uint8Array, pos: number, fail: Fail, what: string): { handle: BlockHandle; next: number } {
  const offset = readLength(bytes, pos, bytes.length, fail, `${what} offset`);
  const size = readLength(bytes, offset.next, bytes.length, fail, `${what} size`);
  return { handle: { offset: offset.value, size: size.value }, next: size.next };
}

/** A block's contents after its checksum is verified and it is decompressed. */
function readBlock(raf: RandomAccessFile, handle: BlockHandle, what: string, dataEnd: number): Uint8Array {
  const fail: Fail = (detail) => invalidInput(raf.path, `${what} at offset ${handle.offset}`, detail);
  if (handle.offset + handle.size + TRAILER_LENGTH > dataEnd) {
    throw fail(`${handle.size} bytes and a ${TRAILER_LENGTH}-byte trailer run past the end of the table data at ${dataEnd} (truncated?)`);
  }
  const raw = raf.read(handle.offset, handle.size + TRAILER_LENGTH, what);
  const type = raw[handle.size]!;
  const stored = new DataView(raw.buffer, raw.byteOffset + handle.size + 1, 4).getUint32(0, true);
  const actual = maskCrc(crc32c(raw.subarray(0, handle.size + 1)));
  if (stored !== actual) throw fail(`block checksum mismatch (stored ${hex(stored)}, computed ${hex(actual)}); the file is corrupt`);
  const contents = raw.subarray(0, handle.size);
  if (type === 0) return contents;
  if (type === 1) return snappyUncompress(contents, MAX_BLOCK, fail);
  if (type === 2) throw fail('block is zstd-compressed; only uncompressed and snappy blocks are supported');
  throw fail(`unknown block compression type ${type}; expected 0 (none) or 1 (snappy)`);
}

/** The entries of a block: prefix-compressed keys, then the restart array and its count. */
function blockEntries(raf: RandomAccessFile, handle: BlockHandle, what: string, dataEnd: number): TableEntry[] {
  const block = readBlock(raf, handle, what, dataEnd);
  const fail: Fail = (detail) => invalidInput(raf.path, `${what} at offset ${handle.offset}`, detail);
  if (block.length < 4) throw fail(`block of ${block.length} bytes has no restart count`);
  const view = new DataView(block.buffer, block.byteOffset, block.byteLength);
  const restartCount = view.getUint32(block.length - 4, true);
  const restartsAt = block.length - 4 - 4 * restartCount;
  if (restartCount === 0 || restartsAt < 0) throw fail(`restart array of ${restartCount} entries does not fit in the ${block.length}-byte block`);
  const entries: TableEntry[] = [];
  const sharedAt = new Map<number, number>();
  let key: Uint8Array = new Uint8Array(0);
  let pos = 0;
  while (pos < restartsAt) {
    const start = pos;
    const shared = readLength(block, pos, restartsAt, fail, `entry at block offset ${start}: shared key length`);
    const unshared = readLength(block, shared.next, restartsAt, fail, `entry at block offset ${start}: key length`);
    const valueLength = readLength(block, unshared.next, restartsAt, fail, `entry at block offset ${start}: value length`);
    pos = valueLength.next;
    if (shared.value > key.length) throw fail(`entry at block offset ${start} shares ${shared.value} bytes with a previous key of ${key.length}`);
    if (pos + unshared.value + valueLength.value > restartsAt) throw fail(`entry at block offset ${start} runs into the restart array`);
    const next = new Uint8Array(shared.value + unshared.value);
    next.set(key.subarray(0, shared.value));
    next.set(block.subarray(pos, pos + unshared.value), shared.value);
    key = next;
    pos += unshared.value;
    entries.push({ key, value: block.subarray(pos, pos + valueLength.value) });
    pos += valueLength.value;
    sharedAt.set(start, shared.value);
  }
  for (let i = 0; i < restartCount; i++) {
    const restart = view.getUint32(restartsAt + 4 * i, true);
    // An empty block has one restart, at 0; otherwise each must start an entry with a full key.
    const valid = entries.length === 0 ? restart === 0 : sharedAt.get(restart) === 0;
    if (!valid) throw fail(`restart point ${i} (${restart}) does not start an entry with a full key`);
  }
  return entries;
}

function hex(n: number): string {
  return `0x${n.toString(16).padStart(8, '0')}`;
}
