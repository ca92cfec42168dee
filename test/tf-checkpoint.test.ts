import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { open } from '../src/index.js';
import { crc32c, maskCrc } from '../src/formats/tf-checkpoint/crc32c.js';
import { snappyUncompress } from '../src/formats/tf-checkpoint/snappy.js';
import { CORPUS, HAS_CORPUS, runCli, tempDir, loadOutcome } from './helpers.js';
import { python, pythonHas } from './python.js';

/**
 * TensorFlow checkpoints built byte by byte here (no TensorFlow in CI): a LevelDB table `.index`
 * with prefix-compressed keys, restart points and CRC trailers, BundleHeaderProto and
 * BundleEntryProto values, data shards with masked CRC32C per tensor and the DT_STRING layout.
 */
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const ITERATIONS = Number(process.env.CKPT_FUZZ_ITERATIONS ?? 300);
const noSnappy = !pythonHas('snappy') && 'Debian python3-snappy is not installed';

// --- protobuf and table encoding ------------------------------------------------------------

function varint(n: number | bigint): number[] {
  let v = BigInt.asUintN(64, BigInt(n));
  const out: number[] = [];
  do {
    const b = Number(v & 0x7fn);
    v >>= 7n;
    out.push(v ? b | 0x80 : b);
  } while (v);
  return out;
}
const numberField = (no: number, value: number | bigint) => [...varint(no * 8), ...varint(value)];
const bytesField = (no: number, bytes: ArrayLike<number>) => [...varint(no * 8 + 2), ...varint(bytes.length), ...Array.from(bytes)];
const fixed32Field = (no: number, v: number) => [...varint(no * 8 + 5), v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, v >>> 24];
const u32 = (v: number) => [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, v >>> 24];
const utf8 = (s: string) => new TextEncoder().encode(s);

const DT = { float: 1, double: 2, uint8: 4, string: 7, complex64: 8, int64: 9, bool: 10, bfloat16: 14, half: 19, variant: 21, int4: 29 };

interface FixtureTensor {
  key: string;
  dtype: number;
  shape: number[];
  data?: Uint8Array;
  strings?: Uint8Array[];
  shard?: number;
  /** Extra BundleEntryProto bytes (e.g. a slices field). */
  extra?: number[];
}

interface TableOptions {
  restartInterval?: number;
  blockSize?: number;
  /** Compresses a block (returns Snappy bytes) or leaves it stored. */
  compress?: (contents: Uint8Array) => Uint8Array | undefined;
  /** Changes a block's contents before its checksum is computed (the CRC still matches). */
  mutateBlock?: (contents: Uint8Array) => Uint8Array;
  /** Overrides the compression type byte of every block. */
  blockType?: number;
}

interface BundleOptions extends TableOptions {
  numShards?: number;
  headerBytes?: number[];
  noHeader?: boolean;
}

function block(items: [Uint8Array, Uint8Array][], restartInterval: number): Uint8Array {
  const out: number[] = [];
  const restarts: number[] = [];
  let previous: Uint8Array = new Uint8Array(0);
  items.forEach(([key, value], i) => {
    let shared = 0;
    if (i % restartInterval === 0) restarts.push(out.length);
    else while (shared < Math.min(key.length, previous.length) && key[shared] === previous[shared]) shared++;
    out.push(...varint(shared), ...varint(key.length - shared), ...varint(value.length), ...key.subarray(shared), ...value);
    previous = key;
  });
  if (restarts.length === 0) restarts.push(0);
  for (const r of restarts) out.push(...u32(r));
  out.push(...u32(restarts.length));
  return Uint8Array.from(out);
}

