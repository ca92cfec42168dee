import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { open, parsePatterns } from '../src/index.js';
import { formatPercent } from '../src/core/percent.js';
import { planHeadline } from '../src/ops/plan.js';
import { nearestNames } from '../src/ops/select.js';
import { writeSafetensors } from '../src/formats/safetensors/write.js';
import type { TensorInfo } from '../src/core/statedict.js';
import { CORPUS, HAS_CORPUS, SAMPLES, runCli, tempDir } from './helpers.js';

/**
 * Issue 13: verdicts say what was compared, selections never silently select nothing, and the
 * conversions and folders people expect work.
 */
const sample = (name: string) => path.join(SAMPLES, name);
const corpus = (file: string) => path.join(CORPUS, file);
const noCorpus = !HAS_CORPUS && 'no corpus';
const KERAS_ADAM = 'keras-h5/keras3-legacy-h5-adam/model.h5';
const TF2_CHECKPOINT = 'tf-checkpoint/tf2-keras-save-weights-mnist';
const MLP = 'onnx/mlp-3cls-torch28/model.onnx';

/** A float32 tensor of `values`, for writing small files with chosen values. */
function floats(name: string, values: number[]): TensorInfo {
  const bytes = new Uint8Array(Float32Array.from(values).buffer);
  return {
    name, source: name, dtype: 'float32', shape: [values.length], byteLength: bytes.byteLength, origin: 'weight',
    read: async () => bytes, readStrings: async () => [],
  };
}

describe('diff says whether values were compared', () => {
  const dir = tempDir();
  const a = path.join(dir, 'a.safetensors');
  const b = path.join(dir, 'b.safetensors');

  test('same names, shapes and dtypes with other values: never "equal" without --values', async () => {
    await writeSafetensors(a, [{ name: 'w', tensor: floats('w', [1, 2, 3]) }]);
    await writeSafetensors(b, [{ name: 'w', tensor: floats('w', [1, 2, 4]) }]);
    const text = runCli(['diff', a, b]);
    assert.equal(text.status, 0, text.stderr);
    assert.match(text.stdout, /→ same names, shapes and dtypes; values not compared \(--values\)/);
    assert.doesNotMatch(text.stdout, /→ equal/);
    assert.equal(JSON.parse(runCli(['diff', '--json', a, b]).stdout).valuesCompared, false);
    const values = runCli(['diff', '--values', '--json', a, b]);
    assert.equal(values.status, 1);
    assert.equal(JSON.parse(values.stdout).valuesCompared, true);
    assert.match(runCli(['diff', '--values', a, a]).stdout, /→ equal$/m);
  });

  test('--atol or --rtol without --values is a usage error', () => {
    for (const option of ['--atol', '--rtol']) {
      const r = runCli(['diff', option, '0.1', sample('detector-90.onnx'), sample('detector-90.onnx')]);
      assert.equal(r.status, 2);
      assert.match(r.stderr, /add --values/);
    }
  });
});

describe('hidden state is announced', () => {
  test('Keras h5 optimizer_weights, Keras 3 optimizer vars: counted in inspect and its JSON', { skip: noCorpus }, () => {
    for (const [file, count] of [[KERAS_ADAM, 18], ['keras-v3/fashion-mlp-hongong/model.weights.h5', 10], ['keras-v3/keras311-mlp-15cls-small/your_model2.keras', 2]] as const) {
      const r = runCli(['inspect', corpus(file)]);
      assert.match(r.stdout.split('\n')[0]!, new RegExp(` · ${count} optimizer tensors not shown \\(--all\\)$`), file);
      assert.equal(JSON.parse(runCli(['inspect', '--json', corpus(file)]).stdout).metadata.optimizerTensors, count, file);
      assert.equal(JSON.parse(runCli(['inspect', '--json', '--all', corpus(file)]).stdout).metadata.optimizerTensors, undefined, file);
    }
  });

  test('diff says what it left out; convert notes what it did not write', { skip: noCorpus }, () => {
    const r = runCli(['diff', '--json', corpus(KERAS_ADAM), corpus(KERAS_ADAM)]);
    assert.equal(JSON.parse(r.stdout).a.hiddenTensors, 18);
    assert.match(runCli(['diff', corpus(KERAS_ADAM), corpus(KERAS_ADAM)]).stdout, /A: 18 optimizer tensors not compared \(--all\); B: 18 optimizer tensors not compared/);
    const out = path.join(tempDir(), 'model.safetensors');
    const converted = runCli(['convert', corpus(KERAS_ADAM), out]);
    assert.equal(converted.status, 0, converted.stderr);
    assert.match(converted.stdout, /note: 18 optimizer tensor\(s\) of the input were not written/);
  });

  test('a PyTorch training checkpoint against its ONNX model', () => {
    const r = runCli(['diff', sample('detector-90-train.pth'), sample('detector-90.onnx')]);
    assert.match(r.stdout, /A: 6 optimizer tensors not compared \(--all\)/);
  });
});

