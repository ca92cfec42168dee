import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { open } from '../src/index.js';
import { MAX_MODEL_JSON } from '../src/formats/tfjs/index.js';
import { CORPUS, HAS_CORPUS, ROOT, SAMPLES, runCli, tempDir, valueHashes } from './helpers.js';

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const bytesOf = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
type Spec = tf.io.WeightsManifestEntry;
interface Group { specs: Spec[]; data: Uint8Array; shardBytes?: number }

/**
 * Writes model.json whose manifest has one group per `groups` item, each group's bytes cut into
 * shards of `shardBytes` (`g<group>-<shard>.bin`). Returns the model.json path.
 */
function writeModel(dir: string, groups: Group[], extra: object = { format: 'graph-model' }): string {
  const manifest = groups.map(({ specs, data, shardBytes }, g) => {
    const size = shardBytes ?? Math.max(1, data.length);
    const paths: string[] = [];
    for (let at = 0; at < data.length || paths.length === 0; at += size) {
      paths.push(`g${g}-${paths.length}.bin`);
      fs.writeFileSync(path.join(dir, paths.at(-1)!), data.subarray(at, at + size));
    }
    return { paths, weights: specs };
  });
  const file = path.join(dir, 'model.json');
  fs.writeFileSync(file, JSON.stringify({ ...extra, weightsManifest: manifest }));
  return file;
}

/** What @tensorflow/tfjs itself decodes from `data`, as little-endian bytes (or string elements) per weight. */
async function tfjsDecoded(specs: Spec[], data: Uint8Array): Promise<Map<string, Uint8Array | Uint8Array[]>> {
  const tensors = tf.io.decodeWeights(Uint8Array.from(data).buffer, specs);
  const out = new Map<string, Uint8Array | Uint8Array[]>();
  for (const [name, t] of Object.entries(tensors)) {
    out.set(name, t.dtype === 'string' ? (await t.bytes()) as Uint8Array[] : bytesOf(t.dataSync()).slice());
    t.dispose();
  }
  return out;
}

/** Opens `file` with ckpt and requires every weight to equal what tfjs decodes from `data`. */
async function assertDecodesLikeTfjs(file: string, specs: Spec[], data: Uint8Array): Promise<void> {
  const expected = await tfjsDecoded(specs, data);
  const dict = await open(file, { all: true });
  assert.deepEqual(dict.tensors.map((t) => t.source), specs.map((s) => s.name));
  for (const t of dict.tensors) {
    const want = expected.get(t.source)!;
    if (t.dtype === 'string') {
      assert.deepEqual((await t.readStrings()).map(sha), (want as Uint8Array[]).map(sha), t.source);
    } else {
      const got = await t.read();
      assert.equal(got.length, t.byteLength, t.source);
      assert.equal(sha(got), sha(want as Uint8Array), t.source);
    }
  }
  await dict.close();
}

const u32 = (n: number) => bytesOf(new Uint32Array([n]));
const utf8 = (s: string) => new TextEncoder().encode(s);
const stringBytes = (items: string[]) => Buffer.concat(items.flatMap((s) => [u32(utf8(s).length), utf8(s)]));

/** Saves a tfjs layers model as model.json + one shard, as tfjs's own IO handler hands it over. */
async function saveLayersModel(model: tf.LayersModel, dir: string): Promise<string> {
  await model.save(tf.io.withSaveHandler(async (artifacts) => {
    fs.writeFileSync(path.join(dir, 'weights.bin'), bytesOf(new Uint8Array(artifacts.weightData as ArrayBuffer)));
    fs.writeFileSync(path.join(dir, 'model.json'), JSON.stringify({
      format: 'layers-model',
      generatedBy: `TensorFlow.js tfjs-layers v${tf.version.tfjs}`,
      convertedBy: null,
      modelTopology: artifacts.modelTopology,
      weightsManifest: [{ paths: ['weights.bin'], weights: artifacts.weightSpecs }],
    }));
    return { modelArtifactsInfo: { dateSaved: new Date(0), modelTopologyType: 'JSON' } };
  }));
  return path.join(dir, 'model.json');
}

