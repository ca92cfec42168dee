import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { open } from '../src/index.js';
import { seededRandom } from '../src/core/random.js';
import { bytes, f32, op, tensorCall, torchZip, type Part } from './pickle-fixtures.js';
import { loadOutcome, runCli, tempDir } from './helpers.js';
import { refusal } from './refusal.js';
import { python, pythonHas } from './python.js';

/**
 * TorchScript archives: data.pkl pickles the module tree as `__torch__.*` objects built by
 * NEWOBJ + BUILD with a dict of attributes; the code declares each class's parameters and buffers.
 */
const newobj = [0x81];

function scripted(module: string, name: string, attributes: [string, Part][]): Buffer {
  return bytes(op.global(module, name), op.emptyTuple, newobj, op.emptyDict, op.mark, ...attributes.flatMap(([k, v]) => [op.str(k), v]), op.setitems, op.build);
}

const CODE: Record<string, string> = {
  'code/__torch__/model.py': 'class Net(Module):\n  __parameters__ = []\n  __buffers__ = []\n  training : bool\n  conv : __torch__.torch.nn.modules.conv.Conv2d\n',
  'code/__torch__/torch/nn/modules/conv.py': 'class Conv2d(Module):\n  __parameters__ = ["weight", "bias", ]\n  __buffers__ = []\n',
  'code/__torch__/torch/nn/modules/batchnorm.py': 'class BatchNorm2d(Module):\n  __parameters__ = ["weight", "bias", ]\n  __buffers__ = ["running_mean", "num_batches_tracked", ]\n',
};

/** conv (weight, bias=None), bn (weight, bias, running_mean, num_batches_tracked), a plain tensor attribute and packed params outside state_dict. */
function archive(options: { code?: Record<string, string>; root?: Buffer; members?: Record<string, Uint8Array> } = {}): string {
  const conv = scripted('__torch__.torch.nn.modules.conv', 'Conv2d', [
    ['training', op.false], ['weight', tensorCall({ key: '0', numel: 4 }, 0, [2, 2], [2, 1])], ['bias', op.none],
  ]);
  const bn = scripted('__torch__.torch.nn.modules.batchnorm', 'BatchNorm2d', [
    ['weight', tensorCall({ key: '1', numel: 4 }, 0, [2], [1])],
    ['bias', tensorCall({ key: '1', numel: 4 }, 2, [2], [1])],
    ['running_mean', tensorCall({ key: '2', numel: 2 }, 0, [2], [1])],
    ['num_batches_tracked', tensorCall({ key: '3', type: 'LongStorage', numel: 1 }, 0, [], [])],
  ]);
  const packed = bytes(op.global('__torch__.torch.nn.quantized.modules.linear', 'LinearPackedParams'), op.emptyTuple, newobj,
    op.mark, tensorCall({ key: '4', numel: 2 }, 0, [2], [1]), op.none, op.false, op.int(12), op.tuple, op.build);
  const root = options.root ?? scripted('__torch__.model', 'Net', [
    ['training', op.false], ['conv', conv], ['bn', bn], ['cached', tensorCall({ key: '4', numel: 2 }, 0, [2], [1])], ['_packed_params', packed],
  ]);
  const members: Record<string, Uint8Array> = {
    'data/0': f32([1, 2, 3, 4]), 'data/1': f32([5, 6, 7, 8]), 'data/2': f32([9, 10]), 'data/3': Buffer.from(new BigInt64Array([7n]).buffer), 'data/4': f32([0, 0]),
    'constants.pkl': bytes(op.proto(2), op.emptyTuple, op.stop), version: Buffer.from('3\n'),
    ...Object.fromEntries(Object.entries(options.code ?? CODE).map(([k, v]) => [k, Buffer.from(v)])),
    ...options.members,
  };
  return torchZip(bytes(op.proto(2), root, op.stop), members, 'model.pt');
}

async function listing(file: string) {
  const dict = await open(file);
  try {
    return {
      format: dict.format, metadata: dict.metadata,
      tensors: await Promise.all(dict.tensors.map(async (t) => [t.source, t.dtype, t.shape, [...new Float32Array((await t.read()).slice().buffer)].slice(0, 2)] as const)),
    };
  } finally {
    await dict.close();
  }
}

