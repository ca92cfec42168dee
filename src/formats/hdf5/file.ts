import { invalidInput } from '../../core/errors.js';
import type { ByteSource } from '../../core/source.js';
import { Cursor, fail, Hdf5Unsupported, heapName, readUint, utf8, type Place } from './bytes.js';
import { lookup3 } from './checksum.js';
import { elementCount, parseDatatype, parseDataspace, type Datatype, type Dataspace } from './types.js';

/**
 * A read-only HDF5 file parsed through positioned reads of a ByteSource (a local file, an HTTP
 * object, an archive member): the superblock, object headers, groups of both generations and
 * attributes, never the whole file. Every address is checked against the file's size before it
 * is read, every checksum the format stores is verified, and every walk (continuations, B-trees,
 * heaps, links) is bounded, so a corrupt file is an error naming the object, never a hang.
 */

const SIGNATURE = [0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a];

/** Header message types (HDF5 file format specification, section IV.A.2). */
export const MessageType = {
  dataspace: 0x01, linkInfo: 0x02, datatype: 0x03, fillValueOld: 0x04, fillValue: 0x05, link: 0x06,
  externalFiles: 0x07, layout: 0x08, filters: 0x0b, attribute: 0x0c, continuation: 0x10, symbolTable: 0x11, attributeInfo: 0x15,
} as const;

export interface Message {
  type: number;
  flags: number;
  body: Uint8Array;
  /** File position of the body, for messages. */
  position: number;
  creationOrder?: number;
}

export interface Link {
  name: string;
  kind: 'hard' | 'soft' | 'external';
  address?: number;
  /** A soft link's path, an external link's file and path. */
  target?: string;
  creationOrder: number;
}

export interface Attribute {
  name: string;
  type: Datatype;
  space: Dataspace;
  data: Uint8Array;
}

/** Bounds on what one file may make the reader do. */
const MAX_HEADER_BLOCKS = 4096;
const MAX_MESSAGES = 1 << 16;
const MAX_SOFT_LINK_HOPS = 16;
const MAX_NODE_BYTES = 16 << 20;

export class Hdf5File {
  readonly offsetSize: number;
  readonly lengthSize: number;
  /** Position of the superblock (after a user block): addresses are relative to it. */
  readonly base: number;
  readonly superblockVersion: number;
  private readonly rootAddress: number;
  private readonly headers = new Map<number, Message[]>();
  private readonly globalHeaps = new Map<number, Map<number, Uint8Array>>();
  private readonly localHeaps = new Map<number, Uint8Array>();
  /** Each group's links, listed once (paths are resolved from the root again and again), and by name. */
  readonly linkCache = new Map<number, { list: Link[]; byName: Map<string, Link> }>();
  readonly attributeCache = new Map<number, Map<string, Attribute>>();

  /**
   * `source` holds the file from byte `start` on for `size` bytes (a stored .keras member is a
   * window of its zip); `label` names it in messages.
   */
  constructor(readonly source: ByteSource, readonly label: string, readonly start = 0, readonly size = source.size - start) {
    const place = { file: label, where: 'superblock' };
    let base = -1;
    for (let at = 0; at + 8 <= size; at = at === 0 ? 512 : at * 2) {
      const head = source.bytesAt(start + at, 8, 'HDF5 signature');
      if (SIGNATURE.every((b, i) => head[i] === b)) {
        base = at;
        break;
      }
    }
    if (base < 0) throw fail(place, 'no HDF5 signature at offset 0, 512, 1024, 2048…; not an HDF5 file');
    this.base = base;
    const head = source.bytesAt(start + base, Math.min(size - base, 256), 'superblock');
    const c = new Cursor(head, place, 8, 8, base);
    c.skip(8);
    const version = c.u8('superblock version');
    this.superblockVersion = version;
    let offsetSize: number;
    let lengthSize: number;
    let eof: number | undefined;
    let root: number | undefined;
    if (version === 0 || version === 1) {
      c.skip(4);
      offsetSize = c.u8();
      lengthSize = c.u8();
      checkSizes(place, offsetSize, lengthSize);
      c.skip(1 + 2 + 2 + 4 + (version === 1 ? 4 : 0));
      const sized = new Cursor(head, place, offsetSize, lengthSize, base);
      sized.at = c.at;
      sized.address('base address');
      sized.address('free-space address');
      eof = sized.address('end-of-file address');
      sized.address('driver information address');
      sized.address('root link name offset');
      root = sized.address('root object header address');
    } else if (version === 2 || version === 3) {
      offsetSize = c.u8();
      lengthSize = c.u8();
      checkSizes(place, offsetSize, lengthSize);
      c.skip(1);
      const sized = new Cursor(head, place, offsetSize, lengthSize, base);
      sized.at = c.at;
      sized.address('base address');
      sized.address('superblock extension address');
      eof = sized.address('end-of-file address');
      root = sized.address('root object header address');
      verifyChecksum(place, head.subarray(0, sized.at), sized.u32('superblock checksum'), 'superblock');
    } else {
      throw fail(place, `superblock version ${version} is not one HDF5 writes (0–3)`);
    }
    this.offsetSize = offsetSize;
    this.lengthSize = lengthSize;
    // The library records the end of file counting a user block in, whatever the base address.
    if (eof !== undefined && eof > size) throw fail(place, `the file should be ${eof} bytes long but has ${size}: it is truncated`);
    if (root === undefined) throw fail(place, 'no root group');
    this.rootAddress = root;
  }

