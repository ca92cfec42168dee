import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CkptError } from '../src/index.js';
import { byteLengthOf, numelOf, type DType } from '../src/core/dtype.js';
import type { StateDict, TensorInfo } from '../src/core/statedict.js';
import { PickleWriter } from '../src/core/pickle-write.js';
import { descrOf } from '../src/formats/numpy/header.js';
import { writePytorch } from '../src/formats/pytorch/write.js';
import { writePaddle } from '../src/formats/paddle/write.js';
import { chooseWriter, type OutputTensor } from '../src/formats/writers.js';
import { SAMPLES, runCli, tempDir } from './helpers.js';
import { python, pythonHas } from './python.js';

const noTorch = !pythonHas('torch') && 'Debian python3-torch is not installed';
const noNumpy = !pythonHas('numpy') && 'Debian python3-numpy is not installed';
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/** An in-memory tensor with deterministic bytes (0/1 for bool). */
function tensor(name: string, dtype: DType, shape: number[], source = name): TensorInfo {
  const byteLength = byteLengthOf(dtype, numelOf(shape)!);
  const bytes = Uint8Array.from({ length: byteLength }, (_, i) => (dtype === 'bool' ? (i * 7) % 3 & 1 : (i * 37 + name.length * 11) % 251));
  return {
    name, source, dtype, shape, byteLength, origin: 'weight',
    read: async () => bytes,
    readStrings: async () => { throw new Error('not a string tensor'); },
  };
}

const out = (tensors: TensorInfo[]): OutputTensor[] => tensors.map((t) => ({ name: t.name, tensor: t }));

function source(format: string, tensors: TensorInfo[], metadata: Record<string, unknown> = {}): StateDict {
  return { format, path: `in.${format}`, metadata, tensors, close: async () => {} };
}

async function expected(tensors: readonly OutputTensor[]) {
  return Promise.all(tensors.map(async (t) => [t.name, t.tensor.dtype, t.tensor.shape, sha(await t.tensor.read())]));
}

const COMMON: [string, DType, number[]][] = [
  ['backbone.conv1.weight', 'float32', [4, 3, 2, 2]], ['bn.num_batches_tracked', 'int64', []], ['f64', 'float64', [3]],
  ['f16', 'float16', [2, 3]], ['i32', 'int32', [5]], ['i16', 'int16', [2, 2]], ['i8', 'int8', [7]], ['u8', 'uint8', [1, 1, 3]],
  ['mask', 'bool', [6]], ['c64', 'complex64', [2]], ['c128', 'complex128', [1, 2]], ['empty', 'float32', [0, 5]],
  ['empty.tail', 'int32', [3, 0]], ['scalar.f', 'float32', []], ['名前.ü', 'float32', [2]],
];

/** name, dtype, shape and sha256 of each tensor `torch.load` gives, and that it is a plain state dict. */
const TORCH_LOAD = `
import collections, hashlib, json, sys, torch
sd = torch.load(sys.argv[1], weights_only=sys.argv[2] == '1')
assert type(sd) is collections.OrderedDict, type(sd)
rows = []
for name, t in sd.items():
    assert type(t) is torch.Tensor and t.is_contiguous() and t.storage_offset() == 0 and not t.requires_grad
    raw = t.reshape(-1).view(torch.int16) if t.dtype == torch.bfloat16 else t
    rows.append([name, str(t.dtype)[6:], list(t.shape), hashlib.sha256(raw.numpy().tobytes()).hexdigest()])
print(json.dumps(rows))
`;

/** The same from `pickle.load` of a .pdparams, plain or restricted to what numpy arrays need. */
const PICKLE_LOAD = `
import hashlib, json, pickle, sys, numpy
ALLOWED = {('numpy.core.multiarray', '_reconstruct'), ('numpy', 'ndarray'), ('numpy', 'dtype')}
class Careful(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) not in ALLOWED:
            raise pickle.UnpicklingError(f'{module}.{name} is not allowed')
        return super().find_class(module, name)
with open(sys.argv[1], 'rb') as f:
    sd = Careful(f).load() if sys.argv[2] == 'careful' else pickle.load(f)
assert type(sd) is dict, type(sd)
names = sd.pop('StructuredToParameterName@@', None)
rows = []
for name, a in sd.items():
    assert type(a) is numpy.ndarray and a.flags.c_contiguous
    rows.append([name, a.dtype.str, list(a.shape), hashlib.sha256(a.tobytes()).hexdigest()])
print(json.dumps({'rows': rows, 'names': names, 'keys': list(pickle.load(open(sys.argv[1], 'rb')).keys())}))
`;