describe('TF.js reader against @tensorflow/tfjs decodeWeights', () => {
  test('every dtype and quantization, shards cut at 1, 7, 37 bytes and not at all', async () => {
    const specs: Spec[] = [
      { name: 'q8', shape: [5, 10], dtype: 'float32', quantization: { dtype: 'uint8', scale: 0.0123456789, min: -1.3333 } },
      { name: 'q16', shape: [30], dtype: 'float32', quantization: { dtype: 'uint16', scale: 3.1e-5, min: -0.777 } },
      { name: 'half', shape: [2, 4], dtype: 'float32', quantization: { dtype: 'float16', original_dtype: 'float32' } as Spec['quantization'] },
      { name: 'n', shape: [4], dtype: 'int32' },
      { name: 'flags', shape: [4], dtype: 'bool' },
      { name: 'qi8', shape: [4], dtype: 'int32', quantization: { dtype: 'uint8', scale: 0.5, min: -3 } },
      { name: 'qi16', shape: [3], dtype: 'int32', quantization: { dtype: 'uint16', scale: 1.5, min: 3 } },
      { name: 'c', shape: [2], dtype: 'complex64' },
      { name: 'scalar', shape: [], dtype: 'float32' },
      { name: 'empty', shape: [0, 3], dtype: 'float32' },
      { name: 'f', shape: [3], dtype: 'float32' },
    ];
    const data = Buffer.concat([
      Uint8Array.from({ length: 50 }, (_, i) => (i * 37) % 256),
      bytesOf(Uint16Array.from({ length: 30 }, (_, i) => (i * 2741) % 65536)),
      bytesOf(new Uint16Array([0x3c00, 0xc000, 0x7bff, 0x0001, 0x8400, 0x7c00, 0xfc00, 0x7c01])),
      bytesOf(new Int32Array([1, -2, 3, 2147483647])),
      new Uint8Array([1, 0, 2, 255]), // tfjs keeps bool bytes as stored
      new Uint8Array([0, 1, 5, 255]),
      bytesOf(new Uint16Array([0, 1, 65535])),
      bytesOf(new Float32Array([1.5, -2, Number.NaN, 3.25])),
      bytesOf(new Float32Array([Math.PI])),
      bytesOf(new Float32Array([0.1, -0, Number.POSITIVE_INFINITY])),
    ]);
    for (const shardBytes of [1, 7, 37, undefined]) {
      await assertDecodesLikeTfjs(writeModel(tempDir(), [{ specs, data, shardBytes }]), specs, data);
    }
  });

  test('every float16 bit pattern widens as tfjs widens it, NaN payloads included', async () => {
    const specs: Spec[] = [{ name: 'all_halves', shape: [65536], dtype: 'float32', quantization: { dtype: 'float16' } }];
    const data = bytesOf(Uint16Array.from({ length: 65536 }, (_, i) => i));
    await assertDecodesLikeTfjs(writeModel(tempDir(), [{ specs, data, shardBytes: 4096 }]), specs, data);
  });

  test('every uint16 and uint8 code, with min/scale whose float32 rounding matters, to float32 and int32', async () => {
    const pairs = [[3.1e-5, -0.777], [1 / 3, -1e-3], [0.0123456789, 1234.5], [0.5, -3], [1e-7, 1e-30]];
    const specs: Spec[] = pairs.flatMap(([scale, min], i) => [
      { name: `u16_${i}`, shape: [65536], dtype: 'float32', quantization: { dtype: 'uint16', scale, min } },
      { name: `u8_${i}`, shape: [256], dtype: 'float32', quantization: { dtype: 'uint8', scale, min } },
      { name: `i16_${i}`, shape: [65536], dtype: 'int32', quantization: { dtype: 'uint16', scale, min } },
    ] as Spec[]);
    const codes16 = bytesOf(Uint16Array.from({ length: 65536 }, (_, i) => i));
    const codes8 = Uint8Array.from({ length: 256 }, (_, i) => i);
    const data = Buffer.concat(pairs.flatMap(() => [codes16, codes8, codes16]));
    await assertDecodesLikeTfjs(writeModel(tempDir(), [{ specs, data, shardBytes: 100_000 }]), specs, data);
  });

  test('string weights, with a length field split across shards, and the weights after them', async () => {
    const specs: Spec[] = [
      { name: 'vocab', shape: [2, 2], dtype: 'string' },
      { name: 'after', shape: [2], dtype: 'float32' },
      { name: 'labels', shape: [3], dtype: 'string' },
      { name: 'last', shape: [], dtype: 'int32' },
    ];
    const data = Buffer.concat([
      stringBytes(['ab', '', 'ünï', 'x'.repeat(300)]), bytesOf(new Float32Array([2.5, -1])),
      stringBytes(['person', 'bicycle', '🚗']), bytesOf(new Int32Array([7])),
    ]);
    for (const shardBytes of [3, 5, 64, undefined]) {
      await assertDecodesLikeTfjs(writeModel(tempDir(), [{ specs, data, shardBytes }]), specs, data);
    }
  });

  test('each group has its own shards; weights are listed in manifest order across groups', async () => {
    const groups: Group[] = [
      { specs: [{ name: 'a/kernel', shape: [2, 2], dtype: 'float32' }], data: bytesOf(new Float32Array([1, 2, 3, 4])), shardBytes: 6 },
      { specs: [{ name: 'b/bias', shape: [2], dtype: 'int32' }, { name: 'b/names', shape: [1], dtype: 'string' }], data: Buffer.concat([bytesOf(new Int32Array([5, 6])), stringBytes(['z'])]) },
    ];
    const file = writeModel(tempDir(), groups);
    const specs = groups.flatMap((g) => g.specs);
    await assertDecodesLikeTfjs(file, specs, Buffer.concat(groups.map((g) => g.data)));
    const dict = await open(file);
    assert.deepEqual(dict.tensors.map((t) => [t.name, t.source]), [['a.kernel', 'a/kernel'], ['b.bias', 'b/bias'], ['b.names', 'b/names']]);
    assert.equal(dict.metadata.shards, 4);
  });

  test('listing only stats the shards; read() reads just its weight, across a shard boundary', async () => {
    const specs: Spec[] = [
      { name: 'a', shape: [10], dtype: 'float32' },
      { name: 'b', shape: [6], dtype: 'float32', quantization: { dtype: 'uint16', scale: 0.5, min: 1 } },
      { name: 'c', shape: [8], dtype: 'float32' },
    ];
    const data = Uint8Array.from({ length: 40 + 12 + 32 }, (_, i) => i);
    const dict = await open(writeModel(tempDir(), [{ specs, data, shardBytes: 24 }]));
    assert.equal(dict.bytesRead!(), 0);
    await dict.tensors[1]!.read();
    assert.equal(dict.bytesRead!(), 12);
  });

  test('optimizer weights are listed only with --all', () => {
    const dir = tempDir();
    writeModel(dir, [{ specs: [{ name: 'w', shape: [1], dtype: 'float32' }, { name: 'Adam/iter', shape: [], dtype: 'int32', group: 'optimizer' }], data: new Uint8Array(8) }]);
    assert.deepEqual(JSON.parse(runCli(['inspect', '--json', dir]).stdout).tensors.map((t: { name: string }) => t.name), ['w']);
    assert.match(runCli(['inspect', dir]).stdout, / · 1 optimizer tensors not shown \(--all\)$/m);
    const all = JSON.parse(runCli(['inspect', '--json', '--all', dir]).stdout).tensors;
    assert.deepEqual(all.map((t: { name: string; group?: string }) => [t.name, t.group]), [['w', undefined], ['Adam.iter', 'optimizer']]);
  });
});