  close(): void {
    this.source.close();
  }

  /** `length` bytes at a file address, refused when they lie outside the file. */
  bytes(address: number, length: number, place: Place, what: string): Uint8Array {
    const at = this.base + address;
    if (!Number.isSafeInteger(at) || !Number.isSafeInteger(length) || length < 0 || at + length > this.size) {
      throw fail(place, `${what} at offset ${at} needs ${length} bytes but the file ends at ${this.size}`);
    }
    return this.source.bytesAt(this.start + at, length, what);
  }

  /** Reads `target.length` bytes at a file address into `target` (tensor data), checked like `bytes`. */
  readInto(address: number, target: Uint8Array, place: Place, what: string): Uint8Array {
    const at = this.base + address;
    if (!Number.isSafeInteger(at) || at + target.length > this.size) {
      throw fail(place, `${what} at offset ${at} needs ${target.length} bytes but the file ends at ${this.size}`);
    }
    return this.source.readInto(this.start + at, target, what);
  }

  /** Position of a file address in `source`, for readers that stream stored bytes themselves. */
  sourceOffset(address: number): number {
    return this.start + this.base + address;
  }

  cursor(address: number, length: number, place: Place, what: string): Cursor {
    return new Cursor(this.bytes(address, length, place, what), place, this.offsetSize, this.lengthSize, this.base + address);
  }

  /** A cursor over at most `length` bytes (fewer at the end of the file), for blocks whose size is read from them. */
  cursorUpTo(address: number, length: number, place: Place, what: string): Cursor {
    const available = this.size - this.base - address;
    if (!(available > 0)) throw fail(place, `${what} at offset ${this.base + address} lies beyond the end of the file (${this.size} bytes)`);
    return this.cursor(address, Math.min(length, available), place, what);
  }

  root(): Hdf5Object {
    return new Hdf5Object(this, '/', this.rootAddress);
  }

  /**
   * The object at `path` (from the root), following hard and soft links; undefined when a name
   * is missing. External links are refused: nothing outside the file is opened.
   */
  get(path: string, hops = 0): Hdf5Object | undefined {
    let object = this.root();
    const parts = path.split('/').filter(Boolean);
    for (let i = 0; i < parts.length; i++) {
      if (!object.isGroup()) return undefined;
      object.links();
      const link = this.linkCache.get(object.address)!.byName.get(parts[i]!);
      if (!link) return undefined;
      const here = `/${parts.slice(0, i + 1).join('/')}`;
      if (link.kind === 'external') {
        throw invalidInput(this.label, here, `is an external link to '${link.target}'; ckpt does not follow links out of the model file`);
      }
      if (link.kind === 'soft') {
        if (hops >= MAX_SOFT_LINK_HOPS) throw invalidInput(this.label, here, `soft links nest deeper than ${MAX_SOFT_LINK_HOPS} (a cycle?)`);
        const target = link.target!.startsWith('/') ? link.target! : `${object.path}/${link.target}`;
        const resolved = this.get(target, hops + 1);
        if (!resolved) return undefined;
        object = new Hdf5Object(this, here, resolved.address);
      } else {
        object = new Hdf5Object(this, here, link.address!);
      }
    }
    return object;
  }

