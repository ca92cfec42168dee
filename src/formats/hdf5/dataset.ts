import { constants as bufferConstants } from 'node:buffer';
import * as zlib from 'node:zlib';
import { byteLengthOf, numelOf, type DType } from '../../core/dtype.js';
import { Cursor, fail, Hdf5Unsupported, heapName, readUint, swapBytes, type Place } from './bytes.js';
import { fletcher32 } from './checksum.js';
import { MessageType, verifyChecksum, type Hdf5File, type Hdf5Object, type Message } from './file.js';
import { checkFilters, describeDatatype, parseDatatype, parseDataspace, parseFilterPipeline, type Datatype, type Filter } from './types.js';

/** One stored chunk: its first element's coordinates, where its (filtered) bytes are, which filters were skipped. */
interface Chunk {
  offset: number[];
  address: number;
  size: number;
  filterMask: number;
}

type ChunkIndex =
  | { type: 'btree1' }
  | { type: 'single'; filteredSize?: number; filterMask: number }
  | { type: 'implicit' }
  | { type: 'fixed-array' }
  | { type: 'extensible-array' }
  | { type: 'btree2' };

type Storage =
  | { kind: 'compact'; bytes: Uint8Array }
  | { kind: 'contiguous'; address: number | undefined; size: number }
  | { kind: 'chunked'; chunk: number[]; index: ChunkIndex; address: number | undefined; unfilteredEdges: boolean };

/**
 * A dataset of numbers, described from its header when the file is opened (so that anything it
 * cannot read is reported then) and read on demand: contiguous values in one positioned read,
 * chunked ones chunk by chunk through one reused buffer, each undone from its filters (deflate,
 * shuffle, Fletcher-32) and placed into the tensor.
 */
export class Hdf5Dataset {
  readonly dtype: DType;
  readonly shape: number[];
  /** Bytes per element. */
  readonly width: number;
  readonly byteLength: number;
  private readonly bigEndian: boolean;
  private readonly storage: Storage;
  private readonly filters: Filter[];
  private readonly fill: Uint8Array | undefined;
  private readonly file: Hdf5File;
  private readonly place: Place;
  private readonly maxDims: (number | undefined)[];

  constructor(object: Hdf5Object) {
    this.file = object.file;
    this.place = object.place;
    const message = (type: number, what: string) => {
      const m = object.messages(type)[0];
      if (!m) throw fail(this.place, `dataset has no ${what} message`);
      return object.cursor(m);
    };
    const type = parseDatatype(message(MessageType.datatype, 'datatype'));
    const space = parseDataspace(message(MessageType.dataspace, 'dataspace'));
    const numeric = numericType(type);
    if (!numeric) {
      if (type.kind === 'vlen-string' || type.kind === 'vlen-sequence') throw fail(this.place, 'variable-length datasets are not weights');
      throw fail(this.place, `dataset type ${describeDatatype(type)} is not a numeric weight`);
    }
    this.dtype = numeric;
    this.bigEndian = (type.kind === 'integer' || type.kind === 'float') && type.bigEndian;
    this.width = type.size;
    this.shape = space.isNull ? [0] : space.dims;
    this.maxDims = space.maxDims ?? this.shape;
    const numel = numelOf(this.shape);
    if (numel === undefined) throw fail(this.place, `shape [${this.shape.join(',')}] has too many elements`);
    this.byteLength = byteLengthOf(this.dtype, numel);
    const external = object.messages(MessageType.externalFiles)[0];
    if (external) throw fail(this.place, `stores its values in an external file (${externalNames(object, external)}); ckpt does not read files outside the model file`);
    const pipeline = object.messages(MessageType.filters)[0];
    this.filters = pipeline ? parseFilterPipeline(object.cursor(pipeline)) : [];
    checkFilters(this.filters, this.place.file, this.place.where);
    this.fill = fillValue(object, this.width);
    this.storage = parseLayout(message(MessageType.layout, 'data layout'), this.width);
    if (this.storage.kind === 'compact' && this.storage.bytes.length < this.byteLength) {
      throw fail(this.place, `compact data holds ${this.storage.bytes.length} bytes, the shape needs ${this.byteLength}`);
    }
    if (this.storage.kind === 'contiguous' && this.storage.address !== undefined) {
      if (this.storage.size < this.byteLength) throw fail(this.place, `contiguous storage of ${this.storage.size} bytes, the shape needs ${this.byteLength}`);
      this.file.bytes(this.storage.address, 0, this.place, 'dataset values');
      if (this.file.base + this.storage.address + this.byteLength > this.file.size) {
        throw fail(this.place, `values at offset ${this.file.base + this.storage.address} need ${this.byteLength} bytes but the file ends at ${this.file.size}`);
      }
    }
    if (this.storage.kind === 'chunked' && this.storage.chunk.length !== this.shape.length) {
      throw fail(this.place, `chunks of rank ${this.storage.chunk.length} for a dataset of rank ${this.shape.length}`);
    }
  }