describe('TF.js model kinds, layouts and metadata', () => {
  test('a layers model saved by tfjs: Keras kernel layouts per layer class, values as tfjs holds them', async () => {
    const model = tf.sequential();
    model.add(tf.layers.conv2d({ name: 'conv', filters: 4, kernelSize: 3, inputShape: [8, 8, 3] }));
    model.add(tf.layers.depthwiseConv2d({ name: 'dw', kernelSize: 3, depthMultiplier: 2 }));
    model.add(tf.layers.separableConv2d({ name: 'sep', filters: 5, kernelSize: 1 }));
    model.add(tf.layers.conv2dTranspose({ name: 'deconv', filters: 3, kernelSize: 2 }));
    model.add(tf.layers.flatten({ name: 'flat' }));
    model.add(tf.layers.dense({ name: 'fc', units: 2 }));
    const dir = tempDir();
    await saveLayersModel(model, dir);
    const dict = await open(dir);
    assert.deepEqual(Object.fromEntries(dict.tensors.map((t) => [t.name, t.layout ?? null])), {
      'conv.kernel': 'HWIO', 'conv.bias': null,
      'dw.depthwise_kernel': 'HWIM', 'dw.bias': null,
      'sep.depthwise_kernel': 'HWIM', 'sep.pointwise_kernel': 'HWIO', 'sep.bias': null,
      'deconv.kernel': 'HWOI', 'deconv.bias': null,
      'fc.kernel': 'IO', 'fc.bias': null,
    });
    const held = model.getWeights();
    for (const [i, t] of dict.tensors.entries()) assert.equal(sha(await t.read()), sha(bytesOf(held[i]!.dataSync())), t.name);
    assert.deepEqual(dict.metadata, {
      format: 'layers-model', generatedBy: `TensorFlow.js tfjs-layers v${tf.version.tfjs}`,
      kerasVersion: `tfjs-layers ${tf.version.tfjs}`, tfjsVersion: tf.version.tfjs, backend: 'tensor_flow.js', shards: 1, weights: 11,
    });
    model.dispose();
  });

  test('without `format`: a GraphDef topology is a graph model, a Keras config a layers model; a bare array is a weights manifest', async () => {
    const weight = { specs: [{ name: 'Conv/kernel', shape: [1, 1, 1, 1], dtype: 'float32' as const }], data: new Uint8Array(4) };
    const cases: [object, Record<string, unknown>][] = [
      [{ modelTopology: { node: [{ name: 'x', op: 'Placeholder' }], versions: { producer: 716 } } }, { format: 'graph-model', graphDefProducer: 716, shards: 1, weights: 1 }],
      [{ modelTopology: { keras_version: '2.2.4', backend: 'tensorflow', model_config: { class_name: 'Model', config: { layers: [{ class_name: 'Conv2D', config: { name: 'Conv' } }] } } } },
        { format: 'layers-model', kerasVersion: '2.2.4', backend: 'tensorflow', shards: 1, weights: 1 }],
      [{ generatedBy: '2.4.0', convertedBy: 'TensorFlow.js Converter v2.7.0' }, { format: 'weights-manifest', generatedBy: '2.4.0', convertedBy: 'TensorFlow.js Converter v2.7.0', shards: 1, weights: 1 }],
    ];
    for (const [extra, metadata] of cases) {
      const dict = await open(writeModel(tempDir(), [weight], extra));
      assert.deepEqual(dict.metadata, metadata);
      assert.equal(dict.tensors[0]!.layout, metadata.format === 'layers-model' ? 'HWIO' : undefined);
    }
    const dir = tempDir();
    const file = writeModel(dir, [weight]);
    const bare = path.join(dir, 'face-weights_manifest.json');
    fs.writeFileSync(bare, JSON.stringify(JSON.parse(fs.readFileSync(file, 'utf8')).weightsManifest));
    const dict = await open(bare);
    assert.equal(dict.format, 'tfjs');
    assert.deepEqual(dict.metadata, { format: 'weights-manifest', shards: 1, weights: 1 });
  });

  test('recognized by content: keys past the first 4 KiB, any file name; other JSON is not TF.js', () => {
    const dir = tempDir();
    writeModel(dir, [{ specs: [{ name: 'w', shape: [1], dtype: 'float32' }], data: new Uint8Array(4) }], { userDefinedMetadata: { notes: 'n'.repeat(10_000) } });
    fs.renameSync(path.join(dir, 'model.json'), path.join(dir, 'detector'));
    const r = runCli(['inspect', '--json', path.join(dir, 'detector')]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).format, 'tfjs');
    fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'x', version: '1.0.0' }));
    const other = runCli(['inspect', path.join(dir, 'package.json')]);
    assert.equal(other.status, 3);
    assert.match(other.stderr, /unrecognized format/);
  });
});