describe('pickle encoder', () => {
  test('values, ints of every width, bytes, batched dict items and memoized globals load in CPython', { skip: !fs.existsSync('/usr/bin/python3') && 'no python3' }, () => {
    const dir = tempDir();
    const parts: Uint8Array[] = [];
    const p = new PickleWriter((b) => parts.push(Uint8Array.from(b)));
    const ints = [0, 1, 255, 256, 65535, 65536, -1, -128, -129, -(2 ** 31), 2 ** 31 - 1, 2 ** 31, -(2 ** 31) - 1, 2 ** 53 - 1, -(2 ** 53) + 1, 2n ** 63n, -(2n ** 63n), 2n ** 64n, 255n, -256n];
    p.proto(4);
    p.emptyDict();
    const total = 2 + 1001 + 300;
    const next = p.items(total);
    p.unicode('ints');
    p.value(ints);
    next();
    p.unicode('misc');
    p.tuple(6, () => {
      p.value([null, true, false, 'ü€😀', [], [[1], [1, 2], [1, 2, 3], [1, 2, 3, 4]]]);
      p.bytes(Uint8Array.from([0, 1, 2]));
      p.bytesHeader(300);
      p.raw(new Uint8Array(300).fill(7));
      p.value('');
      p.value(['pid', 3]);
      p.persistentId();
      p.global('m', 'f');
      p.value([1, 'a']);
      p.reduce();
    });
    next();
    for (let i = 0; i < 1001; i++) {
      p.int(i);
      p.value(-i);
      next();
    }
    // 300 distinct globals then each again: LONG_BINPUT/LONG_BINGET past memo index 255.
    for (let i = 0; i < 300; i++) {
      p.unicode(`g${i}`);
      p.tuple(2, () => {
        p.global('mod', `name${i}`);
        p.global('mod', `name${i}`);
      });
      next();
    }
    p.stop();
    const file = path.join(dir, 'x.pkl');
    fs.writeFileSync(file, Buffer.concat(parts));
    const got = JSON.parse(python(`
import json, pickle, sys
class G:
    def __init__(self, name): self.name = name
    def __repr__(self): return self.name
    def __call__(self, *args): return ('called', self.name, args)
class U(pickle.Unpickler):
    def find_class(self, module, name): return G(module + '.' + name)
    def persistent_load(self, pid): return ['persistent', pid]
d = U(open(sys.argv[1], 'rb')).load()
memoized = all(d[f'g{i}'][0] is d[f'g{i}'][1] for i in range(300))
print(json.dumps({'ints': [str(i) for i in d['ints']], 'misc': repr(d['misc']), 'n': len(d), 'last': d[1000], 'g': repr(d['g299']), 'memoized': memoized}))
`, file)) as Record<string, unknown>;
    assert.deepEqual(got.ints, ints.map(String));
    assert.equal(got.misc, `((None, True, False, 'ü€😀', (), ((1,), (1, 2), (1, 2, 3), (1, 2, 3, 4))), b'\\x00\\x01\\x02', b'${'\\x07'.repeat(300)}', '', ['persistent', ('pid', 3)], ('called', 'm.f', (1, 'a')))`);
    assert.equal(got.n, total);
    assert.equal(got.last, -1000);
    assert.equal(got.g, '(mod.name299, mod.name299)');
    assert.equal(got.memoized, true);
  });

  test('floats and lists (APPEND for one item, MARK … APPENDS batched per 1000) load in CPython', { skip: !fs.existsSync('/usr/bin/python3') && 'no python3' }, () => {
    const floats = [0.01, 0.9, -0.0005, 1e300, -0, 0.5];
    const parts: Uint8Array[] = [];
    const p = new PickleWriter((b) => parts.push(Uint8Array.from(b)));
    p.proto(2);
    p.tuple(4, () => {
      p.emptyList();
      const nextFloat = p.appends(floats.length);
      for (const f of floats) {
        p.float(f);
        nextFloat();
      }
      p.emptyList();
      const nextOne = p.appends(1);
      p.value('one');
      nextOne();
      p.emptyList();
      p.appends(0);
      p.emptyList();
      const next = p.appends(2500);
      for (let i = 0; i < 2500; i++) {
        p.int(i);
        next();
      }
    });
    p.stop();
    const file = path.join(tempDir(), 'lists.pkl');
    fs.writeFileSync(file, Buffer.concat(parts));
    const got = JSON.parse(python(`
import json, math, pickle, sys
f, one, empty, many = pickle.load(open(sys.argv[1], 'rb'))
print(json.dumps({'floats': [repr(x) for x in f], 'one': one, 'empty': empty, 'many': many == list(range(2500))}))
`, file)) as Record<string, unknown>;
    assert.deepEqual(got, { floats: ['0.01', '0.9', '-0.0005', '1e+300', '-0.0', '0.5'], one: ['one'], empty: [], many: true });
  });

  test('bytes lengths pick SHORT_BINBYTES, BINBYTES or BINBYTES8 (4 GiB and more)', () => {
    const header = (length: number) => {
      const parts: Uint8Array[] = [];
      const p = new PickleWriter((b) => parts.push(Uint8Array.from(b)));
      p.bytesHeader(length);
      p.flush();
      return Buffer.concat(parts).toString('hex');
    };
    assert.equal(header(255), '43ff');
    assert.equal(header(256), '4200010000');
    assert.equal(header(2 ** 32 - 1), '42ffffffff');
    assert.equal(header(2 ** 32), '8e0000000001000000');
  });
});

