import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CORPUS, HAS_CORPUS, SAMPLES, runCli, tempDir } from './helpers.js';
import { python, pythonHas } from './python.js';
import { encodeModel, float32Tensor, type ModelSpec } from '../src/formats/onnx/build.js';
import { generatedTensor } from '../src/runtime/inputs.js';
import { loadOrt } from '../src/runtime/session.js';
import { exposingModel } from '../src/runtime/expose.js';
import { halfToNumber } from '../src/core/decode.js';
import type { DType } from '../src/core/dtype.js';

const dir = tempDir('ckpt-compare-test-');
function model(name: string, spec: Omit<ModelSpec, 'graphName'>): string {
  const file = path.join(dir, `${name}.onnx`);
  fs.writeFileSync(file, encodeModel({ graphName: name, ...spec }));
  return file;
}
const json = (stdout: string) => JSON.parse(stdout);

/** y = x + c over x [4, 8]: A with c = 0, B with c from numpy; the expected statistics come from numpy. */
test('compare reports max |Δ|, mean |Δ| and cosine as numpy computes them; exit 0 within the tolerance, 1 outside', { skip: !pythonHas('numpy') && 'Debian python3-numpy is not installed' }, () => {
  const x = path.join(dir, 'x.npy');
  const reference = JSON.parse(python(`
import json, sys, numpy as np
rng = np.random.default_rng(7)
x = rng.standard_normal((4, 8)).astype(np.float32)
c = (rng.standard_normal(8) * 0.01).astype(np.float32)
np.save(sys.argv[1], x)
a = (x + np.zeros(8, np.float32)).astype(np.float64)
b = (x + c).astype(np.float64)
d = np.abs(a - b)
print(json.dumps({'c': c.tolist(), 'max': float(d.max()), 'mean': float(d.mean()),
  'cosine': float(a.ravel() @ b.ravel() / np.sqrt((a.ravel() @ a.ravel()) * (b.ravel() @ b.ravel()))),
  'outside': int((d > 1e-3 + 0 * np.abs(b)).sum())}))
`, x)) as { c: number[]; max: number; mean: number; cosine: number; outside: number };
  const spec = (c: number[]) => ({
    nodes: [{ op: 'Add', inputs: ['x', 'c'], outputs: ['y'] }], initializers: [float32Tensor('c', [8], Float32Array.from(c))],
    inputs: [{ name: 'x', dtype: 'float32' as DType, shape: [4, 8] }], outputs: [{ name: 'y', dtype: 'float32' as DType, shape: [4, 8] }],
  });
  const a = model('add-zero', spec(new Array(8).fill(0)));
  const b = model('add-c', spec(reference.c));

  const same = runCli(['compare', '--json', '--ep', 'cpu', a, a]);
  assert.equal(same.status, 0, same.stderr);
  assert.deepEqual(json(same.stdout).outputs.map((o: { maxAbs: number; equal: boolean }) => [o.maxAbs, o.equal]), [[0, true]]);

  const strict = runCli(['compare', '--json', '--ep', 'cpu', '--input', `x=${x}`, '--atol', '1e-3', '--rtol', '0', a, b]);
  assert.equal(strict.status, 1, strict.stderr);
  const out = json(strict.stdout).outputs[0];
  assert.equal(out.maxAbs, reference.max);
  assert.ok(Math.abs(out.meanAbs - reference.mean) <= 1e-12 * reference.mean, `${out.meanAbs} vs ${reference.mean}`);
  assert.ok(Math.abs(out.cosine - reference.cosine) <= 1e-12, `${out.cosine} vs ${reference.cosine}`);
  assert.equal(out.outside, reference.outside);
  assert.equal(out.compared, 32);
  assert.deepEqual(json(strict.stdout).inputs, [{ name: 'x', dtype: 'float32', shape: [4, 8], from: 'file' }]);

  const loose = runCli(['compare', '--ep', 'cpu', '--input', `x=${x}`, '--atol', String(reference.max * 1.01), a, b]);
  assert.equal(loose.status, 0, loose.stderr);
  assert.match(loose.stdout, /: equal — within/);
  assert.match(loose.stdout, /│ y +│ float32 │ \[4, 8\] +│ \[4, 8\] +│ 32 +│/);
});

const ALL_DTYPES: DType[] = ['float32', 'float16', 'float64', 'int8', 'int16', 'int32', 'int64', 'uint8', 'uint16', 'uint32', 'uint64', 'bool'];

