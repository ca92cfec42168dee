import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { ROOT, SAMPLES, runCli, tempDir } from './helpers.js';

const sample90 = path.join(SAMPLES, 'detector-90.onnx');

interface SampleTensor { name: string; shape: number[]; data: Float32Array }
async function sampleWeights(classes: number): Promise<SampleTensor[]> {
  const network = await import(pathToFileURL(path.join(ROOT, 'scripts', 'sample-network.js')).href);
  return network.detectorWeights(classes) as SampleTensor[];
}

test('inspect prints a headline and a table of tensors', () => {
  const r = runCli(['inspect', sample90]);
  assert.equal(r.status, 0, r.stderr);
  const [headline] = r.stdout.split('\n');
  assert.match(headline!, /onnx · producer ckpt-samples 1 · IR 8 · opset 17 · 6 tensors · 6,237 parameters · 24\.4 KiB/);
  assert.match(r.stdout, /yolo_output\.weight\s+│ float32 │ \[285, 16, 1, 1\] │ OIHW/);
});

test('inspect --json --hash follows the documented contract and hashes the values', async () => {
  const r = runCli(['inspect', '--json', '--hash', sample90]);
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assert.equal(out.format, 'onnx');
  assert.equal(out.metadata.producerName, 'ckpt-samples');
  const weights = await sampleWeights(90);
  assert.deepEqual(out.tensors.map((t: { name: string }) => t.name), weights.map((w) => w.name));
  for (const [i, w] of weights.entries()) {
    const t = out.tensors[i];
    assert.deepEqual(Object.keys(t).slice(0, 5), ['name', 'source', 'dtype', 'shape', 'byteLength']);
    assert.deepEqual([t.source, t.dtype, t.shape, t.byteLength], [w.name, 'float32', w.shape, w.data.byteLength]);
    assert.equal(t.sha256, createHash('sha256').update(new Uint8Array(w.data.buffer)).digest('hex'));
  }
});

test('inspect --filter selects with the pattern language (regex at the start, glob:, =)', () => {
  const names = (args: string[]) => JSON.parse(runCli(['inspect', '--json', sample90, ...args]).stdout).tensors.map((t: { name: string }) => t.name);
  assert.deepEqual(names(['--filter', 'yolo_output']), ['yolo_output.weight', 'yolo_output.bias']);
  assert.deepEqual(names(['--filter', 'glob:**.bias']), ['backbone.conv1.bias', 'backbone.conv2.bias', 'yolo_output.bias']);
  assert.deepEqual(names(['--filter', 'conv1']), []);
  assert.deepEqual(names(['--filter', 're:conv1', '--filter', '=yolo_output.bias']), ['backbone.conv1.weight', 'backbone.conv1.bias', 'yolo_output.bias']);
});

test('inspect --tree groups by name prefix with parameter counts', () => {
  const r = runCli(['inspect', '--tree', sample90]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /├─ backbone {2}\(4 tensors, 1,392 params, 5\.4 KiB\)/);
  assert.match(r.stdout, /│ {2}├─ conv1 {2}\(2 tensors, 224 params/);
  assert.match(r.stdout, /└─ yolo_output {2}\(2 tensors, 4,845 params/);
  const json = JSON.parse(runCli(['inspect', '--tree', '--json', sample90]).stdout);
  assert.deepEqual(json.tree.map((g: { name: string; parameters: number }) => [g.name, g.parameters]), [['backbone', 1392], ['yolo_output', 4845]]);
});

test('a missing file is an I/O error (exit 4) in one line, no stack trace', () => {
  const r = runCli(['inspect', '/nonexistent/model.onnx']);
  assert.equal(r.status, 4);
  assert.equal(r.stderr, 'ckpt: /nonexistent/model.onnx: no such file\n');
});

test('content that is no known format is invalid input (exit 3)', () => {
  const file = path.join(tempDir(), 'model.onnx');
  fs.writeFileSync(file, 'this is not a model\n');
  const r = runCli(['inspect', file]);
  assert.equal(r.status, 3);
  assert.match(r.stderr, /^ckpt: .*model\.onnx: unrecognized format; expected one of: .*onnx/);
});

test('usage errors exit 2; --help documents the exit codes', () => {
  assert.equal(runCli(['inspect']).status, 2);
  assert.equal(runCli(['inspect', sample90, '--bogus']).status, 2);
  assert.equal(runCli(['frobnicate']).status, 2);
  const help = runCli(['inspect', '--help']);
  assert.equal(help.status, 0);
  assert.match(help.stdout, /3 {2}invalid or unsupported input/);
});

test('CKPT_DEBUG=1 adds the stack to an error', () => {
  const r = runCli(['inspect', '/nonexistent/model.onnx'], { CKPT_DEBUG: '1' });
  assert.equal(r.status, 4);
  assert.match(r.stderr, /\n\s+at /);
});

test('output piped into a reader that stops early (| head) ends quietly, with no stack trace', () => {
  const r = spawnSync('sh', ['-c', `"${process.execPath}" "${path.join(ROOT, 'bin', 'ckpt.js')}" --help | head -1; "${process.execPath}" "${path.join(ROOT, 'bin', 'ckpt.js')}" inspect --json "${sample90}" | head -c 10`], { encoding: 'utf8' });
  assert.equal(r.stderr, '');
  assert.match(r.stdout, /^Usage: ckpt/);
});