describe('PyTorch writer', () => {
  const tensors = [...COMMON, ['bf16', 'bfloat16', [2, 2]], ['bf16.scalar', 'bfloat16', []]] as [string, DType, number[]][];

  test('torch.load(weights_only=True) and plain torch.load give the names, dtypes, shapes and bytes written', { skip: noTorch }, async () => {
    const items = out(tensors.map(([n, d, s]) => tensor(n, d, s)));
    const file = path.join(tempDir(), 'model.pt');
    await writePytorch(file, items);
    const want = await expected(items);
    assert.deepEqual(JSON.parse(python(TORCH_LOAD, file, '1')), want);
    assert.deepEqual(JSON.parse(python(TORCH_LOAD, file, '0')), want);
  });

  test('stored members under archive/, data.pkl first, storages 64-byte aligned', { skip: noTorch }, async () => {
    const file = path.join(tempDir(), 'model.pth');
    await writePytorch(file, out(tensors.map(([n, d, s]) => tensor(n, d, s))));
    const members = JSON.parse(python(`
import json, struct, sys, zipfile
f = open(sys.argv[1], 'rb')
rows = []
for info in zipfile.ZipFile(sys.argv[1]).infolist():
    f.seek(info.header_offset)
    header = f.read(30)
    n, e = struct.unpack('<HH', header[26:30])
    rows.append([info.filename, info.compress_type, (info.header_offset + 30 + n + e) % 64])
print(json.dumps(rows))
`, file)) as [string, number, number][];
    assert.deepEqual(members.map((m) => m[0]), ['archive/data.pkl', 'archive/byteorder', ...tensors.map((_, i) => `archive/data/${i}`), 'archive/version']);
    assert.ok(members.every(([, method, misalign]) => method === 0 && misalign === 0), JSON.stringify(members));
  });

  test('an empty state dict loads as an empty OrderedDict', { skip: noTorch }, async () => {
    const file = path.join(tempDir(), 'empty.pt');
    await writePytorch(file, []);
    assert.deepEqual(JSON.parse(python(TORCH_LOAD, file, '1')), []);
  });

  test('dtypes torch lacks are refused before anything is written', async () => {
    for (const dtype of ['uint16', 'uint32', 'uint64', 'float8e4m3fn', 'int4', 'string'] as DType[]) {
      const dir = tempDir();
      const items = out([tensor('ok', 'float32', [2]), { ...tensor('odd.one', 'uint8', [2]), dtype }]);
      await assert.rejects(writePytorch(path.join(dir, 'x.pt'), items), (err: unknown) =>
        err instanceof CkptError && err.exitCode === 2 && err.message.includes("'odd.one'") && err.message.includes(dtype));
      assert.deepEqual(fs.readdirSync(dir), []);
    }
  });

  test('.pt, .pth and .bin choose the PyTorch writer', () => {
    for (const ext of ['.pt', '.pth', '.bin']) assert.equal(chooseWriter(`x${ext}`, undefined, 'onnx').format, 'pytorch');
  });
});