test('inputs are generated for every input type onnxruntime-node takes, and the same on every run', async () => {
  const file = model('every-dtype', {
    nodes: ALL_DTYPES.map((d) => ({ op: 'Cast', inputs: [`in_${d}`], outputs: [`out_${d}`], attributes: { to: 1 } })), initializers: [],
    inputs: ALL_DTYPES.map((d) => ({ name: `in_${d}`, dtype: d, shape: [2, 'n'] })),
    outputs: ALL_DTYPES.map((d) => ({ name: `out_${d}`, dtype: 'float32' as DType, shape: [2, 'n'] })),
  });
  const check = runCli(['check', '--json', '--ep', 'cpu', '--shape', 'in_float32=2x16', file]);
  assert.equal(check.status, 0, check.stderr);
  const report = json(check.stdout);
  assert.deepEqual(report.inputs.map((i: { dtype: string; shape: number[] }) => [i.dtype, i.shape]), ALL_DTYPES.map((d) => [d, [2, 16]]), 'n bound by --shape of in_float32');
  const same = runCli(['compare', '--json', '--ep', 'cpu', '--shape', 'in_float32=2x16', file, file]);
  assert.equal(same.status, 0, same.stderr);
  assert.equal(json(same.stdout).outputs.length, ALL_DTYPES.length);

  const ort = await loadOrt();
  for (const dtype of ALL_DTYPES) {
    const t = generatedTensor(ort, dtype, [64], 3, 'model', 'x');
    const values = dtype === 'float16' ? Array.from(t.data as Uint16Array, halfToNumber) : Array.from(t.data as ArrayLike<number | bigint>, Number);
    if (dtype.startsWith('float')) assert.ok(values.every((v) => v >= 0 && v < 1) && new Set(values).size > 32, dtype);
    else assert.deepEqual([...new Set(values)].sort(), [0, 1], dtype);
    assert.deepEqual(generatedTensor(ort, dtype, [64], 3, 'model', 'x').data, t.data, `${dtype}: same seed, same values`);
  }
  assert.notDeepEqual(generatedTensor(ort, 'float32', [8], 4, 'model', 'x').data, generatedTensor(ort, 'float32', [8], 3, 'model', 'x').data);
});

test('a bfloat16 input is a capability gap of onnxruntime-node (exit 3), not a usage error', () => {
  const file = model('bf16', {
    nodes: [{ op: 'Cast', inputs: ['x'], outputs: ['y'], attributes: { to: 1 } }], initializers: [],
    inputs: [{ name: 'x', dtype: 'bfloat16', shape: [2] }], outputs: [{ name: 'y', dtype: 'float32', shape: [2] }],
  });
  const r = runCli(['check', '--ep', 'cpu', file]);
  assert.equal(r.status, 3);
  assert.match(r.stderr, /bfloat16/);
});

/** A: y = x; B: y = 0·x + 7. Equal exactly when every x is 7. */
const identity = model('identity', {
  nodes: [{ op: 'Identity', inputs: ['x'], outputs: ['y'] }], initializers: [],
  inputs: [{ name: 'x', dtype: 'float32', shape: [2, 3] }], outputs: [{ name: 'y', dtype: 'float32', shape: [2, 3] }],
});
const seven = model('seven', {
  nodes: [{ op: 'Mul', inputs: ['x', 'zero'], outputs: ['t'] }, { op: 'Add', inputs: ['t', 'seven'], outputs: ['y'] }],
  initializers: [float32Tensor('zero', [1], Float32Array.of(0)), float32Tensor('seven', [1], Float32Array.of(7))],
  inputs: [{ name: 'x', dtype: 'float32', shape: [2, 3] }], outputs: [{ name: 'y', dtype: 'float32', shape: [2, 3] }],
});

