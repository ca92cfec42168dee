import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createRequire } from 'node:module';
import { fromFloat64, halfToNumber } from '../src/core/decode.js';
import type { DType } from '../src/core/dtype.js';
import { seededRandom } from '../src/core/random.js';
import type { TensorInfo } from '../src/core/statedict.js';
import { writeSafetensors } from '../src/formats/safetensors/write.js';
import { HISTOGRAM_BINS, SideBuffers, StatsScratch, StoredReader, storedStats, valueStats, type TensorStats } from '../src/ops/stats.js';
import { readTensors } from '../src/ops/tensor-stats.js';
import { SPLIT_BYTES } from '../src/ops/compare-pool.js';
import { diffStateDicts } from '../src/ops/diff.js';
import { tensorSha256 } from '../src/ops/hash.js';
import { diff, inspect, open } from '../src/index.js';
import { sparkline } from '../src/cli/format.js';
import { progress, readProgress } from '../src/cli/progress.js';
import { python, pythonHas } from './python.js';
import { ROOT, runCli, tempDir } from './helpers.js';
import { plainStats } from './stats-reference.js';

const require = createRequire(import.meta.url);
const Ajv2020 = require('ajv/dist/2020.js');
const validateInspect = new Ajv2020({ allErrors: true }).compile(JSON.parse(fs.readFileSync(path.join(ROOT, 'schemas', 'inspect.schema.json'), 'utf8')));

/** Normal-ish values with the special cases statistics must count: zeros, NaN, ±Inf, subnormals, large values. */
function awkwardValues(count: number, seed: number): number[] {
  const random = seededRandom(seed);
  const values = Array.from({ length: count }, () => (random() + random() + random() - 1.5) * 0.2);
  const specials = [0, 0, 0, NaN, NaN, Infinity, -Infinity, 1e-40, -3e-39, 1e-310, 6e-6, 250, -1e4];
  specials.forEach((v, i) => { values[(i * 7919) % count] = v; });
  return values;
}

function tensorOf(name: string, dtype: DType, shape: number[], bytes: Uint8Array): TensorInfo {
  return { name, source: name, dtype, shape, byteLength: bytes.byteLength, origin: 'weight', read: async () => bytes, readStrings: async () => [] };
}

function encode(values: number[], dtype: DType): Uint8Array {
  switch (dtype) {
    case 'float32': case 'float64': case 'float16': case 'bfloat16': return fromFloat64(Float64Array.from(values), dtype);
    case 'int8': return new Uint8Array(Int8Array.from(values.map((v) => (Number.isFinite(v) ? Math.round(v * 100) : 0))).buffer);
    case 'int32': return new Uint8Array(Int32Array.from(values.map((v) => (Number.isFinite(v) ? Math.round(v * 1e6) : 0))).buffer);
    case 'uint8': return Uint8Array.from(values.map((v) => (Number.isFinite(v) ? Math.abs(Math.round(v * 1000)) % 256 : 0)));
    case 'bool': return Uint8Array.from(values.map((v) => (v > 0 ? 1 : 0)));
    case 'int64': return new Uint8Array(BigInt64Array.from(values.map((v) => BigInt(Number.isFinite(v) ? Math.round(v * 1e6) : 0))).buffer);
    default: throw new Error(dtype);
  }
}

/**
 * The reference the kernels are held to: numpy on the same bytes where it is installed (np.histogram
 * over [min, max] of the finite values), else the definition computed plainly in JavaScript.
 */