/** A LevelDB table of sorted entries: data blocks, an empty metaindex, the index, the footer. */
function table(entries: [Uint8Array, Uint8Array][], options: TableOptions = {}): Uint8Array {
  const { restartInterval = 16, blockSize = 4096 } = options;
  const parts: number[] = [];
  const writeBlock = (contents: Uint8Array) => {
    const offset = parts.length;
    const compressed = options.compress?.(contents);
    const mutated = options.mutateBlock ? options.mutateBlock(compressed ?? contents) : (compressed ?? contents);
    const type = options.blockType ?? (compressed ? 1 : 0);
    parts.push(...mutated, type, ...u32(maskCrc(crc32c(Uint8Array.from([...mutated, type])))));
    return [...varint(offset), ...varint(mutated.length)];
  };
  const index: [Uint8Array, Uint8Array][] = [];
  let pending: [Uint8Array, Uint8Array][] = [];
  let pendingBytes = 0;
  const flush = () => {
    if (!pending.length) return;
    index.push([pending[pending.length - 1]![0], Uint8Array.from(writeBlock(block(pending, restartInterval)))]);
    pending = [];
    pendingBytes = 0;
  };
  for (const entry of entries) {
    pending.push(entry);
    pendingBytes += entry[0].length + entry[1].length;
    if (pendingBytes >= blockSize) flush();
  }
  flush();
  const meta = writeBlock(block([], 1));
  const indexHandle = writeBlock(block(index, 1));
  const handles = [...meta, ...indexHandle];
  parts.push(...handles, ...new Array(40 - handles.length).fill(0), 0x57, 0xfb, 0x80, 0x8b, 0x24, 0x75, 0x47, 0xdb);
  return Uint8Array.from(parts);
}

/** The stored bytes and entry CRC of a DT_STRING tensor. */
function stringPayload(strings: Uint8Array[]): { bytes: Uint8Array; crc: number } {
  let crc = 0;
  const lengths: number[] = [];
  for (const s of strings) {
    lengths.push(...varint(s.length));
    crc = crc32c(Uint8Array.from(u32(s.length)), crc);
  }
  const checksum = Uint8Array.from(u32(maskCrc(crc)));
  crc = crc32c(checksum, crc);
  for (const s of strings) crc = crc32c(s, crc);
  return { bytes: Uint8Array.from([...lengths, ...checksum, ...strings.flatMap((s) => Array.from(s))]), crc: maskCrc(crc) };
}

/** Writes `<dir>/<prefix>.index` and its shards; returns the .index path. */
function bundle(dir: string, prefix: string, tensors: FixtureTensor[], options: BundleOptions = {}): string {
  const numShards = options.numShards ?? 1;
  const shards: number[][] = Array.from({ length: numShards }, () => []);
  const entries: [Uint8Array, Uint8Array][] = options.noHeader ? [] : [[new Uint8Array(0), Uint8Array.from(options.headerBytes ?? numberField(1, numShards))]];
  for (const t of [...tensors].sort((a, b) => Buffer.compare(Buffer.from(a.key), Buffer.from(b.key)))) {
    const shard = shards[t.shard ?? 0]!;
    const payload = t.strings ? stringPayload(t.strings) : { bytes: t.data!, crc: maskCrc(crc32c(t.data!)) };
    const shape = bytesField(2, t.shape.flatMap((d) => bytesField(2, numberField(1, d))));
    const value = [...numberField(1, t.dtype), ...shape, ...numberField(3, t.shard ?? 0), ...numberField(4, shard.length), ...numberField(5, payload.bytes.length), ...fixed32Field(6, payload.crc), ...(t.extra ?? [])];
    shard.push(...payload.bytes);
    entries.push([utf8(t.key), Uint8Array.from(value)]);
  }
  const pad = (n: number) => String(n).padStart(5, '0');
  shards.forEach((bytes, i) => fs.writeFileSync(path.join(dir, `${prefix}.data-${pad(i)}-of-${pad(numShards)}`), Uint8Array.from(bytes)));
  const index = path.join(dir, `${prefix}.index`);
  fs.writeFileSync(index, table(entries, options));
  return index;
}

/** TrackableObjectGraph with one node per variable: attributes {name, full_name, checkpoint_key}. */
function objectGraph(variables: [key: string, fullName: string][]): Uint8Array {
  const nodes = variables.flatMap(([key, fullName]) => bytesField(1, bytesField(2, [...bytesField(1, utf8('VARIABLE_VALUE')), ...bytesField(2, utf8(fullName)), ...bytesField(3, utf8(key))])));
  return Uint8Array.from(nodes);
}