  /** Position of the values in the file's source when stored there as `read()` returns them (contiguous, little-endian). */
  get storedOffset(): number | undefined {
    const s = this.storage;
    if (s.kind !== 'contiguous' || s.address === undefined || this.bigEndian || this.byteLength === 0) return undefined;
    return this.file.sourceOffset(s.address);
  }

  /** The values as little-endian bytes, row-major. */
  read(): Uint8Array {
    if (this.byteLength > bufferConstants.MAX_LENGTH) {
      throw fail(this.place, `is ${this.byteLength} bytes; Node.js holds at most ${bufferConstants.MAX_LENGTH} bytes in one buffer`);
    }
    const allocated = Buffer.allocUnsafeSlow(this.byteLength);
    const out = new Uint8Array(allocated.buffer, allocated.byteOffset, this.byteLength);
    const s = this.storage;
    if (s.kind === 'compact') out.set(s.bytes.subarray(0, this.byteLength));
    else if (s.kind === 'contiguous') {
      if (s.address === undefined) this.fillAll(out);
      else this.file.readInto(s.address, out, this.place, 'dataset values');
    } else this.readChunked(out, s);
    if (this.bigEndian) swapBytes(out, this.width);
    return out;
  }

  private fillAll(out: Uint8Array): void {
    if (!this.fill) out.fill(0);
    else for (let at = 0; at < out.length; at += this.width) out.set(this.fill, at);
  }

  private readChunked(out: Uint8Array, s: Extract<Storage, { kind: 'chunked' }>): void {
    this.fillAll(out);
    if (s.address === undefined || this.byteLength === 0) return;
    const chunkBytes = s.chunk.reduce((n, d) => n * d, this.width);
    let scratch = Buffer.allocUnsafeSlow(0);
    const done = new Set<string>();
    for (const chunk of this.chunks(s, chunkBytes)) {
      chunk.offset.forEach((o, d) => {
        if (o % s.chunk[d]! !== 0 || o >= this.shape[d]!) throw fail(this.place, `chunk at [${chunk.offset.join(',')}] does not start on the chunk grid inside the shape [${this.shape.join(',')}]`);
      });
      const key = chunk.offset.join(',');
      if (done.has(key)) throw fail(this.place, `chunk at [${key}] is stored twice`);
      done.add(key);
      if (chunk.size > this.file.size) throw fail(this.place, `chunk at [${key}] is ${chunk.size} bytes, more than the whole file`);
      if (chunk.size > scratch.length) {
        if (chunk.size > Math.max(2 * chunkBytes, chunkBytes + (1 << 20))) throw fail(this.place, `chunk at [${key}] is ${chunk.size} bytes, far more than the ${chunkBytes} it holds`);
        scratch = Buffer.allocUnsafeSlow(chunk.size);
      }
      const raw = this.file.readInto(chunk.address, scratch.subarray(0, chunk.size), this.place, `chunk at [${key}]`);
      const edge = chunk.offset.some((o, d) => o + s.chunk[d]! > this.shape[d]!);
      const data = s.unfilteredEdges && edge ? raw : this.unfilter(raw, chunk.filterMask, chunkBytes, key);
      if (data.length !== chunkBytes) throw fail(this.place, `chunk at [${key}] holds ${data.length} bytes after its filters, expected ${chunkBytes}`);
      copyChunk(out, this.shape, s.chunk, chunk.offset, data, this.width);
    }
  }