  /** The messages of the object header at `address` (both versions, continuations followed). */
  messages(address: number, place: Place): Message[] {
    const cached = this.headers.get(address);
    if (cached) return cached;
    const messages: Message[] = [];
    const head = this.cursorUpTo(address, 16, place, 'object header');
    const isV2 = head.bytes.length >= 4 && String.fromCharCode(...head.bytes.subarray(0, 4)) === 'OHDR';
    const blocks: { address: number; length: number; first: boolean }[] = [];
    let v2Flags = 0;
    if (isV2) {
      const c = this.cursorUpTo(address, 6 + 16 + 4 + 8, place, 'object header');
      c.skip(4);
      const version = c.u8('object header version');
      if (version !== 2) throw fail(place, `object header at offset ${this.base + address}: version ${version} after 'OHDR', expected 2`);
      v2Flags = c.u8();
      if (v2Flags & 0x20) c.skip(16, 'object times');
      if (v2Flags & 0x10) c.skip(4, 'attribute storage limits');
      const chunkSize = c.uint(1 << (v2Flags & 3), 'object header size');
      blocks.push({ address, length: c.at + chunkSize + 4, first: true });
    } else {
      const version = head.u8('object header version');
      if (version !== 1) throw fail(place, `no object header at offset ${this.base + address} (found neither 'OHDR' nor version 1)`);
      head.skip(3 + 4);
      const size = head.u32('object header size');
      blocks.push({ address: address + 16, length: size, first: true });
    }
    const seen = new Set<number>();
    while (blocks.length) {
      const block = blocks.shift()!;
      if (seen.has(block.address)) throw fail(place, `object header continuation at offset ${this.base + block.address} is visited twice (a cycle)`);
      seen.add(block.address);
      if (seen.size > MAX_HEADER_BLOCKS) throw fail(place, `object header has more than ${MAX_HEADER_BLOCKS} continuation blocks`);
      const c = this.cursor(block.address, block.length, place, 'object header');
      let end = block.length;
      if (isV2) {
        if (block.length < 8) throw fail(place, `object header block at offset ${this.base + block.address} is too short`);
        if (block.first) c.at = headerPrefix(v2Flags);
        else c.signature('OCHK', 'object header continuation');
        const stored = readUint(c.bytes, block.length - 4, 4)!;
        verifyChecksum(place, c.bytes.subarray(0, block.length - 4), stored, `object header at offset ${this.base + block.address}`);
        end = block.length - 4;
      }
      const headerSize = isV2 ? 4 + (v2Flags & 0x04 ? 2 : 0) : 8;
      while (end - c.at >= headerSize) {
        const type = isV2 ? c.u8() : c.u16();
        const size = c.u16('message size');
        const flags = c.u8();
        let creationOrder: number | undefined;
        if (isV2) {
          if (v2Flags & 0x04) creationOrder = c.u16();
        } else c.skip(3);
        if (c.at + size > end) throw fail(place, `header message of type ${type} at offset ${c.position + c.at} runs past its block`);
        const body = c.take(size, 'header message');
        if (messages.length >= MAX_MESSAGES) throw fail(place, `object header has more than ${MAX_MESSAGES} messages`);
        if (type === MessageType.continuation) {
          const m = new Cursor(body, place, this.offsetSize, this.lengthSize);
          const at = m.address('continuation address');
          const length = m.length('continuation length');
          if (at === undefined) throw fail(place, 'object header continuation to an undefined address');
          blocks.push({ address: at, length, first: false });
        } else if (type !== 0) {
          messages.push({ type, flags, body, position: c.position + c.at - size, ...(creationOrder !== undefined ? { creationOrder } : {}) });
        }
      }
    }
    this.headers.set(address, messages);
    return messages;
  }

  /** A message's body with shared messages (committed datatypes) resolved to the shared copy. */
  messageBody(message: Message, place: Place, depth = 0): Uint8Array {
    if (!(message.flags & 0x02)) return message.body;
    const c = new Cursor(message.body, place, this.offsetSize, this.lengthSize, message.position);
    const version = c.u8('shared message version');
    const type = c.u8();
    if (version === 1) c.skip(6);
    else if (version !== 2 && version !== 3) throw fail(place, `shared message version ${version} is not 1–3`);
    if (version === 3 && type === 1) throw new Hdf5Unsupported(place.file, place.where, 'shared object header messages (a SOHM table)');
    const address = c.address('shared message address');
    if (address === undefined || depth > 8) throw fail(place, 'shared message points nowhere');
    const shared = this.messages(address, place).find((m) => m.type === message.type);
    if (!shared) throw fail(place, `shared message at offset ${this.base + address} has no message of type ${message.type}`);
    return this.messageBody(shared, place, depth + 1);
  }

  /** The bytes of a global heap object (variable-length strings). */
  globalHeapObject(address: number, index: number, place: Place): Uint8Array {
    let objects = this.globalHeaps.get(address);
    if (!objects) {
      const head = this.cursor(address, 8 + this.lengthSize, place, 'global heap');
      head.signature('GCOL', 'global heap');
      const version = head.u8();
      if (version !== 1) throw fail(place, `global heap version ${version} is not 1`);
      head.skip(3);
      const size = head.length('global heap size');
      const c = this.cursor(address, size, place, 'global heap');
      c.skip(8 + this.lengthSize);
      objects = new Map();
      while (c.left >= 8 + this.lengthSize) {
        const id = c.u16();
        c.skip(6);
        const length = c.length('global heap object size');
        if (id === 0) break;
        objects.set(id, c.take(length, 'global heap object'));
        c.at = Math.min(c.bytes.length, c.at + ((8 - (length % 8)) % 8));
      }
      this.globalHeaps.set(address, objects);
    }
    const object = objects.get(index);
    if (!object) throw fail(place, `global heap at offset ${this.base + address} has no object ${index}`);
    return object;
  }

