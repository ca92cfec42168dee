import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { alignTensors } from '../src/ops/align.js';
import type { TensorInfo } from '../src/core/statedict.js';
import { encodeModel, float32Tensor } from '../src/formats/onnx/build.js';
import { f32, writeModel } from './onnx-fixtures.js';
import { CORPUS, HAS_CORPUS, SAMPLES, runCli, tempDir } from './helpers.js';

const fake = (name: string, shape: number[], layout?: string): TensorInfo => ({
  name, source: name, dtype: 'float32', shape, byteLength: 4 * shape.reduce((n, d) => n * d, 1), origin: 'weight',
  ...(layout ? { layout } : {}),
  read: async () => new Uint8Array(0), readStrings: async () => [],
});

describe('aligning two state dicts', () => {
  test('by name, then ignoring module./model. prefixes, then by a unique dotted suffix', () => {
    const a = [fake('fc.weight', [2, 3]), fake('module.conv.weight', [4, 3, 3, 3]), fake('backbone.layer1.bias', [8])];
    const b = [fake('fc.weight', [2, 3]), fake('conv.weight', [4, 3, 3, 3]), fake('layer1.bias', [8])];
    const r = alignTensors(a, b);
    assert.deepEqual(r.pairs.map((p) => [p.a.name, p.b.name, p.reason]), [
      ['fc.weight', 'fc.weight', 'name'],
      ['module.conv.weight', 'conv.weight', 'prefix'],
      ['backbone.layer1.bias', 'layer1.bias', 'suffix'],
    ]);
    assert.deepEqual([r.onlyInA, r.onlyInB, r.ambiguous], [[], [], []]);
  });

  test('a suffix that fits several tensors is reported as ambiguous, never guessed', () => {
    const r = alignTensors([fake('head.bias', [8])], [fake('a.head.bias', [8]), fake('b.head.bias', [8])]);
    assert.deepEqual(r.pairs, []);
    assert.deepEqual(r.ambiguous, [{ name: 'head.bias', side: 'a', candidates: ['a.head.bias', 'b.head.bias'] }]);
    assert.deepEqual(r.onlyInB, []);
  });

  test('a shape that is a layout transpose is recognized: 2-D swap, HWIO vs OIHW, and from layout hints', () => {
    const r = alignTensors(
      [fake('dense.kernel', [3, 2]), fake('conv.kernel', [3, 3, 4, 8]), fake('sq.w', [4, 4], 'IO')],
      [fake('dense.kernel', [2, 3]), fake('conv.kernel', [8, 4, 3, 3]), fake('sq.w', [4, 4], 'OI')],
    );
    assert.deepEqual(r.pairs.map((p) => p.permutation), [[1, 0], [3, 2, 0, 1], [1, 0]]);
  });
});

describe('ckpt diff', () => {
  const sample = (n: number) => path.join(SAMPLES, `detector-${n}.onnx`);

  test('the 90- and 92-class detectors differ in the yolo_output head shapes (exit 1)', () => {
    const r = runCli(['diff', '--json', sample(90), sample(92)]);
    assert.equal(r.status, 1, r.stderr);
    const report = JSON.parse(r.stdout);
    assert.deepEqual(report.shapeMismatches.map((p: { a: string; shapeA: number[]; shapeB: number[] }) => [p.a, p.shapeA, p.shapeB]), [
      ['yolo_output.weight', [285, 16, 1, 1], [291, 16, 1, 1]],
      ['yolo_output.bias', [285], [291]],
    ]);
    assert.equal(report.matched.length, 6);
    const text = runCli(['diff', sample(90), sample(92)]).stdout;
    assert.match(text, /A: 6 tensors, B: 6; matched 6 \(6 by name\); 0 only in A; 0 only in B; 2 shape mismatches; 0 dtype mismatches → different/);
  });

  test('a file against itself is equal, values bit-identical (exit 0)', () => {
    const r = runCli(['diff', '--values', '--json', sample(90), sample(90)]);
    assert.equal(r.status, 0, r.stderr);
    const report = JSON.parse(r.stdout);
    assert.ok(report.equal);
    assert.ok(report.matched.every((p: { values: { bitIdentical: boolean; maxAbsDiff: number; cosine: number } }) =>
      p.values.bitIdentical && p.values.maxAbsDiff === 0 && Math.abs(p.values.cosine - 1) < 1e-12));
  });

  test('a Gemm [out,in] weight against a MatMul [in,out] one: layout transpose, equal values after it', () => {
    const dir = tempDir();
    const gemm = writeModel(dir, 'gemm.onnx', encodeModel({
      graphName: 'g', nodes: [{ op: 'Gemm', inputs: ['x', 'fc.weight'], outputs: ['y'], attributes: { transB: 1 } }],
      initializers: [float32Tensor('fc.weight', [3, 2], f32(1, 2, 3, 4, 5, 6))],
      inputs: [{ name: 'x', dtype: 'float32', shape: [1, 2] }], outputs: [{ name: 'y', dtype: 'float32', shape: [1, 3] }],
    }));
    const matmul = writeModel(dir, 'matmul.onnx', encodeModel({
      graphName: 'm', nodes: [{ op: 'MatMul', inputs: ['x', 'fc.weight'], outputs: ['y'] }],
      initializers: [float32Tensor('fc.weight', [2, 3], f32(1, 3, 5, 2, 4, 6.5))],
      inputs: [{ name: 'x', dtype: 'float32', shape: [1, 2] }], outputs: [{ name: 'y', dtype: 'float32', shape: [1, 3] }],
    }));
    const r = runCli(['diff', '--values', gemm, matmul]);
    assert.equal(r.status, 1);
    assert.match(r.stdout, /fc\.weight │ \[3, 2\] │ \[2, 3\] │ layout transpose \(B = A\.transpose\(1,0\)\)/);
    const report = JSON.parse(runCli(['diff', '--values', '--json', gemm, matmul]).stdout);
    assert.equal(report.matched[0].values.maxAbsDiff, 0.5);
    assert.equal(report.matched[0].values.withinTolerance, false);
    assert.equal(JSON.parse(runCli(['diff', '--values', '--json', '--atol', '0.5', gemm, matmul]).stdout).matched[0].values.withinTolerance, true);
  });

  test('bad tolerances are usage errors', () => {
    assert.equal(runCli(['diff', '--values', '--atol', 'x', sample(90), sample(90)]).status, 2);
  });

  test('fp16 vs fp32 twins: every tensor a dtype mismatch, values close', { skip: !HAS_CORPUS && 'no corpus' }, () => {
    const a = path.join(CORPUS, 'onnx/ortgenai-tiny-gpt2-fp16/past.onnx');
    const b = path.join(CORPUS, 'onnx/ortgenai-tiny-gpt2-fp32/past.onnx');
    const report = JSON.parse(runCli(['diff', '--values', '--rtol', '1e-3', '--atol', '1e-4', '--json', a, b]).stdout);
    assert.equal(report.dtypeMismatches.length, 27);
    assert.ok(report.matched.every((p: { dtypeA: string; dtypeB: string; values: { withinTolerance: boolean; cosine: number } }) =>
      p.dtypeA === 'float16' && p.dtypeB === 'float32' && p.values.withinTolerance && p.values.cosine > 0.9999));
  });
});

