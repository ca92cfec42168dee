import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { open } from '../src/index.js';
import type { DType } from '../src/core/dtype.js';
import type { TensorInfo } from '../src/core/statedict.js';
import { castFloats, numberToBfloat16, numberToHalf } from '../src/core/cast.js';
import { writeSafetensors } from '../src/formats/safetensors/write.js';
import { writePytorch } from '../src/formats/pytorch/write.js';
import { quantizeValues } from '../src/formats/tfjs/quantize.js';
import { CORPUS, HAS_CORPUS, runCli, tempDir } from './helpers.js';
import { python, pythonHas } from './python.js';

const HAS_NUMPY = pythonHas('numpy');
const HAS_H5PY = pythonHas('h5py');
const bytesOf = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

function tensorOf(name: string, dtype: DType, shape: number[], array: ArrayBufferView): TensorInfo {
  const bytes = bytesOf(array).slice();
  return { name, source: name, dtype, shape, byteLength: bytes.length, origin: 'weight', read: async () => bytes, readStrings: async () => [] };
}

const halves = (values: number[]) => [...new Uint16Array(castFloats(bytesOf(Float32Array.from(values)), 'float32', 'float16').slice().buffer)];

/** Float32 values around every place rounding to half can go wrong. */
const EDGE_VALUES = [
  0, -0, 1, -1, 65504, 65519.99, 65520, -65520, 1e6, Infinity, -Infinity, NaN,
  2 ** -14, 2 ** -24, 2 ** -25, 1.5 * 2 ** -25, 2 ** -26, 3 * 2 ** -25, 2 ** -14 - 2 ** -25,
  1 + 2 ** -11, 1 + 3 * 2 ** -11, 1 + 2 ** -11 + 2 ** -20, 0.1, -0.3333333, 3.14159, 1e-8, -6.1e-5,
];

describe('casts round to nearest even', () => {
  test('float32 → bfloat16 equals torch .to(torch.bfloat16), bit for bit', { skip: !pythonHas('torch') && 'needs python3-torch' }, () => {
    const values = Float32Array.from([...EDGE_VALUES, 1 + 2 ** -8, 1 + 3 * 2 ** -8, 3.4e38, -3.39e38, 1e-40, 9.2e-41]);
    const ours = [...new Uint16Array(castFloats(bytesOf(values), 'float32', 'bfloat16').slice().buffer)];
    const theirs = JSON.parse(python(
      'import sys, json, torch; a = torch.frombuffer(bytearray.fromhex(sys.argv[1]), dtype=torch.float32); print(json.dumps((a.to(torch.bfloat16).view(torch.int16).to(torch.int32) & 0xffff).tolist()))',
      Buffer.from(bytesOf(values)).toString('hex'),
    )) as number[];
    // torch's vectorized path writes NaN as 0xffff, the scalar one (and ckpt) as a quiet NaN of the same sign: both NaN.
    const nanAsText = (bits: number) => ((bits & 0x7f80) === 0x7f80 && (bits & 0x7f) !== 0 ? 'NaN' : bits);
    assert.deepEqual(ours.map(nanAsText), theirs.map(nanAsText));
    assert.equal(ours[EDGE_VALUES.findIndex(Number.isNaN)], 0x7fc0);
  });

  test('float32 → float16 on hand-computed edge cases: overflow, subnormals, ties, NaN, signed zero', () => {
    const cases: [number, number][] = [
      [65504, 0x7bff], [65519.99, 0x7bff], [65520, 0x7c00], [-65520, 0xfc00], [Infinity, 0x7c00],
      [2 ** -24, 0x0001], [2 ** -25, 0x0000], [1.5 * 2 ** -25, 0x0001], [3 * 2 ** -25, 0x0002],
      [2 ** -14 - 2 ** -25, 0x0400], [1 + 2 ** -11, 0x3c00], [1 + 3 * 2 ** -11, 0x3c02], [-0, 0x8000], [NaN, 0x7e00],
    ];
    assert.deepEqual(halves(cases.map(([v]) => v)), cases.map(([, h]) => h));
  });

  test('float64 → float16 and bfloat16 round once (no double rounding through float32)', () => {
    // 1 + 2^-11 + 2^-40 is just above the tie between 1 and 1 + 2^-10: float32 would round it onto the tie.
    assert.equal(numberToHalf(1 + 2 ** -11 + 2 ** -40), 0x3c01);
    assert.equal(numberToHalf(1 + 2 ** -11), 0x3c00);
    assert.equal(numberToBfloat16(1 + 2 ** -8 + 2 ** -40), 0x3f81);
    assert.equal(numberToBfloat16(1 + 2 ** -8), 0x3f80);
    assert.equal(numberToBfloat16(1 + 3 * 2 ** -8), 0x3f82);
    const f64 = castFloats(bytesOf(Float64Array.from([1 + 2 ** -11 + 2 ** -40, 65520])), 'float64', 'float16');
    assert.deepEqual([...new Uint16Array(f64.slice().buffer)], [0x3c01, 0x7c00]);
  });

  test('float32 → float16 equals numpy astype(float16), bit for bit, on edge cases and random values', { skip: !HAS_NUMPY && 'needs python3-numpy' }, () => {
    let seed = 7;
    const random = Array.from({ length: 2000 }, () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return (seed / 2 ** 31 - 0.5) * 2 ** ((seed % 50) - 30);
    });
    const values = Float32Array.from([...EDGE_VALUES, ...random]);
    const ours = halves([...values]);
    const theirs = JSON.parse(python(
      'import numpy as np, sys, json; a = np.frombuffer(bytes.fromhex(sys.argv[1]), "<f4"); print(json.dumps(a.astype(np.float16).view(np.uint16).tolist()))',
      Buffer.from(bytesOf(values)).toString('hex'),
    )) as number[];
    assert.deepEqual(ours, theirs);
  });
});