  /** A local heap's data segment (old-style group names). */
  localHeap(address: number, place: Place): Uint8Array {
    const cached = this.localHeaps.get(address);
    if (cached) return cached;
    const c = this.cursor(address, 8 + 2 * this.lengthSize + this.offsetSize, place, 'local heap');
    c.signature('HEAP', 'local heap');
    const version = c.u8();
    if (version !== 0) throw fail(place, `local heap version ${version} is not 0`);
    c.skip(3);
    const size = c.length('local heap size');
    c.length();
    const data = c.address('local heap data address');
    if (data === undefined) throw fail(place, 'local heap without data');
    const bytes = this.bytes(data, size, place, 'local heap data');
    this.localHeaps.set(address, bytes);
    return bytes;
  }

  /** Children of a version 1 B-tree node of `type` (0 groups, 1 chunks) at its leaves: key bytes and child address. */
  *btree1Leaves(address: number, type: number, keySize: number, place: Place): Generator<{ key: Uint8Array; child: number; nextKey: Uint8Array }> {
    const seen = new Set<number>();
    const visit = function* (this: Hdf5File, at: number, expectedLevel: number | undefined): Generator<{ key: Uint8Array; child: number; nextKey: Uint8Array }> {
      if (seen.has(at)) throw fail(place, `B-tree node at offset ${this.base + at} is reached twice (a cycle)`);
      seen.add(at);
      const head = this.cursor(at, 8 + 2 * this.offsetSize, place, 'B-tree node');
      head.signature('TREE', 'B-tree node');
      const nodeType = head.u8();
      const level = head.u8();
      const entries = head.u16();
      if (nodeType !== type) throw fail(place, `B-tree node at offset ${this.base + at} has type ${nodeType}, expected ${type}`);
      if (expectedLevel !== undefined && level !== expectedLevel) throw fail(place, `B-tree node at offset ${this.base + at} has level ${level}, expected ${expectedLevel}`);
      const c = this.cursor(at + head.bytes.length, entries * (keySize + this.offsetSize) + keySize, place, 'B-tree node');
      const keys: Uint8Array[] = [];
      const children: number[] = [];
      for (let i = 0; i < entries; i++) {
        keys.push(c.take(keySize, 'B-tree key'));
        const child = c.address('B-tree child');
        if (child === undefined) throw fail(place, `B-tree node at offset ${this.base + at} has an undefined child`);
        children.push(child);
      }
      keys.push(c.take(keySize, 'B-tree key'));
      for (let i = 0; i < entries; i++) {
        if (level === 0) yield { key: keys[i]!, child: children[i]!, nextKey: keys[i + 1]! };
        else yield* visit.call(this, children[i]!, level - 1);
      }
    };
    yield* visit.call(this, address, undefined);
  }

  /** Every record of a version 2 B-tree, in key order. */
  *btree2Records(address: number, place: Place): Generator<Uint8Array> {
    const h = this.cursor(address, 4 + 2 + 4 + 2 + 2 + 2 + this.offsetSize + 2 + this.lengthSize + 4, place, 'v2 B-tree header');
    h.signature('BTHD', 'v2 B-tree header');
    if (h.u8() !== 0) throw fail(place, 'v2 B-tree header version is not 0');
    h.skip(1); // record type: the caller knows what it walks
    const nodeSize = h.u32();
    const recordSize = h.u16();
    const depth = h.u16();
    h.skip(2);
    const root = h.address('v2 B-tree root');
    const rootRecords = h.u16();
    const total = h.length();
    verifyChecksum(place, h.bytes.subarray(0, h.at), h.u32(), 'v2 B-tree header');
    if (nodeSize > MAX_NODE_BYTES || nodeSize < 16 || recordSize === 0 || depth > 64) throw fail(place, `v2 B-tree header at offset ${this.base + address} has an impossible node size ${nodeSize}, record size ${recordSize} or depth ${depth}`);
    if (root === undefined || total === 0) return;
    // Sizes of the record-count fields in internal nodes, derived as the library derives them.
    const encodedSize = (n: number) => Math.floor(Math.log2(Math.max(1, n)) / 8) + 1;
    const maxRecords = [Math.floor((nodeSize - 10) / recordSize)];
    const cumulative = [maxRecords[0]!];
    const cumulativeSize = [0];
    const countSize = encodedSize(maxRecords[0]!);
    for (let d = 1; d <= depth; d++) {
      const pointer = this.offsetSize + countSize + (d > 1 ? cumulativeSize[d - 1]! : 0);
      maxRecords[d] = Math.floor((nodeSize - 10) / (recordSize + pointer));
      cumulative[d] = (maxRecords[d]! + 1) * cumulative[d - 1]! + maxRecords[d]!;
      cumulativeSize[d] = encodedSize(cumulative[d]!);
    }
    const seen = new Set<number>();
    let yielded = 0;
    const visit = function* (this: Hdf5File, at: number, count: number, level: number): Generator<Uint8Array> {
      if (seen.has(at)) throw fail(place, `v2 B-tree node at offset ${this.base + at} is reached twice (a cycle)`);
      seen.add(at);
      if (count > maxRecords[level]!) throw fail(place, `v2 B-tree node at offset ${this.base + at} claims ${count} records, more than fit`);
      const c = this.cursorUpTo(at, nodeSize, place, 'v2 B-tree node');
      c.signature(level === 0 ? 'BTLF' : 'BTIN', 'v2 B-tree node');
      c.skip(2);
      const records = Array.from({ length: count }, () => c.take(recordSize, 'v2 B-tree record'));
      const children: { address: number; count: number }[] = [];
      if (level > 0) {
        for (let i = 0; i <= count; i++) {
          const child = c.address('v2 B-tree child');
          const childCount = c.uint(countSize, 'v2 B-tree child count');
          if (level > 1) c.uint(cumulativeSize[level - 1]!, 'v2 B-tree child total');
          if (child === undefined) throw fail(place, `v2 B-tree node at offset ${this.base + at} has an undefined child`);
          children.push({ address: child, count: childCount });
        }
      }
      verifyChecksum(place, c.bytes.subarray(0, c.at), c.u32('v2 B-tree node checksum'), `v2 B-tree node at offset ${this.base + at}`);
      for (let i = 0; i <= count; i++) {
        if (level > 0) yield* visit.call(this, children[i]!.address, children[i]!.count, level - 1);
        if (i < count) {
          if (++yielded > total) throw fail(place, `v2 B-tree at offset ${this.base + address} holds more records than its header's ${total}`);
          yield records[i]!;
        }
      }
    };
    yield* visit.call(this, root, rootRecords, depth);
  }

