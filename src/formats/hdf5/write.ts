import { writeAll, writeAtomic, yieldToSignals } from '../../core/atomic.js';
import { chunkBuffer, tensorChunks } from '../../core/chunks.js';
import type { DType } from '../../core/dtype.js';
import { usageError } from '../../core/errors.js';
import type { TensorInfo } from '../../core/statedict.js';

/**
 * An HDF5 writer for what Keras files hold, in the layout h5py writes by default (superblock 0,
 * version 1 object headers, groups as symbol tables: a v1 B-tree, a local heap for the names and
 * symbol table nodes), in pure TypeScript. Every address is computed before anything is written,
 * so the file goes out front to back: all metadata, then each dataset's values straight from its
 * tensor — one tensor in memory at a time, or one chunk where the source stores its bytes as-is.
 */

/**
 * An attribute's value: a string (scalar, variable-length UTF-8, as h5py stores a `str`), a list of
 * them (1-D), `{ fixed }` for fixed-length null-padded strings (h5py's `bytes`), or numbers.
 */
export type AttributeValue =
  | string
  | readonly string[]
  | { readonly fixed: string | readonly string[] }
  | { readonly dtype: DType; readonly shape: readonly [] | readonly [number]; readonly bytes: Uint8Array };

export class Hdf5Dataset {
  readonly attributes = new Map<string, AttributeValue>();
  constructor(readonly tensor: Pick<TensorInfo, 'dtype' | 'shape' | 'byteLength' | 'source' | 'read' | 'stored'>) {}
}

export class Hdf5Group {
  readonly attributes = new Map<string, AttributeValue>();
  readonly children = new Map<string, Hdf5Group | Hdf5Dataset>();

  /** The group at `path` below this one ('/'-separated), made where it does not exist yet. */
  group(path: string): Hdf5Group {
    let group: Hdf5Group = this;
    for (const part of pathParts(path)) {
      const child = group.children.get(part) ?? new Hdf5Group();
      if (!(child instanceof Hdf5Group)) throw usageError(`HDF5: '${path}' needs '${part}' to be a group, but it is a dataset`);
      group.children.set(part, child);
      group = child;
    }
    return group;
  }

  /** A new dataset at `path` holding `tensor`'s values, its parent groups made as needed. */
  dataset(path: string, tensor: Hdf5Dataset['tensor']): Hdf5Dataset {
    const parts = pathParts(path);
    const name = parts.pop();
    if (name === undefined) throw usageError(`HDF5: a dataset needs a name, got '${path}'`);
    const parent = this.group(parts.join('/'));
    if (parent.children.has(name)) throw usageError(`HDF5: two objects would be named '${path}'`);
    if (!DATATYPES[tensor.dtype]) throw usageError(`HDF5 cannot store '${tensor.source}' (${tensor.dtype})`);
    const dataset = new Hdf5Dataset(tensor);
    parent.children.set(name, dataset);
    return dataset;
  }
}

/** A path's link names; empty parts (`a//b`) collapse as HDF5 reads them, '.' names nothing. */
function pathParts(path: string): string[] {
  const parts = path.split('/').filter((p) => p !== '');
  const bad = parts.find((p) => p === '.' || p.includes('\0'));
  if (bad !== undefined) throw usageError(`HDF5 cannot name an object '${path}' (a '.' or NUL part)`);
  return parts;
}

/** Writes `root` as an HDF5 file, atomically (a temporary renamed into place). */
export async function writeHdf5(out: string, root: Hdf5Group): Promise<void> {
  const file = layOut(root);
  await writeAtomic(out, (fd) => writeLaidOut(fd, file));
}

// ---- Format constants (offsets and lengths are 8 bytes) ----