describe('ckpt strip / filter', () => {
  const sample90 = path.join(SAMPLES, 'detector-90.onnx');

  test('strip --preset yolov3 removes yolo_output; the ONNX stays runnable with the head as inputs', async () => {
    const out = path.join(tempDir(), 'backbone.onnx');
    const r = runCli(['strip', sample90, '--preset', 'yolov3', '-o', out]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /kept 4 of 6 tensors/);
    assert.match(r.stdout, /patterns: part:yolo_output → 2/);
    assert.match(r.stdout, /2 removed weight\(s\) became graph inputs/);
    const session = await ort.InferenceSession.create(out, { logSeverityLevel: 3 });
    assert.deepEqual(session.inputNames, ['images', 'yolo_output.weight', 'yolo_output.bias']);
    const feeds = {
      images: new ort.Tensor('float32', new Float32Array(3 * 64 * 64), [1, 3, 64, 64]),
      'yolo_output.weight': new ort.Tensor('float32', new Float32Array(285 * 16), [285, 16, 1, 1]),
      'yolo_output.bias': new ort.Tensor('float32', new Float32Array(285), [285]),
    };
    const output = (await session.run(feeds)).yolo_output!;
    assert.deepEqual(output.dims, [1, 285, 16, 16]);
    await session.release();
    const listed = JSON.parse(runCli(['inspect', '--json', out]).stdout);
    assert.deepEqual(listed.tensors.map((t: { name: string }) => t.name), ['backbone.conv1.weight', 'backbone.conv1.bias', 'backbone.conv2.weight', 'backbone.conv2.bias']);
  });

  test('filter --include keeps only the selection; the kept tensors are byte-identical', () => {
    const out = path.join(tempDir(), 'head.onnx');
    assert.equal(runCli(['filter', sample90, '--include', 'yolo_output', '-o', out]).status, 0);
    const r = runCli(['diff', '--values', '--json', sample90, out]);
    const report = JSON.parse(r.stdout);
    assert.deepEqual(report.onlyInA.map((t: { name: string }) => t.name), ['backbone.conv1.weight', 'backbone.conv1.bias', 'backbone.conv2.weight', 'backbone.conv2.bias']);
    assert.ok(report.matched.every((p: { values: { bitIdentical: boolean } }) => p.values.bitIdentical));
  });

  test('--dry-run writes nothing; a pattern matching nothing warns, and with --strict fails', () => {
    const dir = tempDir();
    const out = path.join(dir, 'x.onnx');
    const dry = runCli(['strip', sample90, '--exclude', 'cls_score', '--exclude', 'yolo_output', '--dry-run', '-o', out]);
    assert.equal(dry.status, 0);
    assert.match(dry.stdout, /would write: kept 4 of 6/);
    assert.match(dry.stderr, /warning: pattern 'cls_score' matched no tensor/);
    assert.ok(!fs.existsSync(out));
    const strict = runCli(['strip', sample90, '--exclude', 'cls_score', '--strict', '-o', out]);
    assert.equal(strict.status, 2);
    assert.ok(!fs.existsSync(out));
  });

  test('a failed write leaves an existing OUT untouched and no temporary behind', () => {
    const dir = tempDir();
    const out = path.join(dir, 'out.onnx');
    fs.writeFileSync(out, 'previous');
    const r = runCli(['strip', sample90, '--exclude', 'yolo_output', '-o', out, '--to', 'keras-nope']);
    assert.equal(r.status, 2);
    assert.equal(fs.readFileSync(out, 'utf8'), 'previous');
    const missingDir = runCli(['strip', sample90, '--exclude', 'yolo_output', '-o', path.join(dir, 'no', 'such', 'dir.onnx')]);
    assert.equal(missingDir.status, 4);
    assert.deepEqual(fs.readdirSync(dir), ['out.onnx']);
  });

  test('ckpt presets lists PaddleDetection\'s table', () => {
    const presets = JSON.parse(runCli(['presets', '--json']).stdout);
    assert.deepEqual(presets.yolov3, ['yolo_output']);
    assert.deepEqual(presets['mask-rcnn'], ['cls_score', 'bbox_pred', 'mask_fcn_logits']);
    assert.deepEqual(presets.ssd, ['^conv2d_']);
  });
});