  /** Undoes the filter pipeline (last filter first), skipping those the chunk's mask excludes. */
  private unfilter(raw: Uint8Array, mask: number, chunkBytes: number, key: string): Uint8Array {
    let data = raw;
    for (let i = this.filters.length - 1; i >= 0; i--) {
      if (mask & (1 << i)) continue;
      const filter = this.filters[i]!;
      if (filter.id === 1) {
        try {
          data = zlib.inflateSync(data, { maxOutputLength: chunkBytes + 64 });
        } catch (err) {
          throw fail(this.place, `chunk at [${key}] does not inflate (${(err as Error).message})`);
        }
      } else if (filter.id === 2) {
        data = unshuffle(data, filter.values[0] ?? this.width);
      } else if (filter.id === 3) {
        if (data.length < 4) throw fail(this.place, `chunk at [${key}] is too short for its Fletcher-32 checksum`);
        const body = data.subarray(0, data.length - 4);
        const stored = readUint(data, data.length - 4, 4)!;
        const computed = fletcher32(body);
        // Before HDF5 1.6.3 the sum was stored with its bytes swapped in pairs; the library accepts both.
        const swapped = (((computed & 0xff) << 8) | ((computed >>> 8) & 0xff) | ((computed >>> 16 & 0xff) << 24) | ((computed >>> 24) << 16)) >>> 0;
        if (stored !== computed && stored !== swapped) {
          throw fail(this.place, `chunk at [${key}]: Fletcher-32 checksum is 0x${computed.toString(16)}, the file stores 0x${stored.toString(16)}: the data is damaged`);
        }
        data = body;
      }
    }
    return data;
  }

  private *chunks(s: Extract<Storage, { kind: 'chunked' }>, chunkBytes: number): Generator<Chunk> {
    const address = s.address!;
    const rank = this.shape.length;
    const grid = this.shape.map((d, i) => Math.ceil(d / s.chunk[i]!));
    const gridCount = grid.reduce((n, g) => n * g, 1);
    const fromLinear = (index: number) => {
      const offset = new Array<number>(rank);
      for (let d = rank - 1; d >= 0; d--) {
        offset[d] = (index % grid[d]!) * s.chunk[d]!;
        index = Math.floor(index / grid[d]!);
      }
      return offset;
    };
    const filtered = this.filters.length > 0;
    // Filtered chunk sizes in v4 indexes take as many bytes as the library gives them.
    const sizeBytes = Math.min(8, 1 + Math.floor((Math.floor(Math.log2(chunkBytes)) + 8) / 8));
    switch (s.index.type) {
      case 'btree1': {
        const keySize = 8 + 8 * (rank + 1);
        for (const { key, child } of this.file.btree1Leaves(address, 1, keySize, this.place)) {
          const size = readUint(key, 0, 4)!;
          const filterMask = readUint(key, 4, 4)!;
          const offset = Array.from({ length: rank }, (_, d) => readUint(key, 8 + 8 * d, 8) ?? Number.MAX_SAFE_INTEGER);
          yield { offset, address: child, size, filterMask };
        }
        return;
      }
      case 'single':
        yield { offset: new Array(rank).fill(0), address, size: s.index.filteredSize ?? chunkBytes, filterMask: s.index.filterMask };
        return;
      case 'implicit':
        for (let i = 0; i < gridCount; i++) yield { offset: fromLinear(i), address: address + i * chunkBytes, size: chunkBytes, filterMask: 0 };
        return;
      case 'fixed-array': {
        let i = 0;
        for (const entry of fixedArrayEntries(this.file, address, this.place, filtered, sizeBytes)) {
          if (i >= gridCount) throw fail(this.place, `fixed array index holds more entries than the ${gridCount} chunks`);
          if (entry.address !== undefined) yield { offset: fromLinear(i), address: entry.address, size: entry.size ?? chunkBytes, filterMask: entry.filterMask };
          i++;
        }
        return;
      }
      case 'extensible-array': {
        // Chunks are numbered with the unlimited dimension first and the others by their maximum size.
        const unlimited = this.maxDims.findIndex((d) => d === undefined);
        if (unlimited < 0) throw fail(this.place, 'extensible-array chunk index for a dataset without an unlimited dimension');
        const order = [unlimited, ...this.shape.map((_, d) => d).filter((d) => d !== unlimited)];
        const extent = order.map((d) => (d === unlimited ? Infinity : Math.ceil(this.maxDims[d]! / s.chunk[d]!)));
        let i = 0;
        for (const entry of extensibleArrayEntries(this.file, address, this.place, filtered, sizeBytes)) {
          const index = i++;
          if (entry.address === undefined) continue;
          const offset = new Array<number>(rank);
          let rest = index;
          for (let k = rank - 1; k >= 1; k--) {
            offset[order[k]!] = (rest % extent[k]!) * s.chunk[order[k]!]!;
            rest = Math.floor(rest / extent[k]!);
          }
          offset[unlimited] = rest * s.chunk[unlimited]!;
          yield { offset, address: entry.address, size: entry.size ?? chunkBytes, filterMask: entry.filterMask };
        }
        return;
      }
      case 'btree2':
        for (const record of this.file.btree2Records(address, this.place)) {
          const c = new Cursor(record, this.place, this.file.offsetSize, this.file.lengthSize);
          const at = c.address('chunk address');
          const size = filtered ? c.uint(sizeBytes, 'chunk size') : chunkBytes;
          const filterMask = filtered ? c.u32() : 0;
          const offset = Array.from({ length: rank }, (_, d) => c.uint(8, 'chunk offset') * s.chunk[d]!);
          if (at !== undefined) yield { offset, address: at, size, filterMask };
        }
        return;
    }
  }
}

