import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import * as ort from 'onnxruntime-node';
import { gradientModel, parameterNames, parameterShape, stateNames, trainingModel, type TrainSpec } from '../src/train/graph.js';
import { seededRandom } from '../src/train/engine.js';
import { SAMPLES, runCli, tempDir } from './helpers.js';

const adam = { kind: 'adam' as const, momentum: 0.9, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0 };
const sgd = { ...adam, kind: 'sgd' as const };

function randomParams(spec: TrainSpec, seed: number): Record<string, Float32Array> {
  const random = seededRandom(seed);
  return Object.fromEntries(parameterNames(spec).map((p) => [p, Float32Array.from({ length: parameterShape(spec, p).reduce((n, d) => n * d, 1) }, () => random() - 0.5)]));
}

function batchOf(spec: TrainSpec, batch: number, seed: number): { x: Float32Array; y: Float32Array } {
  const random = seededRandom(seed);
  const inF = spec.layers[0]!.inFeatures;
  const outF = spec.layers[spec.layers.length - 1]!.outFeatures;
  const x = Float32Array.from({ length: batch * inF }, () => random() * 2 - 1);
  const y = new Float32Array(batch * outF);
  for (let i = 0; i < batch; i++) {
    if (spec.loss === 'cross-entropy') y[i * outF + (i % outF)] = 1;
    else for (let c = 0; c < outF; c++) y[i * outF + c] = random();
  }
  return { x, y };
}

const tensors = (spec: TrainSpec, params: Record<string, Float32Array>) =>
  Object.fromEntries(Object.entries(params).map(([k, v]) => [k, new ort.Tensor('float32', v, parameterShape(spec, k))]));

/** Central finite differences of the loss against the graph's analytic gradients, every parameter. */
async function checkGradients(spec: TrainSpec, batch = 5): Promise<number> {
  const session = await ort.InferenceSession.create(gradientModel(spec, batch), { executionProviders: ['cpu'] });
  const params = randomParams(spec, 7);
  const { x, y } = batchOf(spec, batch, 11);
  const inF = spec.layers[0]!.inFeatures;
  const outF = spec.layers[spec.layers.length - 1]!.outFeatures;
  const run = (p: Record<string, Float32Array>) => session.run({
    x: new ort.Tensor('float32', x, [batch, inF]), y: new ort.Tensor('float32', y, [batch, outF]), ...tensors(spec, p),
  });
  const analytic = await run(params);
  let worst = 0;
  const eps = 1e-3;
  for (const p of parameterNames(spec)) {
    for (let i = 0; i < params[p]!.length; i++) {
      const plus = { ...params, [p]: params[p]!.slice() };
      const minus = { ...params, [p]: params[p]!.slice() };
      plus[p]![i]! += eps;
      minus[p]![i]! -= eps;
      const numeric = (((await run(plus)).loss!.data as Float32Array)[0]! - ((await run(minus)).loss!.data as Float32Array)[0]!) / (2 * eps);
      let expected = numeric;
      // Frozen rows: the graph must give exactly zero however the loss moves.
      const frozenRow = spec.frozenOutputs !== undefined && p.endsWith(String(spec.layers.length - 1)) &&
        (p.startsWith('b') ? i : spec.layers[spec.layers.length - 1]!.layout === 'OI' ? Math.floor(i / inFeaturesOf(spec)) : i % outF) < spec.frozenOutputs;
      if (frozenRow) expected = 0;
      worst = Math.max(worst, Math.abs(((analytic[`grad_${p}`]!.data as Float32Array)[i]!) - expected));
    }
  }
  await session.release();
  return worst;
}
const inFeaturesOf = (spec: TrainSpec) => spec.layers[spec.layers.length - 1]!.inFeatures;