const UNDEFINED = -1;
/** Symbol table nodes hold up to 2·LEAF_K entries, group B-tree nodes up to 2·INTERNAL_K children: HDF5's defaults. */
const LEAF_K = 4;
const INTERNAL_K = 16;
const SUPERBLOCK_SIZE = 96;
const ENTRY_SIZE = 40;
const SNOD_SIZE = 8 + 2 * LEAF_K * ENTRY_SIZE;
const TREE_SIZE = 24 + (2 * INTERNAL_K + 1) * 8 + 2 * INTERNAL_K * 8;
const LOCAL_HEAP_HEADER = 32;
const OBJECT_HEADER_PREFIX = 16;
const COLLECTION_HEADER = 16;
const HEAP_OBJECT_HEADER = 16;
const MIN_COLLECTION = 4096;
/** A global heap collection's object indices are 16-bit; a new collection also starts past this size. */
const MAX_COLLECTION_OBJECTS = 0xffff;
const COLLECTION_TARGET = 1 << 20;
/** A v1 header message's size is a 16-bit field. */
const MAX_MESSAGE = 0xfff8;
/** A variable-length element on disk: length, global heap collection address, object index. */
const VLEN_SIZE = 16;

const MESSAGE = { dataspace: 0x01, datatype: 0x03, fillValue: 0x05, layout: 0x08, attribute: 0x0c, symbolTable: 0x11 } as const;

const align8 = (n: number) => (n + 7) & ~7;

/** Little-endian bytes, grown as needed. */
class Encoder {
  private bytes = new Uint8Array(256);
  private view = new DataView(this.bytes.buffer);
  length = 0;

  /** Reserves `n` bytes, returning where they start (callers take `bytes`/`view` after: growing replaces them). */
  private room(n: number): number {
    if (this.length + n > this.bytes.length) {
      const grown = new Uint8Array(Math.max(this.bytes.length * 2, this.length + n));
      grown.set(this.bytes.subarray(0, this.length));
      this.bytes = grown;
      this.view = new DataView(grown.buffer);
    }
    const at = this.length;
    this.length += n;
    return at;
  }

  u8(v: number): this {
    const at = this.room(1);
    this.view.setUint8(at, v);
    return this;
  }
  u16(v: number): this {
    const at = this.room(2);
    this.view.setUint16(at, v, true);
    return this;
  }
  u32(v: number): this {
    const at = this.room(4);
    this.view.setUint32(at, v, true);
    return this;
  }
  /** An offset or length; UNDEFINED becomes HDF5's undefined address (all ones). */
  u64(v: number): this {
    const at = this.room(8);
    this.view.setBigUint64(at, v === UNDEFINED ? 0xffffffffffffffffn : BigInt(v), true);
    return this;
  }
  raw(b: Uint8Array): this {
    const at = this.room(b.length);
    this.bytes.set(b, at);
    return this;
  }
  zeros(n: number): this {
    const at = this.room(n);
    this.bytes.fill(0, at, this.length);
    return this;
  }
  pad8(): this {
    return this.zeros(align8(this.length) - this.length);
  }
  done(): Uint8Array {
    return this.bytes.subarray(0, this.length);
  }
}

// ---- Datatypes ----

function fixedPoint(size: number, signed: boolean): Uint8Array {
  return new Encoder().u8(0x10).u8(signed ? 0x08 : 0).u16(0).u32(size).u16(0).u16(size * 8).done();
}

/** An IEEE float, little-endian, implied leading mantissa bit. */
function floatingPoint(size: number, exponentBits: number, mantissaBits: number): Uint8Array {
  const bits = size * 8;
  return new Encoder().u8(0x11).u8(0x20).u8(bits - 1).u8(0).u32(size)
    .u16(0).u16(bits).u8(mantissaBits).u8(exponentBits).u8(0).u8(mantissaBits).u32((1 << (exponentBits - 1)) - 1).done();
}

/** numpy's bool as h5py stores it: an enum of int8 with FALSE = 0 and TRUE = 1. */
function booleanEnum(): Uint8Array {
  const e = new Encoder().u8(0x18).u16(2).u8(0).u32(1).raw(fixedPoint(1, true));
  // Each name null-terminated and padded to a multiple of 8 bytes from its own start.
  for (const name of ['FALSE', 'TRUE']) e.raw(Buffer.from(name)).zeros(align8(name.length + 1) - name.length);
  return e.u8(0).u8(1).done();
}