/** Valid Snappy made of literals only (the decoder's copies are checked against libsnappy output). */
function literalSnappy(bytes: Uint8Array): Uint8Array {
  const out = [...varint(bytes.length)];
  for (let i = 0; i < bytes.length; i += 60) {
    const chunk = bytes.subarray(i, i + 60);
    out.push((chunk.length - 1) << 2, ...chunk);
  }
  return Uint8Array.from(out);
}

const f32 = (...v: number[]) => new Uint8Array(Float32Array.from(v).buffer);
const VV = '/.ATTRIBUTES/VARIABLE_VALUE';

/** A Keras-style TF2 checkpoint: two layers, an Adam optimizer with slots, the object graph. */
function tf2Tensors(): FixtureTensor[] {
  const model: FixtureTensor[] = [
    { key: `layer_with_weights-0/kernel${VV}`, dtype: DT.float, shape: [2, 3], data: f32(1, 2, 3, 4, 5, 6) },
    { key: `layer_with_weights-0/bias${VV}`, dtype: DT.float, shape: [3], data: f32(0.5, -1, 2) },
    { key: `layer_with_weights-1/kernel${VV}`, dtype: DT.half, shape: [3, 1], data: Uint8Array.from([0, 0x3c, 0, 0x40, 0, 0xc0]) },
    { key: `optimizer/iter${VV}`, dtype: DT.int64, shape: [], data: new Uint8Array(BigInt64Array.from([7n]).buffer) },
    { key: `layer_with_weights-0/kernel/.OPTIMIZER_SLOT/optimizer/m${VV}`, dtype: DT.float, shape: [2, 3], data: f32(0, 0, 0, 0, 0, 1) },
  ];
  const graph = objectGraph([
    [`layer_with_weights-0/kernel${VV}`, 'dense/kernel'],
    [`layer_with_weights-0/bias${VV}`, 'dense/bias'],
    [`layer_with_weights-1/kernel${VV}`, 'dense_1/kernel'],
    [`optimizer/iter${VV}`, 'Adam/iter'],
  ]);
  return [...model, { key: '_CHECKPOINTABLE_OBJECT_GRAPH', dtype: DT.string, shape: [], strings: [graph] }];
}


function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s ^ (s >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0;
    return s / 2 ** 32;
  };
}

// --- tests ------------------------------------------------------------------------------------

