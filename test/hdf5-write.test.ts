import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import * as tf from '@tensorflow/tfjs';
import { open } from '../src/index.js';
import type { DType } from '../src/core/dtype.js';
import { Hdf5Group, writeHdf5, type AttributeValue } from '../src/formats/hdf5/write.js';
import { writeSafetensors } from '../src/formats/safetensors/write.js';
import type { TensorInfo } from '../src/core/statedict.js';
import { runCli, tempDir } from './helpers.js';
import { python, pythonHas } from './python.js';

/**
 * The pure-TypeScript HDF5 writer, checked by h5py (Debian's HDF5, an independent reader) and by
 * ckpt's own reader (h5wasm, a newer HDF5): structure, attribute types and values as Keras reads
 * them, dataset dtypes and values bit for bit.
 */

const NO_H5PY = !pythonHas('h5py') && 'Debian python3-h5py is not installed';

/** Every object of an HDF5 file as h5py sees it: attributes with their HDF5 kind, datasets with dtype, shape and a hash of the raw values. */
const H5PY_DUMP = `
import h5py, json, sys, hashlib
f = h5py.File(sys.argv[1], 'r')
def text(v):
    return v.decode() if isinstance(v, bytes) else v
def attrs(o):
    out = {}
    for k in o.attrs:
        a = h5py.h5a.open(o.id, k.encode())
        t = a.get_type()
        v = o.attrs[k]
        if isinstance(t, h5py.h5t.TypeStringID):
            kind = ('vlen-' if t.is_variable_str() else 'fixed-') + ('utf8' if t.get_cset() == h5py.h5t.CSET_UTF8 else 'ascii')
            value = [text(x) for x in v.tolist()] if hasattr(v, 'shape') and v.shape else text(v)
        else:
            kind, value = str(v.dtype), v.tolist()
        out[k] = [kind, list(a.shape), value]
    return out
objects = {'/': {'attrs': attrs(f)}}
def visit(name, o):
    entry = {'attrs': attrs(o)}
    if isinstance(o, h5py.Dataset):
        entry.update(dtype=str(o.dtype), shape=list(o.shape), sha256=hashlib.sha256(o[()].tobytes()).hexdigest())
    objects[name] = entry
f.visititems(visit)
print(json.dumps(objects))
`;

type Dumped = Record<string, { attrs: Record<string, [string, number[], unknown]>; dtype?: string; shape?: number[]; sha256?: string }>;

const dump = (file: string): Dumped => JSON.parse(python(H5PY_DUMP, file));
const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

function tensorOf(dtype: DType, shape: number[], bytes: Uint8Array): TensorInfo {
  return { name: 't', source: 't', dtype, shape, byteLength: bytes.length, origin: 'weight', read: async () => bytes, readStrings: async () => [] };
}

const bytesOf = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

/** Values of each dtype with their edge cases (NaN payloads, -0, subnormals, extremes). */
const VALUES: [DType, number[], Uint8Array][] = [
  ['float16', [5], bytesOf(Uint16Array.from([0x3c00, 0x8000, 0x0001, 0x7c00, 0x7e01]))],
  ['float32', [2, 2], bytesOf(Float32Array.from([1.5, -0, 3.4e38, 1e-45]))],
  ['float64', [3], bytesOf(Float64Array.from([Math.PI, -Infinity, 5e-324]))],
  ['int8', [2], bytesOf(Int8Array.from([-128, 127]))],
  ['int16', [2], bytesOf(Int16Array.from([-32768, 7]))],
  ['int32', [1], bytesOf(Int32Array.from([-2147483648]))],
  ['int64', [], bytesOf(BigInt64Array.from([-(2n ** 63n)]))],
  ['uint8', [3], Uint8Array.from([0, 128, 255])],
  ['uint16', [1], bytesOf(Uint16Array.from([65535]))],
  ['uint32', [1], bytesOf(Uint32Array.from([4294967295]))],
  ['uint64', [1], bytesOf(BigUint64Array.from([2n ** 64n - 1n]))],
  ['bool', [3], Uint8Array.from([1, 0, 1])],
  ['float32', [0, 3], new Uint8Array(0)],
];

const NUMPY_NAMES: Partial<Record<DType, string>> = { float16: 'float16', float32: 'float32', float64: 'float64', bool: 'bool' };