/** The dtype a numeric HDF5 type reads as; h5py's bool (an enum of int8) is bool. */
function numericType(t: Datatype): DType | undefined {
  if (t.kind === 'enum') return t.size === 1 && t.base.kind === 'integer' ? 'bool' : undefined;
  if (t.kind === 'integer') {
    if (t.bitOffset !== 0 || t.precision !== t.size * 8) return undefined;
    const bits = ({ 1: 8, 2: 16, 4: 32, 8: 64 } as Record<number, number>)[t.size];
    return bits ? (`${t.signed ? 'int' : 'uint'}${bits}` as DType) : undefined;
  }
  if (t.kind === 'float') {
    if (t.bitOffset !== 0 || t.precision !== t.size * 8) return undefined;
    const layout = `${t.size}:${t.exponentSize}:${t.mantissaSize}`;
    return ({ '2:5:10': 'float16', '2:8:7': 'bfloat16', '4:8:23': 'float32', '8:11:52': 'float64' } as Record<string, DType>)[layout];
  }
  return undefined;
}

function parseLayout(c: Cursor, width: number): Storage {
  const version = c.u8('data layout version');
  if (version === 1 || version === 2) throw new Hdf5Unsupported(c.place.file, c.place.where, `data layout message version ${version} (HDF5 1.4 and older)`);
  if (version !== 3 && version !== 4) throw fail(c.place, `data layout version ${version} is not 1–4`);
  const kind = c.u8('layout class');
  if (kind === 0) return { kind: 'compact', bytes: c.take(c.u16('compact size'), 'compact data') };
  if (kind === 1) return { kind: 'contiguous', address: c.address('data address'), size: c.length('data size') };
  if (kind === 3) throw new Hdf5Unsupported(c.place.file, c.place.where, 'the virtual dataset layout');
  if (kind !== 2) throw fail(c.place, `layout class ${kind} is not compact, contiguous, chunked or virtual`);
  let flags = 0;
  if (version === 4) flags = c.u8();
  const dimensionality = c.u8('chunk rank');
  if (dimensionality < 1 || dimensionality > 33) throw fail(c.place, `chunk rank ${dimensionality} is impossible`);
  let dims: number[];
  let index: ChunkIndex;
  let address: number | undefined;
  if (version === 3) {
    address = c.address('chunk B-tree address');
    dims = Array.from({ length: dimensionality }, () => c.u32('chunk dimension'));
    index = { type: 'btree1' };
  } else {
    const dimBytes = c.u8('chunk dimension size');
    if (dimBytes < 1 || dimBytes > 8) throw fail(c.place, `chunk dimensions of ${dimBytes} bytes`);
    dims = Array.from({ length: dimensionality }, () => c.uint(dimBytes, 'chunk dimension'));
    const type = c.u8('chunk index type');
    if (type === 1) {
      const filteredSize = flags & 2 ? c.length('filtered chunk size') : undefined;
      const filterMask = flags & 2 ? c.u32() : 0;
      index = { type: 'single', ...(filteredSize !== undefined ? { filteredSize } : {}), filterMask };
    } else if (type === 2) index = { type: 'implicit' };
    else if (type === 3) {
      c.skip(1);
      index = { type: 'fixed-array' };
    } else if (type === 4) {
      c.skip(5);
      index = { type: 'extensible-array' };
    }
    else if (type === 5) {
      c.skip(6);
      index = { type: 'btree2' };
    } else throw fail(c.place, `chunk index type ${type} is not 1–5`);
    address = c.address('chunk index address');
  }
  const chunk = dims.slice(0, -1);
  if (dims[dims.length - 1] !== width) throw fail(c.place, `chunks of ${dims[dims.length - 1]}-byte elements for a ${width}-byte type`);
  if (chunk.some((d) => d === 0)) throw fail(c.place, `chunk dimensions [${chunk.join(',')}] include 0`);
  // The library limits a chunk to 4 GiB; a larger product is a damaged message, refused before any allocation.
  if (chunk.reduce((n, d) => n * d, width) > 2 ** 32) throw fail(c.place, `chunks of [${chunk.join(',')}] elements of ${width} bytes are larger than the 4 GiB HDF5 allows`);
  return { kind: 'chunked', chunk, index, address, unfilteredEdges: (flags & 1) === 1 };
}