describe('generated training graphs: gradients match finite differences (CPU)', () => {
  const cases: [string, TrainSpec][] = [
    ['linear head [in,out], cross-entropy', { layers: [{ layout: 'IO', inFeatures: 4, outFeatures: 3, hasBias: true, relu: false }], loss: 'cross-entropy', optimizer: sgd }],
    ['linear head [out,in] without bias', { layers: [{ layout: 'OI', inFeatures: 4, outFeatures: 3, hasBias: false, relu: false }], loss: 'cross-entropy', optimizer: sgd }],
    ['two layers with Relu, mixed layouts', { layers: [{ layout: 'OI', inFeatures: 5, outFeatures: 6, hasBias: true, relu: true }, { layout: 'IO', inFeatures: 6, outFeatures: 3, hasBias: true, relu: false }], loss: 'cross-entropy', optimizer: adam }],
    ['three layers, mse regression', { layers: [{ layout: 'IO', inFeatures: 3, outFeatures: 4, hasBias: true, relu: true }, { layout: 'OI', inFeatures: 4, outFeatures: 4, hasBias: true, relu: true }, { layout: 'IO', inFeatures: 4, outFeatures: 2, hasBias: true, relu: false }], loss: 'mse', optimizer: sgd }],
    ['head with the first 2 of 4 outputs frozen', { layers: [{ layout: 'OI', inFeatures: 3, outFeatures: 4, hasBias: true, relu: false }], loss: 'cross-entropy', optimizer: sgd, frozenOutputs: 2 }],
  ];
  for (const [name, spec] of cases) {
    test(name, async () => {
      const worst = await checkGradients(spec);
      assert.ok(worst < 2e-3, `max |analytic − numeric| = ${worst}`);
    });
  }
});

/** One SGD-with-momentum step on a linear softmax head, written out plainly. */
function referenceStep(W: Float64Array, b: Float64Array, vW: Float64Array, vb: Float64Array, x: Float32Array, y: Float32Array, inF: number, outF: number, batch: number, lr: number, mu: number): number {
  const gW = new Float64Array(W.length);
  const gb = new Float64Array(outF);
  let loss = 0;
  for (let n = 0; n < batch; n++) {
    const z = new Float64Array(outF);
    for (let c = 0; c < outF; c++) {
      z[c] = b[c]!;
      for (let i = 0; i < inF; i++) z[c]! += x[n * inF + i]! * W[i * outF + c]!;
    }
    const max = Math.max(...z);
    const exps = z.map((v) => Math.exp(v - max));
    const sum = exps.reduce((s, v) => s + v, 0);
    for (let c = 0; c < outF; c++) {
      const p = exps[c]! / sum;
      loss -= (y[n * outF + c]! * Math.log(p)) / batch;
      const d = (p - y[n * outF + c]!) / batch;
      gb[c]! += d;
      for (let i = 0; i < inF; i++) gW[i * outF + c]! += x[n * inF + i]! * d;
    }
  }
  for (let k = 0; k < W.length; k++) { vW[k] = mu * vW[k]! + gW[k]!; W[k]! -= lr * vW[k]!; }
  for (let c = 0; c < outF; c++) { vb[c] = mu * vb[c]! + gb[c]!; b[c]! -= lr * vb[c]!; }
  return loss;
}

test('a small linear head trained by the generated Loop graph matches a plain TypeScript reference', async () => {
  const spec: TrainSpec = { layers: [{ layout: 'IO', inFeatures: 6, outFeatures: 4, hasBias: true, relu: false }], loss: 'cross-entropy', optimizer: { ...sgd, momentum: 0.9 } };
  const [inF, outF, batch, steps, lr] = [6, 4, 8, 20, 0.1];
  const params = randomParams(spec, 3);
  const xs = new Float32Array(steps * batch * inF);
  const ys = new Float32Array(steps * batch * outF);
  for (let s = 0; s < steps; s++) {
    const { x, y } = batchOf(spec, batch, 100); // the same batch every step: the loss must fall
    xs.set(x, s * batch * inF);
    ys.set(y, s * batch * outF);
  }
  const session = await ort.InferenceSession.create(trainingModel(spec, batch), { executionProviders: ['cpu'] });
  const zeros = Object.fromEntries(stateNames(spec).map((s) => [s, new ort.Tensor('float32', new Float32Array(params[s.replace(/_v$/, '')]!.length), parameterShape(spec, s.replace(/_v$/, '')))]));
  const out = await session.run({
    xs: new ort.Tensor('float32', xs, [steps, batch, inF]), ys: new ort.Tensor('float32', ys, [steps, batch, outF]),
    ...tensors(spec, params), ...zeros, t: new ort.Tensor('float32', new Float32Array([0]), []), lr: new ort.Tensor('float32', new Float32Array([lr]), []),
  });
  await session.release();
  const W = Float64Array.from(params.W0!);
  const b = Float64Array.from(params.b0!);
  const [vW, vb] = [new Float64Array(W.length), new Float64Array(outF)];
  const losses: number[] = [];
  for (let s = 0; s < steps; s++) {
    losses.push(referenceStep(W, b, vW, vb, xs.subarray(s * batch * inF), ys.subarray(s * batch * outF), inF, outF, batch, lr, 0.9));
  }
  const got = out.W0_out!.data as Float32Array;
  W.forEach((w, k) => assert.ok(Math.abs(w - got[k]!) < 1e-4, `W[${k}]: ${w} vs ${got[k]}`));
  (out.losses!.data as Float32Array).forEach((l, s) => assert.ok(Math.abs(l - losses[s]!) < 1e-4, `loss ${s}`));
  assert.ok(losses[steps - 1]! < losses[0]!, 'the loss decreases');
});