describe('TF.js samples and writer', () => {
  test('the samples are what scripts/make-tfjs-samples.js writes with @tensorflow/tfjs', () => {
    const out = tempDir();
    const r = spawnSync(process.execPath, [path.join(ROOT, 'scripts', 'make-tfjs-samples.js'), out], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    for (const folder of ['detector-90-tfjs', 'detector-92-tfjs']) {
      assert.deepEqual(fs.readdirSync(path.join(out, folder)).sort(), ['group1-shard1of1.bin', 'model.json']);
      for (const file of fs.readdirSync(path.join(SAMPLES, folder))) {
        assert.ok(fs.readFileSync(path.join(out, folder, file)).equals(fs.readFileSync(path.join(SAMPLES, folder, file))), `${folder}/${file}`);
      }
    }
  });

  test('inspect on the samples: 6 tensors, HWIO kernels holding the OIHW weights transposed', async () => {
    const network = await import(pathToFileURL(path.join(ROOT, 'scripts', 'sample-network.js')).href);
    for (const classes of [90, 92]) {
      const folder = path.join(SAMPLES, `detector-${classes}-tfjs`);
      const r = runCli(['inspect', '--json', folder]);
      assert.equal(r.status, 0, r.stderr);
      const listed = JSON.parse(r.stdout).tensors as { name: string; layout?: string; shape: number[] }[];
      const weights = network.detectorWeights(classes) as { name: string; shape: number[]; data: Float32Array }[];
      assert.equal(listed.length, 6);
      const dict = await open(folder);
      for (const [i, w] of weights.entries()) {
        const t = dict.tensors[i]!;
        assert.equal(t.name, w.name.replace('backbone.', 'backbone_').replace(/\.weight$/, '.kernel'));
        const [o, inC, h, wd] = w.shape;
        const expected = w.shape.length === 4 ? network.oihwToHwio(w.data, w.shape) as Float32Array : w.data;
        assert.deepEqual(listed[i]!.shape, w.shape.length === 4 ? [h, wd, inC, o] : w.shape);
        assert.equal(listed[i]!.layout, w.shape.length === 4 ? 'HWIO' : undefined);
        assert.ok(Buffer.from(await t.read()).equals(Buffer.from(bytesOf(expected))), t.name);
      }
    }
  });

  test('the TF.js detector holds the ONNX detector\'s weights in HWIO: diff aligns them by convention and layout', () => {
    const r = runCli(['diff', '--values', '--json', path.join(SAMPLES, 'detector-90.onnx'), path.join(SAMPLES, 'detector-90-tfjs')]);
    const report = JSON.parse(r.stdout);
    assert.equal(report.matched.length, 6);
    assert.deepEqual(report.shapeMismatches.map((p: { transpose: number[] }) => p.transpose), [[2, 3, 1, 0], [2, 3, 1, 0], [2, 3, 1, 0]]);
    assert.ok(report.matched.every((p: { values: { maxAbsDiff: number } }) => p.values.maxAbsDiff === 0));
  });

  test('planning TF.js weights into the 92-class ONNX model equals planning the ONNX weights', async () => {
    const dir = tempDir();
    for (const [source, out] of [[path.join(SAMPLES, 'detector-90-tfjs'), 'from-tfjs.onnx'], [path.join(SAMPLES, 'detector-90.onnx'), 'from-onnx.onnx']]) {
      const plan = path.join(dir, `${out}.plan.json`);
      assert.equal(runCli(['plan', source!, path.join(SAMPLES, 'detector-92.onnx'), '-o', plan]).status, 0);
      assert.equal(runCli(['apply', plan, '-o', path.join(dir, out!)]).status, 0);
    }
    assert.ok(fs.readFileSync(path.join(dir, 'from-tfjs.onnx')).equals(fs.readFileSync(path.join(dir, 'from-onnx.onnx'))));
  });

  test('every corpus TF.js model round-trips through the writer, and tfjs decodes what it wrote', { skip: !HAS_CORPUS && 'no corpus' }, async () => {
    const models = ['face-api-tiny_face_detector_model/tiny_face_detector_model-weights_manifest.json', 'human-antispoof/antispoof.json', 'human-blazeface/blazeface.json', 'nsfwjs-mobilenet_v2/model.json'];
    for (const model of models) {
      const out = path.join(tempDir(), 'out');
      const r = runCli(['convert', path.join(CORPUS, 'tfjs', model), out, '--to', 'tfjs']);
      assert.equal(r.status, 0, r.stderr);
      // Stored type, stored bytes' hash and encoding (with its parameters) all kept.
      const before = JSON.parse(runCli(['inspect', '--json', '--hash', path.join(CORPUS, 'tfjs', model)]).stdout).tensors;
      const after = JSON.parse(runCli(['inspect', '--json', '--hash', out]).stdout).tensors;
      const essentials = (t: { source: string; dtype: string; shape: number[]; sha256: string; encoding?: unknown }) => [t.source, t.dtype, t.shape, t.sha256, t.encoding];
      assert.deepEqual(after.map(essentials), before.map(essentials), model);
      const json = JSON.parse(fs.readFileSync(path.join(out, 'model.json'), 'utf8'));
      const manifest = Array.isArray(json) ? json : json.weightsManifest;
      const data = Buffer.concat(manifest[0].paths.map((p: string) => fs.readFileSync(path.join(out, p))));
      const decoded = await tfjsDecoded(manifest[0].weights, data);
      const values = await valueHashes(path.join(CORPUS, 'tfjs', model));
      for (const t of before) assert.equal(sha(decoded.get(t.source) as Uint8Array), values.get(t.source), `${model}: ${t.source}`);
    }
  });
});

describe('TF.js quantization is the storage encoding of its tensor', () => {
  const specs: Spec[] = [
    { name: 'q8', shape: [2, 3], dtype: 'float32', quantization: { dtype: 'uint8', scale: 0.25, min: -1 } },
    { name: 'q16', shape: [3], dtype: 'int32', quantization: { dtype: 'uint16', scale: 1.5, min: 3, original_dtype: 'int32' } as Spec['quantization'] },
    { name: 'half', shape: [2], dtype: 'float32', quantization: { dtype: 'float16', original_dtype: 'float32' } as Spec['quantization'] },
    { name: 'plain', shape: [1], dtype: 'float32' },
  ];
  const stored = [Uint8Array.from([0, 1, 2, 3, 4, 255]), bytesOf(new Uint16Array([0, 1, 65535])), bytesOf(new Uint16Array([0x3c00, 0xc000])), bytesOf(new Float32Array([0.5]))];
  const model = () => writeModel(tempDir(), [{ specs, data: Buffer.concat(stored) }]);

  test('listed as stored type → float view, with the parameters; --hash hashes the stored bytes, values are what tfjs decodes', async () => {
    const file = model();
    const r = runCli(['inspect', '--json', '--hash', file]);
    assert.equal(r.status, 0, r.stderr);
    const listing = JSON.parse(r.stdout);
    assert.deepEqual(listing.tensors.map((t: { dtype: string; byteLength: number; encoding?: unknown }) => [t.dtype, t.byteLength, t.encoding ?? null]), [
      ['uint8', 6, { label: 'uint8 affine', dequantized: 'float32', range: { min: -1, scale: 0.25 } }],
      ['uint16', 6, { label: 'uint16 affine', dequantized: 'int32', range: { min: 3, scale: 1.5 }, originalDtype: 'int32' }],
      ['float16', 4, { label: 'float16', dequantized: 'float32', originalDtype: 'float32' }],
      ['float32', 4, null],
    ]);
    assert.deepEqual(listing.tensors.map((t: { sha256: string }) => t.sha256), stored.map(sha));
    assert.equal(listing.totals.bytes, 6 + 6 + 4 + 4);
    const table = runCli(['inspect', file]).stdout;
    assert.match(table, /│ q8 +│ uint8 affine → float32 /);
    assert.match(table, /│ q16 +│ uint16 affine → int32 /);
    assert.match(table, /│ half +│ float16 → float32 /);
    await assertDecodesLikeTfjs(file, specs, Buffer.concat(stored));
  });

  test('sameAs: equal stored bytes are the same values only under the same min and scale', () => {
    const q = (name: string, min: number): Spec => ({ name, shape: [4], dtype: 'float32', quantization: { dtype: 'uint8', scale: 0.5, min } });
    const codes = Uint8Array.from([9, 8, 7, 6]);
    const file = writeModel(tempDir(), [{ specs: [q('a', -1), q('b', -1), q('c', 2)], data: Buffer.concat([codes, codes, codes]) }]);
    const listed = JSON.parse(runCli(['inspect', '--json', '--hash', file]).stdout).tensors;
    assert.deepEqual(listed.map((t: { sameAs?: string }) => t.sameAs ?? null), [null, 'a', null]);
  });

  test('a rewrite keeps the quantization from the encoding, not from object identity; new values drop it', async () => {
    const { storedWeight } = await import('../src/formats/tfjs/quantize.js');
    const { withValues } = await import('../src/core/statedict.js');
    const dict = await open(model());
    const [q8, q16, half] = dict.tensors;
    for (const t of [q8!, q16!, half!]) {
      // A copy (a rename, a wrapper) is the same stored weight.
      const kept = storedWeight('w', { ...t }, [], dict.path);
      assert.deepEqual(kept.entry.quantization, specs.find((s) => s.name === t.source)!.quantization, t.source);
      assert.equal(kept.entry.dtype, t.dtype);
      assert.deepEqual(await kept.read(), await t.encoding!.readStored(), t.source);
      const changed = storedWeight('w', withValues(t, { read: () => t.read() }), [], dict.path);
      assert.equal(changed.entry.quantization, undefined, `${t.source}: values from elsewhere are not the stored bytes`);
      assert.equal(storedWeight('w', t, [{ dtype: 'none' }], dict.path).entry.quantization, undefined);
    }
    // Another --quantize requantizes the float view.
    const requantized = storedWeight('w', q8!, [{ dtype: 'uint16' }], dict.path);
    await requantized.read();
    assert.equal(requantized.entry.quantization?.dtype, 'uint16');
    await dict.close();
  });

  test('TF.js → TF.js: int32 weights stay quantized too, the manifest parameters as they were; --dtype float16 re-stores the float view', async () => {
    const input = model();
    const out = path.join(tempDir(), 'out');
    const r = runCli(['rename', input, '--rename', '^q8$=>renamed', '-o', out, '--json']);
    assert.equal(r.status, 0, r.stderr);
    const weights = JSON.parse(fs.readFileSync(path.join(out, 'model.json'), 'utf8')).weightsManifest[0].weights;
    assert.deepEqual(weights, specs.map((s) => (s.name === 'q8' ? { ...s, name: 'renamed' } : s)));
    assert.deepEqual([...(await valueHashes(path.join(out, 'model.json'))).values()], [...(await valueHashes(input)).values()]);

    const half = path.join(tempDir(), 'half');
    assert.equal(runCli(['convert', input, half, '--to', 'tfjs', '--dtype', 'float16']).status, 0);
    const halfWeights = JSON.parse(fs.readFileSync(path.join(half, 'model.json'), 'utf8')).weightsManifest[0].weights;
    assert.deepEqual(halfWeights.map((w: { quantization?: { dtype: string } }) => w.quantization?.dtype ?? null), ['float16', 'uint16', 'float16', 'float16']);
  });
});

describe('TF.js bad input: exit 3 or 4, naming the weight or shard', () => {
  const four: Spec[] = [{ name: 'w', shape: [4], dtype: 'float32' }];
  const two: Spec[] = [{ name: 'a', shape: [4], dtype: 'float32' }, { name: 'b', shape: [4], dtype: 'float32' }];
  /** model.json with one group over `paths` (written as named, no shard files). */
  const manifestOnly = (dir: string, paths: string[], weights: Spec[] = four) => {
    fs.writeFileSync(path.join(dir, 'model.json'), JSON.stringify({ weightsManifest: [{ paths, weights }] }));
    return path.join(dir, 'model.json');
  };
  const json = (dir: string, text: string) => {
    fs.writeFileSync(path.join(dir, 'model.json'), text);
    return path.join(dir, 'model.json');
  };
  const cases: [string, (dir: string) => string, number, RegExp][] = [
    ['a shard shorter than the manifest needs', (d) => writeModel(d, [{ specs: four, data: new Uint8Array(12) }]), 3,
      /weight 'w': needs bytes 0 to 16 of weightsManifest\[0\] but its shards 'g0-0\.bin' end at byte 12/],
    ['the second shard shorter', (d) => writeModel(d, [{ specs: two, data: new Uint8Array(30), shardBytes: 16 }]), 3,
      /weight 'b': needs bytes 16 to 32 .* shards 'g0-0\.bin', 'g0-1\.bin' end at byte 30/],
    ['a shard longer than the manifest needs', (d) => writeModel(d, [{ specs: four, data: new Uint8Array(20) }]), 3,
      /weightsManifest\[0\]: its weights end at byte 16 \(last weight 'w'\) but its shards 'g0-0\.bin' hold 20 bytes; shard 'g0-0\.bin' has 4 bytes too many/],
    ['a missing shard', (d) => { const f = writeModel(d, [{ specs: two, data: new Uint8Array(32), shardBytes: 16 }]); fs.rmSync(path.join(d, 'g0-1.bin')); return f; }, 4,
      /g0-1\.bin: weightsManifest\[0\]\.paths\[1\] \(shard 'g0-1\.bin', holding weight 'b'\) of .*model\.json: no such file/],
    ['malformed JSON', (d) => json(d, '{"weightsManifest": [ {'), 3, /model\.json: not valid JSON/],
    ['a weightsManifest that is not an array', (d) => json(d, '{"weightsManifest": 7}'), 3, /weightsManifest: must be an array of \{paths, weights\} groups/],
    ['a group without paths', (d) => json(d, '{"weightsManifest": [{"weights": []}]}'), 3, /weightsManifest\[0\]: expected \{paths: \[\.\.\.\], weights: \[\.\.\.\]\}/],
    ['an unknown dtype', (d) => writeModel(d, [{ specs: [{ name: 'w', shape: [4], dtype: 'float64' as 'float32' }], data: new Uint8Array(32) }]), 3,
      /weights\[0\] 'w': unknown dtype "float64"/],
    ['an unknown quantization dtype', (d) => writeModel(d, [{ specs: [{ name: 'w', shape: [4], dtype: 'float32', quantization: { dtype: 'int8' as 'uint8', scale: 1, min: 0 } }], data: new Uint8Array(4) }]), 3,
      /'w': quantization dtype "int8" is not uint8, uint16 or float16/],
    ['uint8 quantization without min/scale', (d) => writeModel(d, [{ specs: [{ name: 'w', shape: [4], dtype: 'float32', quantization: { dtype: 'uint8' } }], data: new Uint8Array(4) }]), 3,
      /'w': uint8 quantization needs numeric min and scale/],
    ['uint16 quantization without min', (d) => writeModel(d, [{ specs: [{ name: 'w', shape: [4], dtype: 'float32', quantization: { dtype: 'uint16', scale: 1 } }], data: new Uint8Array(8) }]), 3,
      /'w': uint16 quantization needs numeric min and scale/],
    ['float16 quantization of an int32 weight', (d) => writeModel(d, [{ specs: [{ name: 'w', shape: [2], dtype: 'int32', quantization: { dtype: 'float16' } }], data: new Uint8Array(4) }]), 3,
      /'w': float16 quantization of a int32 weight/],
    ['a negative dimension', (d) => writeModel(d, [{ specs: [{ name: 'w', shape: [2, -1], dtype: 'float32' }], data: new Uint8Array(4) }]), 3, /'w': shape \[2,-1\] must be a list of non-negative integers/],
    ['a duplicate weight name', (d) => writeModel(d, [{ specs: [four[0]!, four[0]!], data: new Uint8Array(32) }]), 3, /weights\[1\] 'w': weight name also used by weightsManifest\[0\]\.weights\[0\]/],
    ['a string length past the shards', (d) => writeModel(d, [{ specs: [{ name: 'vocab', shape: [2], dtype: 'string' }], data: Buffer.concat([stringBytes(['ok']), u32(1000), utf8('short')]) }]), 3,
      /weight 'vocab' string 1: 1000 bytes from byte 10 run past the end of the shards 'g0-0\.bin' \(15 bytes\)/],
    ['a string length field past the shards', (d) => writeModel(d, [{ specs: [{ name: 'vocab', shape: [3], dtype: 'string' }], data: Buffer.concat([stringBytes(['ok', '']), new Uint8Array(2)]) }]), 3,
      /weight 'vocab' string 2: its length field at byte 10 runs past the end of the shards/],
    ['a shard path with ..', (d) => manifestOnly(d, ['../w.bin']), 3, /paths\[0\] \(shard '\.\.\/w\.bin', holding weight 'w'\): file path '\.\.\/w\.bin' contains '\.\.'/],
    ['an absolute shard path', (d) => manifestOnly(d, ['/etc/passwd']), 3, /shard '\/etc\/passwd'.*is absolute/],
    ['a URL shard path', (d) => manifestOnly(d, ['http://example.com/w.bin']), 3, /paths\[0\]: shard path "http:\/\/example\.com\/w\.bin" must be a plain relative file path/],
    ['a backslash shard path', (d) => manifestOnly(d, ['..\\w.bin']), 3, /must be a plain relative file path/],
    ['a shard symlinked out of the folder', (d) => {
      const outside = tempDir();
      fs.writeFileSync(path.join(outside, 'w.bin'), new Uint8Array(16));
      fs.symlinkSync(path.join(outside, 'w.bin'), path.join(d, 'w.bin'));
      return manifestOnly(d, ['w.bin']);
    }, 3, /shard 'w\.bin', holding weight 'w'\): file path 'w\.bin' is a symbolic link/],
    ['a shard inside a folder symlinked out of the model folder', (d) => {
      const outside = tempDir();
      fs.writeFileSync(path.join(outside, 'w.bin'), new Uint8Array(16));
      fs.symlinkSync(outside, path.join(d, 'sub'));
      return manifestOnly(d, ['sub/w.bin']);
    }, 3, /file path 'sub\/w\.bin' resolves outside the model folder/],
  ];
  test('a model.json past the size cap is refused before it is read', () => {
    const file = path.join(tempDir(), 'model.json');
    fs.writeFileSync(file, '{"format": "graph-model", "weightsManifest": [');
    fs.truncateSync(file, MAX_MODEL_JSON + 1); // sparse: costs no disk
    const r = runCli(['inspect', file]);
    assert.equal(r.status, 3, r.stderr);
    assert.match(r.stderr, new RegExp(`model\\.json: ${MAX_MODEL_JSON + 1} bytes is more than the ${MAX_MODEL_JSON} bytes ckpt parses as a model\\.json`));
  });

  for (const [name, make, code, message] of cases) {
    test(name, () => {
      const r = runCli(['inspect', '--hash', make(tempDir())]);
      assert.equal(r.status, code, r.stderr);
      assert.match(r.stderr, message);
      assert.doesNotMatch(r.stderr, /\n\s+at /);
    });
  }
});