/** One entry of an array chunk index: the chunk's address, and for filtered chunks its size and skipped filters. */
function chunkEntry(c: Cursor, filtered: boolean, sizeBytes: number): { address: number | undefined; size?: number; filterMask: number } {
  const address = c.address('chunk address');
  const size = filtered ? c.uint(sizeBytes, 'chunk size') : undefined;
  const filterMask = filtered ? c.u32() : 0;
  return { address, ...(size !== undefined ? { size } : {}), filterMask };
}

/** Entries of a fixed-array chunk index, in chunk order; undefined addresses are chunks never written. */
function* fixedArrayEntries(file: Hdf5File, address: number, place: Place, filtered: boolean, sizeBytes: number): Generator<{ address: number | undefined; size?: number; filterMask: number }> {
  const O = file.offsetSize;
  const h = file.cursor(address, 4 + 4 + file.lengthSize + O + 4, place, 'fixed array header');
  h.signature('FAHD', 'fixed array header');
  if (h.u8() !== 0) throw fail(place, 'fixed array version is not 0');
  const client = h.u8();
  const entrySize = h.u8();
  const pageBits = h.u8();
  const count = h.length('fixed array size');
  const block = h.address('fixed array data block');
  verifyChecksum(place, h.bytes.subarray(0, h.at), h.u32(), 'fixed array header');
  if (client !== (filtered ? 1 : 0) || entrySize !== (filtered ? O + sizeBytes + 4 : O) || pageBits > 32) {
    throw fail(place, `fixed array of client ${client}, entries of ${entrySize} bytes: not what the dataset's filters imply`);
  }
  if (block === undefined) return;
  const entry = (c: Cursor) => chunkEntry(c, filtered, sizeBytes);
  const prefix = 4 + 2 + O;
  const perPage = 2 ** pageBits;
  if (count <= perPage) {
    const c = file.cursor(block, prefix + count * entrySize + 4, place, 'fixed array data block');
    c.signature('FADB', 'fixed array data block');
    c.skip(2 + O);
    const entries = Array.from({ length: count }, () => entry(c));
    verifyChecksum(place, c.bytes.subarray(0, c.at), c.u32(), 'fixed array data block');
    yield* entries;
    return;
  }
  const pages = Math.ceil(count / perPage);
  const bitmapBytes = Math.ceil(pages / 8);
  const c = file.cursor(block, prefix + bitmapBytes + 4, place, 'fixed array data block');
  c.signature('FADB', 'fixed array data block');
  c.skip(2 + O);
  const bitmap = c.take(bitmapBytes);
  verifyChecksum(place, c.bytes.subarray(0, c.at), c.u32(), 'fixed array data block');
  let pageAddress = block + c.bytes.length;
  for (let p = 0; p < pages; p++) {
    const n = Math.min(perPage, count - p * perPage);
    const pageSize = n * entrySize + 4;
    if (!(bitmap[p >> 3]! & (0x80 >> (p & 7)))) {
      for (let i = 0; i < n; i++) yield { address: undefined, filterMask: 0 };
    } else {
      const page = file.cursor(pageAddress, pageSize, place, 'fixed array page');
      const entries = Array.from({ length: n }, () => entry(page));
      verifyChecksum(place, page.bytes.subarray(0, page.at), page.u32(), 'fixed array page');
      yield* entries;
    }
    pageAddress += perPage * entrySize + 4;
  }
}