  /** A fractal heap (dense links and attributes), for reading its objects by heap ID. */
  fractalHeap(address: number, place: Place): FractalHeap {
    return new FractalHeap(this, address, place);
  }
}

function checkSizes(place: Place, offsetSize: number, lengthSize: number): void {
  if (![2, 4, 8].includes(offsetSize) || ![2, 4, 8].includes(lengthSize)) {
    throw fail(place, `offsets of ${offsetSize} and lengths of ${lengthSize} bytes; HDF5 uses 2, 4 or 8`);
  }
}

export function verifyChecksum(place: Place, covered: Uint8Array, stored: number, what: string): void {
  const computed = lookup3(covered);
  if (computed !== stored) throw fail(place, `${what === place.where ? '' : `${what}: `}checksum is 0x${computed.toString(16).padStart(8, '0')}, the file stores 0x${stored.toString(16).padStart(8, '0')}: the file is damaged`);
}

function headerPrefix(flags: number): number {
  return 6 + (flags & 0x20 ? 16 : 0) + (flags & 0x10 ? 4 : 0) + (1 << (flags & 3));
}

/** Fractal heap (HDF5 1.8+ dense storage): managed objects in a doubling table, tiny objects in the ID, huge ones through a B-tree. */
export class FractalHeap {
  private readonly idLength: number;
  private readonly maxManaged: number;
  private readonly width: number;
  private readonly startBlock: number;
  private readonly maxDirectBlock: number;
  private readonly maxHeapBits: number;
  private readonly root: number | undefined;
  private readonly rootRows: number;
  private readonly checksummedBlocks: boolean;
  private readonly hugeTree: number | undefined;
  private readonly offsetBytes: number;
  private readonly lengthBytes: number;
  private readonly maxDirectRows: number;

  constructor(private readonly file: Hdf5File, address: number, private readonly place: Place) {
    const O = file.offsetSize;
    const L = file.lengthSize;
    const c = file.cursor(address, 4 + 1 + 2 + 2 + 1 + 4 + L + O + L + O + 8 * L + 2 + 2 * L + 2 + 2 + O + 2, place, 'fractal heap header');
    c.signature('FRHP', 'fractal heap header');
    if (c.u8() !== 0) throw fail(place, 'fractal heap version is not 0');
    this.idLength = c.u16();
    const filterLength = c.u16();
    const flags = c.u8();
    this.maxManaged = c.u32();
    c.length();
    this.hugeTree = c.address();
    c.length();
    c.address();
    for (let i = 0; i < 8; i++) c.length();
    this.width = c.u16('fractal heap table width');
    this.startBlock = c.length('fractal heap starting block size');
    this.maxDirectBlock = c.length('fractal heap maximum direct block size');
    this.maxHeapBits = c.u16('fractal heap maximum size');
    c.u16();
    this.root = c.address('fractal heap root block');
    this.rootRows = c.u16();
    if (filterLength > 0) throw new Hdf5Unsupported(place.file, place.where, 'a filtered fractal heap');
    const all = file.cursor(address, c.at + 4, place, 'fractal heap header');
    verifyChecksum(place, all.bytes.subarray(0, c.at), readUint(all.bytes, c.at, 4)!, 'fractal heap header');
    this.checksummedBlocks = (flags & 2) !== 0;
    const pow2 = (n: number) => n > 0 && (n & (n - 1)) === 0;
    if (this.width === 0 || !pow2(this.width) || !pow2(this.startBlock) || !pow2(this.maxDirectBlock) || this.maxDirectBlock < this.startBlock || this.maxHeapBits === 0 || this.maxHeapBits > 64 || this.maxDirectBlock > MAX_NODE_BYTES) {
      throw fail(place, `fractal heap at offset ${file.base + address} has an impossible doubling table`);
    }
    this.offsetBytes = Math.ceil(this.maxHeapBits / 8);
    const log2 = (n: number) => Math.floor(Math.log2(n));
    this.lengthBytes = Math.min(Math.ceil(log2(this.maxDirectBlock) / 8), Math.floor(log2(Math.max(1, this.maxManaged)) / 8) + 1);
    this.maxDirectRows = log2(this.maxDirectBlock) - log2(this.startBlock) + 2;
  }

