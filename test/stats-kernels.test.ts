import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { fromFloat64, halfToNumber } from '../src/core/decode.js';
import type { DType } from '../src/core/dtype.js';
import { seededRandom } from '../src/core/random.js';
import { SideBuffers, StatsAccumulator, StatsScratch, valueStats, type TensorStats } from '../src/ops/stats.js';
import { kernelMemory } from '../src/ops/stats-kernels.js';
import { Acc, ACC_LENGTH, accumulate, pairBuffers } from '../src/ops/value-stats.js';
import { ROOT } from './helpers.js';
import { plainStats, SMALLEST_NORMAL } from './stats-reference.js';

// The WebAssembly kernels (src/ops/stats-kernels.wat) against the definitions written as plain
// loops: every count, min, max, histogram and max |a − b| exactly, sums (mean, std, the
// comparison's) up to the order of summation.

function assertMatches(actual: TensorStats, expected: TensorStats, what: string): void {
  const { mean, std, ...exact } = actual;
  const { mean: expectedMean, std: expectedStd, ...expectedExact } = expected;
  assert.deepEqual(exact, expectedExact, what);
  for (const [a, e, key] of [[mean, expectedMean, 'mean'], [std, expectedStd, 'std']] as const) {
    if (e === null || !Number.isFinite(e)) assert.equal(a, e, `${what}: ${key}`);
    else assert.ok(Math.abs(a! - e) <= 1e-12 * Math.max(Math.abs(e), std ?? 0, Number.MIN_VALUE), `${what}: ${key} ${a} vs ${e}`);
  }
}


/** Value sets that have broken statistics kernels before, or could: each at awkward lengths. */
function cases(dtype: 'float32' | 'float64'): [string, number[]][] {
  const random = seededRandom(dtype === 'float32' ? 1 : 2);
  const normal = (n: number) => Array.from({ length: n }, () => (random() + random() + random() - 1.5) * 0.2);
  const huge = dtype === 'float32' ? 3e38 : 1.7e308;
  const subnormal = dtype === 'float32' ? 1e-40 : 1e-310;
  const sprinkle = (values: number[], specials: number[], every: number) => values.map((v, i) => (i % every === every - 1 ? specials[Math.floor(i / every) % specials.length]! : v));
  const zerosLate = normal(70_001).map((v) => Math.abs(v) + 1);
  zerosLate[65_536 + 9] = 0; // a second block's zeros after positive lanes: min is the first zero, 0, not the -0 after it
  zerosLate[65_536 + 10] = -0;
  const negativeZeroFirst = normal(70_001).map((v) => -Math.abs(v) - 1);
  negativeZeroFirst[66_000] = -0;
  negativeZeroFirst[66_001] = 0;
  return [
    ['normal values', normal(200_003)],
    ['one value', [0.5]],
    ['three values', [3, -1, 2]],
    ['seven values with NaN', [1, NaN, 2, 3, -4, 5, 6]],
    ['a block less one', normal(65_535)],
    ['exactly one block', normal(65_536)],
    ['a block and one', normal(65_537)],
    ['NaN and infinities in some blocks', sprinkle(normal(200_001), [NaN, Infinity, -Infinity], 65_536 * 2 + 1)],
    ['infinities everywhere', sprinkle(normal(10_001), [Infinity, -Infinity], 13)],
    ['all NaN', [NaN, NaN, NaN, NaN, NaN]],
    ['zeros of both signs only, -0 first', Array.from({ length: 1003 }, (_, i) => (i % 3 ? 0 : -0))],
    ['zeros of both signs only, 0 first', Array.from({ length: 1003 }, (_, i) => (i % 3 ? -0 : 0))],
    ['positive values, then 0 before -0', zerosLate],
    ['negative values, then -0 before 0', negativeZeroFirst],
    ['subnormals, zeros and the smallest normal values', sprinkle(normal(9_999), [subnormal, -subnormal, 0, -0, SMALLEST_NORMAL[dtype]!, -SMALLEST_NORMAL[dtype]!], 5)],
    ['all equal', new Array(100_001).fill(-2.5)],
    ['huge range', sprinkle(normal(50_001), [huge, -huge], 1_001)],
    ['largest finite values only', Array.from({ length: 101 }, (_, i) => (i % 2 ? huge : -huge))],
    ['a range of a few of the smallest subnormals (bins per unit beyond the largest float64)', Array.from({ length: 1001 }, (_, i) => (i % 7) * (dtype === 'float32' ? 1.4e-45 : 5e-324))],
  ];
}

