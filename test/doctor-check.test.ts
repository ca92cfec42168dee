import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { SAMPLES, runCli, tempDir } from './helpers.js';
import { encodeModel } from '../src/formats/onnx/build.js';

const doctor = JSON.parse(runCli(['doctor', '--json']).stdout);
const cudaLoads = doctor.providers.find((p: { name: string }) => p.name === 'cuda').loads as boolean;

test('doctor reports versions and which execution providers load', () => {
  assert.equal(doctor.onnxruntimeNode, '1.29.0');
  assert.equal(doctor.node, process.version);
  assert.deepEqual(doctor.providers.map((p: { name: string }) => p.name), ['cpu', 'cuda']);
  assert.equal(doctor.providers[0].loads, true);
  assert.ok(doctor.advice.length > 0);
});

test('check --ep cuda where CUDA cannot load is a clear error (exit 4), never a silent CPU run', { skip: cudaLoads && 'CUDA loads here' }, () => {
  const r = runCli(['check', '--ep', 'cuda', path.join(SAMPLES, 'detector-90.onnx')]);
  assert.equal(r.status, 4);
  assert.match(r.stderr, /^ckpt: .*detector-90\.onnx: execution provider: the CUDA execution provider could not be loaded: .*\(.+\)\n$/);
  assert.doesNotMatch(r.stderr, /onnxruntime_src/, 'no native log noise');
});

test('check --ep auto runs and names the provider that ran', () => {
  const r = runCli(['check', '--json', path.join(SAMPLES, 'detector-90.onnx')]);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(JSON.parse(r.stdout).provider, cudaLoads ? 'cuda' : 'cpu');
});

test('check reports non-finite outputs with exit 1', () => {
  // log(0) is -Infinity.
  const file = path.join(tempDir(), 'log.onnx');
  fs.writeFileSync(file, encodeModel({
    graphName: 'log', nodes: [{ op: 'Log', inputs: ['x'], outputs: ['y'] }], initializers: [],
    inputs: [{ name: 'x', dtype: 'float32', shape: [1, 4] }], outputs: [{ name: 'y', dtype: 'float32', shape: [1, 4] }],
  }));
  const r = runCli(['check', '--json', '--ep', 'cpu', '--input', 'x=0,1,2,3', file]);
  assert.equal(r.status, 1);
  assert.deepEqual(JSON.parse(r.stdout).outputs[0].finite, false);
});

test('check sets dynamic dims from --shape and rejects a malformed one', () => {
  const file = path.join(tempDir(), 'dyn.onnx');
  fs.writeFileSync(file, encodeModel({
    graphName: 'dyn', nodes: [{ op: 'Relu', inputs: ['x'], outputs: ['y'] }], initializers: [],
    inputs: [{ name: 'x', dtype: 'float32', shape: ['batch', 3] }], outputs: [{ name: 'y', dtype: 'float32', shape: ['batch', 3] }],
  }));
  const r = runCli(['check', '--json', '--ep', 'cpu', '--shape', 'x=5x3', file]);
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout).outputs[0].shape, [5, 3]);
  assert.equal(runCli(['check', '--shape', 'x=5by3', file]).status, 2);
});

test('a file onnxruntime cannot load is invalid input (exit 3)', () => {
  const file = path.join(tempDir(), 'bad.onnx');
  fs.writeFileSync(file, encodeModel({
    graphName: 'bad', nodes: [{ op: 'NoSuchOp', inputs: ['x'], outputs: ['y'] }], initializers: [],
    inputs: [{ name: 'x', dtype: 'float32', shape: [1] }], outputs: [{ name: 'y', dtype: 'float32', shape: [1] }],
  }));
  const r = runCli(['check', '--ep', 'cpu', file]);
  assert.equal(r.status, 3);
  assert.match(r.stderr, /onnxruntime: the model does not load: .*NoSuchOp/);
});
