import { test, describe, before } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { open, tensorSha256 } from '../src/index.js';
import { runCli, tempDir } from './helpers.js';
import { python, pythonHas } from './python.js';

const noTorch = !pythonHas('torch') && 'Debian python3-torch is not installed';

/**
 * Files written by real torch.save (Debian's python3-torch), in both containers, and what torch
 * itself sees in them: source path, dtype, shape and SHA-256 of the contiguous little-endian bytes.
 */
const MAKE = String.raw`
import sys, json, hashlib, collections, argparse, numpy as np, torch
out = sys.argv[1]
names = {torch.float64: 'float64', torch.float32: 'float32', torch.float16: 'float16', torch.bfloat16: 'bfloat16',
         torch.int64: 'int64', torch.int32: 'int32', torch.int16: 'int16', torch.int8: 'int8', torch.uint8: 'uint8',
         torch.bool: 'bool', torch.complex64: 'complex64', torch.complex128: 'complex128'}
def digest(t):
    t = t.detach().contiguous()
    b = t.view(torch.int16).numpy().tobytes() if t.dtype == torch.bfloat16 else t.numpy().tobytes()
    return hashlib.sha256(b).hexdigest()
def listing(obj, path=()):
    if isinstance(obj, torch.Tensor):
        return [['/'.join(path), names[obj.dtype], list(obj.shape), digest(obj)]]
    items = obj.items() if isinstance(obj, dict) else enumerate(obj) if isinstance(obj, (list, tuple)) else []
    return [row for k, v in items for row in listing(v, path + (str(k),))]
g = torch.Generator().manual_seed(0)
dtypes = collections.OrderedDict()
for dt in names:
    if dt.is_complex: dtypes[names[dt]] = torch.randn(2, 3, dtype=dt, generator=g)
    elif dt.is_floating_point: dtypes[names[dt]] = torch.randn(3, 2, 2, generator=g).to(dt)
    elif dt == torch.bool: dtypes[names[dt]] = torch.rand(5, generator=g) > 0.5
    else: dtypes[names[dt]] = torch.randint(-100 if dt != torch.uint8 else 0, 100, (4, 3), generator=g).to(dt)
dtypes['scalar'] = torch.tensor(7, dtype=torch.int64)
dtypes['empty'] = torch.zeros(0, 3)
base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
views = collections.OrderedDict([('base', base), ('transposed', base.t()), ('block', base[1:3, 2:5]), ('row', base[2]),
    ('every_other', base[:, ::2]), ('broadcast', torch.arange(3.0).reshape(3, 1).expand(3, 4)), ('channels_last', torch.arange(2 * 3 * 2 * 2.0).reshape(2, 3, 2, 2).to(memory_format=torch.channels_last))])
net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.Flatten(), torch.nn.Linear(4, 2))
wrapped = torch.nn.DataParallel(net)
opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
net(torch.randn(2, 3, 3, 3, generator=g)).sum().backward(); opt.step()
training = {'epoch': 12, 'arch': 'tiny', 'best_acc1': torch.tensor(0.75), 'loss': np.float64(0.25),
            'state_dict': wrapped.state_dict(), 'optimizer': opt.state_dict()}
containers = {'layers': [torch.ones(2), (torch.zeros(1), torch.full((2, 2), 3.0))], 'params': dict(net.named_parameters())}
big = collections.OrderedDict([('small', torch.ones(3)), ('big', torch.zeros(1024, 1024)), ('after', torch.ones(2))])
cases = {'dtypes': dtypes, 'views': views, 'training': training, 'containers': containers, 'big': big}
expected = {}
for name, obj in cases.items():
    for legacy in (False, True):
        file = f'{out}/{name}{"-legacy" if legacy else ""}.pth'
        torch.save(obj, file, _use_new_zipfile_serialization=not legacy)
        expected[file] = listing(obj)
class Tiny(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.body = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2))
        self.register_buffer('scale', torch.full((2,), 0.5))
        self.register_buffer('mask', torch.ones(2), persistent=False)
tiny = Tiny()
torch.save(tiny, f'{out}/whole-model.pth')
expected['whole-model'] = listing(tiny.state_dict())
class AttributeDict(dict):  # as Lightning pickles hyper-parameters: a dict subclass, items set after NEWOBJ
    pass
torch.save({'state_dict': net.state_dict(), 'args': argparse.Namespace(lr=0.1, arch='tiny'), 'hyper_parameters': AttributeDict(lr=0.1, layers=[1, 2])}, f'{out}/namespace.pth')
torch.save(torch.arange(6.0).reshape(2, 3), f'{out}/one-tensor.pth')
torch.save({'s': torch.eye(3).to_sparse()}, f'{out}/sparse.pth')
torch.save({'q': torch.quantize_per_tensor(torch.rand(4), 0.1, 10, torch.quint8)}, f'{out}/quantized.pth')
print(json.dumps(expected))
`;