describe('Paddle writer', () => {
  const tensors = [...COMMON, ['u16', 'uint16', [3]], ['u32', 'uint32', [2]], ['u64', 'uint64', []]] as [string, DType, number[]][];
  const toNumpy = (rows: unknown[][]) => rows.map(([n, d, s, h]) => [n, descrOf(d as DType), s, h]);

  test('pickle.load with numpy, and an unpickler allowing only numpy arrays, give the arrays written', { skip: noNumpy }, async () => {
    const items = out(tensors.map(([n, d, s]) => tensor(n, d, s)));
    const file = path.join(tempDir(), 'model.pdparams');
    await writePaddle(file, items, source('safetensors', items.map((t) => t.tensor)));
    const want = toNumpy(await expected(items));
    for (const mode of ['plain', 'careful']) {
      const got = JSON.parse(python(PICKLE_LOAD, file, mode));
      assert.deepEqual(got.rows, want);
      assert.equal(got.names, null);
    }
  });

  test('StructuredToParameterName@@ kept for the tensors written under their own names, last', { skip: noNumpy }, async () => {
    const a = tensor('conv1.weight', 'float32', [2, 1, 1, 1]);
    const b = tensor('fc.weight', 'float32', [2, 2]);
    const renamed = tensor('head.bias', 'float32', [2], 'fc.bias');
    const dropped = tensor('gone', 'float32', [1]);
    const structuredToParameterName = { 'conv1.weight': 'conv2d_0.w_0', 'fc.weight': 'linear_0.w_0', 'fc.bias': 'linear_0.b_0', gone: 'x_0' };
    const items = out([a, b, renamed]);
    const file = path.join(tempDir(), 'model.pdparams');
    await writePaddle(file, items, source('paddle', [a, b, renamed, dropped], { structuredToParameterName }));
    const got = JSON.parse(python(PICKLE_LOAD, file, 'careful'));
    assert.deepEqual(got.rows, toNumpy(await expected(items)));
    assert.deepEqual(got.names, { 'conv1.weight': 'conv2d_0.w_0', 'fc.weight': 'linear_0.w_0' });
    assert.deepEqual(got.keys, ['conv1.weight', 'fc.weight', 'head.bias', 'StructuredToParameterName@@']);
  });

  test('more than 1000 tensors (several SETITEMS batches) and an empty dict', { skip: noNumpy }, async () => {
    const dir = tempDir();
    const items = out(Array.from({ length: 2001 }, (_, i) => tensor(`t${i}`, i % 2 ? 'int8' : 'float32', [i % 3])));
    await writePaddle(path.join(dir, 'many.pdparams'), items, source('numpy', []));
    assert.deepEqual(JSON.parse(python(PICKLE_LOAD, path.join(dir, 'many.pdparams'), 'careful')).rows, toNumpy(await expected(items)));
    await writePaddle(path.join(dir, 'none.pdparams'), [], source('numpy', []));
    assert.deepEqual(JSON.parse(python(PICKLE_LOAD, path.join(dir, 'none.pdparams'), 'plain')).rows, []);
  });

  test('dtypes numpy lacks are refused before anything is written', async () => {
    for (const dtype of ['bfloat16', 'float8e5m2', 'uint4', 'string'] as DType[]) {
      const dir = tempDir();
      const items = out([tensor('ok', 'float32', [2]), { ...tensor('odd.one', 'uint8', [2]), dtype }]);
      await assert.rejects(writePaddle(path.join(dir, 'x.pdparams'), items, source('paddle', [])), (err: unknown) =>
        err instanceof CkptError && err.exitCode === 2 && err.message.includes("'odd.one'") && err.message.includes(dtype));
      assert.deepEqual(fs.readdirSync(dir), []);
    }
  });
});

test('ckpt convert to .pt and .pdparams: torch and numpy read the ONNX sample\'s weights', { skip: noTorch || noNumpy }, () => {
  const dir = tempDir();
  const model = path.join(SAMPLES, 'detector-90.onnx');
  const listing = JSON.parse(runCli(['inspect', model, '--hash', '--json']).stdout) as { tensors: { name: string; dtype: DType; shape: number[]; sha256: string }[] };
  const want = listing.tensors.map((t) => [t.name, t.dtype, t.shape, t.sha256]);
  for (const file of ['model.pt', 'model.pdparams']) {
    const r = runCli(['convert', model, path.join(dir, file)]);
    assert.equal(r.status, 0, r.stderr);
  }
  assert.deepEqual(JSON.parse(python(TORCH_LOAD, path.join(dir, 'model.pt'), '1')), want);
  assert.deepEqual(JSON.parse(python(PICKLE_LOAD, path.join(dir, 'model.pdparams'), 'careful')).rows, want.map(([n, d, s, h]) => [n, descrOf(d as DType), s, h]));
});

describe('nested names', () => {
  test('a name that is both a tensor and a container is refused before any file is written', async () => {
    const dir = tempDir();
    const tensors = out([tensor('a', 'float32', [1]), tensor('a/b', 'float32', [1])]);
    await assert.rejects(writePytorch(path.join(dir, 'x.pt'), tensors), (err: unknown) => err instanceof CkptError && err.exitCode === 2 && /cannot write 'a\/b': 'a' is also a tensor/.test(err.message));
    await assert.rejects(writePaddle(path.join(dir, 'x.pdparams'), out([tensor('a/b', 'float32', [1]), tensor('a', 'float32', [1])]), source('paddle', [])), /cannot write 'a' twice, or as both a tensor and a container/);
    assert.deepEqual(fs.readdirSync(dir), []);
  });
});