describe('ckpt finetune on the digits demo', () => {
  const dir = tempDir();
  const digits = path.join(SAMPLES, 'digits');
  const start = path.join(dir, 'start.onnx');

  const lines = (stdout: string) => stdout.trim().split('\n').map((l) => JSON.parse(l));

  test('plan + apply grow the 8-class head to 10 classes', () => {
    const plan = path.join(dir, 'plan.json');
    assert.equal(runCli(['plan', path.join(digits, 'cnn-8.onnx'), path.join(digits, 'cnn-10.onnx'), '-o', plan]).status, 0);
    assert.equal(runCli(['apply', plan, '-o', start]).status, 0);
  });

  test('scenario a: a new classifier on frozen features; old-class rows stay fixed; the rest is untouched', () => {
    const out = path.join(dir, 'a.onnx');
    const r = runCli(['finetune', start, '--data', path.join(digits, 'finetune.csv.gz'), '--old-classes', '8', '--freeze-old-classes', '--epochs', '8', '--lr', '0.01', '--ep', 'cpu', '-o', out]);
    assert.equal(r.status, 0, r.stderr);
    const events = lines(r.stdout);
    assert.deepEqual(events.map((e) => e.event), ['start', ...Array(8).fill('epoch'), 'summary']);
    const summary = events[events.length - 1];
    assert.deepEqual(summary.trained, ['fc2.weight']);
    assert.equal(summary.provider, 'cpu');
    assert.ok(events[8].trainLoss < events[1].trainLoss, 'the loss decreases');
    assert.ok(summary.accuracy > 0.6 && summary.accuracyOld > 0.6 && summary.accuracyNew !== undefined, JSON.stringify(summary));
    const diff = JSON.parse(runCli(['diff', '--values', '--json', start, out]).stdout);
    const changed = diff.matched.filter((p: { values: { bitIdentical: boolean } }) => !p.values.bitIdentical).map((p: { a: string }) => p.a);
    assert.deepEqual(changed, ['fc2.weight', 'fc2.bias']);
    assert.equal(runCli(['check', out]).status, 0);
  });

  test('--freeze-old-classes keeps the 8 pretrained rows of the head bit-identical', async () => {
    const out = path.join(dir, 'a2.onnx');
    assert.equal(runCli(['finetune', start, '--data', path.join(digits, 'finetune.csv.gz'), '--old-classes', '8', '--freeze-old-classes', '--epochs', '2', '--ep', 'cpu', '-o', out]).status, 0);
    const head = async (file: string) => JSON.parse(runCli(['inspect', '--json', '--hash', '--filter', '=fc2.weight', file]).stdout).tensors[0];
    const { open } = await import('../src/index.js');
    const rows = async (file: string) => {
      const dict = await open(file);
      const w = new Float32Array(Uint8Array.from(await dict.tensors.find((t) => t.name === 'fc2.weight')!.read()).buffer);
      await dict.close();
      return { old: w.subarray(0, 8 * 32), new: w.subarray(8 * 32) };
    };
    const [before, after] = [await rows(start), await rows(out)];
    assert.deepEqual(after.old, before.old);
    assert.notDeepEqual(after.new, before.new);
    assert.notEqual((await head(start)).sha256, (await head(out)).sha256);
  });

  test('scenario b: the top two dense layers train together', () => {
    const out = path.join(dir, 'b.onnx');
    const r = runCli(['finetune', start, '--data', path.join(digits, 'finetune.csv.gz'), '--train-last', '2', '--optimizer', 'sgd', '--lr', '0.05', '--epochs', '5', '--ep', 'cpu', '-o', out]);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(lines(r.stdout).pop().trained, ['fc1.weight', 'fc2.weight']);
    assert.equal(runCli(['check', out]).status, 0);
  });

  test('.npz data (arrays x and y) trains like CSV', async () => {
    const { encodeNpyHeader } = await import('../src/formats/numpy/header.js');
    const { ZipWriter } = await import('../src/core/zip.js');
    const rows = zlib.gunzipSync(fs.readFileSync(path.join(digits, 'finetune.csv.gz'))).toString().trim().split('\n').slice(1).map((l) => l.split(',').map(Number));
    const x = Float32Array.from(rows.flatMap((r) => r.slice(1)));
    const y = BigInt64Array.from(rows.map((r) => BigInt(r[0]!)));
    const parts: Uint8Array[] = [];
    const zip = new ZipWriter((b) => parts.push(Uint8Array.from(b)));
    zip.add('x.npy', [encodeNpyHeader('float32', [rows.length, 1, 8, 8]), new Uint8Array(x.buffer)]);
    zip.add('y.npy', [encodeNpyHeader('int64', [rows.length]), new Uint8Array(y.buffer)]);
    zip.finish();
    const data = path.join(dir, 'digits.npz');
    fs.writeFileSync(data, Buffer.concat(parts));
    const r = runCli(['finetune', start, '--data', data, '--epochs', '2', '--ep', 'cpu', '-o', path.join(dir, 'npz.onnx')]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(lines(r.stdout).pop().trainExamples + lines(r.stdout).pop().validationExamples, rows.length);
  });

  test('bad data is a clear error before training', () => {
    const bad = (name: string, text: string) => {
      const file = path.join(dir, name);
      fs.writeFileSync(file, zlib.gzipSync(text));
      return file;
    };
    const header = `label,${Array.from({ length: 64 }, (_, i) => `p${i}`).join(',')}\n`;
    const row = (label: number, value = '1') => `${label},${Array(64).fill(value).join(',')}\n`;
    const cases: [string, RegExp][] = [
      [bad('range.csv.gz', header + row(3) + row(12)), /label 12 is out of range: the model's head has 10 outputs/],
      [bad('nan.csv.gz', header + row(3) + row(4, 'nan')), /line 3, column 2: 'nan' is not a number/],
      [bad('narrow.csv.gz', 'label,a,b\n1,2,3\n'), /2 values per example \(shape \[2\]\); the model input 'pixels' expects \[1,8,8\]/],
      [bad('fraction.csv.gz', header + row(3) + `1.5,${Array(64).fill(0).join(',')}\n`), /label 1: 1\.5 is not a class index/],
    ];
    for (const [file, message] of cases) {
      for (const scenario of [[], ['--train-all']]) {
        const r = runCli(['finetune', start, '--data', file, ...scenario, '-o', path.join(dir, 'x.onnx')]);
        assert.equal(r.status, 3, `${file} ${scenario}: ${r.stderr}`);
        assert.match(r.stderr, message);
      }
    }
    // The same checks whichever layers train: regression targets as wide as the head, fewer old classes.
    for (const scenario of [[], ['--train-all']]) {
      const mse = runCli(['finetune', start, '--data', path.join(digits, 'finetune.csv.gz'), '--loss', 'mse', ...scenario, '-o', path.join(dir, 'x.onnx')]);
      assert.equal(mse.status, 3, mse.stderr);
      assert.match(mse.stderr, /targets: 1 values per example, the model's head has 10 outputs/);
      const old = runCli(['finetune', start, '--data', path.join(digits, 'finetune.csv.gz'), '--old-classes', '12', ...scenario, '-o', path.join(dir, 'x.onnx')]);
      assert.equal(old.status, 2, old.stderr);
      assert.match(old.stderr, /--old-classes 12: the head has only 10 outputs/);
    }
    assert.ok(!fs.existsSync(path.join(dir, 'x.onnx')));
  });

  test('scenario c: --train-all trains every layer (Conv, MaxPool, Gemm…) and the result runs', () => {
    const out = path.join(dir, 'c.onnx');
    const r = runCli(['finetune', start, '--data', path.join(digits, 'finetune.csv.gz'), '--train-all', '--epochs', '4', '--lr', '0.003', '--ep', 'cpu', '-o', out]);
    assert.equal(r.status, 0, r.stderr);
    const events = lines(r.stdout);
    const summary = events.pop();
    assert.deepEqual(summary.trained, ['features.0.weight', 'features.0.bias', 'features.3.weight', 'features.3.bias', 'fc1.weight', 'fc1.bias', 'fc2.weight', 'fc2.bias']);
    assert.ok(events[events.length - 1].trainLoss < events[1].trainLoss, 'the loss decreases');
    const diff = JSON.parse(runCli(['diff', '--values', '--json', start, out]).stdout);
    assert.ok(diff.matched.filter((p: { a: string }) => p.a !== 'Constant_output_0').every((p: { values: { bitIdentical: boolean } }) => !p.values.bitIdentical));
    assert.equal(runCli(['check', out]).status, 0);
  });
});