test('--input sets values: a scalar fills the input, a comma list gives every value, a .npy its array', { skip: !pythonHas('numpy') && 'Debian python3-numpy is not installed' }, () => {
  assert.equal(runCli(['compare', '--ep', 'cpu', identity, seven]).status, 1, 'generated inputs are not 7');
  const filled = runCli(['compare', '--json', '--ep', 'cpu', '--input', 'x=7', identity, seven]);
  assert.equal(filled.status, 0, filled.stderr);
  assert.deepEqual(json(filled.stdout).inputs, [{ name: 'x', dtype: 'float32', shape: [2, 3], from: 'value' }]);
  const listed = runCli(['compare', '--json', '--ep', 'cpu', '--atol', '0', '--rtol', '0', '--input', 'x=7,7,7,7,7,5.5', identity, seven]);
  assert.equal(listed.status, 1);
  const out = json(listed.stdout).outputs[0];
  assert.deepEqual([out.maxAbs, out.meanAbs, out.outside], [1.5, 0.25, 1]);
  const npy = path.join(dir, 'sevens.npy');
  python('import sys, numpy as np; np.save(sys.argv[1], np.full((2, 3), 7, np.float64))', npy);
  assert.equal(runCli(['compare', '--ep', 'cpu', '--input', `x=${npy}`, identity, seven]).status, 0, 'float64 array converted to the float32 input');
  const wrongShape = path.join(dir, 'row.npy');
  python('import sys, numpy as np; np.save(sys.argv[1], np.zeros(6, np.float32))', wrongShape);
  const r = runCli(['compare', '--ep', 'cpu', '--input', `x=${wrongShape}`, identity, seven]);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /shape \[6\] does not fit the model's input \[2, 3\]/);
});

test('--input and --shape errors are usage errors that name the model\'s inputs', () => {
  for (const command of [['compare', identity, seven], ['check', identity]]) {
    const unknownInput = runCli([...command, '--input', 'nope=1']);
    assert.equal(unknownInput.status, 2);
    assert.match(unknownInput.stderr, /^ckpt: --input nope: the model has no input 'nope'; its inputs are x\n$/);
    const unknownShape = runCli([...command, '--shape', 'images=1x3x320x320']);
    assert.equal(unknownShape.status, 2);
    assert.match(unknownShape.stderr, /^ckpt: --shape images: the model has no input 'images'; its inputs are x\n$/);
  }
  assert.match(runCli(['check', identity, '--input', 'x=abc']).stderr, /'abc' is not a number/);
  assert.match(runCli(['check', identity, '--input', 'x=1,2']).stderr, /2 values given, the input \[2, 3\] holds 6/);
  assert.match(runCli(['check', identity, '--shape', 'x=5x3']).stderr, /dim 0 is fixed to 2 in the model, 5 given/);
  assert.equal(runCli(['check', identity, '--input', 'x']).status, 2);
});

test('symbolic dims fixed by one input apply to every input that shares them', () => {
  const file = model('shared-dim', {
    nodes: [{ op: 'Relu', inputs: ['x'], outputs: ['y'] }, { op: 'Identity', inputs: ['m'], outputs: ['z'] }], initializers: [],
    inputs: [{ name: 'x', dtype: 'float32', shape: ['batch', 3] }, { name: 'm', dtype: 'int64', shape: ['batch', 4] }],
    outputs: [{ name: 'y', dtype: 'float32', shape: ['batch', 3] }, { name: 'z', dtype: 'int64', shape: ['batch', 4] }],
  });
  const r = runCli(['check', '--json', '--ep', 'cpu', '--input', 'x=1,2,3,4,5,6,7,8,9', file]);
  assert.equal(r.status, 2, 'a list for a 2-D input must fill its shape');
  const shaped = runCli(['check', '--json', '--ep', 'cpu', '--shape', 'x=5x3', file]);
  assert.equal(shaped.status, 0, shaped.stderr);
  assert.deepEqual(json(shaped.stdout).inputs.map((i: { shape: number[] }) => i.shape), [[5, 3], [5, 4]]);
});

/**
 * x [1, 32] → 4 × (MatMul, Relu), the last without Relu; B's layer 2 weight differs in one value.
 * The 4 KiB weights are large enough for bisect to point at them in place rather than copy them.
 */
function chain(name: string, perturb: boolean, activation = 'Relu'): string {
  const nodes: ModelSpec['nodes'] = [];
  const initializers = [];
  let x = 'x';
  for (let layer = 0; layer < 4; layer++) {
    const w = Float32Array.from({ length: 32 * 32 }, (_, i) => Math.sin(i + 10 * layer) / 8);
    if (perturb && layer === 2) w[9]! += 0.5;
    initializers.push(float32Tensor(`layer${layer}.weight`, [32, 32], w));
    nodes.push({ op: 'MatMul', name: `layer${layer}.MatMul`, inputs: [x, `layer${layer}.weight`], outputs: [`layer${layer}.mm`] });
    x = `layer${layer}.mm`;
    if (layer < 3) {
      nodes.push({ op: activation, name: `layer${layer}.${activation}`, inputs: [x], outputs: [`layer${layer}.act`] });
      x = `layer${layer}.act`;
    }
  }
  return model(name, {
    nodes, initializers,
    inputs: [{ name: 'x', dtype: 'float32', shape: [1, 32] }], outputs: [{ name: x, dtype: 'float32', shape: [1, 32] }],
  });
}