describe('TensorFlow checkpoint reader', () => {
  test('TF2: tensors in key order, canonical names from the object graph, training state only with all', async () => {
    const index = bundle(tempDir(), 'ckpt-1', tf2Tensors());
    const dict = await open(index);
    assert.equal(dict.format, 'tf-checkpoint');
    assert.deepEqual(dict.tensors.map((t) => [t.name, t.source, t.dtype, t.shape]), [
      ['_CHECKPOINTABLE_OBJECT_GRAPH', '_CHECKPOINTABLE_OBJECT_GRAPH', 'string', []],
      ['dense.bias', `layer_with_weights-0/bias${VV}`, 'float32', [3]],
      ['dense.kernel', `layer_with_weights-0/kernel${VV}`, 'float32', [2, 3]],
      ['dense_1.kernel', `layer_with_weights-1/kernel${VV}`, 'float16', [3, 1]],
    ]);
    assert.equal(sha(await dict.tensors[2]!.read()), sha(f32(1, 2, 3, 4, 5, 6)));
    assert.deepEqual(await dict.tensors[3]!.read(), Uint8Array.from([0, 0x3c, 0, 0x40, 0, 0xc0]));
    await assert.rejects(dict.tensors[0]!.read(), /string tensor/);
    await assert.rejects(dict.tensors[1]!.readStrings(), /float32, not strings/);
    assert.equal(dict.metadata.optimizerTensors, 2, 'the hidden slot and step counter are counted');
    await dict.close();

    const all = await open(index, { all: true });
    const training = all.tensors.filter((t) => t.group === 'optimizer').map((t) => [t.name, t.dtype]);
    assert.deepEqual(training, [['layer_with_weights-0.kernel.OPTIMIZER_SLOT.optimizer.m', 'float32'], ['Adam.iter', 'int64']]);
    await all.close();
  });

  test('TF1 Saver names: slots and step counters only with all; a folder opens the checkpoint its checkpoint file names', async () => {
    const dir = tempDir();
    const tensors: FixtureTensor[] = [
      { key: 'conv1/weights', dtype: DT.float, shape: [1, 1, 1, 2], data: f32(1, 2) },
      { key: 'conv1/weights/Adam', dtype: DT.float, shape: [1, 1, 1, 2], data: f32(0, 0) },
      { key: 'conv1/weights/Adam_1', dtype: DT.float, shape: [1, 1, 1, 2], data: f32(0, 0) },
      { key: 'beta1_power', dtype: DT.float, shape: [], data: f32(0.9) },
      { key: 'global_step', dtype: DT.int64, shape: [], data: new Uint8Array(8) },
      { key: 'logits/bias', dtype: DT.double, shape: [2], data: new Uint8Array(Float64Array.from([1, 2]).buffer) },
    ];
    bundle(dir, 'model.ckpt-100', tensors);
    bundle(dir, 'model.ckpt-200', tensors.map((t) => ({ ...t, data: new Uint8Array(t.data!.length) })));
    fs.writeFileSync(path.join(dir, 'checkpoint'), 'model_checkpoint_path: "/elsewhere/train/model.ckpt-100"\nall_model_checkpoint_paths: "model.ckpt-100"\n');
    const dict = await open(dir);
    assert.equal(path.basename(dict.path), 'model.ckpt-100.index');
    assert.deepEqual(dict.tensors.map((t) => t.name), ['conv1.weights', 'logits.bias']);
    assert.match(runCli(['inspect', dir]).stdout, / · 4 optimizer tensors not shown \(--all\)$/m);
    assert.deepEqual(await dict.tensors[0]!.read(), f32(1, 2));
    await dict.close();
    const all = await open(dir, { all: true });
    assert.equal(all.tensors.length, 6);
    await all.close();

    fs.writeFileSync(path.join(dir, 'checkpoint'), 'model_checkpoint_path: "model.ckpt-300"\n');
    const stale = runCli(['inspect', dir]);
    assert.equal(stale.status, 4);
    assert.match(stale.stderr, /names 'model\.ckpt-300' but 'model\.ckpt-300\.index' is not in the folder; \.index files in the folder: model\.ckpt-100\.index, model\.ckpt-200\.index/);
    fs.writeFileSync(path.join(dir, 'checkpoint'), 'model_checkpoint_path: "../elsewhere/model.ckpt-100"\n');
    const outside = runCli(['inspect', dir]);
    assert.equal(outside.status, 3);
    assert.match(outside.stderr, /model_checkpoint_path: file path '\.\.\/elsewhere\/model\.ckpt-100\.index' contains '\.\.'/);
    fs.rmSync(path.join(dir, 'checkpoint'));
    const ambiguous = runCli(['inspect', dir]);
    assert.equal(ambiguous.status, 3);
    assert.match(ambiguous.stderr, /expected one TensorFlow checkpoint \(\.index file\) or a 'checkpoint' file; \.index files in the folder: model\.ckpt-100\.index, model\.ckpt-200\.index/);
    fs.rmSync(path.join(dir, 'model.ckpt-100.index'));
    const only = await open(dir);
    assert.equal(path.basename(only.path), 'model.ckpt-200.index');
    await only.close();
  });

  test('shards, several data blocks, short restart intervals, Snappy blocks, every dtype and strings', async () => {
    const strings = ['', 'hello', 'x'.repeat(300)].map(utf8);
    const tensors: FixtureTensor[] = [
      ...Array.from({ length: 40 }, (_, i): FixtureTensor => ({ key: `block_${String(i).padStart(2, '0')}/kernel`, dtype: DT.float, shape: [2], data: f32(i, -i), shard: i % 3 })),
      { key: 'b/bf16', dtype: DT.bfloat16, shape: [2], data: Uint8Array.from([0x80, 0x3f, 0, 0x40]), shard: 1 },
      { key: 'b/bool', dtype: DT.bool, shape: [3], data: Uint8Array.from([1, 0, 1]), shard: 2 },
      { key: 'b/complex', dtype: DT.complex64, shape: [1], data: f32(1, -1) },
      { key: 'b/empty', dtype: DT.float, shape: [0, 4], data: new Uint8Array(0) },
      { key: 'b/u8', dtype: DT.uint8, shape: [2, 2], data: Uint8Array.from([1, 2, 3, 4]) },
      { key: 'b/vocab', dtype: DT.string, shape: [3], strings, shard: 2 },
      { key: 'b/iterator', dtype: DT.variant, shape: [], data: Uint8Array.from([1, 2, 3]) },
      { key: 'b/int4', dtype: DT.int4, shape: [2], data: Uint8Array.from([1, 0xf]) },
    ];
    const listings = [];
    for (const options of [{}, { restartInterval: 3, blockSize: 200 }, { restartInterval: 1, blockSize: 64, compress: literalSnappy }]) {
      const index = bundle(tempDir(), 'sharded', tensors, { numShards: 3, ...options });
      const dict = await open(index);
      const listing = [];
      for (const t of dict.tensors) listing.push([t.source, t.name, t.dtype, t.shape, t.byteLength, t.dtype === 'string' ? (await t.readStrings()).map((s) => Buffer.from(s).toString()) : sha(await t.read())]);
      assert.deepEqual(dict.metadata, { numShards: 3, unsupported: [
        { key: 'b/int4', dtype: 'DT_INT4', reason: 'no ckpt dtype for it' },
        { key: 'b/iterator', dtype: 'DT_VARIANT', reason: 'no ckpt dtype for it' },
      ] });
      await dict.close();
      listings.push(listing);
    }
    assert.deepEqual(listings[1], listings[0]);
    assert.deepEqual(listings[2], listings[0]);
    const byKey = new Map(listings[0]!.map((l) => [l[0], l]));
    assert.equal(listings[0]!.length, 46);
    assert.deepEqual(byKey.get('b/vocab')!.slice(2), ['string', [3], 305, ['', 'hello', 'x'.repeat(300)]]);
    assert.deepEqual(byKey.get('block_07/kernel')!.slice(1), ['block_07.kernel', 'float32', [2], 8, sha(f32(7, -7))]);
    assert.deepEqual(byKey.get('b/empty')!.slice(2), ['float32', [0, 4], 0, sha(new Uint8Array(0))]);
  });

  test('an index whose blocks libsnappy compressed reads the same', { skip: noSnappy }, async () => {
    const compress = (b: Uint8Array) => Uint8Array.from(Buffer.from(python('import snappy, sys; print(snappy.compress(bytes.fromhex(sys.argv[1])).hex())', Buffer.from(b).toString('hex')).trim(), 'hex'));
    const tensors = Array.from({ length: 30 }, (_, i): FixtureTensor => ({ key: `model/layer_${i}/weights/.ATTRIBUTES/VARIABLE_VALUE`, dtype: DT.float, shape: [1], data: f32(i) }));
    const plain = await open(bundle(tempDir(), 'c', tensors));
    const snappy = await open(bundle(tempDir(), 'c', tensors, { compress, blockSize: 1024 }));
    assert.deepEqual(snappy.tensors.map((t) => [t.source, t.byteLength]), plain.tensors.map((t) => [t.source, t.byteLength]));
    assert.deepEqual(await snappy.tensors[29]!.read(), await plain.tensors[29]!.read());
    await plain.close();
    await snappy.close();
  });

  test('snappy: copies with 1-, 2- and 4-byte offsets, overlapping copies, bad input refused', () => {
    const fail = (what: string) => new Error(what);
    // libsnappy's output for "abc" × 18: a literal, then a copy of 51 overlapping itself (2-byte offset).
    assert.equal(Buffer.from(snappyUncompress(Uint8Array.from([0x36, 0x08, 0x61, 0x62, 0x63, 0xca, 0x03, 0x00]), 100, fail)).toString(), 'abc'.repeat(18));
    // Literal "ab", then a copy of 4 at offset 2 (1-byte offset form).
    assert.equal(Buffer.from(snappyUncompress(Uint8Array.from([6, 0x04, 0x61, 0x62, 0x01, 0x02]), 100, fail)).toString(), 'ababab');
    // Literal "ab", then a copy of 4 at offset 2 with a 4-byte offset, then 2 more with a 2-byte offset.
    assert.equal(Buffer.from(snappyUncompress(Uint8Array.from([8, 0x04, 0x61, 0x62, 0x0f, 2, 0, 0, 0, 0x06, 2, 0]), 100, fail)).toString(), 'abababab');
    assert.throws(() => snappyUncompress(Uint8Array.from([4, 0x0d, 5, 0]), 100, fail), /copy offset 5 at output 0 points outside/);
    assert.throws(() => snappyUncompress(Uint8Array.from([0xff, 0xff, 0xff, 0x7f]), 100, fail), /more than the 100 allowed/);
    assert.throws(() => snappyUncompress(Uint8Array.from([5, 0x08, 0x61]), 100, fail), /literal runs past the end/);
    assert.throws(() => snappyUncompress(Uint8Array.from([5, 0x00, 0x61]), 100, fail), /produced 1 bytes, declared 5/);
  });

  test('CRC-32C matches the standard check value', () => {
    assert.equal(crc32c(utf8('123456789')), 0xe3069283);
    assert.equal(crc32c(utf8('56789'), crc32c(utf8('1234'))), 0xe3069283);
  });

  test('the corpus checkpoint: names from its object graph, values checked against their CRCs', { skip: HAS_CORPUS ? false : 'no corpus' }, async () => {
    const dict = await open(path.join(CORPUS, 'tf-checkpoint/tf2-keras-save-weights-mnist/cp-0000.ckpt.index'));
    assert.deepEqual(dict.tensors.map((t) => t.name), ['_CHECKPOINTABLE_OBJECT_GRAPH', 'dense_4.bias', 'dense_4.kernel', 'dense_5.bias', 'dense_5.kernel']);
    // Listing read the index and the 566-byte object graph, not the 1.6 MB of weights.
    assert.ok(dict.bytesRead!() < 10_000, `listing read ${dict.bytesRead!()} bytes`);
    for (const t of dict.tensors.slice(1)) assert.equal((await t.read()).length, t.byteLength);
    await dict.close();
    // To safetensors without the object graph (a string, which safetensors cannot hold): same values.
    const out = path.join(tempDir(), 'mnist.safetensors');
    const strip = runCli(['strip', '--exclude', '_CHECKPOINTABLE_OBJECT_GRAPH', '-o', out, dict.path]);
    assert.equal(strip.status, 0, strip.stderr);
    const hashes = (file: string) => JSON.parse(runCli(['inspect', '--json', '--hash', file]).stdout).tensors.filter((t: { dtype: string }) => t.dtype !== 'string').map((t: { name: string; sha256: string }) => [t.name, t.sha256]);
    assert.deepEqual(hashes(out), hashes(dict.path));
  });
});