describe('percentages never round to a false whole', () => {
  test('2629/2630 is >99.9%, a tiny part is <0.1%, whole and none as they are', () => {
    assert.equal(formatPercent(2629 / 2630), '>99.9%');
    assert.equal(formatPercent(1e-6), '<0.1%');
    assert.equal(formatPercent(1), '100.0%');
    assert.equal(formatPercent(0), '0.0%');
    assert.equal(formatPercent(0.984), '98.4%');
  });

  test('the plan headline uses it', () => {
    const summary = { targetTensors: 263, loaded: 262, folded: 0, foldedBatchNorms: 0, expanded: 0, kept: 0, skipped: 1, targetParameters: 263_000_000, parametersFromSource: 262_999_990, fractionLoaded: 262_999_990 / 263_000_000, skippedBy: { missing: 1 } };
    assert.match(planHeadline(summary), /loaded 262\/263 tensors \(>99\.9% of parameters\)/);
  });
});

describe('apply refuses a plan whose --mode full check failed', () => {
  test('the plan records it; apply exits 1 without writing, unless --force', () => {
    const dir = tempDir();
    const plan = path.join(dir, 'plan.json');
    assert.equal(runCli(['plan', sample('detector-90.onnx'), sample('detector-92.onnx'), '--mode', 'full', '-o', plan]).status, 1);
    assert.equal(JSON.parse(fs.readFileSync(plan, 'utf8')).summary.fullModeFailed, true);
    const out = path.join(dir, 'out.onnx');
    const refused = runCli(['apply', plan, '-o', out]);
    assert.equal(refused.status, 1);
    assert.match(refused.stderr, /--mode full.*--force/);
    assert.ok(!fs.existsSync(out));
    assert.equal(runCli(['apply', plan, '-o', out, '--force']).status, 0);
    assert.ok(fs.existsSync(out));
  });
});

describe('selections never silently select nothing', () => {
  test('a pattern is never split at commas: quantifiers and names with ", " stay whole', () => {
    const [quantified, ...rest] = parsePatterns(['re:^a\\.\\d{2,2}\\.']);
    assert.equal(rest.length, 0);
    assert.ok(quantified!.test('a.12.weight'));
    assert.ok(!quantified!.test('a.1.weight'));
    assert.equal(parsePatterns(['=head, fused.weight']).length, 1);
    const r = runCli(['strip', sample('detector-90.onnx'), '--exclude', 'cls_score,yolo_output', '--dry-run', '--allow-empty']);
    assert.match(r.stderr, /pattern 'cls_score,yolo_output' matched no tensor .*not split at commas: repeat the option/);
  });

  test('filter with a typo exits 1 naming the nearest names, writes nothing; --allow-empty writes it', { skip: noCorpus }, () => {
    const out = path.join(tempDir(), 'out.onnx');
    const r = runCli(['filter', corpus(MLP), '--include', 'modle.4', '-o', out]);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /pattern 'modle\.4' matched no tensor .*nearest names: model\.4\.bias, model\.4\.weight/);
    assert.match(r.stderr, /the patterns select no tensor, so the output would be empty \(--allow-empty/);
    assert.ok(!fs.existsSync(out));
    assert.equal(runCli(['filter', corpus(MLP), '--include', 'modle.4', '-o', out, '--allow-empty']).status, 0);
    assert.ok(fs.existsSync(out));
  });

  test('strip that removes every tensor exits 1', { skip: noCorpus }, () => {
    const r = runCli(['strip', corpus(MLP), '--exclude', 'model', '--dry-run']);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /remove all 6 tensors/);
  });

  test('nearest names: by edit distance to the name, its start or a dotted part', () => {
    assert.deepEqual(nearestNames('classifer', ['backbone.conv.weight', 'classifier.weight', 'classifier.bias'], 2), ['classifier.bias', 'classifier.weight']);
  });
});