  /** The bytes of the object a heap ID names. */
  object(id: Uint8Array): Uint8Array {
    const place = this.place;
    if (id.length < 1) throw fail(place, 'empty fractal heap ID');
    if (id[0]! >> 6 !== 0) throw fail(place, `fractal heap ID version ${id[0]! >> 6} is not 0`);
    const kind = (id[0]! >> 4) & 3;
    if (kind === 2) {
      const extended = this.idLength > 18;
      const length = extended ? (((id[0]! & 0x0f) << 8) | id[1]!) + 1 : (id[0]! & 0x0f) + 1;
      const start = extended ? 2 : 1;
      if (start + length > id.length) throw fail(place, 'tiny fractal heap object runs past its ID');
      return id.subarray(start, start + length);
    }
    if (kind === 1) return this.huge(id);
    if (kind !== 0) throw fail(place, `fractal heap ID of unknown type ${kind}`);
    if (1 + this.offsetBytes + this.lengthBytes > id.length) throw fail(place, 'fractal heap ID is too short');
    const offset = readUint(id, 1, this.offsetBytes)!;
    const length = readUint(id, 1 + this.offsetBytes, this.lengthBytes)!;
    if (this.root === undefined) throw fail(place, 'fractal heap has no blocks');
    if (this.rootRows === 0) return this.fromDirectBlock(this.root, this.startBlock, 0, offset, length);
    return this.fromIndirectBlock(this.root, this.rootRows, 0, offset, length, new Set());
  }

  private rowBlockSize(row: number): number {
    return row === 0 ? this.startBlock : this.startBlock * 2 ** (row - 1);
  }

  private fromIndirectBlock(at: number, rows: number, blockStart: number, offset: number, length: number, seen: Set<number>): Uint8Array {
    const place = this.place;
    if (seen.has(at) || seen.size > 64) throw fail(place, `fractal heap indirect block at offset ${this.file.base + at} is reached twice (a cycle)`);
    seen.add(at);
    const O = this.file.offsetSize;
    const directRows = Math.min(rows, this.maxDirectRows);
    const entries = rows * this.width;
    const size = 5 + O + this.offsetBytes + entries * O + 4;
    const c = this.file.cursor(at, size, place, 'fractal heap indirect block');
    c.signature('FHIB', 'fractal heap indirect block');
    if (c.u8() !== 0) throw fail(place, 'fractal heap indirect block version is not 0');
    c.skip(O + this.offsetBytes);
    const children = Array.from({ length: entries }, () => c.address('fractal heap block'));
    verifyChecksum(place, c.bytes.subarray(0, c.at), c.u32(), 'fractal heap indirect block');
    let start = blockStart;
    for (let row = 0; row < rows; row++) {
      const span = this.rowBlockSize(row);
      for (let col = 0; col < this.width; col++, start += span) {
        if (offset < start || offset >= start + span) continue;
        const child = children[row * this.width + col];
        if (child === undefined) throw fail(place, `fractal heap object at heap offset ${offset} lies in an unallocated block`);
        if (row < directRows) return this.fromDirectBlock(child, span, start, offset, length);
        const childRows = Math.log2(span) - Math.log2(this.startBlock * this.width) + 1;
        if (!Number.isInteger(childRows) || childRows < 1) throw fail(place, 'fractal heap indirect block of an impossible size');
        return this.fromIndirectBlock(child, childRows, start, offset, length, seen);
      }
    }
    throw fail(place, `fractal heap object at heap offset ${offset} lies beyond the heap`);
  }

  private fromDirectBlock(at: number, span: number, blockStart: number, offset: number, length: number): Uint8Array {
    const place = this.place;
    const block = this.file.bytes(at, span, place, 'fractal heap direct block');
    if (String.fromCharCode(...block.subarray(0, 4)) !== 'FHDB') throw fail(place, `fractal heap direct block at offset ${this.file.base + at}: expected signature 'FHDB'`);
    const header = 5 + this.file.offsetSize + this.offsetBytes;
    if (this.checksummedBlocks) {
      const copy = Uint8Array.from(block);
      const stored = readUint(copy, header, 4)!;
      copy.fill(0, header, header + 4);
      verifyChecksum(place, copy, stored, 'fractal heap direct block');
    }
    const from = offset - blockStart;
    if (from < header || from + length > span) throw fail(place, `fractal heap object at heap offset ${offset} (${length} bytes) does not fit its block`);
    return block.subarray(from, from + length);
  }