for (const dtype of ['float32', 'float64'] as const) {
  test(`${dtype}: the kernels give the definition's statistics on awkward values, lengths and byte offsets`, () => {
    const scratch = new StatsScratch();
    for (const [what, values] of cases(dtype)) {
      const bytes = fromFloat64(Float64Array.from(values), dtype);
      const expected = plainStats(new (dtype === 'float32' ? Float32Array : Float64Array)(bytes.buffer as ArrayBuffer, bytes.byteOffset, values.length), dtype);
      const inPlace = valueStats(bytes, dtype, scratch);
      assertMatches(inPlace, expected, `${dtype}, ${what}`);
      for (const offset of [1, 2, 3, 4]) {
        const shifted = new Uint8Array(bytes.length + offset);
        shifted.set(bytes, offset);
        assert.deepEqual(valueStats(shifted.subarray(offset), dtype, scratch), inPlace, `${dtype}, ${what}, at byte offset ${offset}`);
      }
    }
  });

  test(`${dtype}: the same statistics read in the kernels' memory, in place, whatever the pieces of whole blocks`, () => {
    const scratch = new StatsScratch();
    const memory = kernelMemory();
    for (const [what, values] of cases(dtype)) {
      const bytes = fromFloat64(Float64Array.from(values), dtype);
      const at = memory.allocate(bytes.length);
      memory.bytes(at, bytes.length).set(bytes);
      const expected = valueStats(bytes, dtype, scratch);
      const blockBytes = 65_536 * (dtype === 'float32' ? 4 : 8);
      for (const blocks of [1, 2, 5]) {
        const stats = new StatsAccumulator(dtype, scratch);
        const pieces = () => Array.from({ length: Math.ceil(bytes.length / (blocks * blockBytes)) }, (_, i) => memory.bytes(at + i * blocks * blockBytes, Math.min(blocks * blockBytes, bytes.length - i * blocks * blockBytes)));
        for (const piece of pieces()) stats.range(piece);
        for (const piece of pieces()) stats.spread(piece);
        assert.deepEqual(stats.result(), expected, `${dtype}, ${what}, in pieces of ${blocks} block(s)`);
      }
    }
  });
}

test('float16, bfloat16 and integer tensors, decoded to float64 for the kernels, give the definition\'s statistics', () => {
  const random = seededRandom(3);
  const count = 70_003;
  const values = Array.from({ length: count }, (_, i) => (i % 101 === 7 ? [0, -0, NaN, Infinity, 3e-6, 1e-40][(i / 101 | 0) % 6]! : (random() - 0.5) * 300));
  const dtypes: [DType, (v: number[]) => Uint8Array, (b: Uint8Array) => ArrayLike<number>][] = [
    ['float16', (v) => fromFloat64(Float64Array.from(v), 'float16'), (b) => Array.from(new Uint16Array(Uint8Array.from(b).buffer), halfToNumber)],
    ['bfloat16', (v) => fromFloat64(Float64Array.from(v), 'bfloat16'), (b) => new Float32Array(Uint32Array.from(new Uint16Array(Uint8Array.from(b).buffer), (h) => h * 65536).buffer)],
    ['int8', (v) => new Uint8Array(Int8Array.from(v, (x) => (Number.isFinite(x) ? Math.round(x / 3) : 0)).buffer), (b) => new Int8Array(Uint8Array.from(b).buffer)],
    ['uint16', (v) => new Uint8Array(Uint16Array.from(v, (x) => (Number.isFinite(x) ? Math.abs(Math.round(x * 100)) : 0)).buffer), (b) => new Uint16Array(Uint8Array.from(b).buffer)],
    ['int32', (v) => new Uint8Array(Int32Array.from(v, (x) => (Number.isFinite(x) ? Math.round(x * 1e6) : 0)).buffer), (b) => new Int32Array(Uint8Array.from(b).buffer)],
    ['int64', (v) => new Uint8Array(BigInt64Array.from(v, (x) => BigInt(Number.isFinite(x) ? Math.round(x * 1e12) : 0)).buffer), (b) => Array.from(new BigInt64Array(Uint8Array.from(b).buffer), Number)],
  ];
  for (const [dtype, encode, decode] of dtypes) {
    const bytes = encode(values);
    const expected = plainStats(decode(bytes), dtype);
    assertMatches(valueStats(bytes, dtype), expected, dtype);
    const shifted = new Uint8Array(bytes.length + 1);
    shifted.set(bytes, 1);
    assertMatches(valueStats(shifted.subarray(1), dtype), expected, `${dtype} at an odd byte offset`);
  }
});

test('the committed kernel bytes are those of stats-kernels.wat (run `npm run build:wasm` after editing it)', async (t) => {
  let build: { wasmModuleSource: (wat: string) => Promise<string>; generatedPath: (wat: string) => string };
  try {
    build = await import(pathToFileURL(path.join(ROOT, 'scripts', 'build-wasm.js')).href);
  } catch {
    t.skip('the wabt package is not installed');
    return;
  }
  const wat = path.join(ROOT, 'src', 'ops', 'stats-kernels.wat');
  assert.equal(fs.readFileSync(build.generatedPath(wat), 'utf8'), await build.wasmModuleSource(wat));
});

/** The comparison by its definition, pair after pair: NaN on one side only outside the tolerance, on both sides equal. */
function plainComparison(a: ArrayLike<number>, b: ArrayLike<number>, atol: number, rtol: number): Float64Array {
  let [maxAbs, sumAbs, dot, normA, normB, outside] = [0, 0, 0, 0, 0, 0];
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!, y = b[i]!;
    dot += x * y; normA += x * x; normB += y * y;
    const d = Math.abs(x - y);
    if (Number.isNaN(d)) {
      if (!Number.isNaN(x) || !Number.isNaN(y)) outside++;
      continue;
    }
    sumAbs += d;
    if (d > maxAbs) maxAbs = d;
    if (d > atol + rtol * Math.abs(y) || d === Infinity) outside++;
  }
  return Float64Array.of(maxAbs, sumAbs, dot, normA, normB, outside);
}

