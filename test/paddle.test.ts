import { test, describe, before } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { open, tensorSha256 } from '../src/index.js';
import { runCli, tempDir } from './helpers.js';
import { python, pythonHas } from './python.js';
import { bytes, op, pickleFile } from './pickle-fixtures.js';

const noNumpy = !pythonHas('numpy') && 'Debian python3-numpy is not installed';

/**
 * Dicts of numpy arrays pickled by Python itself with every protocol paddle.save has used (2 in
 * Paddle 1.x, 4 since) and 3 and 5, and what numpy sees in them.
 */
const MAKE = String.raw`
import sys, json, hashlib, pickle, numpy as np
out = sys.argv[1]
rng = np.random.default_rng(0)
state = {}
for code in ['f8', 'f4', 'f2', 'i8', 'i4', 'i2', 'i1', 'u8', 'u4', 'u2', 'u1', 'c8', 'c16']:
    state[f'dtype.{code}'] = (rng.standard_normal((3, 4)) * 50).astype(code) if code[0] != 'c' else (rng.standard_normal((2, 2)) + 1j).astype(code)
state['dtype.bool'] = rng.standard_normal(5) > 0
state['big_endian'] = np.arange(6, dtype='>f4').reshape(2, 3)
state['fortran'] = np.asfortranarray(np.arange(24, dtype='f4').reshape(2, 3, 4))
state['scalar'] = np.array(3.5)
state['empty'] = np.zeros((0, 3), 'f4')
state['large'] = rng.standard_normal(400_000).astype('f4')  # over 1 MiB: stays in the file until read
state['backbone'] = {'conv1.weight': np.ones((2, 1, 1, 1), 'f4')}
state['StructuredToParameterName@@'] = {'fortran': 'create_parameter_0.w_0', 'dtype.f4': 'create_parameter_1.w_0'}
def digest(a):
    return hashlib.sha256(np.ascontiguousarray(a).astype(a.dtype.newbyteorder('<')).tobytes()).hexdigest()
rows = [[k, np.dtype(a.dtype).name, list(a.shape), digest(a)] for k, a in state.items() if isinstance(a, np.ndarray)]
rows += [['backbone/conv1.weight', 'float32', [2, 1, 1, 1], digest(state['backbone']['conv1.weight'])]]
for protocol in (2, 3, 4, 5):
    with open(f'{out}/p{protocol}.pdparams', 'wb') as f: pickle.dump(state, f, protocol=protocol)
print(json.dumps(rows))
`;

const DTYPE: Record<string, string> = { complex64: 'complex64', complex128: 'complex128' };

describe('Paddle .pdparams against pickle + numpy', { skip: noNumpy }, () => {
  let dir = '';
  let expected: [string, string, number[], string][] = [];
  before(() => {
    dir = tempDir();
    expected = JSON.parse(python(MAKE, dir)) as typeof expected;
  });

  for (const protocol of [2, 3, 4, 5]) {
    test(`pickle protocol ${protocol}: every array as numpy sees it (byte order, Fortran order, nesting); the name table is metadata`, async () => {
      const dict = await open(path.join(dir, `p${protocol}.pdparams`));
      const ours = await Promise.all(dict.tensors.map(async (t) => [t.source, DTYPE[t.dtype] ?? t.dtype, [...t.shape], await tensorSha256(t)]));
      const sort = (rows: unknown[][]) => [...rows].sort((a, b) => String(a[0]).localeCompare(String(b[0])));
      assert.deepEqual(sort(ours), sort(expected));
      assert.deepEqual(dict.metadata.structuredToParameterName, { fortran: 'create_parameter_0.w_0', 'dtype.f4': 'create_parameter_1.w_0' });
      assert.ok(dict.tensors.some((t) => t.name === 'backbone.conv1.weight'));
      await dict.close();
    });
  }

  test('listing skips the array payloads: a 1.6 MB array is not read', async () => {
    const dict = await open(path.join(dir, 'p4.pdparams'));
    assert.ok(dict.bytesRead!() < 100_000, `${dict.bytesRead!()} bytes read`);
    await dict.close();
  });

  test('strip --exclude writes a .pdparams that pickle + numpy read: nesting kept, name table kept for what remains', () => {
    const out = path.join(dir, 'stripped.pdparams');
    const r = runCli(['strip', '--exclude', 'dtype', path.join(dir, 'p4.pdparams'), '-o', out]);
    assert.equal(r.status, 0, r.stderr);
    const seen = JSON.parse(python(String.raw`
import sys, json, pickle
d = pickle.load(open(sys.argv[1], 'rb'), encoding='latin1')
# What paddle.load then does with the name table: every name in it must be a key of the dict.
for key in d['StructuredToParameterName@@']: d[key]
shapes = lambda d: {k: (list(v.shape) if hasattr(v, 'shape') else shapes(v) if k != 'StructuredToParameterName@@' else v) for k, v in d.items()}
print(json.dumps(shapes(d)))`, out)) as Record<string, unknown>;
    assert.deepEqual(Object.keys(seen).filter((k) => k.startsWith('dtype')), []);
    assert.deepEqual(seen.fortran, [2, 3, 4]);
    assert.deepEqual(seen['StructuredToParameterName@@'], { fortran: 'create_parameter_0.w_0' });
    assert.deepEqual(seen.backbone, { 'conv1.weight': [2, 1, 1, 1] }, 'nested dicts stay nested');
  });
});

describe('Paddle arrays that are not plain numbers are refused (exit 3)', () => {
  const array = (code: string, data: Uint8Array, shape: number[]) => bytes(
    op.proto(4), op.emptyDict, op.str('w'), op.global('numpy.core.multiarray', '_reconstruct'), op.global('numpy', 'ndarray'), op.int(0), '\x85', 'C', [1], 'b', '\x87', op.reduce,
    op.mark, op.int(1), op.ints(shape), op.global('numpy', 'dtype'), op.str(code), op.false, op.true, '\x87', op.reduce,
    op.mark, op.int(3), op.str('<'), op.none, op.none, op.none, op.int(-1), op.int(-1), op.int(0), op.tuple, op.build,
    op.false, op.bytes(data), op.tuple, op.build, op.setitem, op.stop);
  const cases: [string, Buffer, RegExp][] = [
    ['an object array', array('O8', new Uint8Array(8), [1]), /array 'w': numpy dtype "O8" is not supported/],
    ['a string array', array('U4', new Uint8Array(16), [1]), /numpy dtype "U4" is not supported/],
    ['data shorter than the shape', array('f4', new Uint8Array(8), [4]), /array 'w': array data is 8 bytes, expected 16 for float32 \(4\)/],
  ];
  for (const [name, content, message] of cases) {
    test(name, () => {
      const r = runCli(['inspect', pickleFile(content)]);
      assert.equal(r.status, 3, r.stderr);
      assert.match(r.stderr, message);
    });
  }
  test('the same array reads when its data is whole', async () => {
    const dict = await open(pickleFile(array('f4', new Uint8Array(new Float32Array([1, 2]).buffer), [2])));
    assert.deepEqual([...new Float32Array((await dict.tensors[0]!.read()).slice().buffer)], [1, 2]);
    await dict.close();
  });
});
