import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import h5wasm from 'h5wasm/node';
import { open, CkptError } from '../src/index.js';
import { ZipWriter } from '../src/core/zip.js';
import { CORPUS, HAS_CORPUS, ROOT, SAMPLES, runCli, tempDir } from './helpers.js';
import { python, pythonHas } from './python.js';

await h5wasm.ready;
type H5Group = InstanceType<typeof h5wasm.Group>;

/** Builds an HDF5 file with h5wasm (the library the reader uses, writing this time). */
function h5(file: string, build: (root: InstanceType<typeof h5wasm.File>) => void): string {
  const f = new h5wasm.File(file, 'w');
  build(f);
  f.close();
  return file;
}

function dataset(group: H5Group, pathName: string, values: number[], shape: number[], dtype = '<f'): void {
  const parts = pathName.split('/');
  let g = group;
  for (const p of parts.slice(0, -1)) g = (g.get(p) as H5Group | null) ?? g.create_group(p);
  const data = dtype === '<e' ? new Uint16Array(values) : dtype === '<i' ? new Int32Array(values) : new Float32Array(values);
  g.create_dataset({ name: parts[parts.length - 1]!, data, shape, dtype });
}

const listing = (file: string, ...flags: string[]) => {
  const r = runCli(['inspect', '--json', '--hash', ...flags, file]);
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout);
};