const DATATYPES: Partial<Record<DType, { encoded: Uint8Array; size: number }>> = Object.fromEntries(
  ([
    ['float16', floatingPoint(2, 5, 10), 2], ['float32', floatingPoint(4, 8, 23), 4], ['float64', floatingPoint(8, 11, 52), 8],
    ['int8', fixedPoint(1, true), 1], ['int16', fixedPoint(2, true), 2], ['int32', fixedPoint(4, true), 4], ['int64', fixedPoint(8, true), 8],
    ['uint8', fixedPoint(1, false), 1], ['uint16', fixedPoint(2, false), 2], ['uint32', fixedPoint(4, false), 4], ['uint64', fixedPoint(8, false), 8],
    ['bool', booleanEnum(), 1],
  ] as const).map(([dtype, encoded, size]) => [dtype, { encoded, size }]),
);

/** Whether the writer has an HDF5 type for `dtype`. */
export function hdf5Stores(dtype: DType): boolean {
  return DATATYPES[dtype] !== undefined;
}

/** Variable-length UTF-8 string, null-terminated padding, over unsigned bytes (HDF5's own encoding of it). */
const VLEN_STRING = new Encoder().u8(0x19).u8(0x01).u8(0x01).u8(0).u32(VLEN_SIZE).raw(fixedPoint(1, false)).done();

function fixedString(length: number): Uint8Array {
  // Null-padded ASCII, as h5py stores numpy `S` strings.
  return new Encoder().u8(0x13).u8(0x01).u16(0).u32(length).done();
}

function dataspace(shape: readonly number[]): Uint8Array {
  const e = new Encoder().u8(1).u8(shape.length).u8(0).u8(0).u32(0);
  for (const d of shape) e.u64(d);
  return e.done();
}

// ---- Layout ----

/** A string in a global heap collection: which collection, which object. */
interface HeapRef { collection: number; index: number; length: number }

interface Collection { objects: Uint8Array[]; size: number; address: number }

/** Variable-length strings, packed into global heap collections in the order they are added. */
class GlobalHeap {
  readonly collections: Collection[] = [];

  add(text: string): HeapRef {
    const bytes = Buffer.from(text, 'utf8');
    let current = this.collections[this.collections.length - 1];
    if (!current || current.objects.length >= MAX_COLLECTION_OBJECTS || current.size >= COLLECTION_TARGET) {
      current = { objects: [], size: COLLECTION_HEADER, address: 0 };
      this.collections.push(current);
    }
    current.objects.push(bytes);
    current.size += HEAP_OBJECT_HEADER + align8(bytes.length);
    return { collection: this.collections.length - 1, index: current.objects.length, length: bytes.length };
  }

  /** Sizes on disk: at least 4 KiB, with room for the free-space object that ends a collection. */
  static diskSize(c: Collection): number {
    return Math.max(MIN_COLLECTION, c.size + HEAP_OBJECT_HEADER);
  }
}

interface PlacedAttribute { name: Uint8Array; datatype: Uint8Array; space: Uint8Array; data: (heap: GlobalHeap) => Uint8Array; size: number }

interface PlacedNode {
  node: Hdf5Group | Hdf5Dataset;
  path: string;
  header: number;
  headerSize: number;
  attributes: PlacedAttribute[];
  group?: PlacedGroup;
  /** Where a dataset's values go (UNDEFINED when it has none). */
  data?: number;
}

interface PlacedGroup {
  children: [Uint8Array, PlacedNode][];
  heap: number;
  heapData: number;
  nameOffsets: number[];
  leaves: number[];
  /** B-tree nodes by level, the root level last; each node's children are indices into the level below (leaves at level 0). */
  levels: { address: number; first: number; count: number }[][];
}

interface LaidOut { nodes: PlacedNode[]; heap: GlobalHeap; metadataSize: number; end: number }