  private huge(id: Uint8Array): Uint8Array {
    const place = this.place;
    const O = this.file.offsetSize;
    const L = this.file.lengthSize;
    if (this.idLength - 1 >= O + L) {
      const c = new Cursor(id, place, O, L);
      c.skip(1);
      const at = c.address('huge object address');
      const length = c.length('huge object length');
      if (at === undefined) throw fail(place, 'huge fractal heap object at an undefined address');
      return this.file.bytes(at, length, place, 'huge fractal heap object');
    }
    if (this.hugeTree === undefined) throw fail(place, 'huge fractal heap object but the heap has no huge-object B-tree');
    const key = readUint(id, 1, Math.min(this.idLength - 1, 8));
    for (const record of this.file.btree2Records(this.hugeTree, place)) {
      const c = new Cursor(record, place, O, L);
      const at = c.address('huge object address');
      const length = c.length('huge object length');
      if (c.left < L) throw new Hdf5Unsupported(place.file, place.where, 'filtered huge objects in a fractal heap');
      if (c.length() === key) {
        if (at === undefined) throw fail(place, 'huge fractal heap object at an undefined address');
        return this.file.bytes(at, length, place, 'huge fractal heap object');
      }
    }
    throw fail(place, `huge fractal heap object ${key} is not in its B-tree`);
  }
}

/** An object (group, dataset, named datatype) of the file, by its path and header address. */
export class Hdf5Object {
  constructor(readonly file: Hdf5File, readonly path: string, readonly address: number) {}

  get place(): Place {
    return { file: this.file.label, where: this.path };
  }

  messages(type?: number): Message[] {
    const all = this.file.messages(this.address, this.place);
    return type === undefined ? all : all.filter((m) => m.type === type);
  }

  isGroup(): boolean {
    return this.messages().some((m) => m.type === MessageType.symbolTable || m.type === MessageType.linkInfo || m.type === MessageType.link)
      || this.address === this.file.root().address;
  }

  isDataset(): boolean {
    return this.messages(MessageType.layout).length > 0;
  }

  cursor(message: Message): Cursor {
    return new Cursor(this.file.messageBody(message, this.place), this.place, this.file.offsetSize, this.file.lengthSize, message.position);
  }

  /**
   * The group's links, in the order HDF5 lists them: by creation order where the group indexes it
   * (h5py's track_order=True), by name otherwise.
   */
  links(): Link[] {
    const cached = this.file.linkCache.get(this.address);
    if (cached) return cached.list;
    const place = this.place;
    const links: Link[] = [];
    const symbolTable = this.messages(MessageType.symbolTable)[0];
    let byCreation = false;
    if (symbolTable) {
      const c = this.cursor(symbolTable);
      const tree = c.address('symbol table B-tree');
      const heapAddress = c.address('symbol table local heap');
      if (tree === undefined || heapAddress === undefined) throw fail(place, 'symbol table with an undefined B-tree or heap');
      const heap = this.file.localHeap(heapAddress, place);
      const O = this.file.offsetSize;
      for (const { child } of this.file.btree1Leaves(tree, 0, this.file.lengthSize, place)) {
        const node = this.file.cursor(child, 8, place, 'symbol table node');
        node.signature('SNOD', 'symbol table node');
        if (node.u8() !== 1) throw fail(place, 'symbol table node version is not 1');
        node.skip(1);
        const count = node.u16();
        const entrySize = 2 * O + 24;
        const entries = this.file.cursor(child + 8, count * entrySize, place, 'symbol table node');
        for (let i = 0; i < count; i++) {
          const nameOffset = entries.length('link name offset');
          const address = entries.address('object header address');
          entries.skip(24);
          const name = heapName(heap, nameOffset, place, 'link name');
          if (address === undefined) throw fail(place, `link '${name}' points to an undefined address`);
          links.push({ name, kind: 'hard', address, creationOrder: links.length });
        }
      }
    }
    for (const m of this.messages(MessageType.link)) links.push(parseLink(this.cursor(m), links.length));
    const info = this.messages(MessageType.linkInfo)[0];
    if (info) {
      const c = this.cursor(info);
      if (c.u8() !== 0) throw fail(place, 'link info version is not 0');
      const flags = c.u8();
      if (flags & 1) c.skip(8);
      byCreation = (flags & 2) !== 0;
      const heapAddress = c.address('dense link heap');
      const nameIndex = c.address('dense link name index');
      if (heapAddress !== undefined) {
        if (nameIndex === undefined) throw fail(place, 'dense links without a name index');
        const heap = this.file.fractalHeap(heapAddress, place);
        for (const record of this.file.btree2Records(nameIndex, place)) {
          const body = heap.object(record.subarray(4, 11));
          links.push(parseLink(new Cursor(body, place, this.file.offsetSize, this.file.lengthSize), links.length));
        }
      }
    }
    const byName = new Map<string, Link>();
    for (const l of links) {
      if (byName.has(l.name)) throw fail(place, `two links named '${l.name}'`);
      byName.set(l.name, l);
    }
    links.sort(byCreation ? (a, b) => a.creationOrder - b.creationOrder : (a, b) => Buffer.compare(Buffer.from(a.name), Buffer.from(b.name)));
    this.file.linkCache.set(this.address, { list: links, byName });
    return links;
  }