/** A float32 safetensors file of a conv, a norm and a BatchNorm counter. */
async function smallModel(dir: string): Promise<{ file: string; conv: Float32Array }> {
  const conv = Float32Array.from({ length: 48 }, (_, i) => Math.sin(i) * 3.7 + (i === 6 ? 1e-7 : 0));
  const file = path.join(dir, 'model.safetensors');
  await writeSafetensors(file, [
    { name: 'conv.weight', tensor: tensorOf('conv.weight', 'float32', [4, 3, 2, 2], conv) },
    { name: 'norm.weight', tensor: tensorOf('norm.weight', 'float32', [4], Float32Array.from([1.0001, 2, 3, 4])) },
    { name: 'bn.num_batches_tracked', tensor: tensorOf('bn.num_batches_tracked', 'int64', [], BigInt64Array.from([1234n])) },
    { name: 'big.weight', tensor: tensorOf('big.weight', 'float32', [2], Float32Array.from([70000, 1])) },
  ]);
  return { file, conv };
}

describe('--dtype and --keep-dtype', () => {
  test('convert --dtype float16 casts floats (numpy agrees), keeps the kept and the integers, and diff --values reports the cast error', { skip: !HAS_NUMPY && 'needs python3-numpy' }, async () => {
    const dir = tempDir();
    const { file, conv } = await smallModel(dir);
    const out = path.join(dir, 'half.safetensors');
    const r = runCli(['convert', file, out, '--dtype', 'float16', '--keep-dtype', 'norm', '--json']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(JSON.parse(r.stdout).notes.join('\n'), /2 floating tensor\(s\) written as float16[^]*1 kept their dtype \(--keep-dtype\): norm\.weight \(float32\)/);
    const dict = await open(out);
    assert.deepEqual(dict.tensors.map((t) => [t.name, t.dtype]), [['conv.weight', 'float16'], ['norm.weight', 'float32'], ['bn.num_batches_tracked', 'int64'], ['big.weight', 'float16']]);
    const stored = [...new Uint16Array((await dict.tensors[0]!.read()).slice().buffer)];
    assert.deepEqual([...new Uint16Array((await dict.tensors[3]!.read()).slice().buffer)], [0x7c00, 0x3c00], '70000 overflows to infinity');
    await dict.close();
    const expected = JSON.parse(python(
      'import numpy as np, sys, json; a = np.frombuffer(bytes.fromhex(sys.argv[1]), "<f4"); h = a.astype(np.float16);'
      + ' d = np.abs(h.astype(np.float64) - a.astype(np.float64)); print(json.dumps([h.view(np.uint16).tolist(), float(d.max())]))',
      Buffer.from(bytesOf(conv)).toString('hex'),
    )) as [number[], number];
    assert.deepEqual(stored, expected[0]);

    const diff = runCli(['diff', '--values', file, out, '--json']);
    assert.equal(diff.status, 1);
    const report = JSON.parse(diff.stdout);
    const convPair = report.matched.find((p: { a: string }) => p.a === 'conv.weight');
    assert.equal(convPair.dtypeB, 'float16');
    assert.equal(convPair.values.bitIdentical, false);
    assert.equal(convPair.values.maxAbsDiff, expected[1], 'the largest rounding error, as numpy computes it in float64');
    assert.equal(report.matched.find((p: { a: string }) => p.a === 'norm.weight').values.bitIdentical, true);
    // 70000 became infinity: an infinite difference, which JSON writes as null.
    assert.deepEqual(report.matched.find((p: { a: string }) => p.a === 'big.weight').values.withinTolerance, false);
  });

  test('the cast error diff reports is the largest rounding error', async () => {
    const dir = tempDir();
    const values = Float32Array.from([0.1, 0.2, 1 / 3, 1000.7, -2.0000002]);
    const file = path.join(dir, 'a.safetensors');
    await writeSafetensors(file, [{ name: 'w', tensor: tensorOf('w', 'float32', [5], values) }]);
    const out = path.join(dir, 'b.safetensors');
    assert.equal(runCli(['convert', file, out, '--dtype', 'bfloat16']).status, 0);
    const report = JSON.parse(runCli(['diff', '--values', file, out, '--json']).stdout);
    const back = new Float32Array(castFloats(castFloats(bytesOf(values), 'float32', 'bfloat16'), 'bfloat16', 'float32').slice().buffer);
    const largest = Math.max(...[...values].map((v, i) => Math.abs(v - back[i]!)));
    assert.equal(report.matched[0].values.maxAbsDiff, largest);
    assert.ok(largest > 0);
  });

  test('bad --dtype values are usage errors', () => {
    const dir = tempDir();
    assert.match(runCli(['convert', 'x.safetensors', path.join(dir, 'y.safetensors'), '--dtype', 'float8']).stderr, /--dtype float8: expected one of float32, float16, bfloat16/);
    assert.match(runCli(['convert', 'x.safetensors', path.join(dir, 'y.safetensors'), '--keep-dtype', 'norm']).stderr, /--keep-dtype needs --dtype/);
  });

  test('Keras HDF5 output keeps float16 tensors as IEEE half datasets, bit for bit', { skip: !HAS_H5PY && 'needs python3-h5py' }, async () => {
    const dir = tempDir();
    const { file, conv } = await smallModel(dir);
    const out = path.join(dir, 'model.h5');
    const r = runCli(['convert', file, out, '--dtype', 'float16']);
    assert.equal(r.status, 0, r.stderr);
    assert.doesNotMatch(r.stdout, /written as float32/);
    const read = JSON.parse(python('import h5py, sys, json; f = h5py.File(sys.argv[1]); d = f["conv"]["conv"]["weight:0"]; print(json.dumps([str(d.dtype), d[()].ravel().view("<u2").tolist()]))', out)) as [string, number[]];
    assert.equal(read[0], 'float16');
    assert.deepEqual(read[1], [...new Uint16Array(castFloats(bytesOf(conv), 'float32', 'float16').slice().buffer)]);
  });
});

/** What @tensorflow/tfjs decodes from a written TF.js model, weight by weight, as bytes and dtype. */
async function tfjsDecode(modelJson: string): Promise<Map<string, { dtype: string; bytes: Uint8Array }>> {
  const json = JSON.parse(fs.readFileSync(modelJson, 'utf8'));
  const out = new Map<string, { dtype: string; bytes: Uint8Array }>();
  for (const group of json.weightsManifest) {
    const data = Buffer.concat(group.paths.map((p: string) => fs.readFileSync(path.join(path.dirname(modelJson), p))));
    const tensors = tf.io.decodeWeights(Uint8Array.from(data).buffer, group.weights);
    for (const [name, t] of Object.entries(tensors)) {
      out.set(name, { dtype: t.dtype, bytes: bytesOf(t.dataSync()).slice() });
      t.dispose();
    }
  }
  return out;
}

/** Requires every weight ckpt reads from the TF.js model to be what real tfjs decodes, bit for bit. */
async function assertReadsLikeTfjs(modelJson: string): Promise<void> {
  const decoded = await tfjsDecode(modelJson);
  const dict = await open(modelJson);
  try {
    assert.equal(dict.tensors.length, decoded.size);
    for (const t of dict.tensors) {
      const theirs = decoded.get(t.source)!;
      assert.equal(t.dtype, theirs.dtype, t.source);
      assert.ok(Buffer.from(await t.read()).equals(Buffer.from(theirs.bytes)), `${t.source}: ckpt's read differs from tfjs's decode`);
    }
  } finally {
    await dict.close();
  }
}

describe('TF.js output: dtypes tfjs has, and quantization', () => {
  test('int64 → int32 when the values fit (a BatchNorm counter), float16 stored as float16 quantization; tfjs decodes both', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'model.pth');
    const half = castFloats(bytesOf(Float32Array.from([0.5, -1.25, 3e-6, 65504])), 'float32', 'float16');
    await writePytorch(file, [
      { name: 'bn.num_batches_tracked', tensor: tensorOf('bn.num_batches_tracked', 'int64', [], BigInt64Array.from([-2147483648n])) },
      { name: 'fc.weight', tensor: tensorOf('fc.weight', 'float16', [2, 2], half) },
      { name: 'steps', tensor: tensorOf('steps', 'uint8', [2], Uint8Array.from([7, 255])) },
    ]);
    const out = path.join(dir, 'tfjs');
    const r = runCli(['convert', file, path.join(out, 'model.json')]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /1 weight\(s\) int64 → int32 \(TF\.js has no other type for them\): bn\.num_batches_tracked/);
    assert.match(r.stdout, /1 weight\(s\) float16 \(as float16 quantization\): fc\.weight/);
    const manifest = JSON.parse(fs.readFileSync(path.join(out, 'model.json'), 'utf8')).weightsManifest[0].weights;
    assert.deepEqual(manifest.map((w: { dtype: string; quantization?: unknown }) => [w.dtype, w.quantization ?? null]), [
      ['int32', null], ['float32', { dtype: 'float16', original_dtype: 'float32' }], ['int32', null],
    ]);
    const decoded = await tfjsDecode(path.join(out, 'model.json'));
    assert.deepEqual([...new Int32Array(decoded.get('bn.num_batches_tracked')!.bytes.buffer)], [-2147483648]);
    assert.deepEqual([...new Float32Array(decoded.get('fc.weight')!.bytes.buffer)], [...new Float32Array(castFloats(half, 'float16', 'float32').slice().buffer)]);
    assert.deepEqual([...new Int32Array(decoded.get('steps')!.bytes.buffer)], [7, 255]);
    await assertReadsLikeTfjs(path.join(out, 'model.json'));
  });

  test('an int64 value int32 cannot hold is an error naming the tensor and the value; nothing is written', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'model.safetensors');
    await writeSafetensors(file, [
      { name: 'w', tensor: tensorOf('w', 'float32', [1], Float32Array.from([1])) },
      { name: 'ids', tensor: tensorOf('ids', 'int64', [3], BigInt64Array.from([1n, 3000000000n, 2n])) },
    ]);
    const out = path.join(dir, 'tfjs');
    const r = runCli(['convert', file, path.join(out, 'model.json'), '--json']);
    assert.equal(r.status, 3);
    assert.match(r.stderr, /tensor 'ids': int64 value 3000000000 \(element 1\) does not fit int32, and TF\.js has no int64 type/);
    assert.deepEqual(fs.readdirSync(out), []);
  });

  test('--quantize uint8, uint16 and float16 by pattern: ckpt reads exactly what tfjs decodes, within half a step of the source', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'model.safetensors');
    const values = (n: number, k: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * k) * (k + 0.3) - 0.05 * k);
    const source = { 'conv.weight': values(200, 1), 'conv.bias': values(30, 2), 'head.weight': values(64, 3), 'head.bias': Float32Array.from([0.25, 0.25]), 'pos.weight': Float32Array.from([0.5, 1.5, 2.5]) };
    await writeSafetensors(file, Object.entries(source).map(([name, v]) => ({ name, tensor: tensorOf(name, 'float32', [v.length], v) })));
    const model = path.join(dir, 'q', 'model.json');
    const r = runCli(['convert', file, model, '--quantize', 'uint8:glob:conv.*', '--quantize', 'uint16:head.weight', '--quantize', 'float16:=head.bias', '--quantize', 'uint8:pos']);
    assert.equal(r.status, 0, r.stderr);
    const weights = JSON.parse(fs.readFileSync(model, 'utf8')).weightsManifest[0].weights;
    assert.deepEqual(weights.map((w: { quantization: { dtype: string } }) => w.quantization.dtype), ['uint8', 'uint8', 'uint16', 'float16', 'uint8']);
    // Zero inside the range is exactly representable after nudging; a range without zero is not nudged.
    const pos = weights[4].quantization;
    assert.equal(pos.min, 0.5);
    await assertReadsLikeTfjs(model);
    const dict = await open(model);
    for (const t of dict.tensors) {
      const q = weights.find((w: { name: string }) => w.name === t.name).quantization;
      const read = new Float32Array((await t.read()).slice().buffer);
      const original = source[t.name as keyof typeof source];
      const step = q.dtype === 'float16' ? 0 : q.scale;
      read.forEach((v, i) => assert.ok(Math.abs(v - original[i]!) <= step / 2 + 1e-6, `${t.name}[${i}]: ${v} vs ${original[i]}`));
    }
    await dict.close();
    const clash = runCli(['convert', file, path.join(dir, 'c', 'model.json'), '--quantize', 'uint8', '--quantize', 'float16:head']);
    assert.equal(clash.status, 2);
    assert.match(clash.stderr, /--quantize: uint8 and float16 both select 'head\.weight'/);
    assert.match(runCli(['convert', file, path.join(dir, 'x.safetensors'), '--quantize', 'uint8']).stderr, /--quantize does not apply to safetensors output/);
  });

  test('affine quantization: a constant tensor is all zeros with scale 1, non-finite values are refused', () => {
    const constant = quantizeValues(Float32Array.from([2, 2, 2]), 'uint8', 'c', 'in');
    assert.deepEqual([...constant.bytes], [0, 0, 0]);
    assert.deepEqual(constant.quantization, { dtype: 'uint8', min: 2, scale: 1, original_dtype: 'float32' });
    assert.throws(() => quantizeValues(Float32Array.from([1, NaN]), 'uint16', 'bad', 'in'), /tensor 'bad': holds NaN; uint16 quantization maps a finite range/);
  });

  test('a quantized TF.js model rewritten keeps its quantization byte for byte unless --quantize none', { skip: !HAS_CORPUS && 'needs ../shared/corpus' }, async () => {
    const input = path.join(CORPUS, 'tfjs', 'nsfwjs-mobilenet_v2');
    const dir = tempDir();
    const kept = path.join(dir, 'kept');
    const r = runCli(['strip', input, '--exclude', 'nothing_matches_this', '-o', kept]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /266 weight\(s\) keep the input's quantization/);
    const size = (folder: string, json: string) => fs.readdirSync(folder).filter((f) => f !== json).reduce((n, f) => n + fs.statSync(path.join(folder, f)).size, 0);
    assert.equal(size(kept, 'model.json'), size(input, 'model.json'));
    const original = JSON.parse(fs.readFileSync(path.join(input, 'model.json'), 'utf8')).weightsManifest.flatMap((g: { weights: unknown[] }) => g.weights);
    // JSON has no −0: a `"min": -0` comes back as 0, which decodes to the same values.
    assert.deepEqual(JSON.parse(fs.readFileSync(path.join(kept, 'model.json'), 'utf8')).weightsManifest[0].weights, JSON.parse(JSON.stringify(original)));
    const diff = runCli(['diff', '--values', input, kept, '--json']);
    assert.equal(diff.status, 0);
    assert.ok(JSON.parse(diff.stdout).matched.every((p: { values: { bitIdentical: boolean } }) => p.values.bitIdentical));
    await assertReadsLikeTfjs(path.join(kept, 'model.json'));

    const plain = path.join(dir, 'plain');
    assert.equal(runCli(['convert', input, path.join(plain, 'model.json'), '--quantize', 'none']).status, 0);
    assert.ok(size(plain, 'model.json') > 3.5 * size(input, 'model.json'));
    assert.equal(runCli(['diff', '--values', input, plain]).status, 0, 'written as float32, the values are exactly what tfjs decodes from the quantized input');
  });
});
