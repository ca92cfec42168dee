// The library: every command's function returns what the command's --json prints, state dicts
// dispose themselves, errors carry codes, and what detection parsed or where a tensor lives is
// not lost on the way.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { applyPlan, check, CkptError, compare, diff, filter, finetuneEvents, inspect, open, plan, rename, strip, type FinetuneEvent } from '../src/index.js';
import { rewriteOnnx, type TensorEdit } from '../src/formats/onnx/write.js';
import type { TensorInfo } from '../src/core/statedict.js';
import { runCli, SAMPLES, tempDir } from './helpers.js';

const detector90 = path.join(SAMPLES, 'detector-90.onnx');
const detector92 = path.join(SAMPLES, 'detector-92.onnx');
const digits8 = path.join(SAMPLES, 'digits', 'cnn-8.onnx');
const digits10 = path.join(SAMPLES, 'digits', 'cnn-10.onnx');

/** A result as JSON carries it (undefined fields dropped). */
const asJson = (value: unknown) => JSON.parse(JSON.stringify(value));
const cliJson = (args: string[]) => {
  const r = runCli([...args, '--json']);
  assert.ok(r.status === 0 || r.status === 1, r.stderr);
  return JSON.parse(r.stdout);
};

test("each command's --json is its function's result", async () => {
  const dir = tempDir();
  assert.deepEqual(cliJson(['inspect', '--hash', '--tree', detector90]), asJson(await inspect(detector90, { hash: true, tree: true })));
  assert.deepEqual(cliJson(['diff', '--values', detector90, detector92]), asJson(await diff(detector90, detector92, { values: true })));
  assert.deepEqual(cliJson(['strip', '--exclude', 'yolo_output', '--dry-run', detector90]), asJson(await strip(detector90, { patterns: ['yolo_output'], dryRun: true })));
  assert.deepEqual(cliJson(['rename', '--add-prefix', 'net.', '--dry-run', detector90]), asJson(await rename(detector90, { addPrefix: 'net.', dryRun: true })));
  const planFile = path.join(dir, 'plan.json');
  const made = await plan(detector90, detector92, { output: planFile });
  assert.deepEqual(cliJson(['plan', detector90, detector92]), asJson(made));
  assert.deepEqual(JSON.parse(fs.readFileSync(planFile, 'utf8')), asJson(made));
  const byCli = cliJson(['apply', planFile, '-o', path.join(dir, 'cli.onnx')]);
  assert.deepEqual({ ...byCli, output: undefined }, { ...asJson(await applyPlan(planFile, path.join(dir, 'api.onnx'))), output: undefined });
  assert.deepEqual(fs.readFileSync(path.join(dir, 'api.onnx')), fs.readFileSync(path.join(dir, 'cli.onnx')));
});

test('a plan made in memory applies and checks without a plan file', async () => {
  const dir = tempDir();
  const made = await plan(digits8, digits10);
  const applied = await applyPlan(made, path.join(dir, 'init.onnx'));
  assert.equal(applied.plan, null);
  const report = await check(made, { shape: ['pixels=4x1x8x8'], provider: 'cpu' });
  assert.equal(report.ok, true);
  assert.ok(report.plan!.fractionLoaded > 0.9);
});

test('open() returns a state dict that `await using` closes', async () => {
  let closed = 0;
  {
    await using dict = await open(detector90);
    const close = dict.close.bind(dict);
    dict.close = async () => { closed++; await close(); };
    assert.equal(dict.tensors.length, 6);
  }
  assert.equal(closed, 1);
});

test('errors are CkptErrors with a stable code', async () => {
  const rejectsWith = (promise: Promise<unknown>, code: string, exitCode: number) =>
    assert.rejects(promise, (err: unknown) => err instanceof CkptError && err.code === code && err.exitCode === exitCode);
  await rejectsWith(inspect(path.join(SAMPLES, 'no-such-model.onnx')), 'not-found', 4);
  await rejectsWith(inspect(path.join(SAMPLES, 'digits', 'README.md')), 'unknown-format', 3);
  await rejectsWith(filter(detector90, { patterns: ['nothing_like_this'], output: path.join(tempDir(), 'x.onnx') }), 'refused', 1);
  await rejectsWith(diff(detector90, detector92, { atol: 1 }), 'usage', 2);
  await rejectsWith(compare(path.join(SAMPLES, 'detector-90.h5'), detector90), 'not-onnx', 6);
  await rejectsWith(check(detector90, { maxAbs: -1 }), 'usage', 2);
});

test('a wrapped ONNX tensor keeps its place in the file; a tensor of another file is refused', async () => {
  const dir = tempDir();
  await using a = await open(detector90);
  await using b = await open(detector92);
  const weight = a.tensors[0]!;
  const zeros = new Uint8Array(weight.byteLength);
  const wrapped: TensorInfo = { ...weight, read: async () => zeros };
  const replace = (t: TensorInfo): TensorEdit => ({ kind: 'replace', dtype: t.dtype, shape: t.shape, read: () => t.read() });
  await rewriteOnnx(a.path, new Map([[wrapped, replace(wrapped)]]), path.join(dir, 'zeroed.onnx'));
  await using zeroed = await open(path.join(dir, 'zeroed.onnx'));
  assert.deepEqual(await zeroed.tensors.find((t) => t.name === weight.name)!.read(), zeros);
  const foreign = b.tensors.find((t) => t.name === weight.name)!;
  await assert.rejects(rewriteOnnx(a.path, new Map([[foreign, replace(foreign)]]), path.join(dir, 'x.onnx')), /does not belong to this ONNX model/);
});

test("open() reuses what detection parsed: an ONNX model's structure is not read twice", async () => {
  await using dict = await open(detector90);
  assert.equal(dict.bytesRead!(), 0);
});

test('finetuneEvents yields the start, each epoch, then the summary', async () => {
  const dir = tempDir();
  const init = path.join(dir, 'init.onnx');
  await applyPlan(await plan(digits8, digits10), init);
  const events: FinetuneEvent[] = [];
  const run = finetuneEvents(init, path.join(SAMPLES, 'digits', 'finetune.csv.gz'), { output: path.join(dir, 'tuned.onnx'), epochs: 2, provider: 'cpu' });
  for await (const event of run) events.push(event);
  assert.deepEqual(events.map((e) => e.event), ['start', 'epoch', 'epoch', 'summary']);
  assert.ok(fs.statSync(path.join(dir, 'tuned.onnx')).size > 0);
});