  /** The object's attributes by name (compact ones in the header, dense ones through their heap). */
  attributes(): Map<string, Attribute> {
    const cached = this.file.attributeCache.get(this.address);
    if (cached) return cached;
    const place = this.place;
    const out = new Map<string, Attribute>();
    for (const m of this.messages(MessageType.attribute)) {
      const a = parseAttribute(this, this.file.messageBody(m, place), m.position);
      out.set(a.name, a);
    }
    const info = this.messages(MessageType.attributeInfo)[0];
    if (info) {
      const c = this.cursor(info);
      if (c.u8() !== 0) throw fail(place, 'attribute info version is not 0');
      const flags = c.u8();
      if (flags & 1) c.skip(2);
      const heapAddress = c.address('dense attribute heap');
      const nameIndex = c.address('dense attribute name index');
      if (heapAddress !== undefined && nameIndex !== undefined) {
        const heap = this.file.fractalHeap(heapAddress, place);
        for (const record of this.file.btree2Records(nameIndex, place)) {
          if (record.length < 9) throw fail(place, 'dense attribute record is too short');
          if (record[8]! & 0x02) throw new Hdf5Unsupported(place.file, place.where, 'shared attribute messages (a SOHM table)');
          const a = parseAttribute(this, heap.object(record.subarray(0, 8)), 0);
          out.set(a.name, a);
        }
      }
    }
    this.file.attributeCache.set(this.address, out);
    return out;
  }
}

function parseLink(c: Cursor, index: number): Link {
  const version = c.u8('link version');
  if (version !== 1) throw fail(c.place, `link message version ${version} is not 1`);
  const flags = c.u8();
  const type = flags & 0x08 ? c.u8() : 0;
  const creationOrder = flags & 0x04 ? c.uint(8) : index;
  if (flags & 0x10) c.skip(1);
  const nameLength = c.uint(1 << (flags & 3), 'link name length');
  const name = utf8(c.take(nameLength, 'link name'));
  if (name === '' || name.includes('/')) throw fail(c.place, `link name ${JSON.stringify(name)} is empty or contains '/'`);
  if (type === 0) {
    const address = c.address('link address');
    if (address === undefined) throw fail(c.place, `link '${name}' points to an undefined address`);
    return { name, kind: 'hard', address, creationOrder };
  }
  if (type === 1) return { name, kind: 'soft', target: utf8(c.take(c.u16(), 'soft link')), creationOrder };
  if (type === 64) {
    const value = c.take(c.u16(), 'external link');
    const parts = utf8(value.subarray(1)).split('\0');
    return { name, kind: 'external', target: parts[0], creationOrder };
  }
  throw new Hdf5Unsupported(c.place.file, `${c.place.where === '/' ? '' : c.place.where}/${name}`, `user-defined links (type ${type})`);
}

function parseAttribute(owner: Hdf5Object, body: Uint8Array, position: number): Attribute {
  const file = owner.file;
  const place = owner.place;
  const c = new Cursor(body, place, file.offsetSize, file.lengthSize, position);
  const version = c.u8('attribute version');
  if (version < 1 || version > 3) throw fail(place, `attribute message version ${version} is not 1–3`);
  const flags = c.u8();
  const nameSize = c.u16();
  const typeSize = c.u16();
  const spaceSize = c.u16();
  if (version === 3) c.skip(1);
  if (flags & 0x03) throw new Hdf5Unsupported(place.file, place.where, 'attributes with shared datatypes or dataspaces');
  const pad = (n: number) => (version === 1 ? Math.ceil(n / 8) * 8 : n);
  const nameBytes = c.take(pad(nameSize), 'attribute name');
  const end = nameBytes.indexOf(0);
  const name = utf8(nameBytes.subarray(0, end < 0 ? nameSize : Math.min(end, nameSize)));
  const where = { file: place.file, where: `${place.where} attribute '${name}'` };
  const type = parseDatatype(new Cursor(c.take(pad(typeSize), 'attribute datatype'), where, file.offsetSize, file.lengthSize));
  const space = parseDataspace(new Cursor(c.take(pad(spaceSize), 'attribute dataspace'), where, file.offsetSize, file.lengthSize));
  const bytes = elementCount(space) * type.size;
  if (!Number.isSafeInteger(bytes) || bytes > c.left) throw fail(where, `declares ${bytes} bytes of values but its message holds ${c.left}`);
  return { name, type, space, data: c.take(bytes) };
}