/**
 * Entries of an extensible-array chunk index, in index order: the index block's own elements, then
 * the data blocks of each super block (listed in the index block, then in secondary blocks).
 */
function* extensibleArrayEntries(file: Hdf5File, address: number, place: Place, filtered: boolean, sizeBytes: number): Generator<{ address: number | undefined; size?: number; filterMask: number }> {
  const O = file.offsetSize;
  const L = file.lengthSize;
  const h = file.cursor(address, 4 + 2 + 6 + 6 * L + O + 4, place, 'extensible array header');
  h.signature('EAHD', 'extensible array header');
  if (h.u8() !== 0) throw fail(place, 'extensible array version is not 0');
  const client = h.u8();
  const entrySize = h.u8();
  const maxBits = h.u8();
  const indexElements = h.u8();
  const minElements = h.u8();
  const minPointers = h.u8();
  const pageBits = h.u8();
  for (let i = 0; i < 5; i++) h.length();
  const realized = h.length('extensible array size');
  const indexBlock = h.address('extensible array index block');
  verifyChecksum(place, h.bytes.subarray(0, h.at), h.u32(), 'extensible array header');
  const pow2 = (n: number) => n > 0 && (n & (n - 1)) === 0;
  if (client !== (filtered ? 1 : 0) || entrySize !== (filtered ? O + sizeBytes + 4 : O) || maxBits === 0 || maxBits > 64 || !pow2(minElements) || !pow2(minPointers) || pageBits > 32) {
    throw fail(place, 'extensible array header with impossible parameters');
  }
  if (indexBlock === undefined || realized === 0) return;
  const superBlocks = 1 + maxBits - Math.log2(minElements);
  const blocksOf = (s: number) => 2 ** Math.floor(s / 2);
  const elementsOf = (s: number) => 2 ** Math.ceil(s / 2) * minElements;
  const indexSuperBlocks = 2 * Math.log2(minPointers);
  const dataBlockPointers = 2 * (minPointers - 1);
  const secondaryPointers = Math.max(0, superBlocks - indexSuperBlocks);
  const blockOffsetBytes = Math.ceil(maxBits / 8);
  const entry = (c: Cursor) => chunkEntry(c, filtered, sizeBytes);
  const ib = file.cursor(indexBlock, 6 + O + indexElements * entrySize + (dataBlockPointers + secondaryPointers) * O + 4, place, 'extensible array index block');
  ib.signature('EAIB', 'extensible array index block');
  ib.skip(2 + O);
  const own = Array.from({ length: indexElements }, () => entry(ib));
  const dataBlocks = Array.from({ length: dataBlockPointers }, () => ib.address());
  const secondary = Array.from({ length: secondaryPointers }, () => ib.address());
  verifyChecksum(place, ib.bytes.subarray(0, ib.at), ib.u32(), 'extensible array index block');
  let left = realized;
  const take = function* (entries: ReturnType<typeof entry>[]) {
    for (const e of entries) {
      if (left-- <= 0) return;
      yield e;
    }
  };
  yield* take(own);
  const dataBlock = function* (at: number | undefined, count: number) {
    if (at === undefined) {
      yield* take(Array.from({ length: Math.min(count, Math.max(0, left)) }, () => ({ address: undefined, filterMask: 0 })));
      return;
    }
    if (count > 2 ** pageBits) throw new Hdf5Unsupported(place.file, place.where, 'a paged extensible-array chunk index (more than 2^page-bits chunks per data block)');
    const c = file.cursor(at, 6 + O + blockOffsetBytes + count * entrySize + 4, place, 'extensible array data block');
    c.signature('EADB', 'extensible array data block');
    c.skip(2 + O + blockOffsetBytes);
    const entries = Array.from({ length: count }, () => entry(c));
    verifyChecksum(place, c.bytes.subarray(0, c.at), c.u32(), 'extensible array data block');
    yield* take(entries);
  };
  let pointer = 0;
  for (let s = 0; s < superBlocks && left > 0; s++) {
    if (s < indexSuperBlocks) {
      for (let b = 0; b < blocksOf(s) && left > 0; b++) yield* dataBlock(dataBlocks[pointer++], elementsOf(s));
      continue;
    }
    const at = secondary[s - indexSuperBlocks];
    const count = blocksOf(s);
    if (elementsOf(s) > 2 ** pageBits) throw new Hdf5Unsupported(place.file, place.where, 'a paged extensible-array chunk index (more than 2^page-bits chunks per data block)');
    if (at === undefined) {
      for (let b = 0; b < count && left > 0; b++) yield* dataBlock(undefined, elementsOf(s));
      continue;
    }
    const c = file.cursor(at, 6 + O + blockOffsetBytes + count * O + 4, place, 'extensible array secondary block');
    c.signature('EASB', 'extensible array secondary block');
    c.skip(2 + O + blockOffsetBytes);
    const blocks = Array.from({ length: count }, () => c.address());
    verifyChecksum(place, c.bytes.subarray(0, c.at), c.u32(), 'extensible array secondary block');
    for (const b of blocks) if (left > 0) yield* dataBlock(b, elementsOf(s));
  }
}