function referenceStats(bytes: Uint8Array, dtype: DType, dir: string): TensorStats {
  const file = path.join(dir, `${dtype}.bin`);
  fs.writeFileSync(file, bytes);
  if (pythonHas('numpy') && dtype !== 'bfloat16') {
    return JSON.parse(python(`
import json, sys
import numpy as np
x = np.fromfile(sys.argv[1], dtype=sys.argv[2])
f = x.astype(np.float64)
fin = f[np.isfinite(f)]
tiny = float(np.finfo(x.dtype).tiny) if x.dtype.kind == 'f' else 0.0
print(json.dumps(dict(
  min=float(fin.min()), max=float(fin.max()), mean=float(fin.mean()), std=float(fin.std()),
  zeros=float(np.count_nonzero(f == 0) / f.size), nan=int(np.isnan(f).sum()), posInf=int(np.isposinf(f).sum()), negInf=int(np.isneginf(f).sum()),
  subnormal=int(np.count_nonzero((f != 0) & (np.abs(f) < tiny))),
  histogram=np.histogram(fin, bins=32, range=(fin.min(), fin.max()))[0].tolist())))
`, file, dtype));
  }
  const values = Array.from(decodePlainly(bytes, dtype));
  const finite = values.filter(Number.isFinite);
  const min = Math.min(...finite);
  const max = Math.max(...finite);
  const mean = finite.reduce((s, v) => s + v, 0) / finite.length;
  const tiny = { float32: 2 ** -126, bfloat16: 2 ** -126, float64: 2 ** -1022, float16: 2 ** -14 }[dtype as string] ?? 0;
  const histogram = new Array<number>(HISTOGRAM_BINS).fill(0);
  for (const v of finite) histogram[Math.min(HISTOGRAM_BINS - 1, Math.floor(((v - min) / (max - min)) * HISTOGRAM_BINS))]!++;
  return {
    min, max, mean, std: Math.sqrt(finite.reduce((s, v) => s + (v - mean) ** 2, 0) / finite.length),
    zeros: values.filter((v) => v === 0).length / values.length,
    nan: values.filter(Number.isNaN).length, posInf: values.filter((v) => v === Infinity).length, negInf: values.filter((v) => v === -Infinity).length,
    subnormal: values.filter((v) => v !== 0 && Math.abs(v) < tiny).length, histogram,
  };
}

function decodePlainly(bytes: Uint8Array, dtype: DType): Float64Array {
  const copy = Uint8Array.from(bytes).buffer;
  if (dtype === 'bfloat16') {
    const halves = new Uint16Array(copy);
    return Float64Array.from(new Float32Array(Uint32Array.from(halves, (h) => h * 65536).buffer));
  }
  const views: Partial<Record<DType, () => ArrayLike<number>>> = {
    float32: () => new Float32Array(copy), float64: () => new Float64Array(copy), int8: () => new Int8Array(copy), int32: () => new Int32Array(copy),
    uint8: () => new Uint8Array(copy), bool: () => new Uint8Array(copy), float16: () => Array.from(new Uint16Array(copy), halfToNumber),
    int64: () => Array.from(new BigInt64Array(copy), Number),
  };
  return Float64Array.from(views[dtype]!());
}

function assertStatsEqual(actual: TensorStats, expected: TensorStats, what: string): void {
  for (const key of ['nan', 'posInf', 'negInf', 'subnormal', 'min', 'max', 'histogram'] as const) assert.deepEqual(actual[key], expected[key], `${what}: ${key}`);
  for (const key of ['mean', 'std', 'zeros'] as const) {
    const [a, e] = [actual[key]!, expected[key]!];
    assert.ok(Math.abs(a - e) <= 1e-12 * Math.max(1, Math.abs(e)), `${what}: ${key} ${a} vs ${e}`);
  }
}

test('statistics equal an independent computation for float32, float64, float16, bfloat16, int8 and int64', () => {
  const dir = tempDir();
  // More elements than one decoding chunk (65,536), and an odd count.
  const values = awkwardValues(70_001, 7);
  for (const dtype of ['float32', 'float64', 'float16', 'bfloat16', 'int8', 'int64'] as const) {
    if ((dtype === 'float16' || dtype === 'int64') && !pythonHas('numpy')) continue;
    const bytes = encode(values, dtype);
    const stats = valueStats(bytes, dtype);
    assertStatsEqual(stats, referenceStats(bytes, dtype, dir), dtype);
    assert.equal(stats.histogram.reduce((s, c) => s + c, 0), 70_001 - stats.nan - stats.posInf - stats.negInf, `${dtype}: every finite value in a bin`);
  }
  // The special values survive in the float types that can hold them.
  const f32 = valueStats(encode(values, 'float32'), 'float32');
  assert.deepEqual([f32.nan, f32.posInf, f32.negInf, f32.subnormal], [2, 1, 1, 2], 'float32: 1e-40 and -3e-39 are subnormal, 1e-310 rounds to 0');
});