function placeAttribute(owner: string, name: string, value: AttributeValue, heap: GlobalHeap): PlacedAttribute {
  const nameBytes = Buffer.from(name, 'utf8');
  let datatype: Uint8Array;
  let shape: readonly number[];
  let data: (heap: GlobalHeap) => Uint8Array;
  let elementSize: number;
  if (typeof value === 'string' || Array.isArray(value)) {
    const texts: readonly string[] = typeof value === 'string' ? [value] : value;
    const refs = texts.map((t) => heap.add(t));
    datatype = VLEN_STRING;
    elementSize = VLEN_SIZE;
    shape = typeof value === 'string' ? [] : [texts.length];
    data = (h) => {
      const e = new Encoder();
      for (const r of refs) e.u32(r.length).u64(h.collections[r.collection]!.address).u32(r.index);
      return e.done();
    };
  } else if ('fixed' in value) {
    const texts = (typeof value.fixed === 'string' ? [value.fixed] : value.fixed).map((t) => Buffer.from(t, 'utf8'));
    const length = Math.max(1, ...texts.map((t) => t.length));
    datatype = fixedString(length);
    elementSize = length;
    shape = typeof value.fixed === 'string' ? [] : [texts.length];
    const bytes = new Uint8Array(length * texts.length);
    texts.forEach((t, i) => bytes.set(t, i * length));
    data = () => bytes;
  } else {
    const numeric = value as Extract<AttributeValue, { dtype: DType }>;
    const type = DATATYPES[numeric.dtype];
    if (!type) throw usageError(`HDF5 cannot store attribute '${name}' of '${owner}' (${numeric.dtype})`);
    datatype = type.encoded;
    elementSize = type.size;
    shape = numeric.shape;
    const expected = shape.reduce((a, b) => a * b, 1) * type.size;
    if (numeric.bytes.length !== expected) throw usageError(`HDF5: attribute '${name}' of '${owner}' has ${numeric.bytes.length} bytes, ${expected} for its shape`);
    data = () => numeric.bytes;
  }
  const space = dataspace(shape);
  const elements = shape.reduce((a, b) => a * b, 1);
  const size = align8(8 + align8(nameBytes.length + 1) + align8(datatype.length) + align8(space.length) + elements * elementSize);
  if (size > MAX_MESSAGE) throw usageError(`HDF5: attribute '${name}' of '${owner}' takes ${size} bytes, more than an object header message holds (64 KiB)`);
  return { name: nameBytes, datatype, space, data, size };
}

const byName = (a: [Uint8Array, unknown], b: [Uint8Array, unknown]) => Buffer.compare(a[0], b[0]);

/** Every address: superblock, then each object (header; a group's local heap, B-tree and symbol nodes), global heaps, then the values. */
function layOut(root: Hdf5Group): LaidOut {
  const heap = new GlobalHeap();
  const nodes: PlacedNode[] = [];
  let end = SUPERBLOCK_SIZE;
  const allocate = (size: number) => {
    const at = end;
    end += size;
    return at;
  };

  const place = (node: Hdf5Group | Hdf5Dataset, path: string): PlacedNode => {
    const attributes = [...node.attributes].map(([name, value]) => placeAttribute(path, name, value, heap));
    const ownMessages = node instanceof Hdf5Group ? [16] : datasetMessages(node.tensor).map((m) => m.data.length);
    const headerSize = OBJECT_HEADER_PREFIX + [...ownMessages.map(align8), ...attributes.map((a) => a.size)].reduce((a, b) => a + b + 8, 0);
    const placed: PlacedNode = { node, path, header: allocate(headerSize), headerSize, attributes };
    nodes.push(placed);
    if (node instanceof Hdf5Dataset) return placed;

    const named = [...node.children].map(([name, child]) => [Buffer.from(name, 'utf8'), child] as [Uint8Array, Hdf5Group | Hdf5Dataset]).sort(byName);
    // The local heap holds "" at 0 (the first key of the B-tree) and every child's name.
    const nameOffsets: number[] = [];
    let heapSize = 8;
    for (const [name] of named) {
      nameOffsets.push(heapSize);
      heapSize += align8(name.length + 1);
    }
    const heapAddress = allocate(LOCAL_HEAP_HEADER + heapSize);
    const leaves = Array.from({ length: Math.ceil(named.length / (2 * LEAF_K)) }, () => 0);
    const levels: PlacedGroup['levels'] = [];
    for (let below = leaves.length; ;) {
      const count = Math.max(1, Math.ceil(below / (2 * INTERNAL_K)));
      levels.push(Array.from({ length: count }, (_, i) => ({ address: allocate(TREE_SIZE), first: i * 2 * INTERNAL_K, count: Math.min(2 * INTERNAL_K, below - i * 2 * INTERNAL_K) })));
      if (count === 1) break;
      below = count;
    }
    for (let i = 0; i < leaves.length; i++) leaves[i] = allocate(SNOD_SIZE);
    const group: PlacedGroup = { children: [], heap: heapAddress, heapData: heapSize, nameOffsets, leaves, levels };
    placed.group = group;
    for (const [name, child] of named) group.children.push([name, place(child, `${path === '/' ? '' : path}/${name.toString()}`)]);
    return placed;
  };
  place(root, '/');
  for (const c of heap.collections) c.address = allocate(GlobalHeap.diskSize(c));
  const metadataSize = end;
  for (const n of nodes) {
    if (!(n.node instanceof Hdf5Dataset)) continue;
    const bytes = n.node.tensor.byteLength;
    n.data = bytes ? allocate(bytes) : UNDEFINED;
  }
  return { nodes, heap, metadataSize, end };
}