test('the state dict of the scripted module: declared parameters and buffers, dotted, as state_dict() names them', async () => {
  const { format, metadata, tensors } = await listing(archive());
  assert.equal(format, 'torchscript');
  assert.deepEqual(tensors.map(([source, dtype, shape]) => [source, dtype, shape]), [
    ['conv.weight', 'float32', [2, 2]],
    ['bn.weight', 'float32', [2]], ['bn.bias', 'float32', [2]], ['bn.running_mean', 'float32', [2]], ['bn.num_batches_tracked', 'int64', []],
  ]);
  assert.deepEqual(tensors[2]![3], [7, 8]); // a view into its storage at offset 2
  assert.match(String(metadata.notListed), /^2 tensor\(s\) outside state_dict/);
});

test('without the code, every tensor attribute of a module is listed', async () => {
  const { tensors } = await listing(archive({ code: {} }));
  assert.deepEqual(tensors.map(([source]) => source), ['cached', 'conv.weight', 'bn.weight', 'bn.bias', 'bn.running_mean', 'bn.num_batches_tracked']);
});

test('bad archives are refused by name: a declared parameter that is no tensor, a root that is no module, globals outside torch', async () => {
  const refused = async (file: string) => {
    const r = await refusal(file);
    return `${r.status} ${r.message}`;
  };
  const notTensor = archive({ code: { ...CODE, 'code/__torch__/model.py': 'class Net(Module):\n  __parameters__ = ["training", ]\n  __buffers__ = []\n' } });
  assert.match(await refused(notTensor), /^3 .*'training': is declared a parameter or buffer but holds no plain tensor/);
  assert.match(await refused(archive({ root: bytes(op.emptyDict) })), /^3 .*the root is not a scripted module/);
  assert.match(await refused(archive({ root: scripted('__torch__.model', 'Net', [['x', bytes(op.global('os', 'system'), op.emptyTuple, op.reduce)]]) })), /^3 .*global 'os\.system' comes from module 'os', which can run commands/);
  assert.match(await refused(archive({ members: { 'data/2': f32([9]) } })), /^3 .*member 'archive\/data\/2': holds 4 bytes, expected 8/);
});

test('through the CLI: a TorchScript archive converts to a state dict torch.save would write', () => {
  const file = archive();
  const out = path.join(tempDir(), 'state.safetensors');
  const r = runCli(['convert', file, out]);
  assert.equal(r.status, 0, r.stderr);
  const diff = runCli(['diff', '--values', file, out]);
  assert.equal(diff.status, 0, diff.stdout + diff.stderr);
});

test('mutated data.pkl each opens or fails with exit 3/4, never a crash (fixed seed)', async () => {
  const next = seededRandom(3);
  const file = archive();
  const original = fs.readFileSync(file);
  const pklAt = original.indexOf(Buffer.from([0x80, 0x02, 0x63]));
  for (let i = 0; i < 150; i++) {
    const mutated = Buffer.from(original);
    for (let e = 0; e < 1 + Math.floor(next() * 3); e++) mutated[pklAt + Math.floor(next() * 600)] = Math.floor(next() * 256);
    fs.writeFileSync(file, mutated);
    const outcome = await loadOutcome(file);
    assert.ok(outcome === 'ok' || outcome === 3 || outcome === 4, `mutation ${i}: ${outcome}`);
  }
});

const hasTorch = pythonHas('torch');
test('torch.jit.save archives list exactly torch.jit.load(f).state_dict()', { skip: !hasTorch && 'no python3 torch' }, async () => {
  const dir = tempDir();
  const file = path.join(dir, 'scripted.pt');
  // torch.jit.script reads the module's source, so the model is a real module imported from a file.
  fs.writeFileSync(path.join(dir, 'scripted_model.py'), `
import hashlib, json, sys, torch
class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.features = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, bias=False), torch.nn.BatchNorm2d(4), torch.nn.ReLU())
        self.head = torch.nn.Linear(4, 2)
        self.register_buffer('steps', torch.arange(3, dtype=torch.int32))
        self.scale = torch.ones(2)
    def forward(self, x):
        return self.head(self.features(x).mean((2, 3))) * self.scale
torch.manual_seed(0)
net = Net()
torch.jit.save(torch.jit.script(net), sys.argv[2])
print(json.dumps([[k, str(v.dtype).replace('torch.', ''), list(v.shape), hashlib.sha256(v.contiguous().numpy().tobytes()).hexdigest()] for k, v in torch.jit.load(sys.argv[2]).state_dict().items()]))
`);
  const reference = JSON.parse(python('import sys; sys.path.insert(0, sys.argv[1]); import scripted_model', dir, file)) as [string, string, number[], string][];
  const dict = await open(file);
  const ours = await Promise.all(dict.tensors.map(async (t) => [t.source, t.dtype, t.shape, crypto.createHash('sha256').update(await t.read()).digest('hex')]));
  await dict.close();
  assert.deepEqual(ours, reference);
});