test('a float32 tensor at an odd byte offset reads the same as an aligned one', () => {
  const bytes = encode(awkwardValues(1001, 3), 'float32');
  const shifted = new Uint8Array(bytes.byteLength + 1);
  shifted.set(bytes, 1);
  assert.deepEqual(valueStats(shifted.subarray(1), 'float32'), valueStats(bytes, 'float32'));
});

test('a constant tensor puts every value in the first bin; an empty or all-NaN one has no range', () => {
  const constant = valueStats(encode([0.5, 0.5, 0.5], 'float32'), 'float32');
  assert.deepEqual([constant.min, constant.max, constant.std, constant.histogram[0]], [0.5, 0.5, 0, 3]);
  for (const values of [[], [NaN, NaN]]) {
    const s = valueStats(encode(values, 'float64'), 'float64');
    assert.deepEqual([s.min, s.max, s.mean, s.std, s.nan], [null, null, null, null, values.length]);
  }
});

test('sparkline: the histogram in block characters, tallest bin full', () => {
  const bins = [0, 0, 1, 1, 2, 2, 4, 4, 8, 8, 4, 4, 2, 2, 0, 0];
  // Pairs merged: 0 2 4 8 16 8 4 0, in eighths of the tallest, rounded.
  assert.equal(sparkline(bins, 8), ' ▂▃▅█▅▃ ');
  assert.equal(sparkline(new Array(32).fill(0)), ' '.repeat(16));
});

test('the progress bar draws on a terminal only, and clears itself', () => {
  const written: string[] = [];
  const bar = progress('statistics', 4096, 'bytes', { isTTY: true, write: (text: string) => written.push(text) });
  bar.tick(2048);
  bar.tick(2048);
  bar.done();
  assert.match(written.join(''), /statistics █+░* \d+% 2\.0 KiB\/4\.0 KiB/);
  assert.match(written.join(''), /100% 4\.0 KiB\/4\.0 KiB/);
  assert.equal(written[written.length - 1], '\r\x1b[K');
  const piped: string[] = [];
  const quiet = progress('statistics', 4096, 'bytes', { isTTY: false, write: (text: string) => piped.push(text) });
  quiet.tick(4096);
  quiet.done();
  assert.deepEqual(piped, []);
});

test("a conversion's bar follows the reader's byte count, on a terminal only", async () => {
  let read = 0;
  const dict = { tensors: [{ byteLength: 1024 }, { byteLength: 3072 }] as TensorInfo[], bytesRead: () => read };
  const written: string[] = [];
  const bar = readProgress('converting', dict, { isTTY: true, write: (text: string) => written.push(text) });
  read = 4096;
  while (!written.some((text) => text.includes('100%'))) await new Promise((resolve) => setTimeout(resolve, 20));
  bar.done();
  assert.match(written.join(''), /converting █+ 100% 4\.0 KiB\/4\.0 KiB/);
  const piped: string[] = [];
  readProgress('converting', dict, { isTTY: false, write: (text: string) => piped.push(text) }).done();
  assert.deepEqual(piped, []);
});

test('inspect --stats --json: a stats object per numeric tensor, valid against the schema; the table shows them', async () => {
  const dir = tempDir();
  const file = path.join(dir, 'model.safetensors');
  const weights = awkwardValues(600, 11);
  const counts = [3, 1, 4, 1, 5];
  await writeSafetensors(file, [
    { name: 'layer.weight', tensor: tensorOf('layer.weight', 'float32', [20, 30], encode(weights, 'float32')) },
    { name: 'steps', tensor: tensorOf('steps', 'int64', [5], new Uint8Array(BigInt64Array.from(counts.map(BigInt)).buffer)) },
  ]);
  const r = runCli(['inspect', '--stats', '--json', file]);
  assert.equal(r.status, 0, r.stderr);
  const body = JSON.parse(r.stdout);
  assert.ok(validateInspect(body), JSON.stringify(validateInspect.errors));
  const [weight, steps] = body.tensors;
  assert.deepEqual(weight.stats, JSON.parse(JSON.stringify(valueStats(encode(weights, 'float32'), 'float32'))));
  assert.deepEqual([steps.stats.min, steps.stats.max, steps.stats.mean], [1, 5, 14 / 5]);
  // Piped: no progress bar on stderr, no sparkline column.
  assert.equal(r.stderr, '');
  const text = runCli(['inspect', '--stats', file]);
  assert.match(text.stdout, /│ min +│ max +│ mean +│ std +│ zeros +│ non-finite +│/);
  assert.match(text.stdout, /layer\.weight .* 2 NaN, 1 \+Inf, 1 −Inf/);
  assert.doesNotMatch(text.stdout, /histogram/);
});