const bisectTemps = () => fs.readdirSync(os.tmpdir()).filter((f) => f.startsWith('ckpt-bisect-')).length;

test('--bisect names the first node whose output diverges, a few intermediate outputs at a time', () => {
  const before = bisectTemps();
  const a = chain('chain-a', false);
  const b = chain('chain-b', true);
  const r = runCli(['compare', '--json', '--ep', 'cpu', '--bisect', '--bisect-batch', '2', a, b]);
  assert.equal(r.status, 1, r.stderr);
  const report = json(r.stdout).bisect;
  assert.equal(report.firstDivergent.name, 'layer2.MatMul');
  assert.equal(report.firstDivergent.index, 4);
  assert.equal(report.firstDivergent.output.name, 'layer2.mm');
  assert.ok(report.firstDivergent.output.maxAbs > 0);
  assert.deepEqual([report.nodes, report.runs, report.batch], [7, 3, 2], 'stops at the batch of nodes 4 and 5');
  const text = runCli(['compare', '--ep', 'cpu', '--bisect', a, b]);
  assert.match(text.stdout, /bisect: first divergent node: #4 MatMul 'layer2\.MatMul', output 'layer2\.mm' \(max \|Δ\| /);
  assert.equal(bisectTemps(), before, 'temporary models removed');
});

test('bisect models point at the original weights in place (a hard link) instead of copying them', async () => {
  const a = chain('chain-linked', false);
  const folder = tempDir();
  const exposed = await exposingModel(a, ['layer0.mm'], folder, 'a');
  assert.ok(fs.statSync(exposed).size < 4096, `a small graph, not a ${fs.statSync(a).size}-byte copy`);
  assert.equal(fs.statSync(path.join(folder, 'a.weights')).ino, fs.statSync(a).ino);
  const ort = await loadOrt();
  const session = await ort.InferenceSession.create(exposed);
  const out = await session.run({ x: new ort.Tensor('float32', new Float32Array(32).fill(1), [1, 32]) });
  await session.release();
  // Row sums of layer 0's weight: x = ones.
  const expected = Array.from({ length: 32 }, (_, j) => Array.from({ length: 32 }, (_, i) => Math.fround(Math.sin(i * 32 + j) / 8)).reduce((n, v) => n + v, 0));
  assert.deepEqual(out['layer0.mm']!.dims, [1, 32]);
  (out['layer0.mm']!.data as Float32Array).forEach((v, j) => assert.ok(Math.abs(v - expected[j]!) < 1e-5, `${v} vs ${expected[j]}`));
});

test('--bisect refuses two graphs of different topology, naming where they part', () => {
  const r = runCli(['compare', '--ep', 'cpu', '--bisect', chain('chain-relu', false), chain('chain-sigmoid', false, 'Sigmoid')]);
  assert.equal(r.status, 3);
  assert.match(r.stderr, /--bisect needs two graphs of the same topology \(the same op sequence\): node 1 is Relu 'layer0\.Relu' in A, Sigmoid 'layer0\.Sigmoid' in B/);
  assert.equal(r.stdout, '');
});

const detector90 = path.join(SAMPLES, 'detector-90.onnx');
const detector92 = path.join(SAMPLES, 'detector-92.onnx');

function detectorPlan(): string {
  const plan = path.join(tempDir(), 'plan.json');
  assert.equal(runCli(['plan', detector90, detector92, '-o', plan]).status, 0);
  return plan;
}

test('--class-map compares the old classes of a grown head only (90 → 92 classes, 3 anchors of 5 + C)', () => {
  const plan = detectorPlan();
  const applied = path.join(path.dirname(plan), 'applied.onnx');
  assert.equal(runCli(['apply', plan, '-o', applied]).status, 0);
  const expected = { axis: 1, blocks: 3, oldBlock: 95, newBlock: 97 };
  for (const classMap of ['90:92', plan]) {
    const r = runCli(['compare', '--json', '--ep', 'cpu', '--atol', '0', '--rtol', '0', '--class-map', classMap, detector90, applied]);
    assert.equal(r.status, 0, r.stderr);
    const out = json(r.stdout).outputs[0];
    assert.deepEqual(out.columns, expected);
    assert.deepEqual([out.compared, out.maxAbs, out.cosine], [285 * 16 * 16, 0, 1]);
  }
  const other = runCli(['compare', '--json', '--ep', 'cpu', '--class-map', '90:92', detector90, detector92]);
  assert.equal(other.status, 1, 'the 92-class sample has weights of its own');
  assert.deepEqual(json(other.stdout).outputs[0].columns, expected);
  const none = runCli(['compare', '--ep', 'cpu', detector90, applied]);
  assert.equal(none.status, 1);
  assert.match(none.stdout, /shapes differ \(a grown class head\? --class-map OLD:NEW\)/);
  assert.equal(runCli(['compare', '--class-map', '92:90', detector90, applied]).status, 2);
});

test('check plan.json compares the old classes with the source: a correct expansion passes, a hand-edited one fails', () => {
  const plan = detectorPlan();
  const good = runCli(['check', '--json', '--ep', 'cpu', plan]);
  assert.equal(good.status, 0, good.stderr);
  const result = json(good.stdout).sourceComparison.result;
  assert.equal(result.equal, true);
  assert.deepEqual(result.outputs.map((o: { maxAbs: number; compared: number }) => [o.maxAbs, o.compared]), [[0, 285 * 16 * 16]]);
  // A hand-edited row map that apply can carry out: classes 0 and 1 swapped in every anchor.
  const edited = JSON.parse(fs.readFileSync(plan, 'utf8'));
  for (const e of edited.entries) if (e.expand) [e.expand.rows[5], e.expand.rows[6]] = [e.expand.rows[6], e.expand.rows[5]];
  fs.writeFileSync(plan, JSON.stringify(edited));
  const bad = runCli(['check', '--ep', 'cpu', plan]);
  assert.equal(bad.status, 1);
  assert.match(bad.stdout, /FAILED \(outputs differ from the source's\)/);
  assert.match(bad.stdout, /outputs vs the source: different \(1 of 1 outputs\)/);
});

test('check of a plan says why outputs were not compared: a source that is not ONNX, a skipped head', () => {
  const plan = path.join(tempDir(), 'plan.json');
  assert.equal(runCli(['plan', path.join(SAMPLES, 'detector-90-train.pth'), detector92, '-o', plan]).status, 0);
  const r = runCli(['check', '--json', '--ep', 'cpu', plan]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(json(r.stdout).sourceComparison.skipped, /not an ONNX model/);
  assert.equal(runCli(['plan', detector90, detector92, '--preset', 'yolov3', '-o', plan]).status, 0);
  const headless = runCli(['check', '--ep', 'cpu', '--min-loaded', '0.2', plan]);
  assert.equal(headless.status, 0, headless.stderr);
  assert.match(headless.stdout, /outputs not compared with the source .*: 2 target tensor\(s\) are skipped, not taken from the source, so the outputs are meant to differ/);
});

test('check of a non-ONNX checkpoint checks its values without a forward pass', () => {
  const r = runCli(['check', '--json', path.join(SAMPLES, 'detector-90.h5')]);
  assert.equal(r.status, 0, r.stderr);
  const report = json(r.stdout);
  assert.match(report.notRun, /not an ONNX model/);
  assert.equal(report.outputs, undefined);
  assert.deepEqual([report.health.checked, report.health.problems], [6, []]);
});

test("onnxruntime's own log reaches stderr only with --verbose", () => {
  // A Reshape to a size that does not fit fails inside onnxruntime, which logs the failing kernel.
  const file = model('reshape', {
    nodes: [{ op: 'Reshape', inputs: ['x', 'shape'], outputs: ['y'] }], initializers: [],
    inputs: [{ name: 'x', dtype: 'float32', shape: [1, 4] }, { name: 'shape', dtype: 'int64', shape: [1] }],
    outputs: [{ name: 'y', dtype: 'float32', shape: ['n'] }],
  });
  const quiet = runCli(['check', '--ep', 'cpu', '--input', 'shape=3', file]);
  assert.equal(quiet.status, 3);
  assert.deepEqual(quiet.stderr.trimEnd().split('\n').filter((l) => !l.startsWith('ckpt: ')), [], quiet.stderr);
  assert.match(quiet.stderr, /forward pass: .*Reshape/);
  const verbose = runCli(['check', '--ep', 'cpu', '--verbose', '--input', 'shape=3', file]);
  assert.equal(verbose.status, 3);
  assert.ok(verbose.stderr.split('\n').some((l) => /onnxruntime/.test(l) && !l.startsWith('ckpt: ')), verbose.stderr);
});

const SILERO = path.join(CORPUS, 'onnx', 'silero-vad-v4', 'silero_vad_legacy.onnx');
const GPT2_FP16 = path.join(CORPUS, 'onnx', 'ortgenai-tiny-gpt2-fp16', 'past.onnx');

test('silero-vad passes check with its sample rate given (--input sr=16000)', { skip: !(HAS_CORPUS && fs.existsSync(SILERO)) && 'corpus not present' }, () => {
  const r = runCli(['check', '--json', '--ep', 'cpu', '--input', 'sr=16000', '--shape', 'input=1x512', SILERO]);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stderr, '', 'h and c take batch from input: no dynamic-dims warning');
  const report = json(r.stdout);
  assert.deepEqual(report.inputs.map((i: { name: string; shape: number[]; from: string }) => [i.name, i.shape, i.from]),
    [['input', [1, 512], 'generated'], ['sr', [], 'value'], ['h', [2, 1, 64], 'generated'], ['c', [2, 1, 64], 'generated']]);
  assert.ok(report.outputs.every((o: { finite: boolean }) => o.finite));
  const failing = runCli(['check', '--ep', 'cpu', SILERO]);
  assert.equal(failing.status, 3);
  assert.deepEqual(failing.stderr.trimEnd().split('\n').filter((l) => !l.startsWith('ckpt: ')), [], 'no onnxruntime log lines');
});

test('the float16 tiny GPT-2 runs in check (float16 and int32 inputs generated)', { skip: !(HAS_CORPUS && fs.existsSync(GPT2_FP16)) && 'corpus not present' }, () => {
  const r = runCli(['check', '--json', '--ep', 'cpu', '--shape', 'input_ids=1x1', '--shape', 'past_0=2x1x4x3x8', '--shape', 'attention_mask=1x4', GPT2_FP16]);
  assert.equal(r.status, 0, r.stderr);
  const report = json(r.stdout);
  assert.deepEqual(report.inputs.map((i: { dtype: string }) => i.dtype), ['int32', 'int32', 'int32', 'float16', 'float16', 'float16', 'float16', 'float16']);
  assert.deepEqual(report.outputs[0], { name: 'logits', dtype: 'float16', shape: [1, 1, 1000], finite: true, nonFinite: 0 });
  assert.deepEqual(report.outputs[1].shape, [2, 1, 4, 4, 8], 'past_seq_len 3 bound from past_0 for every past input');
});

test('check plan.json compares old classes where the plan put them: a background row moved last', () => {
  const dir = tempDir();
  const head = (classes: number, seed: number) => encodeModel({
    graphName: 'head',
    nodes: [{ op: 'Conv', inputs: ['x', 'head.weight', 'head.bias'], outputs: ['y'] }],
    initializers: [
      float32Tensor('head.weight', [classes, 3, 1, 1], Float32Array.from({ length: classes * 3 }, (_, i) => seed + i)),
      float32Tensor('head.bias', [classes], Float32Array.from({ length: classes }, (_, i) => seed - i)),
    ],
    inputs: [{ name: 'x', dtype: 'float32', shape: [1, 3, 2, 2] }],
    outputs: [{ name: 'y', dtype: 'float32', shape: [1, classes, 2, 2] }],
  });
  const [source, target, plan] = ['source.onnx', 'target.onnx', 'plan.json'].map((f) => path.join(dir, f));
  fs.writeFileSync(source, head(3, 1));
  fs.writeFileSync(target, head(4, 50));
  const planned = runCli(['plan', source, target, '--head', 'head=background-last', '--expand-classes', '2:3', '-o', plan]);
  assert.equal(planned.status, 0, planned.stderr);
  assert.deepEqual(JSON.parse(fs.readFileSync(plan, 'utf8')).entries[0].expand.rows, [0, 1, -1, 2]);
  // 9 of 12 head parameters come from the source: below the default --min-loaded 0.9.
  const r = runCli(['check', '--json', '--ep', 'cpu', '--min-loaded', '0.7', plan]);
  assert.equal(r.status, 0, r.stdout);
  const out = json(r.stdout).sourceComparison.result.outputs[0];
  assert.deepEqual(out.columns.rows, [0, 1, -1, 2]);
  assert.deepEqual([out.compared, out.maxAbs], [3 * 4, 0]);
});