describe('Keras HDF5 reader', () => {
  test('Keras 2 full model: layer_names then weight_names order, canonical names, layouts from model_config, optimizer only with --all', () => {
    const file = h5(path.join(tempDir(), 'model.h5'), (f) => {
      f.create_attribute('keras_version', '2.4.0');
      f.create_attribute('backend', 'tensorflow');
      f.create_attribute('model_config', JSON.stringify({ class_name: 'Sequential', config: { name: 'seq', layers: [
        { class_name: 'Conv2D', config: { name: 'zconv' } }, { class_name: 'Dense', config: { name: 'adense' } },
      ] } }));
      const mw = f.create_group('model_weights');
      mw.create_attribute('layer_names', ['zconv', 'flatten', 'adense']);
      const conv = mw.create_group('zconv');
      conv.create_attribute('weight_names', ['zconv/kernel:0', 'zconv/bias:0']);
      dataset(conv, 'zconv/kernel:0', Array(24).fill(0.5), [1, 2, 3, 4]);
      dataset(conv, 'zconv/bias:0', [1, 2, 3, 4], [4]);
      mw.create_group('flatten').create_attribute('weight_names', new Float64Array(0) as never);
      const dense = mw.create_group('adense');
      dense.create_attribute('weight_names', ['adense/kernel:0']);
      dataset(dense, 'adense/kernel:0', [1, 2, 3, 4, 5, 6], [3, 2]);
      const opt = f.create_group('optimizer_weights');
      opt.create_attribute('weight_names', ['Adam/iter:0']);
      dataset(opt, 'Adam/iter:0', [7], [], '<i');
    });
    const out = listing(file);
    assert.deepEqual(out.metadata.kerasVersion, '2.4.0');
    assert.deepEqual(out.tensors.map((t: { name: string; source: string; layout?: string }) => [t.name, t.source, t.layout]), [
      ['zconv.kernel', 'model_weights/zconv/zconv/kernel:0', 'HWIO'],
      ['zconv.bias', 'model_weights/zconv/zconv/bias:0', undefined],
      ['adense.kernel', 'model_weights/adense/adense/kernel:0', 'IO'],
    ]);
    const all = listing(file, '--all');
    assert.deepEqual(all.tensors.slice(3).map((t: { name: string; group: string; dtype: string }) => [t.name, t.group, t.dtype]), [['optimizer.Adam.iter', 'optimizer', 'int32']]);
  });

  test('chunked layer_names0/1 lists are joined', async () => {
    const file = h5(path.join(tempDir(), 'w.h5'), (f) => {
      f.create_attribute('layer_names0', ['a']);
      f.create_attribute('layer_names1', ['b']);
      for (const layer of ['a', 'b']) {
        const g = f.create_group(layer);
        g.create_attribute('weight_names', [`${layer}/w:0`]);
        dataset(g, `${layer}/w:0`, [1, 2], [2]);
      }
    });
    const dict = await open(file);
    assert.deepEqual(dict.tensors.map((t) => [t.name, t.dtype]), [['a.w', 'float32'], ['b.w', 'float32']]);
    await dict.close();
  });

  test('float16, big-endian and bool datasets written by h5py read as h5py sees them', { skip: !pythonHas('h5py') && 'Debian python3-h5py is not installed' }, async () => {
    const file = path.join(tempDir(), 'types.h5');
    const expected = JSON.parse(python(`
import h5py, numpy as np, sys, json, hashlib
f = h5py.File(sys.argv[1], 'w')
f.attrs['layer_names'] = [b'l']
g = f.create_group('l')
g.attrs['weight_names'] = [b'l/h:0', b'l/big:0', b'l/flag:0']
g.create_dataset('l/h:0', data=np.array([1, -2, 65504], dtype='<f2'))
g.create_dataset('l/big:0', data=np.arange(6, dtype='>f4').reshape(2, 3))
g.create_dataset('l/flag:0', data=np.array([True, False]))
f.close()
f = h5py.File(sys.argv[1], 'r')
print(json.dumps({k: hashlib.sha256(f['l'][k][()].astype(f['l'][k].dtype.newbyteorder('<')).tobytes()).hexdigest() for k in ['l/h:0', 'l/big:0', 'l/flag:0']}))
`, file));
    const dict = await open(file);
    assert.deepEqual(dict.tensors.map((t) => [t.name, t.dtype, t.shape]), [['l.h', 'float16', [3]], ['l.big', 'float32', [2, 3]], ['l.flag', 'bool', [2]]]);
    for (const t of dict.tensors) {
      const { createHash } = await import('node:crypto');
      assert.equal(createHash('sha256').update(await t.read()).digest('hex'), expected[t.source.replace(/^l\//, '')], t.source);
    }
    await dict.close();
  });

  test('Keras 3 .weights.h5 without a config: classes guessed from path names, variables named', () => {
    const file = h5(path.join(tempDir(), 'model.weights.h5'), (f) => {
      const layers = f.create_group('layers');
      const dense = layers.create_group('dense_1').create_group('vars');
      dataset(dense, '0', [1, 2, 3, 4, 5, 6], [3, 2]);
      dataset(dense, '1', [0, 0], [2]);
      const bn = layers.create_group('batch_normalization').create_group('vars');
      for (const i of [0, 1, 2, 3]) dataset(bn, String(i), [1, 1], [2]);
      const odd = layers.create_group('my_layer').create_group('vars');
      for (const i of [10, 2]) dataset(odd, String(i), [1], [1]);
    });
    assert.deepEqual(listing(file).tensors.map((t: { name: string; source: string }) => [t.name, t.source]), [
      ['batch_normalization.gamma', 'layers/batch_normalization/vars/0'],
      ['batch_normalization.beta', 'layers/batch_normalization/vars/1'],
      ['batch_normalization.moving_mean', 'layers/batch_normalization/vars/2'],
      ['batch_normalization.moving_variance', 'layers/batch_normalization/vars/3'],
      ['dense_1.kernel', 'layers/dense_1/vars/0'],
      ['dense_1.bias', 'layers/dense_1/vars/1'],
      ['my_layer.2', 'layers/my_layer/vars/2'],
      ['my_layer.10', 'layers/my_layer/vars/10'],
    ]);
  });

  test('a .keras zip: config.json names the layers (BatchNormalization without scale has no gamma)', () => {
    const dir = tempDir();
    const weights = h5(path.join(dir, 'model.weights.h5'), (f) => {
      const layers = f.create_group('layers');
      dataset(layers.create_group('dense').create_group('vars'), '0', [1, 2], [1, 2]);
      const bn = layers.create_group('batch_normalization').create_group('vars');
      for (const i of [0, 1, 2]) dataset(bn, String(i), [1, 1], [2]);
    });
    const config = { class_name: 'Sequential', config: { name: 'net', layers: [
      { class_name: 'InputLayer', config: { name: 'input' } },
      { class_name: 'Dense', config: { name: 'dense_31', use_bias: false } },
      { class_name: 'BatchNormalization', config: { name: 'bn_7', scale: false } },
    ] } };
    const parts: Uint8Array[] = [];
    const zip = new ZipWriter((b) => parts.push(Uint8Array.from(b)));
    zip.add('metadata.json', [Buffer.from(JSON.stringify({ keras_version: '3.11.3' }))]);
    zip.add('config.json', [Buffer.from(JSON.stringify(config))]);
    zip.add('model.weights.h5', [fs.readFileSync(weights)]);
    zip.finish();
    const file = path.join(dir, 'model.keras');
    fs.writeFileSync(file, Buffer.concat(parts));
    const out = listing(file);
    assert.equal(out.metadata.kerasVersion, '3.11.3');
    assert.deepEqual(out.tensors.map((t: { name: string; layout?: string }) => [t.name, t.layout]), [
      ['bn_7.beta', undefined], ['bn_7.moving_mean', undefined], ['bn_7.moving_variance', undefined], ['dense_31.kernel', 'IO'],
    ]);
  });
});

describe('Keras samples, writer and cross-format plans', () => {
  test('the samples are what scripts/make-keras-samples.js writes (same tensors and values)', () => {
    const out = tempDir();
    const r = spawnSync(process.execPath, [path.join(ROOT, 'scripts', 'make-keras-samples.js'), out], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    for (const name of ['detector-90.h5', 'detector-92.h5']) {
      const strip = (j: { tensors: object[]; metadata: object }) => ({ tensors: j.tensors, metadata: j.metadata });
      assert.deepEqual(strip(listing(path.join(out, name))), strip(listing(path.join(SAMPLES, name))));
    }
  });

  test('h5py reads the written layout as Keras load_weights does', { skip: !pythonHas('h5py') && 'Debian python3-h5py is not installed' }, () => {
    const seen = JSON.parse(python(`
import h5py, json, sys, hashlib
f = h5py.File(sys.argv[1], 'r')
g = f['model_weights']
out = {}
for layer in g.attrs['layer_names']:
    for w in g[layer].attrs['weight_names']:
        d = g[layer][w][()]
        out['model_weights/' + layer + '/' + w] = [list(d.shape), hashlib.sha256(d.astype('<f4').tobytes()).hexdigest()]
print(json.dumps(out))
`, path.join(SAMPLES, 'detector-92.h5')));
    const ours = listing(path.join(SAMPLES, 'detector-92.h5')).tensors;
    assert.deepEqual(Object.keys(seen), ours.map((t: { source: string }) => t.source));
    for (const t of ours) assert.deepEqual(seen[t.source], [t.shape, t.sha256]);
  });

  test('every Keras file of the corpus round-trips through the writer with identical values', { skip: !HAS_CORPUS && 'no corpus' }, () => {
    for (const model of ['keras-h5/keras3-legacy-h5-adam/model.h5', 'keras-h5/ssd7-4cls-weights/ssd7_0_weights.h5', 'keras-v3/fashion-mlp-hongong/model.weights.h5', 'keras-v3/keras311-mlp-15cls-small/your_model2.keras']) {
      const out = path.join(tempDir(), 'out.h5');
      assert.equal(runCli(['convert', path.join(CORPUS, model), out]).status, 0);
      const hashes = (file: string) => listing(file).tensors.map((t: { sha256: string; shape: number[] }) => [t.shape, t.sha256]);
      assert.deepEqual(hashes(out), hashes(path.join(CORPUS, model)), model);
    }
  });

  test('Keras h5 into the ONNX model of the same network: transposes and anchor-block expansion, same as ONNX → ONNX', () => {
    const dir = tempDir();
    for (const [source, out] of [[path.join(SAMPLES, 'detector-90.h5'), 'from-keras.onnx'], [path.join(SAMPLES, 'detector-90.onnx'), 'from-onnx.onnx']] as const) {
      const plan = path.join(dir, `${out}.json`);
      const r = runCli(['plan', source, path.join(SAMPLES, 'detector-92.onnx'), '-o', plan]);
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, /^loaded 4\/6 tensors \(98\.4% of parameters\), 2 expanded, 0 skipped/);
      assert.equal(runCli(['apply', plan, '-o', path.join(dir, out)]).status, 0);
    }
    assert.ok(fs.readFileSync(path.join(dir, 'from-keras.onnx')).equals(fs.readFileSync(path.join(dir, 'from-onnx.onnx'))));
    assert.equal(runCli(['check', path.join(dir, 'from-keras.onnx')]).status, 0);
  });

  test('SSD7 with 4 classes into SSD7 with 2: the backbone loads, the class heads are skipped with both shapes', { skip: !HAS_CORPUS && 'no corpus' }, () => {
    const file = path.join(tempDir(), 'plan.json');
    const r = runCli(['plan', path.join(CORPUS, 'keras-h5/ssd7-4cls-weights/ssd7_0_weights.h5'), path.join(CORPUS, 'keras-h5/ssd7-2cls-weights/ssd7_weights.h5'), '-o', file]);
    assert.equal(r.status, 0, r.stderr);
    const plan = JSON.parse(fs.readFileSync(file, 'utf8'));
    const skipped = plan.entries.filter((e: { action: string }) => e.action === 'skip');
    assert.deepEqual(skipped.map((e: { target: string }) => e.target), ['classes4.kernel', 'classes4.bias', 'classes5.kernel', 'classes5.bias', 'classes6.kernel', 'classes6.bias', 'classes7.kernel', 'classes7.bias']);
    assert.match(skipped[0].skip.detail, /shape \[3,3,64,16\] in source, \[3,3,64,8\] in target/);
    assert.equal(plan.summary.loaded, 50);
  });
});

describe('Keras bad input: exit 3 with the place and the problem', () => {
  const dir = tempDir();
  const good = h5(path.join(dir, 'good.h5'), (f) => {
    f.create_attribute('layer_names', ['d']);
    const g = f.create_group('d');
    g.create_attribute('weight_names', ['d/kernel:0']);
    dataset(g, 'd/kernel:0', Array(64).fill(1), [8, 8]);
  });

  test('a layer_names entry without a group, a weight_names entry without a dataset, a non-list attribute', () => {
    const cases: [(f: InstanceType<typeof h5wasm.File>) => void, RegExp][] = [
      [(f) => f.create_attribute('layer_names', ['missing']), /\/missing: layer 'missing' of layer_names has no group/],
      [(f) => { f.create_attribute('layer_names', ['d']); f.create_group('d').create_attribute('weight_names', ['d/kernel:0']); }, /\/d\/d\/kernel:0: weight 'd\/kernel:0' of layer 'd' has no dataset/],
      [(f) => f.create_attribute('layer_names', new Int32Array([1, 2]) as never), /attribute 'layer_names': expected a list of names/],
      [(f) => f.create_group('something'), /not a Keras one/],
      [(f) => { const v = f.create_group('layers').create_group('dense').create_group('vars'); dataset(v, 'kernel', [1], [1]); }, /Keras 3 variables are named 0, 1, 2/],
    ];
    cases.forEach(([build, message], i) => {
      const r = runCli(['inspect', h5(path.join(dir, `bad${i}.h5`), build)]);
      assert.equal(r.status, 3, r.stderr);
      assert.match(r.stderr, message);
    });
  });

  test('truncated at many offsets: exit 3, no HDF5 dump, and a good file still opens afterwards', async () => {
    const bytes = fs.readFileSync(good);
    for (let cut = 0; cut < bytes.length; cut += Math.max(1, Math.floor(bytes.length / 60))) {
      const file = path.join(dir, 'cut.h5');
      fs.writeFileSync(file, bytes.subarray(0, cut));
      try {
        const dict = await open(file);
        for (const t of dict.tensors) await t.read();
        await dict.close();
      } catch (err) {
        assert.ok(err instanceof CkptError && err.exitCode === 3, `cut at ${cut}: ${(err as Error).stack}`);
      }
    }
    const r = runCli(['inspect', path.join(dir, 'cut.h5')]);
    assert.doesNotMatch(r.stderr, /HDF5-DIAG/);
    const dict = await open(good);
    assert.equal(dict.tensors.length, 1);
    await dict.close();
  });

  test('a .keras without model.weights.h5, or with a member path escaping, is refused', () => {
    const make = (name: string, members: [string, string][]) => {
      const parts: Uint8Array[] = [];
      const zip = new ZipWriter((b) => parts.push(Uint8Array.from(b)));
      for (const [m, text] of members) zip.add(m, [Buffer.from(text)]);
      zip.finish();
      fs.writeFileSync(path.join(dir, name), Buffer.concat(parts));
      return path.join(dir, name);
    };
    const escape = runCli(['inspect', make('escape.keras', [['config.json', '{}'], ['model.weights.h5', ''], ['../evil', 'x']])]);
    assert.equal(escape.status, 3);
    assert.match(escape.stderr, /member '\.\.\/evil': member name is absolute or contains \.\./);
    const broken = runCli(['inspect', make('broken.keras', [['config.json', '{'], ['model.weights.h5', '']])]);
    assert.equal(broken.status, 3);
    assert.match(broken.stderr, /member 'config\.json': not valid JSON/);
  });

  test('HDF5 external links and external raw storage pointing outside the model folder are refused, not followed', { skip: !pythonHas('h5py') && 'Debian python3-h5py is not installed' }, () => {
    const outside = tempDir();
    const model = tempDir();
    python(`
import sys, h5py, numpy as np
outside, model = sys.argv[1], sys.argv[2]
with h5py.File(outside + '/secret.h5', 'w') as s:
    s['w'] = np.arange(4, dtype='f4')
with open(outside + '/raw.bin', 'wb') as r:
    r.write(np.arange(4, dtype='f4').tobytes())
def keras_file(name, add_kernel):
    with h5py.File(model + '/' + name, 'w') as f:
        f.attrs['layer_names'] = [b'dense']
        layer = f.create_group('dense')
        layer.attrs['weight_names'] = [b'dense/kernel:0']
        add_kernel(layer.create_group('dense'))
keras_file('link.h5', lambda g: g.__setitem__('kernel:0', h5py.ExternalLink(outside + '/secret.h5', '/w')))
keras_file('efl.h5', lambda g: g.create_dataset('kernel:0', shape=(4,), dtype='f4', external=[(outside + '/raw.bin', 0, 16)]))
`, outside, model);
    for (const [name, message] of [['link.h5', /dense\/dense\/kernel:0: is an external link to '.*secret\.h5'; ckpt does not follow links out of the model file/], ['efl.h5', /dense\/dense\/kernel:0: stores its values in an external file \('.*raw\.bin'\); ckpt does not read files outside the model file/]] as const) {
      const r = runCli(['inspect', '--hash', path.join(model, name)]);
      assert.equal(r.status, 3, r.stdout);
      assert.match(r.stderr, message);
    }
  });

  test('HDF5 failures are one line naming the file and the place, never a library path or a dump', () => {
    // Byte 32 lies in the checksummed part of the samples' version 2 superblock.
    const damaged = Buffer.from(fs.readFileSync(path.join(SAMPLES, 'detector-90.h5')));
    damaged[32] = 105;
    const file = path.join(dir, 'damaged.h5');
    fs.writeFileSync(file, damaged);
    const r = runCli(['inspect', file]);
    assert.equal(r.status, 3, r.stderr);
    assert.match(r.stderr, new RegExp(`^ckpt: ${file}: superblock: checksum is 0x[0-9a-f]{8}, the file stores 0x[0-9a-f]{8}: the file is damaged\\n$`));
  });

  test('mutated HDF5 files load or fail with exit 3 — a file that makes HDF5 loop is cut off — never crash, never a library path', async () => {
    process.env.CKPT_HDF5_TIMEOUT_MS = '2000';
    const seeds = [fs.readFileSync(good), fs.readFileSync(path.join(SAMPLES, 'detector-90.h5'))];
    let seed = 11;
    const random = () => ((seed = (seed * 48271) % 2147483647) / 2147483647);
    const iterations = Number(process.env.CKPT_FUZZ_ITERATIONS ?? 120);
    for (let i = 0; i < iterations; i++) {
      const mutated = Buffer.from(seeds[i % seeds.length]!);
      for (let k = 0; k < 1 + Math.floor(random() * 4); k++) mutated[Math.floor(random() * mutated.length)] = Math.floor(random() * 256);
      const file = path.join(dir, 'fuzz.h5');
      fs.writeFileSync(file, random() < 0.1 ? mutated.subarray(0, Math.floor(random() * mutated.length)) : mutated);
      try {
        const dict = await open(file);
        for (const t of dict.tensors) await t.read();
        await dict.close();
      } catch (err) {
        assert.ok(err instanceof CkptError && (err.exitCode === 3 || err.exitCode === 4), `${i}: ${(err as Error).stack}`);
        assert.doesNotMatch(err.message, /\/__w\/|libhdf5|Aborted\(|\n/, `${i}`);
      }
    }
    delete process.env.CKPT_HDF5_TIMEOUT_MS;
  });
});