function fillValue(object: Hdf5Object, width: number): Uint8Array | undefined {
  const message = object.messages(MessageType.fillValue)[0];
  if (message) {
    const c = object.cursor(message);
    const version = c.u8('fill value version');
    let defined: boolean;
    if (version === 1 || version === 2) {
      c.skip(2);
      defined = c.u8() === 1 || version === 1;
    } else if (version === 3) {
      defined = (c.u8() & 0x20) !== 0;
    } else throw fail(object.place, `fill value version ${version} is not 1–3`);
    if (!defined || c.left < 4) return undefined;
    const size = c.u32('fill value size');
    return size === width ? c.take(size, 'fill value') : undefined;
  }
  const old = object.messages(MessageType.fillValueOld)[0];
  if (!old) return undefined;
  const c = object.cursor(old);
  const size = c.u32('fill value size');
  return size === width ? c.take(size, 'fill value') : undefined;
}

function externalNames(object: Hdf5Object, message: Message): string {
  try {
    const c = object.cursor(message);
    c.skip(4);
    c.u16();
    const used = c.u16();
    const heapAddress = c.address();
    if (heapAddress === undefined) return 'unnamed';
    const heap = object.file.localHeap(heapAddress, object.place);
    const names: string[] = [];
    for (let i = 0; i < Math.min(used, 4); i++) {
      const nameOffset = c.length();
      c.length();
      c.length();
      names.push(`'${heapName(heap, nameOffset, object.place, 'name')}'`);
    }
    return names.join(', ');
  } catch {
    return 'unnamed';
  }
}

function unshuffle(data: Uint8Array, size: number): Uint8Array {
  if (size <= 1) return data;
  const count = Math.floor(data.length / size);
  const out = new Uint8Array(data.length);
  for (let byte = 0; byte < size; byte++) {
    const from = byte * count;
    for (let i = 0; i < count; i++) out[i * size + byte] = data[from + i]!;
  }
  out.set(data.subarray(count * size), count * size);
  return out;
}

/** Places a chunk's elements into the tensor, clipped where the chunk passes the dataset's edge. */
function copyChunk(out: Uint8Array, shape: number[], chunk: number[], offset: number[], data: Uint8Array, width: number): void {
  const rank = shape.length;
  const extent = chunk.map((c, d) => Math.min(c, shape[d]! - offset[d]!));
  const outStride = new Array<number>(rank);
  const chunkStride = new Array<number>(rank);
  let o = width;
  let k = width;
  for (let d = rank - 1; d >= 0; d--) {
    outStride[d] = o;
    chunkStride[d] = k;
    o *= shape[d]!;
    k *= chunk[d]!;
  }
  const rowBytes = extent[rank - 1]! * width;
  const visit = (d: number, outAt: number, chunkAt: number) => {
    if (d === rank - 1) {
      out.set(data.subarray(chunkAt, chunkAt + rowBytes), outAt);
      return;
    }
    for (let i = 0; i < extent[d]!; i++) visit(d + 1, outAt + i * outStride[d]!, chunkAt + i * chunkStride[d]!);
  };
  let start = 0;
  for (let d = 0; d < rank; d++) start += offset[d]! * outStride[d]!;
  visit(0, start, 0);
}
