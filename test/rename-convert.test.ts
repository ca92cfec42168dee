import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { renameAll } from '../src/ops/rename.js';
import { CkptError } from '../src/index.js';
import { rewriteOnnx } from '../src/formats/onnx/write.js';
import { CORPUS, HAS_CORPUS, SAMPLES, runCli, tempDir } from './helpers.js';

const sample = (n: number) => path.join(SAMPLES, `detector-${n}.onnx`);

describe('renaming rules', () => {
  test('strip-prefix, then FROM=>TO rules in order with groups, then add-prefix', () => {
    const r = renameAll(['module.backbone.conv1.weight', 'module.head.bias', 'fc.weight'], {
      stripPrefixes: ['module.'], rules: ['^backbone\\.(\\w+)=>features.$1', 'head=>classifier'], addPrefix: 'net.',
    });
    assert.deepEqual(r.map((x) => x.to), ['net.features.conv1.weight', 'net.classifier.bias', 'net.fc.weight']);
  });

  test('two tensors mapping to one name is an error listing them', () => {
    assert.throws(() => renameAll(['a.weight', 'b.weight', 'c.bias'], { rules: ['^\\w+\\.weight=>w'] }), (err: unknown) => {
      assert.ok(err instanceof CkptError);
      assert.equal(err.exitCode, 2);
      assert.match(err.message, /a\.weight \+ b\.weight → w/);
      return true;
    });
  });

  test('a rule without => is a usage error', () => {
    assert.throws(() => renameAll(['a'], { rules: ['a->b'] }), /expected 'FROM=>TO'/);
  });
});

describe('ckpt rename on ONNX', () => {
  test('renames the weights and every reference to them; the model still runs the same', async () => {
    const out = path.join(tempDir(), 'renamed.onnx');
    const r = runCli(['rename', sample(90), '--rename', '^backbone\\.(conv\\d)=>features.$1', '-o', out]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /4 of 6 tensors renamed/);
    assert.match(r.stdout, /backbone\.conv1\.weight │ features\.conv1\.weight/);
    const names = JSON.parse(runCli(['inspect', '--json', out]).stdout).tensors.map((t: { name: string; layout?: string }) => `${t.name}:${t.layout ?? ''}`);
    assert.deepEqual(names, ['features.conv1.weight:OIHW', 'features.conv1.bias:', 'features.conv2.weight:OIHW', 'features.conv2.bias:', 'yolo_output.weight:OIHW', 'yolo_output.bias:']);
    const input = new ort.Tensor('float32', new Float32Array(3 * 64 * 64).map((_, i) => Math.cos(i)), [1, 3, 64, 64]);
    const run = async (file: string) => {
      const session = await ort.InferenceSession.create(file);
      const out = (await session.run({ images: input })).yolo_output!.data as Float32Array;
      await session.release();
      return out;
    };
    assert.deepEqual(await run(out), await run(sample(90)));
  });

  test('corpus models with Constant-held and subgraph weights survive a rename of everything', { skip: !HAS_CORPUS && 'no corpus' }, async () => {
    for (const model of ['onnx/ppocr-cls-paddle2onnx/ch_ppocr_mobile_v2.0_cls_infer.onnx', 'onnx/silero-vad-v4/silero_vad_legacy.onnx']) {
      const out = path.join(tempDir(), 'renamed.onnx');
      const r = runCli(['rename', path.join(CORPUS, model), '--add-prefix', 'x.', '-o', out]);
      assert.equal(r.status, 0, r.stderr);
      const before = JSON.parse(runCli(['inspect', '--json', '--hash', path.join(CORPUS, model)]).stdout).tensors;
      const after = JSON.parse(runCli(['inspect', '--json', '--hash', out]).stdout).tensors;
      assert.deepEqual(after.map((t: { source: string; sha256: string }) => [t.source, t.sha256]), before.map((t: { source: string; sha256: string }) => [`x.${t.source}`, t.sha256]));
      const session = await ort.InferenceSession.create(out, { logSeverityLevel: 3 });
      await session.release();
    }
  });
});

describe('lossless ONNX rewriting', () => {
  test('a rewrite with no edit gives back the same bytes, for the samples and every corpus model', async () => {
    const dir = tempDir();
    const corpus = HAS_CORPUS
      ? fs.readdirSync(path.join(CORPUS, 'onnx')).flatMap((d) => fs.readdirSync(path.join(CORPUS, 'onnx', d)).filter((f) => f.endsWith('.onnx')).map((f) => path.join(CORPUS, 'onnx', d, f)))
      : [];
    for (const model of [sample(90), ...corpus]) {
      // In the model's own folder (a copy of it), where its external data stays valid.
      const folder = fs.mkdtempSync(path.join(dir, 'm'));
      for (const f of fs.readdirSync(path.dirname(model)).filter((f) => fs.statSync(path.join(path.dirname(model), f)).isFile())) fs.copyFileSync(path.join(path.dirname(model), f), path.join(folder, f));
      const out = path.join(folder, 'same.onnx');
      await rewriteOnnx(path.join(folder, path.basename(model)), new Map(), out);
      assert.ok(fs.readFileSync(out).equals(fs.readFileSync(model)), model);
    }
  });

  test('written to another folder, external data is inlined so the model stays whole', { skip: !HAS_CORPUS && 'no corpus' }, async () => {
    const model = path.join(CORPUS, 'onnx/mnist-cnn-extdata/model.onnx');
    const out = path.join(tempDir(), 'moved.onnx');
    assert.equal(runCli(['rename', model, '--add-prefix', 'net.', '-o', out]).status, 0);
    const before = JSON.parse(runCli(['inspect', '--json', '--hash', model]).stdout).tensors.map((t: { sha256: string }) => t.sha256);
    const after = JSON.parse(runCli(['inspect', '--json', '--hash', out]).stdout).tensors.map((t: { sha256: string }) => t.sha256);
    assert.deepEqual(after, before);
    assert.deepEqual(fs.readdirSync(path.dirname(out)), ['moved.onnx']);
  });
});

describe('ckpt convert', () => {
  test('--graph puts matching weights into an existing ONNX model and keeps the rest', () => {
    const out = path.join(tempDir(), 'mixed.onnx');
    const r = runCli(['convert', sample(92), out, '--graph', sample(90), '--json']);
    assert.equal(r.status, 0, r.stderr);
    const report = JSON.parse(r.stdout);
    assert.deepEqual(report.replaced.map((x: { target: string }) => x.target), ['backbone.conv1.weight', 'backbone.conv1.bias', 'backbone.conv2.weight', 'backbone.conv2.bias']);
    assert.deepEqual(report.keptFromGraph, ['yolo_output.weight', 'yolo_output.bias']);
    const diff = JSON.parse(runCli(['diff', '--values', '--json', sample(92), out]).stdout);
    const backbone = diff.matched.filter((p: { a: string }) => p.a.startsWith('backbone'));
    assert.ok(backbone.every((p: { values: { bitIdentical: boolean } }) => p.values.bitIdentical));
  });

  test('converting a non-ONNX checkpoint to ONNX without --graph is a usage error', () => {
    const r = runCli(['convert', sample(90), path.join(tempDir(), 'x.onnx'), '--to', 'nonexistent']);
    assert.equal(r.status, 2);
  });
});