/** Link names that are legal in HDF5 and awkward elsewhere. */
const ODD_NAMES = ['with space', 'ünïcødé κ', 'kernel:0', 'quote"\'', '100%', 'dots.in.name', '..', '-dash', '#hash'];

describe('HDF5 writer', () => {
  test('h5py reads every attribute kind, every dtype bit for bit, odd names, big and deep groups', { skip: NO_H5PY }, async () => {
    const root = new Hdf5Group();
    const config = JSON.stringify({ layers: Array.from({ length: 3000 }, (_, i) => ({ name: `layer_${i}`, units: i })) });
    assert.ok(config.length > 64 * 1024, 'larger than an object header message');
    const attributes: [string, AttributeValue, [string, number[], unknown]][] = [
      ['model_config', config, ['vlen-utf8', [], config]],
      ['keras_version', '2.15.0', ['vlen-utf8', [], '2.15.0']],
      ['layer_names', ['a', 'ünï', ''], ['vlen-utf8', [3], ['a', 'ünï', '']]],
      ['fixed', { fixed: 'bytes' }, ['fixed-ascii', [], 'bytes']],
      ['fixed_list', { fixed: ['x', 'longer'] }, ['fixed-ascii', [2], ['x', 'longer']]],
      ['no_weights', { dtype: 'float64', shape: [0], bytes: new Uint8Array(0) }, ['float64', [0], []]],
      ['epoch', { dtype: 'int32', shape: [], bytes: bytesOf(Int32Array.from([7])) }, ['int32', [], 7]],
      ['scales', { dtype: 'float32', shape: [2], bytes: bytesOf(Float32Array.from([0.5, 2])) }, ['float32', [2], [0.5, 2]]],
    ];
    for (const [name, value] of attributes) root.attributes.set(name, value);
    const expected: Dumped = { '/': { attrs: Object.fromEntries(attributes.map(([name, , seen]) => [name, seen])) } };

    const typed = root.group('typed');
    expected.typed = { attrs: {} };
    VALUES.forEach(([dtype, shape, bytes], i) => {
      const set = typed.dataset(`${dtype}_${i}`, tensorOf(dtype, shape, bytes));
      set.attributes.set('dtype', dtype);
      expected[`typed/${dtype}_${i}`] = { attrs: { dtype: ['vlen-utf8', [], dtype] }, dtype: NUMPY_NAMES[dtype] ?? dtype, shape, sha256: sha256(bytes) };
    });

    for (const name of ODD_NAMES) {
      root.group('odd').group(name).dataset(name, tensorOf('float32', [1], bytesOf(Float32Array.from([name.length]))));
      expected[`odd/${name}`] = { attrs: {} };
      expected[`odd/${name}/${name}`] = { attrs: {}, dtype: 'float32', shape: [1], sha256: sha256(bytesOf(Float32Array.from([name.length]))) };
    }
    expected.odd = { attrs: {} };

    // 350 children need several symbol table nodes under a two-level B-tree; 9000 a three-level one.
    for (const [group, count] of [['layers', 350], ['many', 9000]] as const) {
      expected[group] = { attrs: {} };
      for (let i = 0; i < count; i++) {
        const bytes = bytesOf(Float32Array.from([i]));
        const name = `${group === 'layers' ? 'dense' : 'w'}_${i}`;
        if (group === 'layers') {
          root.group(`layers/${name}`).attributes.set('weight_names', [`${name}/kernel:0`]);
          root.group(`layers/${name}`).dataset(`${name}/kernel:0`, tensorOf('float32', [1], bytes));
          expected[`layers/${name}`] = { attrs: { weight_names: ['vlen-utf8', [1], [`${name}/kernel:0`]] } };
          expected[`layers/${name}/${name}`] = { attrs: {} };
          expected[`layers/${name}/${name}/kernel:0`] = { attrs: {}, dtype: 'float32', shape: [1], sha256: sha256(bytes) };
        } else {
          root.group(group).dataset(name, tensorOf('float32', [1], bytes));
          expected[`${group}/${name}`] = { attrs: {}, dtype: 'float32', shape: [1], sha256: sha256(bytes) };
        }
      }
    }
    root.group('empty');
    expected.empty = { attrs: {} };

    const file = path.join(tempDir(), 'all.h5');
    await writeHdf5(file, root);
    assert.deepEqual(dump(file), expected);
  });

  test('the file is replaced atomically: a failing tensor leaves the old file and no temporary', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'model.h5');
    fs.writeFileSync(file, 'old');
    const root = new Hdf5Group();
    root.dataset('ok', tensorOf('float32', [1], bytesOf(Float32Array.from([1]))));
    root.dataset('bad', { ...tensorOf('float32', [1], new Uint8Array(4)), read: async () => { throw new Error('disk gone'); } });
    await assert.rejects(writeHdf5(file, root), /disk gone/);
    assert.equal(fs.readFileSync(file, 'utf8'), 'old');
    assert.deepEqual(fs.readdirSync(dir), ['model.h5']);
    const short = new Hdf5Group();
    short.dataset('short', { ...tensorOf('float32', [2], new Uint8Array(4)), byteLength: 8 });
    await assert.rejects(writeHdf5(file, short), /'t' read 4 bytes, expected 8/);
    assert.deepEqual(fs.readdirSync(dir), ['model.h5']);
  });

  test('names HDF5 cannot hold, clashing paths and malformed values are refused before anything is written', async () => {
    const root = new Hdf5Group();
    assert.throws(() => root.dataset('a/./b', tensorOf('float32', [0], new Uint8Array(0))), /cannot name an object 'a\/\.\/b'/);
    root.dataset('a/b', tensorOf('float32', [0], new Uint8Array(0)));
    assert.throws(() => root.dataset('a/b', tensorOf('float32', [0], new Uint8Array(0))), /two objects would be named 'a\/b'/);
    assert.throws(() => root.group('a/b/c'), /needs 'b' to be a group/);
    assert.throws(() => root.dataset('s', tensorOf('string', [1], new Uint8Array(0))), /HDF5 cannot store 't' \(string\)/);
    root.attributes.set('scales', { dtype: 'float32', shape: [2], bytes: new Uint8Array(4) });
    const file = path.join(tempDir(), 'never.h5');
    await assert.rejects(writeHdf5(file, root), /attribute 'scales' of '\/' has 4 bytes, 8 for its shape/);
    assert.equal(fs.existsSync(file), false);
  });
});