test('inspect --stats of float32, float64, float16, bfloat16, integer and bool tensors with NaN, ±Inf, subnormals, empty and all-NaN ones: the definition, exactly but for the order of summation', async () => {
  const dir = tempDir();
  const file = path.join(dir, 'model.safetensors');
  const values = awkwardValues(20_000, 23);
  // float16 subnormals lie below 6.1e-5, and its largest finite value is 65504.
  const halfValues = values.map((v, i) => (i % 97 === 5 ? 3e-6 * (i % 3 - 1) : Math.abs(v) > 6e4 ? v / 1e4 : v));
  const tensors: [string, DType, number[]][] = [
    ['f32', 'float32', values], ['f64', 'float64', values], ['f16', 'float16', halfValues], ['bf16', 'bfloat16', values],
    ['i8', 'int8', values], ['u8', 'uint8', values], ['i32', 'int32', values], ['i64', 'int64', values], ['flags', 'bool', values],
    ['empty', 'float32', []], ['all_nan', 'float32', [NaN, NaN, NaN]], ['constant', 'float16', [0.5, 0.5]],
  ];
  await writeSafetensors(file, tensors.map(([name, dtype, v]) => ({ name, tensor: tensorOf(name, dtype, [v.length], encode(v, dtype)) })));
  const r = runCli(['inspect', '--stats', '--json', file]);
  assert.equal(r.status, 0, r.stderr);
  const listed = new Map<string, TensorStats>(JSON.parse(r.stdout).tensors.map((t: { name: string; stats: TensorStats }) => [t.name, t.stats]));
  for (const [name, dtype, v] of tensors) {
    const expected = plainStats(decodePlainly(encode(v, dtype), dtype), dtype);
    assertStatsEqual(listed.get(name)!, JSON.parse(JSON.stringify(expected)), `${name} (${dtype})`);
  }
  // The special values are there to be counted.
  assert.deepEqual(['nan', 'posInf', 'negInf', 'subnormal'].map((k) => listed.get('f32')![k as keyof TensorStats]), [2, 1, 1, 2]);
  assert.ok(listed.get('f16')!.subnormal > 100 && listed.get('bf16')!.subnormal === 2);
  assert.deepEqual([listed.get('empty')!.mean, listed.get('empty')!.zeros, listed.get('all_nan')!.nan], [null, 0, 3]);
});

test('stored tensors read in chunks, held or read twice, here or on worker threads: the same statistics as in memory, and the hash of the same read', async () => {
  const dir = tempDir();
  const file = path.join(dir, 'big.safetensors');
  // Several 1 MiB chunks and 65,536-element blocks each, with special values in some blocks only.
  const values = awkwardValues(600_001, 5);
  const tensors: [string, DType][] = [['w32', 'float32'], ['w16', 'float16'], ['w64', 'float64'], ['bytes', 'int8']];
  await writeSafetensors(file, tensors.map(([name, dtype]) => ({ name, tensor: tensorOf(name, dtype, [values.length], encode(values, dtype)) })));
  const dict = await open(file);
  try {
    const inMemory = await Promise.all(dict.tensors.map(async (t) => valueStats(await t.read(), t.dtype)));
    const hashes = await Promise.all(dict.tensors.map((t) => tensorSha256(t)));
    for (const threads of [1, 2]) {
      const reads = [];
      for await (const read of readTensors(dict.tensors, { stats: true, hash: true, threads })) reads.push(read);
      assert.deepEqual(reads.map((r) => r.tensor), dict.tensors, 'in order');
      assert.deepEqual(reads.map((r) => r.stats), inMemory, `${threads} thread(s)`);
      assert.deepEqual(reads.map((r) => r.sha256), hashes, `${threads} thread(s): hashes`);
    }
    for (const t of dict.tensors) {
      const readTwice = storedStats(new StoredReader(t.stored!, t.byteLength, new SideBuffers(), t.name, false), t.dtype, new StatsScratch());
      assert.deepEqual(readTwice, inMemory[dict.tensors.indexOf(t)], `${t.name} read twice`);
    }
  } finally {
    await dict.close();
  }
});