function datasetMessages(tensor: Hdf5Dataset['tensor'], address = UNDEFINED): { type: number; flags: number; data: Uint8Array }[] {
  const type = DATATYPES[tensor.dtype]!;
  return [
    { type: MESSAGE.dataspace, flags: 0, data: dataspace(tensor.shape) },
    { type: MESSAGE.datatype, flags: 1, data: type.encoded },
    // Fill value (version 2): allocated late, written if set, the default (zeros).
    { type: MESSAGE.fillValue, flags: 1, data: new Encoder().u8(2).u8(2).u8(2).u8(1).u32(0).done() },
    // Contiguous storage (layout version 3).
    { type: MESSAGE.layout, flags: 0, data: new Encoder().u8(3).u8(1).u64(address).u64(tensor.byteLength).done() },
  ];
}

// ---- Encoding ----

function symbolEntry(e: Encoder, nameOffset: number, node: PlacedNode): void {
  e.u64(nameOffset).u64(node.header);
  // Groups cache their B-tree and heap addresses in the entry (cache type 1), as HDF5 does.
  if (node.group) e.u32(1).u32(0).u64(node.group.levels[node.group.levels.length - 1]![0]!.address).u64(node.group.heap);
  else e.u32(0).u32(0).zeros(16);
}

function encodeHeader(n: PlacedNode, heap: GlobalHeap): Uint8Array {
  const messages = n.node instanceof Hdf5Dataset
    ? datasetMessages(n.node.tensor, n.data)
    : [{ type: MESSAGE.symbolTable, flags: 0, data: new Encoder().u64(n.group!.levels[n.group!.levels.length - 1]![0]!.address).u64(n.group!.heap).done() }];
  for (const a of n.attributes) {
    const data = new Encoder().u8(1).u8(0).u16(a.name.length + 1).u16(a.datatype.length).u16(a.space.length)
      .raw(a.name).u8(0).pad8().raw(a.datatype).pad8().raw(a.space).pad8().raw(a.data(heap)).pad8().done();
    messages.push({ type: MESSAGE.attribute, flags: 0, data });
  }
  const body = new Encoder();
  for (const m of messages) body.u16(m.type).u16(align8(m.data.length)).u8(m.flags).zeros(3).raw(m.data).pad8();
  const e = new Encoder().u8(1).u8(0).u16(messages.length).u32(1).u32(body.length).u32(0).raw(body.done());
  if (e.length !== n.headerSize) throw new Error(`HDF5 writer: header of ${n.path} is ${e.length} bytes, ${n.headerSize} planned`);
  return e.done();
}