describe('Keras outputs through the HDF5 writer', () => {
  test('a float16 source with 320 layers and odd names → .h5 and .weights.h5: float16 datasets h5py reads bit for bit, read back equal', { skip: NO_H5PY }, async () => {
    const dir = tempDir();
    const source = path.join(dir, 'half.safetensors');
    const names = [...Array.from({ length: 320 }, (_, i) => `block_${i}.weight`), ...ODD_NAMES.filter((n) => !n.startsWith('.')).map((n) => `${n}.bias`)];
    const values = names.map((_, i) => bytesOf(Uint16Array.from([i, 0x8000 + i])));
    const tensors = names.map((name, i) => ({ name, tensor: { ...tensorOf('float16', [2], values[i]!), name, source: name } }));
    await writeSafetensors(source, tensors);
    const hashes = (file: string) => JSON.parse(runCli(['inspect', '--json', '--hash', file]).stdout).tensors.map((t: { dtype: string; shape: number[]; sha256: string }) => [t.dtype, t.shape, t.sha256]);
    for (const out of ['half.h5', 'half.weights.h5']) {
      const file = path.join(dir, out);
      const r = runCli(['convert', source, file]);
      assert.equal(r.status, 0, r.stderr);
      assert.doesNotMatch(r.stdout, /float32/);
      const seen = dump(file);
      const sets = Object.values(seen).filter((o) => o.dtype);
      assert.equal(sets.length, names.length, out);
      assert.deepEqual(new Set(sets.map((o) => o.dtype)), new Set(['float16']));
      assert.deepEqual(new Set(sets.map((o) => o.sha256)), new Set(values.map(sha256)));
      if (out === 'half.h5') {
        assert.equal((seen['/']!.attrs.layer_names![2] as string[]).length, names.length);
        assert.deepEqual(seen['/']!.attrs.layer_names!.slice(0, 2), ['vlen-utf8', [names.length]]);
        assert.deepEqual(seen['with space']!.attrs.weight_names, ['vlen-utf8', [1], ['with space/bias:0']]);
      }
      // Keras 3 files list in path order, not the source's.
      const sorted = (file: string) => (out.endsWith('.weights.h5') ? hashes(file).sort() : hashes(file));
      assert.deepEqual(sorted(file), sorted(source), `${out} reads back as the source`);
    }
  });

  test('4500 layers: layer_names split into layer_names0, layer_names1… as Keras splits them, read back by h5py and ckpt', { skip: NO_H5PY }, async () => {
    const dir = tempDir();
    const source = path.join(dir, 'many.safetensors');
    await writeSafetensors(source, Array.from({ length: 4500 }, (_, i) => ({ name: `l${i}.w`, tensor: { ...tensorOf('float32', [1], bytesOf(Float32Array.from([i]))), name: `l${i}.w`, source: `l${i}.w` } })));
    const out = path.join(dir, 'many.h5');
    assert.equal(runCli(['convert', source, out]).status, 0);
    const seen = JSON.parse(python(`
import h5py, json, sys
f = h5py.File(sys.argv[1])
chunks = sorted(k for k in f.attrs if k.startswith('layer_names'))
print(json.dumps({'chunks': chunks, 'names': [n for k in chunks for n in f.attrs[k]]}))`, out));
    assert.deepEqual(seen.chunks, ['layer_names0', 'layer_names1']);
    assert.deepEqual(seen.names, Array.from({ length: 4500 }, (_, i) => `l${i}`));
    const dict = await open(out);
    assert.deepEqual(dict.tensors.map((t) => t.name), Array.from({ length: 4500 }, (_, i) => `l${i}.w`));
    await dict.close();
  });

  test('a 300-layer TF.js model → .h5 (config over 64 KiB) → TF.js: h5py sees a Keras full model, tfjs predicts the same', { skip: NO_H5PY }, async () => {
    const dir = tempDir();
    const model = tf.sequential();
    for (let i = 0; i < 300; i++) model.add(tf.layers.dense({ units: 3, activation: 'tanh', inputShape: i ? undefined : [3], name: `dense_${i}` }));
    await model.save(tf.io.withSaveHandler(async (artifacts) => {
      fs.mkdirSync(path.join(dir, 'tfjs'));
      fs.writeFileSync(path.join(dir, 'tfjs', 'weights.bin'), Buffer.from(artifacts.weightData as ArrayBuffer));
      fs.writeFileSync(path.join(dir, 'tfjs', 'model.json'), JSON.stringify({ format: 'layers-model', modelTopology: artifacts.modelTopology, weightsManifest: [{ paths: ['weights.bin'], weights: artifacts.weightSpecs }] }));
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }));
    const h5 = path.join(dir, 'model.h5');
    assert.equal(runCli(['convert', path.join(dir, 'tfjs'), h5]).status, 0);
    const seen = JSON.parse(python(`
import h5py, json, sys
f = h5py.File(sys.argv[1])
g = f['model_weights']
print(json.dumps({'config_bytes': len(f.attrs['model_config']), 'layers': len(json.loads(f.attrs['model_config'])['config']['layers']),
  'kinds': sorted({type(f.attrs[k]).__name__ for k in f.attrs}), 'layer_names': len(g.attrs['layer_names']),
  'weights': sum(len(g[n].attrs['weight_names']) for n in g.attrs['layer_names'])}))`, h5));
    assert.ok(seen.config_bytes > 64 * 1024);
    assert.deepEqual({ ...seen, config_bytes: 0 }, { config_bytes: 0, layers: 300, kinds: ['str'], layer_names: 300, weights: 600 });

    assert.equal(runCli(['convert', h5, path.join(dir, 'back', 'model.json')]).status, 0);
    const json = JSON.parse(fs.readFileSync(path.join(dir, 'back', 'model.json'), 'utf8'));
    const data = Buffer.concat(json.weightsManifest.flatMap((g: { paths: string[] }) => g.paths.map((p) => fs.readFileSync(path.join(dir, 'back', p)))));
    const loaded = await tf.loadLayersModel(tf.io.fromMemory({
      modelTopology: json.modelTopology, weightSpecs: json.weightsManifest.flatMap((g: { weights: tf.io.WeightsManifestEntry[] }) => g.weights),
      weightData: data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength),
    }));
    const input = tf.tensor2d([[0.5, -1, 2]]);
    assert.deepEqual(Array.from((loaded.predict(input) as tf.Tensor).dataSync()), Array.from((model.predict(input) as tf.Tensor).dataSync()));
    const dict = await open(h5);
    assert.equal(dict.tensors.length, 600);
    await dict.close();
  });
});