type Row = [string, string, number[], string];

describe('PyTorch reader against torch.save', { skip: noTorch }, () => {
  let dir = '';
  let expected: Record<string, Row[]> = {};
  before(() => {
    dir = tempDir();
    expected = JSON.parse(python(MAKE, dir)) as Record<string, Row[]>;
  });

  async function listing(file: string, all = false): Promise<Row[]> {
    const dict = await open(file, { all });
    try {
      return await Promise.all(dict.tensors.map(async (t) => [t.source, t.dtype, [...t.shape], await tensorSha256(t)] as Row));
    } finally {
      await dict.close();
    }
  }

  for (const name of ['dtypes', 'views', 'containers']) {
    for (const legacy of [false, true]) {
      test(`${name}${legacy ? ' (legacy format)' : ' (zip format)'}: every tensor as torch sees it`, async () => {
        const file = path.join(dir, `${name}${legacy ? '-legacy' : ''}.pth`);
        assert.deepEqual(await listing(file), expected[file]);
      });
    }
  }

  test('a training checkpoint: the state_dict wrapper and module. prefix leave the canonical names; optimizer state only with --all', async () => {
    for (const file of ['training.pth', 'training-legacy.pth'].map((f) => path.join(dir, f))) {
      const torchSees = expected[file]!;
      const dict = await open(file);
      assert.deepEqual(dict.tensors.map((t) => t.name), ['best_acc1', '0.weight', '0.bias', '1.weight', '1.bias', '1.running_mean', '1.running_var', '1.num_batches_tracked', '3.weight', '3.bias']);
      assert.equal(dict.tensors[1]!.source, 'state_dict/module.0.weight');
      assert.deepEqual(dict.metadata.values, { epoch: 12, arch: 'tiny' });
      await dict.close();
      assert.deepEqual(await listing(file, true), torchSees);
      const all = await open(file, { all: true });
      assert.ok(all.tensors.filter((t) => t.source.startsWith('optimizer/')).every((t) => t.group === 'optimizer'));
      assert.equal(all.tensors.filter((t) => t.group === 'optimizer').length, 6, 'a momentum buffer per parameter');
      await all.close();
    }
    const r = runCli(['inspect', path.join(dir, 'training-legacy.pth')]);
    assert.match(r.stdout.split('\n')[0]!, /: pytorch · legacy format \(torch < 1\.6\) · epoch 12 · 10 tensors \(7 weights, 3 buffers\) · .* · 6 optimizer tensors not shown \(--all\)$/);
  });

  test('strip on a training checkpoint writes one torch loads as it was: nesting, epoch and arch kept, the stripped head and the optimizer gone', () => {
    const out = path.join(dir, 'stripped.pth');
    const r = runCli(['strip', '--exclude', '3.', path.join(dir, 'training.pth'), '-o', out]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /6 optimizer tensor\(s\) of the input were not written/);
    const seen = JSON.parse(python(String.raw`
import sys, json, torch
d = torch.load(sys.argv[1], weights_only=True)
net = torch.nn.DataParallel(torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.Flatten(), torch.nn.Linear(4, 2)))
missing = net.load_state_dict(d['state_dict'], strict=False).missing_keys
print(json.dumps({'keys': list(d), 'epoch': d['epoch'], 'arch': d['arch'], 'missing': missing}))`, out)) as { keys: string[]; epoch: number; arch: string; missing: string[] };
    assert.deepEqual(seen, { keys: ['epoch', 'arch', 'best_acc1', 'state_dict'], epoch: 12, arch: 'tiny', missing: ['module.3.weight', 'module.3.bias'] });
  });

  test('listing reads the pickle and the zip directory (legacy: each storage\'s 8-byte count), never the 4 MiB tensor', async () => {
    for (const file of ['big.pth', 'big-legacy.pth'].map((f) => path.join(dir, f))) {
      const dict = await open(file);
      // The zip directory search reads up to 64 KiB from the end (the longest possible comment).
      assert.ok(dict.bytesRead!() < 100 * 1024, `${dict.bytesRead!()} bytes read`);
      assert.deepEqual(dict.tensors.map((t) => t.name), ['small', 'big', 'after']);
      await dict.close();
    }
  });

  test('a file that holds one tensor, not a dict, lists it as "tensor"', async () => {
    const dict = await open(path.join(dir, 'one-tensor.pth'));
    assert.deepEqual(dict.tensors.map((t) => [t.name, t.source, t.shape]), [['tensor', 'tensor', [2, 3]]]);
    assert.deepEqual([...new Float32Array((await dict.tensors[0]!.read()).slice().buffer)], [0, 1, 2, 3, 4, 5]);
    await dict.close();
  });

  test('sparse and quantized tensors are refused by name, with what to save instead', () => {
    for (const [file, message] of [['sparse.pth', /'torch\._utils\._rebuild_sparse_tensor': sparse tensors are not supported; save t\.to_dense\(\)/], ['quantized.pth', /'torch\._utils\._rebuild_qtensor': quantized tensors are not supported; save t\.dequantize\(\)/]] as const) {
      const r = runCli(['inspect', path.join(dir, file)]);
      assert.equal(r.status, 3, r.stderr);
      assert.match(r.stderr, message);
    }
  });

  test('a pickled whole model (torch.save(model)) opens as its state_dict(), classes read as opaque values and never imported', async () => {
    const file = path.join(dir, 'whole-model.pth');
    const warnings: string[] = [];
    const dict = await open(file, { onWarning: (m) => warnings.push(m) });
    try {
      assert.deepEqual(
        await Promise.all(dict.tensors.map(async (t) => [t.name, t.dtype, [...t.shape], await tensorSha256(t)])),
        expected['whole-model']!.map(([name, dtype, shape, sha]) => [name, dtype, shape, sha]),
        'the names, values and order of state_dict(), without the persistent=False buffer',
      );
      assert.equal(dict.tensors[1]!.source, '_modules/body/_modules/0/_parameters/weight');
      assert.deepEqual(dict.metadata.opaqueGlobals, ['__main__.Tiny', 'torch.nn.modules.container.Sequential', 'torch.nn.modules.conv.Conv2d', 'torch.nn.modules.batchnorm.BatchNorm2d']);
      assert.match(warnings.join('\n'), /read __main__\.Tiny, torch\.nn\.modules\.container\.Sequential, .* as opaque values, without running anything/);
    } finally {
      await dict.close();
    }
  });

  test('--strict-pickle refuses what torch.load(weights_only=True) refuses, naming the global', () => {
    const r = runCli(['inspect', '--strict-pickle', path.join(dir, 'whole-model.pth')]);
    assert.equal(r.status, 3, r.stderr);
    assert.match(r.stderr, /whole-model\.pth: member 'whole-model\/data\.pkl', pickle offset \d+: global '__main__\.Tiny' is not allowed \(strict pickle reading\)/);
  });

  test("hyper-parameters as an argparse Namespace and a dict subclass: the tensors open, with a warning naming them on stderr", () => {
    const r = runCli(['inspect', '--json', path.join(dir, 'namespace.pth')]);
    assert.equal(r.status, 0, r.stderr);
    const listed = JSON.parse(r.stdout) as { metadata: { opaqueGlobals: string[] }; tensors: { name: string }[] };
    assert.deepEqual(listed.metadata.opaqueGlobals, ['argparse.Namespace', '__main__.AttributeDict']);
    assert.deepEqual(listed.tensors.map((t) => t.name), ['0.weight', '0.bias', '1.weight', '1.bias', '1.running_mean', '1.running_var', '1.num_batches_tracked', '3.weight', '3.bias']);
    assert.match(r.stderr, /ckpt: warning: .*namespace\.pth: read argparse\.Namespace, __main__\.AttributeDict as opaque values/);
  });
});
