import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { DType } from '../src/core/dtype.js';
import type { TensorInfo } from '../src/core/statedict.js';
import { writeSafetensors } from '../src/formats/safetensors/write.js';
import { encodeModel, float32Tensor } from '../src/formats/onnx/build.js';
import { seededRandom } from '../src/core/random.js';
import { runCli, tempDir } from './helpers.js';

function floats(name: string, shape: number[], values: number[]): { name: string; tensor: TensorInfo } {
  const bytes = new Uint8Array(Float32Array.from(values).buffer);
  const tensor: TensorInfo = { name, source: name, dtype: 'float32' as DType, shape, byteLength: bytes.byteLength, origin: 'weight', read: async () => bytes, readStrings: async () => [] };
  return { name, tensor };
}

function int64(name: string, values: bigint[]): { name: string; tensor: TensorInfo } {
  const bytes = new Uint8Array(BigInt64Array.from(values).buffer);
  return { name, tensor: { name, source: name, dtype: 'int64', shape: [], byteLength: bytes.byteLength, origin: 'weight', read: async () => bytes, readStrings: async () => [] } };
}

const varied = (count: number, seed = 1) => {
  const random = seededRandom(seed);
  return Array.from({ length: count }, () => random() - 0.5);
};

type Problem = { tensor: string; check: string; detail: string };
const problemsOf = (stdout: string): [string, string][] => (JSON.parse(stdout).health.problems as Problem[]).map((p) => [p.tensor, p.check]);

test('check of any checkpoint fails (exit 1) naming NaN, 1e37, all-zero and constant weights and variances ≤ 0; biases and norms may be constant', async () => {
  const dir = tempDir();
  const sick = path.join(dir, 'sick.safetensors');
  await writeSafetensors(sick, [
    floats('conv.weight', [4, 3], [...varied(11), NaN]),
    floats('fc.weight', [3, 3], [...varied(8), 1e37]),
    floats('fc.bias', [3], [0, 0, 0]),
    floats('dead.weight', [4, 4], new Array(16).fill(0)),
    floats('flat.weight', [2, 3], new Array(6).fill(0.25)),
    floats('bn.weight', [3], [1, 1, 1]),
    floats('bn.bias', [3], [0, 0, 0]),
    floats('bn.running_mean', [3], [0, 0, 0]),
    floats('bn.running_var', [3], [1, 0, -0.5]),
    int64('bn.num_batches_tracked', [10n ** 12n]),
    floats('good.weight', [3, 4], varied(12, 2)),
  ]);
  const r = runCli(['check', '--json', sick]);
  assert.equal(r.status, 1, r.stderr);
  assert.deepEqual(problemsOf(r.stdout), [
    ['conv.weight', 'non-finite'], ['fc.weight', 'max-abs'], ['dead.weight', 'all-zero'], ['flat.weight', 'constant'], ['bn.running_var', 'variance'],
  ]);
  const variance = (JSON.parse(r.stdout).health.problems as Problem[]).find((p) => p.check === 'variance')!;
  assert.match(variance.detail, /≤ 0 in 2 of 3 channels/);
  const text = runCli(['check', sick]);
  assert.equal(text.status, 1);
  assert.match(text.stdout, /FAILED \(5 value problem\(s\)\)/);
  for (const name of ['conv.weight', 'fc.weight', 'dead.weight', 'flat.weight', 'bn.running_var']) assert.match(text.stdout, new RegExp(name.replace('.', '\\.')));
  assert.match(text.stdout, /beyond --max-abs 10000000000 \(uninitialized memory\?\)/);

  // A higher bound lets 1e37 through; a bound that is not a positive number is a usage error.
  assert.deepEqual(problemsOf(runCli(['check', '--json', '--max-abs', '1e38', sick]).stdout).map(([name]) => name), ['conv.weight', 'dead.weight', 'flat.weight', 'bn.running_var']);
  assert.equal(runCli(['check', '--max-abs', '-1', sick]).status, 2);

  const healthy = path.join(dir, 'healthy.safetensors');
  await writeSafetensors(healthy, [floats('fc.weight', [3, 3], varied(9)), floats('fc.bias', [3], [0, 0, 0]), floats('bn.running_var', [3], [1, 2, 3])]);
  const ok = runCli(['check', healthy]);
  assert.equal(ok.status, 0, ok.stdout);
  assert.match(ok.stdout, /OK — not an ONNX model: no forward pass, values checked only/);
});

test('check of an ONNX model finds a BatchNorm variance by the graph, whatever its name, and still runs it', () => {
  const dir = tempDir();
  const file = path.join(dir, 'bn.onnx');
  fs.writeFileSync(file, encodeModel({
    graphName: 'bn',
    nodes: [{ op: 'BatchNormalization', inputs: ['x', 'scale', 'shift', 'stat_a', 'stat_b'], outputs: ['y'] }],
    initializers: [
      float32Tensor('scale', [2], Float32Array.of(1, 1)), float32Tensor('shift', [2], Float32Array.of(0, 0)),
      float32Tensor('stat_a', [2], Float32Array.of(0, 0)), float32Tensor('stat_b', [2], Float32Array.of(1, 0)),
    ],
    inputs: [{ name: 'x', dtype: 'float32', shape: [1, 2, 1, 1] }],
    outputs: [{ name: 'y', dtype: 'float32', shape: [1, 2, 1, 1] }],
  }));
  const r = runCli(['check', '--json', '--ep', 'cpu', file]);
  assert.equal(r.status, 1, r.stderr);
  assert.deepEqual(problemsOf(r.stdout), [['stat_b', 'variance']]);
  assert.equal(JSON.parse(r.stdout).outputs.length, 1, 'the forward pass ran too');
});

test("check plan.json checks the expanded rows apart: a target head whose new rows were never initialized fails unless --init draws them", async () => {
  const dir = tempDir();
  const [source, target, plan] = ['source.safetensors', 'target.safetensors', 'plan.json'].map((f) => path.join(dir, f));
  await writeSafetensors(source, [floats('backbone.weight', [4, 4], varied(16, 3)), floats('head.weight', [2, 4], varied(8, 4)), floats('head.bias', [2], [0.1, -0.1])]);
  // The target's third class row is all 0.5: the tensor as a whole varies, its new row does not.
  await writeSafetensors(target, [floats('backbone.weight', [4, 4], varied(16, 5)), floats('head.weight', [3, 4], [...varied(8, 6), 0.5, 0.5, 0.5, 0.5]), floats('head.bias', [3], [0, 0, 0])]);
  const planned = runCli(['plan', source, target, '--head', 'head=classes', '-o', plan]);
  assert.equal(planned.status, 0, planned.stderr);
  assert.ok(JSON.parse(fs.readFileSync(plan, 'utf8')).entries.some((e: { action: string }) => e.action === 'expand'), planned.stdout);
  const r = runCli(['check', '--json', '--min-loaded', '0.8', plan]);
  assert.equal(r.status, 1, r.stdout);
  const problems = JSON.parse(r.stdout).health.problems as Problem[];
  assert.deepEqual(problems.map((p) => [p.tensor, p.check]), [['head.weight', 'new-rows']]);
  assert.match(problems[0]!.detail, /the 1 new row\(s\) of axis 0: all 4 values are 0\.5 \(--init target/);

  assert.equal(runCli(['plan', source, target, '--head', 'head=classes', '--init', 'normal', '-o', plan]).status, 0);
  const drawn = runCli(['check', '--json', '--min-loaded', '0.8', plan]);
  assert.equal(drawn.status, 0, drawn.stdout);
});