describe('TensorFlow checkpoint bad input: exit 3 (invalid) or 4 (missing file) naming the problem', () => {
  const simple = (): FixtureTensor[] => [
    { key: 'a/kernel', dtype: DT.float, shape: [2], data: f32(1, 2) },
    { key: 'b/kernel', dtype: DT.float, shape: [1], data: f32(3) },
  ];
  const make = (change: (index: string) => void, tensors = simple(), options: BundleOptions = {}) => {
    const index = bundle(tempDir(), 'bad', tensors, options);
    change(index);
    return index;
  };
  const patch = (file: string, edit: (b: Buffer) => Buffer | void) => {
    const b = fs.readFileSync(file);
    fs.writeFileSync(file, edit(b) ?? b);
  };
  const dataFile = (index: string) => index.replace(/\.index$/, '.data-00000-of-00001');
  const footer = (b: Buffer) => b.length - 48;
  const cases: [string, () => string, number, RegExp, string[]?][] = [
    ['a truncated index', () => make((f) => patch(f, (b) => b.subarray(0, b.length - 20))), 3, /footer at offset \d+: wrong magic number/],
    ['an index shorter than a footer', () => make((f) => patch(f, (b) => b.subarray(0, 30))), 3, /file is 30 bytes; a table ends with a 48-byte footer/],
    ['a wrong footer magic', () => make((f) => patch(f, (b) => { b[b.length - 1] = 0; })), 3, /wrong magic number/],
    ['a flipped bit in a block', () => make((f) => patch(f, (b) => { b[3] ^= 1; })), 3, /data block at offset 0: block checksum mismatch \(stored 0x[0-9a-f]+, computed 0x[0-9a-f]+\)/],
    ['a block handle past the data', () => make((f) => patch(f, (b) => { b.fill(0, footer(b), footer(b) + 40).set([0, ...varint(100000)], footer(b)); })), 3, /metaindex block at offset 0: 100000 bytes and a 5-byte trailer run past the end of the table data/],
    ['an unknown compression type', () => make(() => undefined, simple(), { blockType: 3 }), 3, /unknown block compression type 3/],
    ['a zstd block', () => make(() => undefined, simple(), { blockType: 2 }), 3, /zstd-compressed; only uncompressed and snappy/],
    ['a block that is not valid snappy', () => make(() => undefined, simple(), { blockType: 1 }), 3, /snappy: /],
    ['keys out of order', () => make(() => undefined, simple(), { mutateBlock: (c) => swapKeys(c) }), 3, /key 'a\/kernel' does not sort after 'b\/kernel'; keys must be strictly increasing/],
    ['a restart point inside an entry', () => make(() => undefined, simple(), { mutateBlock: (c) => { const m = Uint8Array.from(c); m[m.length - 8] = 1; return m; } }), 3, /restart point 0 \(1\) does not start an entry/],
    ['a restart count past the block', () => make(() => undefined, simple(), { mutateBlock: (c) => { const m = Uint8Array.from(c); m[m.length - 4] = 200; return m; } }), 3, /restart array of 200 entries does not fit/],
    ['a missing header entry', () => make(() => undefined, simple(), { noHeader: true }), 3, /no BundleHeaderProto under the empty key/],
    ['a header without num_shards', () => make(() => undefined, simple(), { headerBytes: [] }), 3, /num_shards 0; expected 1 to 2147483647/],
    ['a big-endian checkpoint', () => make(() => undefined, simple(), { headerBytes: [...numberField(1, 1), ...numberField(2, 1)] }), 3, /written big-endian/],
    ['an unknown dtype', () => make(() => undefined, [{ key: 'x', dtype: 77, shape: [1], data: f32(1) }]), 3, /tensor 'x': BundleEntryProto: unknown dtype 77/],
    ['a reference dtype', () => make(() => undefined, [{ key: 'x', dtype: 101, shape: [1], data: f32(1) }]), 3, /unknown dtype 101 \(a reference type/],
    ['a size that does not fit dtype × shape', () => make(() => undefined, [{ key: 'x', dtype: DT.float, shape: [3], data: f32(1, 2) }]), 3, /tensor 'x': size 8 bytes, but float32 \[3\] is 12 bytes/],
    ['a negative dim', () => make(() => undefined, [{ key: 'x', dtype: DT.float, shape: [-2], data: f32(1, 2) }]), 3, /dim 0 -2 is not a valid non-negative integer/],
    ['bytes past the end of the shard', () => make((f) => patch(dataFile(f), (b) => b.subarray(0, 10))), 3, /tensor 'b\/kernel': bytes \[8, 12\) run past the end of bad\.data-00000-of-00001 \(10 bytes\)/],
    ['a shard_id beyond num_shards', () => make(() => undefined, [{ key: 'x', dtype: DT.float, shape: [1], data: f32(1), extra: numberField(3, 4) }]), 3, /shard_id 4, but the checkpoint has 1 shard/],
    ['a missing shard', () => make((f) => fs.rmSync(dataFile(f))), 4, /bad\.data-00000-of-00001: data shard 0 of .*bad\.index: no such file/],
    ['a num_shards with shards missing', () => make(() => undefined, simple(), { headerBytes: numberField(1, 2) }), 4, /bad\.data-00000-of-00002: data shard 0 .*no such file/],
    ['a corrupt tensor (CRC)', () => make((f) => patch(dataFile(f), (b) => { b[0] ^= 0x10; })), 3, /bad\.data-00000-of-00001: tensor 'a\/kernel' at offset 0: checksum mismatch/, ['--hash']],
    ['a corrupt string length checksum', () => make((f) => patch(dataFile(f), (b) => { b[2] ^= 1; }), [{ key: 's', dtype: DT.string, shape: [2], strings: [utf8('ab'), utf8('c')] }]), 3, /tensor 's' at offset 0: checksum of the string lengths does not match/],
    ['strings longer than their entry', () => make((f) => patch(dataFile(f), (b) => Buffer.concat([b, Buffer.from('zz')])), [{ key: 's', dtype: DT.string, shape: [1], strings: [utf8('ab')] }], { mutateBlock: (c) => bumpSize(c) }), 3, /1 strings of 2 bytes after 5 bytes of lengths make 7 bytes, but the entry holds 8/],
  ];
  for (const [name, build, code, message, extra] of cases) {
    test(name, () => {
      const r = runCli(['inspect', ...(extra ?? []), build()]);
      assert.equal(r.status, code, r.stderr);
      assert.match(r.stderr, message);
      assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
    });
  }

  test('a partitioned variable is reported in the metadata, not read', async () => {
    const index = make(() => undefined, [...simple(), { key: 'part', dtype: DT.float, shape: [2], data: f32(1, 2), extra: bytesField(7, []) }]);
    const dict = await open(index);
    assert.deepEqual(dict.tensors.map((t) => t.source), ['a/kernel', 'b/kernel']);
    assert.deepEqual(dict.metadata.unsupported, [{ key: 'part', dtype: 'DT_FLOAT', reason: 'a partitioned variable stored in slices' }]);
    await dict.close();
  });

  test(`mutated checkpoints (${ITERATIONS}) load or fail with exit 3/4, never crash`, async () => {
    const random = prng(20240611);
    const dir = tempDir();
    const mutate = (bytes: Uint8Array) => {
      const out = Uint8Array.from(bytes);
      for (let k = 0; k < 1 + Math.floor(random() * 3); k++) out[Math.floor(random() * out.length)] = Math.floor(random() * 256);
      return random() < 0.15 ? out.subarray(0, Math.floor(random() * out.length)) : out;
    };
    const counts = { ok: 0, 3: 0, 4: 0 } as Record<string, number>;
    for (let i = 0; i < ITERATIONS; i++) {
      const kind = i % 3;
      // Raw file damage, block contents changed under a valid CRC, or a damaged data shard.
      const index = bundle(dir, `f${i % 4}`, tf2Tensors(), {
        restartInterval: 2,
        blockSize: 150,
        ...(kind === 1 ? { mutateBlock: (c: Uint8Array) => (random() < 0.5 ? mutate(c) : c) } : {}),
        ...(i % 2 ? { compress: literalSnappy } : {}),
      });
      if (kind === 0) fs.writeFileSync(index, mutate(fs.readFileSync(index)));
      if (kind === 2) fs.writeFileSync(dataFileOf(index), mutate(fs.readFileSync(dataFileOf(index))));
      const result = await loadOutcome(index, { all: true });
      assert.ok(result === 'ok' || result === 3 || result === 4, `unexpected exit ${result}`);
      counts[String(result)]!++;
    }
    assert.ok(counts['3']! > 0, 'some mutations are invalid input');
  });
});

function dataFileOf(index: string): string {
  return index.replace(/\.index$/, '.data-00000-of-00001');
}

/** Swaps the first letters of 'a/kernel' and 'b/kernel' (one block holds both), so they are out of order. */
function swapKeys(contents: Uint8Array): Uint8Array {
  const text = Buffer.from(contents).toString('latin1');
  const a = text.indexOf('a/kernel');
  const b = text.indexOf('b/kernel');
  if (a < 0 || b < 0) return contents;
  const out = Uint8Array.from(contents);
  out[a] = 0x62;
  out[b] = 0x61;
  return out;
}

/** Raises the single string entry's declared size (field 5) by one. */
function bumpSize(contents: Uint8Array): Uint8Array {
  const text = Buffer.from(contents).toString('latin1');
  const at = text.indexOf('\u0028\u0007');
  if (at < 0) return contents;
  const out = Uint8Array.from(contents);
  out[at + 1] = 8;
  return out;
}