describe('rename applies its rules to canonical names', () => {
  const train = sample('detector-90-train.pth');

  test('--add-prefix prefixes the model names, not the training container', () => {
    const out = path.join(tempDir(), 'renamed.pth');
    const r = runCli(['rename', train, '--add-prefix', 'body.', '-o', out, '--json']);
    assert.equal(r.status, 0, r.stderr);
    const listed = JSON.parse(runCli(['inspect', '--json', out]).stdout).tensors;
    assert.equal(listed[0].name, 'body.backbone.conv1.weight');
    assert.equal(listed[0].source, 'state_dict/module.body.backbone.conv1.weight');
    assert.equal(JSON.parse(runCli(['inspect', '--json', train]).stdout).metadata.values.epoch, JSON.parse(runCli(['inspect', '--json', out]).stdout).metadata.values.epoch);
  });

  test('a rule that matches no canonical name is reported, and with --strict exits 1', () => {
    const r = runCli(['rename', train, '--strip-prefix', 'module.', '--dry-run']);
    assert.equal(r.status, 0);
    assert.match(r.stderr, /--strip-prefix module\. matched no name .*canonical names.*it matches 6 of the file's own names/);
    assert.equal(runCli(['rename', train, '--strip-prefix', 'module.', '--dry-run', '--strict']).status, 1);
    assert.match(runCli(['rename', train, '--strip-prefix', 'backbone.', '--dry-run', '--strict']).stdout, /4 of 6 tensors renamed/);
  });
});

describe('conversions people expect', () => {
  test('an unknown output extension is refused, naming the known ones; no extension needs --to', () => {
    const dir = tempDir();
    for (const out of ['model.params', 'model']) {
      const r = runCli(['convert', sample('detector-90.onnx'), path.join(dir, out)]);
      assert.equal(r.status, 2, out);
      assert.match(r.stderr, /\.safetensors .*\.pdparams|--to/);
    }
    assert.deepEqual(fs.readdirSync(dir), []);
  });

  test('a TF2 checkpoint converts to safetensors: its object graph is left out with a note', { skip: noCorpus }, async () => {
    const out = path.join(tempDir(), 'mnist.safetensors');
    const r = runCli(['convert', corpus(`${TF2_CHECKPOINT}/cp-0000.ckpt.index`), out]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /: 4 tensors\nnote: 1 string entry left out \(safetensors has no string type\): _CHECKPOINTABLE_OBJECT_GRAPH/);
    const dict = await open(out);
    assert.deepEqual(dict.tensors.map((t) => t.name), ['dense_4.bias', 'dense_4.kernel', 'dense_5.bias', 'dense_5.kernel']);
    await dict.close();
  });
});

describe('folders and prefixes people pass', () => {
  test('a PEFT adapter folder opens as its adapter_model.safetensors', () => {
    const dir = tempDir();
    assert.equal(runCli(['convert', sample('detector-90.onnx'), path.join(dir, 'adapter_model.safetensors')]).status, 0);
    fs.writeFileSync(path.join(dir, 'adapter_config.json'), JSON.stringify({ peft_type: 'LORA', r: 8, target_modules: ['q_proj'] }));
    fs.writeFileSync(path.join(dir, 'README.md'), '# adapter\n');
    const r = runCli(['inspect', '--json', dir]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).format, 'safetensors');
    assert.equal(JSON.parse(r.stdout).tensors.length, 6);
  });

  test('two models in a folder: an error naming the folder and both', () => {
    const dir = tempDir();
    for (const out of ['a.safetensors', 'b.pdparams']) assert.equal(runCli(['convert', sample('detector-90.onnx'), path.join(dir, out)]).status, 0);
    const r = runCli(['inspect', dir]);
    assert.equal(r.status, 3);
    assert.ok(r.stderr.includes(`${dir}: the folder holds 2 models (a.safetensors: safetensors, b.pdparams: paddle)`), r.stderr);
  });

  test('a TF checkpoint prefix as TensorFlow takes it, and a folder with a checkpoint file', { skip: noCorpus }, () => {
    const prefix = corpus(`${TF2_CHECKPOINT}/cp-0000.ckpt`);
    const r = runCli(['inspect', '--json', prefix]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).format, 'tf-checkpoint');
    const dir = tempDir();
    for (const f of ['cp-0000.ckpt.index', 'cp-0000.ckpt.data-00000-of-00001']) fs.copyFileSync(corpus(`${TF2_CHECKPOINT}/${f}`), path.join(dir, f));
    fs.writeFileSync(path.join(dir, 'checkpoint'), 'model_checkpoint_path: "cp-0000.ckpt"\nall_model_checkpoint_paths: "cp-0000.ckpt"\n');
    assert.equal(JSON.parse(runCli(['inspect', '--json', dir]).stdout).tensors.length, 5);
  });

  test('a folder holding one TF.js model under its own name', { skip: noCorpus }, () => {
    const r = runCli(['inspect', '--json', corpus('tfjs/human-antispoof')]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).format, 'tfjs');
    assert.equal(JSON.parse(r.stdout).tensors.length, 11);
  });
});
