import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import * as ort from 'onnxruntime-node';
import { open } from '../src/index.js';
import { ROOT, SAMPLES, runCli, tempDir } from './helpers.js';
import { python, pythonHas } from './python.js';

const ONNX_SAMPLES = fs.readdirSync(SAMPLES).filter((f) => f.endsWith('.onnx')).sort();

/** Runs a sample script into a fresh folder: it must write exactly `names`, byte for byte as shipped. */
function assertRegenerates(script: string, names: readonly string[]): void {
  const out = tempDir();
  const r = spawnSync(process.execPath, [path.join(ROOT, 'scripts', script), out], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(fs.readdirSync(out).sort(), names);
  for (const name of names) {
    assert.ok(fs.readFileSync(path.join(out, name)).equals(fs.readFileSync(path.join(SAMPLES, name))), `${name} differs`);
  }
}

test('the ONNX samples are exactly what scripts/make-samples.js generates', () => assertRegenerates('make-samples.js', ONNX_SAMPLES));

for (const [name, classes] of [['detector-90.onnx', 90], ['detector-92.onnx', 92]] as const) {
  test(`onnxruntime-node loads and runs ${name}: ${3 * (5 + classes)} finite output channels`, async () => {
    const session = await ort.InferenceSession.create(path.join(SAMPLES, name), { executionProviders: ['cpu'] });
    const input = new ort.Tensor('float32', new Float32Array(3 * 64 * 64).map((_, i) => Math.sin(i)), [1, 3, 64, 64]);
    const { yolo_output: output } = await session.run({ images: input });
    assert.deepEqual(output!.dims, [1, 3 * (5 + classes), 16, 16]);
    assert.ok((output!.data as Float32Array).every(Number.isFinite));
    await session.release();
  });
}

const CHECKPOINT_SAMPLES = ['detector-90-train.pth', 'detector-90.pdparams', 'detector-92.pdparams'];
const noTorch = !pythonHas('torch') && 'Debian python3-torch is not installed';
const noNumpy = !pythonHas('numpy') && 'Debian python3-numpy is not installed';
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/** [name, shape, sha256] of each tensor of an ONNX sample, as ckpt reads it. */
async function onnxRows(classes: number): Promise<[string, number[], string][]> {
  const dict = await open(path.join(SAMPLES, `detector-${classes}.onnx`));
  try {
    return await Promise.all(dict.tensors.map(async (t) => [t.name, [...t.shape], sha(await t.read())] as [string, number[], string]));
  } finally {
    await dict.close();
  }
}

test('the PaddlePaddle and PyTorch samples are exactly what scripts/make-checkpoint-samples.js generates', () => assertRegenerates('make-checkpoint-samples.js', CHECKPOINT_SAMPLES));

/**
 * The training checkpoint as torch reads it: torch.load(weights_only=True) where torch's
 * weights-only unpickler reads Python floats. Debian's torch 1.13 refuses the BINFLOAT of an
 * optimizer's `lr` (in its own torch.save of an SGD state dict too: pytorch/pytorch#94670), so
 * there it is torch.load with an unpickler restricted to torch's weights-only allowlist.
 */
const TORCH_TRAINING_CHECKPOINT = `
import collections, hashlib, io, json, pickle, sys, types, torch
from torch._weights_only_unpickler import _get_allowed_globals
def weights_only_reads_floats():
    b = io.BytesIO()
    torch.save({'lr': 0.5}, b)
    b.seek(0)
    try:
        torch.load(b, weights_only=True)
        return True
    except pickle.UnpicklingError:
        return False
ALLOWED = _get_allowed_globals()
class Allowlisted(pickle.Unpickler):
    def find_class(self, module, name):
        if f'{module}.{name}' not in ALLOWED:
            raise pickle.UnpicklingError(f'{module}.{name} is not allowed')
        return super().find_class(module, name)
if weights_only_reads_floats():
    mode, ck = 'weights_only', torch.load(sys.argv[1], weights_only=True)
else:
    mode, ck = 'allowlist', torch.load(sys.argv[1], pickle_module=types.SimpleNamespace(Unpickler=Allowlisted, load=pickle.load))
sha = lambda t: hashlib.sha256(t.numpy().tobytes()).hexdigest()
sd = ck['state_dict']
assert type(sd) is collections.OrderedDict, type(sd)
class Backbone(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(3, 8, 3, 2, 1)
        self.conv2 = torch.nn.Conv2d(8, 16, 3, 2, 1)
class Detector(torch.nn.Module):
    def __init__(self, classes):
        super().__init__()
        self.backbone = Backbone()
        self.yolo_output = torch.nn.Conv2d(16, 3 * (5 + classes), 1)
model = torch.nn.DataParallel(Detector(90))
model.load_state_dict(sd, strict=True)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
optimizer.load_state_dict(ck['optimizer'])
group = {k: v for k, v in optimizer.param_groups[0].items() if k != 'params'}
print(json.dumps({
    'mode': mode, 'keys': list(ck), 'epoch': ck['epoch'],
    'rows': [[k, list(t.shape), sha(t)] for k, t in sd.items()],
    'metadata': list(sd._metadata),
    'group': {k: group[k] for k in ('lr', 'momentum', 'weight_decay')},
    'momentum': [[i, list(s['momentum_buffer'].shape), float(s['momentum_buffer'].abs().max())] for i, s in ck['optimizer']['state'].items()],
    'optimizer_state': len(optimizer.state),
}))
`;

test('torch.load reads the training checkpoint: a DataParallel state dict of the ONNX weights, SGD momentum buffers', { skip: noTorch }, async () => {
  const got = JSON.parse(python(TORCH_TRAINING_CHECKPOINT, path.join(SAMPLES, 'detector-90-train.pth')));
  const rows = await onnxRows(90);
  assert.ok(['weights_only', 'allowlist'].includes(got.mode));
  assert.deepEqual(got.keys, ['epoch', 'state_dict', 'optimizer']);
  assert.equal(got.epoch, 120);
  assert.deepEqual(got.rows, rows.map(([name, shape, hash]) => [`module.${name}`, shape, hash]));
  assert.deepEqual(got.metadata, ['', 'module', 'module.backbone', 'module.backbone.conv1', 'module.backbone.conv2', 'module.yolo_output']);
  assert.deepEqual(got.group, { lr: 0.01, momentum: 0.9, weight_decay: 0.0005 });
  assert.deepEqual(got.momentum.map((m: [number, number[], number]) => [m[0], m[1]]), rows.map(([, shape], i) => [i, shape]));
  assert.ok(got.momentum.every((m: [number, number[], number]) => m[2] > 0 && m[2] <= 0.01));
  assert.equal(got.optimizer_state, 6);
});

/** A .pdparams as plain pickle.load + numpy read it: [name, dtype, shape, sha256] rows and the name table. */
const PICKLE_PDPARAMS = `
import hashlib, json, pickle, sys, numpy
with open(sys.argv[1], 'rb') as f:
    sd = pickle.load(f)
assert type(sd) is dict, type(sd)
names = sd.pop('StructuredToParameterName@@')
rows = []
for name, a in sd.items():
    assert type(a) is numpy.ndarray and a.flags.c_contiguous
    rows.append([name, a.dtype.str, list(a.shape), hashlib.sha256(a.tobytes()).hexdigest()])
print(json.dumps({'rows': rows, 'names': names}))
`;

for (const classes of [90, 92]) {
  test(`pickle.load + numpy read detector-${classes}.pdparams: the ONNX weights under the same names, Paddle's name table`, { skip: noNumpy }, async () => {
    const got = JSON.parse(python(PICKLE_PDPARAMS, path.join(SAMPLES, `detector-${classes}.pdparams`)));
    const rows = await onnxRows(classes);
    assert.deepEqual(got.rows, rows.map(([name, shape, hash]) => [name, '<f4', shape, hash]));
    assert.deepEqual(got.names, {
      'backbone.conv1.weight': 'conv2d_0.w_0', 'backbone.conv1.bias': 'conv2d_0.b_0',
      'backbone.conv2.weight': 'conv2d_1.w_0', 'backbone.conv2.bias': 'conv2d_1.b_0',
      'yolo_output.weight': 'conv2d_2.w_0', 'yolo_output.bias': 'conv2d_2.b_0',
    });
  });
}

test('ckpt lists the training checkpoint under canonical names, optimizer state with --all', async () => {
  const names = (await onnxRows(90)).map(([name]) => name);
  const dict = await open(path.join(SAMPLES, 'detector-90-train.pth'));
  assert.deepEqual(dict.tensors.map((t) => t.name), names);
  assert.deepEqual(dict.tensors.map((t) => t.source), names.map((n) => `state_dict/module.${n}`));
  assert.deepEqual(dict.metadata.values, { epoch: 120 });
  await dict.close();
  const all = await open(path.join(SAMPLES, 'detector-90-train.pth'), { all: true });
  const optimizer = all.tensors.filter((t) => t.group === 'optimizer');
  assert.deepEqual(optimizer.map((t) => t.name), names.map((_, i) => `optimizer.state.${i}.momentum_buffer`));
  await all.close();
});

test('strip --exclude yolo_output on a .pdparams drops the head and its name-table entries', { skip: noNumpy }, () => {
  const out = path.join(tempDir(), 'backbone.pdparams');
  const r = runCli(['strip', '--exclude', 'yolo_output', path.join(SAMPLES, 'detector-90.pdparams'), '-o', out]);
  assert.equal(r.status, 0, r.stderr);
  const got = JSON.parse(python(PICKLE_PDPARAMS, out));
  assert.deepEqual(got.rows.map((row: string[]) => row[0]), ['backbone.conv1.weight', 'backbone.conv1.bias', 'backbone.conv2.weight', 'backbone.conv2.bias']);
  assert.deepEqual(Object.keys(got.names), ['backbone.conv1.weight', 'backbone.conv1.bias', 'backbone.conv2.weight', 'backbone.conv2.bias']);
});

test('planning the .pth or the .pdparams into detector-92.onnx gives the same model as planning the ONNX sample', () => {
  const dir = tempDir();
  const models = ['detector-90.onnx', 'detector-90-train.pth', 'detector-90.pdparams'].map((source, i) => {
    const plan = path.join(dir, `plan-${i}.json`);
    const model = path.join(dir, `model-${i}.onnx`);
    for (const args of [['plan', path.join(SAMPLES, source), path.join(SAMPLES, 'detector-92.onnx'), '-o', plan], ['apply', plan, '-o', model]]) {
      const r = runCli(args);
      assert.equal(r.status, 0, `${args.join(' ')}: ${r.stderr}`);
    }
    return fs.readFileSync(model);
  });
  assert.ok(models[1]!.equals(models[0]!), 'from .pth differs');
  assert.ok(models[2]!.equals(models[0]!), 'from .pdparams differs');
});