test('a tensor of 256 MiB or more has its statistics taken in parts on every worker: exactly the statistics of one pass', async () => {
  const dir = tempDir();
  const file = path.join(dir, 'large.safetensors');
  // One float32 tensor without special values (every block through the kernels), one float64 with
  // NaN and infinities in a few blocks of each part (read carefully); zeros of both signs in both.
  const clean = new Float32Array(SPLIT_BYTES / 4 + 12_345);
  for (let i = 0; i < clean.length; i++) clean[i] = (i % 9973) * 1e-4 - 0.3;
  clean.fill(-0, 5_000_000, 5_000_003);
  const special = new Float64Array(SPLIT_BYTES / 8 + 777);
  for (let i = 0; i < special.length; i++) special[i] = ((i * 7919) % 10007) * 1e-3 + 2;
  for (const [at, v] of [[3, NaN], [special.length >> 1, Infinity], [special.length - 2, -Infinity], [1000, 0], [2000, -0]] as const) special[at] = v;
  const bytes = (v: Float32Array | Float64Array) => new Uint8Array(v.buffer);
  await writeSafetensors(file, [{ name: 'clean', tensor: tensorOf('clean', 'float32', [clean.length], bytes(clean)) }, { name: 'special', tensor: tensorOf('special', 'float64', [special.length], bytes(special)) }]);
  const dict = await open(file);
  try {
    const statsWith = async (threads: number) => {
      const stats = [];
      for await (const read of readTensors(dict.tensors, { stats: true, hash: false, threads })) stats.push(read.stats);
      return stats;
    };
    const [onePass, inParts] = [await statsWith(1), await statsWith(2)];
    assert.deepEqual(inParts, onePass);
    assert.deepEqual([onePass[0]!.min, onePass[1]!.nan, onePass[1]!.posInf, onePass[1]!.negInf], [Math.fround(-0.3), 1, 1, 1]);
  } finally {
    await dict.close();
  }
});

test('diff --values with statistics (--html): each side from the comparison’s own read, every tensor read once, here or on workers', async () => {
  const dir = tempDir();
  const [fileA, fileB] = [path.join(dir, 'a.safetensors'), path.join(dir, 'b.safetensors')];
  const values = awkwardValues(300_000, 9);
  const nudged = values.map((v) => v * 1.001);
  const write = (file: string, w: number[], only: string) => writeSafetensors(file, [
    { name: 'w', tensor: tensorOf('w', 'float32', [w.length], encode(w, 'float32')) },
    { name: 'h', tensor: tensorOf('h', 'float16', [4096, 4], encode(values.slice(0, 16_384), 'float16')) },
    { name: only, tensor: tensorOf(only, 'float32', [5000], encode(values.slice(0, 5000), 'float32')) },
  ]);
  await write(fileA, values, 'only_a');
  await write(fileB, nudged, 'only_b');
  const [a, b] = [await open(fileA), await open(fileB)];
  try {
    const [openedA, openedB] = [a.bytesRead!(), b.bytesRead!()];
    const result = await diff(a, b, { values: true, stats: true });
    const tensorBytes = (d: typeof a) => d.tensors.reduce((n, t) => n + t.byteLength, 0);
    assert.deepEqual([a.bytesRead!() - openedA, b.bytesRead!() - openedB], [tensorBytes(a), tensorBytes(b)], 'each tensor read once');
    assert.deepEqual(result.valueDifferences.map((p) => p.a), ['w']);
    const [listedA, listedB] = [await inspect(a, { stats: true }), await inspect(b, { stats: true })];
    const byName = (r: typeof listedA) => Object.fromEntries(r.tensors.map((t) => [t.name, t.stats]));
    assert.deepEqual(result.stats, { a: byName(listedA), b: byName(listedB) });
    // The same from worker threads, comparing and taking statistics in one read.
    const taken = new Map<string, TensorStats>();
    await diffStateDicts(a, b, { values: true, threads: 2, onStats: (s, t, stats) => taken.set(`${s}:${t.name}`, stats) });
    assert.deepEqual(taken.get('a:w'), result.stats!.a.w);
    assert.deepEqual(taken.get('b:w'), result.stats!.b.w);
  } finally {
    await a.close();
    await b.close();
  }
});