function encodeGroupParts(g: PlacedGroup, put: (address: number, bytes: Uint8Array) => void): void {
  const heapBytes = new Encoder().raw(Buffer.from('HEAP')).u8(0).zeros(3).u64(g.heapData).u64(1).u64(g.heap + LOCAL_HEAP_HEADER).zeros(8);
  g.children.forEach(([name], i) => heapBytes.zeros(g.nameOffsets[i]! + LOCAL_HEAP_HEADER - heapBytes.length).raw(name).u8(0).pad8());
  put(g.heap, heapBytes.done());

  const perLeaf = 2 * LEAF_K;
  g.leaves.forEach((address, leaf) => {
    const entries = g.children.slice(leaf * perLeaf, (leaf + 1) * perLeaf);
    const e = new Encoder().raw(Buffer.from('SNOD')).u8(1).u8(0).u16(entries.length);
    entries.forEach(([, node], i) => symbolEntry(e, g.nameOffsets[leaf * perLeaf + i]!, node));
    put(address, e.zeros(SNOD_SIZE - e.length).done());
  });

  // Keys are heap offsets of names: key i+1 is the last name in child i's subtree, key 0 the last name before it ("" at 0 for the leftmost).
  const lastChildOfLeaf = (leaf: number) => Math.min(g.children.length, (leaf + 1) * perLeaf) - 1;
  const nameKey = (child: number) => (child < 0 ? 0 : g.nameOffsets[child]!);
  let lastOf: (index: number) => number = lastChildOfLeaf;
  let firstOf: (index: number) => number = (leaf) => leaf * perLeaf;
  g.levels.forEach((level, depth) => {
    const below = depth === 0 ? g.leaves : g.levels[depth - 1]!.map((n) => n.address);
    const [belowLast, belowFirst] = [lastOf, firstOf];
    level.forEach((node, i) => {
      const e = new Encoder().raw(Buffer.from('TREE')).u8(0).u8(depth).u16(node.count)
        .u64(i > 0 ? level[i - 1]!.address : UNDEFINED).u64(i + 1 < level.length ? level[i + 1]!.address : UNDEFINED);
      e.u64(nameKey(node.count ? belowFirst(node.first) - 1 : -1));
      for (let c = node.first; c < node.first + node.count; c++) e.u64(below[c]!).u64(nameKey(belowLast(c)));
      put(node.address, e.zeros(TREE_SIZE - e.length).done());
    });
    lastOf = (index) => belowLast(level[index]!.first + level[index]!.count - 1);
    firstOf = (index) => belowFirst(level[index]!.first);
  });
}

function encodeMetadata(file: LaidOut): Uint8Array {
  const out = new Uint8Array(file.metadataSize);
  const put = (address: number, bytes: Uint8Array) => out.set(bytes, address);
  const root = file.nodes[0]!;
  const superblock = new Encoder().raw(Uint8Array.of(0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a))
    .u8(0).u8(0).u8(0).u8(0).u8(0).u8(8).u8(8).u8(0).u16(LEAF_K).u16(INTERNAL_K).u32(0)
    .u64(0).u64(UNDEFINED).u64(file.end).u64(UNDEFINED);
  symbolEntry(superblock, 0, root);
  put(0, superblock.done());
  for (const n of file.nodes) {
    put(n.header, encodeHeader(n, file.heap));
    if (n.group) encodeGroupParts(n.group, put);
  }
  for (const c of file.heap.collections) {
    const size = GlobalHeap.diskSize(c);
    const e = new Encoder().raw(Buffer.from('GCOL')).u8(1).zeros(3).u64(size);
    c.objects.forEach((bytes, i) => e.u16(i + 1).u16(0).u32(0).u64(bytes.length).raw(bytes).pad8());
    // Object 0 is the free space left: its size counts its own header.
    const free = size - e.length;
    e.u16(0).u16(0).u32(0).u64(free);
    put(c.address, e.done());
  }
  return out;
}

async function writeLaidOut(fd: number, file: LaidOut): Promise<void> {
  writeAll(fd, encodeMetadata(file));
  const buffer = chunkBuffer(8 << 20);
  for (const n of file.nodes) {
    if (!(n.node instanceof Hdf5Dataset) || n.data === UNDEFINED) continue;
    await yieldToSignals();
    const tensor = n.node.tensor;
    let written = 0;
    for await (const chunk of tensorChunks(tensor as TensorInfo, buffer)) {
      writeAll(fd, chunk);
      written += chunk.length;
    }
    if (written !== tensor.byteLength) throw new Error(`'${tensor.source}' read ${written} bytes, expected ${tensor.byteLength}`);
  }
}