function assertComparison(actual: Float64Array, expected: Float64Array, what: string): void {
  assert.deepEqual([actual[Acc.MaxAbs], actual[Acc.Outside]], [expected[Acc.MaxAbs], expected[Acc.Outside]], `${what}: max |a − b| and pairs outside`);
  for (const sum of [Acc.SumAbs, Acc.Dot, Acc.NormA, Acc.NormB]) {
    const [a, e] = [actual[sum]!, expected[sum]!];
    if (!Number.isFinite(e)) assert.equal(a, e, `${what}: sum ${sum}`);
    else assert.ok(Math.abs(a - e) <= 1e-12 * Math.max(Math.abs(e), Number.MIN_VALUE), `${what}: sum ${sum} ${a} vs ${e}`);
  }
}

for (const dtype of ['float32', 'float64'] as const) {
  test(`${dtype} pairs: the comparison kernel gives the definition's figures on NaN, infinities and awkward lengths, in place or copied, whatever the chunks`, () => {
    const random = seededRandom(dtype === 'float32' ? 4 : 5);
    const View = dtype === 'float32' ? Float32Array : Float64Array;
    const memory = kernelMemory();
    const pairs: [string, number[], number[]][] = [];
    for (const n of [1, 3, 65_535, 65_536, 65_537, 200_003]) {
      const a = Array.from({ length: n }, () => random() - 0.5);
      pairs.push([`${n} pairs, close`, a, a.map((v, i) => (i % 3 ? v * (1 + 1e-6) : v))]);
    }
    const a = Array.from({ length: 150_001 }, () => random() * 4 - 2);
    const b = a.map((v) => v + (random() - 0.5) * 1e-3);
    // Pairs whose |a − b| is NaN in the second block (read by the exact loop), the others in the third (by the kernel).
    const nanPairs: [number, number][] = [[NaN, 1], [1, NaN], [NaN, NaN], [Infinity, Infinity]];
    const otherPairs: [number, number][] = [[Infinity, 1], [1, -Infinity], [-Infinity, Infinity], [0, -0], [1e-40, 0]];
    nanPairs.forEach(([x, y], k) => { a[70_000 + k * 997] = x; b[70_000 + k * 997] = y; });
    otherPairs.forEach(([x, y], k) => { a[140_001 + k * 997] = x; b[140_001 + k * 997] = y; });
    pairs.push(['special values in the second and third blocks', a, b]);
    pairs.push(['infinities, no NaN', [Infinity, -Infinity, 1, 2, 3], [1, Infinity, 1, 2, -Infinity]]);
    for (const [what, x, y] of pairs) {
      const [va, vb] = [View.from(x), View.from(y)];
      const expected = plainComparison(va, vb, 1e-5, 1e-4);
      const copied = new Float64Array(ACC_LENGTH);
      accumulate(va, vb, 1e-5, 1e-4, copied);
      assertComparison(copied, expected, `${dtype}, ${what}`);
      // Read into the kernels' memory, compared a chunk of whole blocks at a time: the same figures.
      const [at, bt] = [memory.allocate(va.byteLength), memory.allocate(vb.byteLength)];
      new View(memory.memory.buffer, at, va.length).set(va);
      new View(memory.memory.buffer, bt, vb.length).set(vb);
      for (const blocks of [1, 3]) {
        const inPlace = new Float64Array(ACC_LENGTH);
        for (let start = 0; start < va.length; start += blocks * 65_536) {
          const count = Math.min(blocks * 65_536, va.length - start);
          accumulate(new View(memory.memory.buffer, at + start * View.BYTES_PER_ELEMENT, count), new View(memory.memory.buffer, bt + start * View.BYTES_PER_ELEMENT, count), 1e-5, 1e-4, inPlace);
        }
        assert.deepEqual(inPlace, copied, `${dtype}, ${what}, in place in chunks of ${blocks} block(s)`);
      }
    }
  });
}

test('the kernels\' memory does not grow with the number of tensors read, compared or given to valueStats', () => {
  const memory = kernelMemory();
  const values = fromFloat64(Float64Array.from({ length: 70_000 }, (_, i) => Math.sin(i)), 'float32');
  const use = () => {
    valueStats(values, 'float32');
    new SideBuffers().canHold(values.length);
    const pair = pairBuffers();
    pair.b.chunk.set(values.subarray(0, 1024));
    accumulate(new Float32Array(values.buffer), new Float32Array(values.buffer), 0, 0, new Float64Array(ACC_LENGTH));
  };
  use();
  const bytes = memory.memory.buffer.byteLength;
  for (let i = 0; i < 20; i++) use();
  assert.equal(memory.memory.buffer.byteLength, bytes);
});
