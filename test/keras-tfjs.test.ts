import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { open } from '../src/index.js';
import { CORPUS, HAS_CORPUS, runCli, tempDir } from './helpers.js';
import { python, pythonHas } from './python.js';

/**
 * Keras ⇄ TF.js as models, not just weights: what ckpt writes is loaded by the real
 * @tensorflow/tfjs (`tf.loadLayersModel`) and must predict what the source predicts; Keras
 * outputs are checked with h5py (Keras itself is not in Debian) and read back with ckpt.
 */

const NO_H5PY = !pythonHas('h5py') && 'Debian python3-h5py is not installed';

/** A TF.js model folder (model.json + shards) as tfjs loads it from files. */
function folderHandler(dir: string): tf.io.IOHandler {
  return {
    load: async () => {
      const json = JSON.parse(fs.readFileSync(path.join(dir, 'model.json'), 'utf8'));
      const groups = json.weightsManifest as { paths: string[]; weights: tf.io.WeightsManifestEntry[] }[];
      const data = Buffer.concat(groups.flatMap((g) => g.paths.map((p) => fs.readFileSync(path.join(dir, p)))));
      return {
        modelTopology: json.modelTopology, format: json.format,
        weightSpecs: groups.flatMap((g) => g.weights),
        weightData: data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength),
      };
    },
  };
}

/** Saves a tfjs model as model.json + one shard, as tfjs's file saver lays them out. */
async function saveTfjs(model: tf.LayersModel, dir: string): Promise<void> {
  await model.save(tf.io.withSaveHandler(async (artifacts) => {
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'weights.bin'), Buffer.from(artifacts.weightData as ArrayBuffer));
    const manifest = [{ paths: ['weights.bin'], weights: artifacts.weightSpecs }];
    fs.writeFileSync(path.join(dir, 'model.json'), JSON.stringify({ format: 'layers-model', generatedBy: 'test', modelTopology: artifacts.modelTopology, weightsManifest: manifest }));
    return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
  }));
}

const predict = (model: tf.LayersModel, input: tf.Tensor) => Array.from((model.predict(input) as tf.Tensor).dataSync());

function convert(input: string, output: string, ...flags: string[]): string {
  const r = runCli(['convert', input, output, ...flags]);
  assert.equal(r.status, 0, r.stderr);
  return r.stdout;
}

function assertClose(got: number[], want: number[], what: string): void {
  assert.equal(got.length, want.length, what);
  got.forEach((v, i) => assert.ok(Math.abs(v - want[i]!) <= 1e-5 * Math.max(1, Math.abs(want[i]!)), `${what}[${i}]: ${v} vs ${want[i]}`));
}

/** A small functional CNN with a branch, batch norm with trained statistics, a depthwise conv and a dense head. */
function functionalCnn(): tf.LayersModel {
  const input = tf.input({ shape: [6, 6, 3], name: 'image' });
  const conv = tf.layers.conv2d({ filters: 4, kernelSize: 3, padding: 'same', name: 'stem' }).apply(input) as tf.SymbolicTensor;
  const bn = tf.layers.batchNormalization({ name: 'stem_bn' }).apply(conv) as tf.SymbolicTensor;
  const act = tf.layers.activation({ activation: 'relu', name: 'stem_relu' }).apply(bn) as tf.SymbolicTensor;
  const dw = tf.layers.depthwiseConv2d({ kernelSize: 3, padding: 'same', name: 'dw' }).apply(act) as tf.SymbolicTensor;
  const proj = tf.layers.conv2d({ filters: 4, kernelSize: 1, useBias: false, name: 'proj' }).apply(act) as tf.SymbolicTensor;
  const sum = tf.layers.add({ name: 'sum' }).apply([dw, proj]) as tf.SymbolicTensor;
  const pooled = tf.layers.globalAveragePooling2d({ name: 'pool' }).apply(sum) as tf.SymbolicTensor;
  const head = tf.layers.dense({ units: 5, activation: 'softmax', name: 'head' }).apply(pooled) as tf.SymbolicTensor;
  const model = tf.model({ inputs: input, outputs: head, name: 'cnn' });
  // Every weight gets distinct values, batch-norm statistics included, so a misplaced weight shows.
  model.setWeights(model.getWeights().map((w, i) => (w.shape.length === 1 && model.weights[i]!.name.includes('variance') ? tf.randomUniform(w.shape, 0.5, 1.5, 'float32', i) : tf.randomNormal(w.shape, 0, 0.5, 'float32', i))));
  return model;
}

function sequentialMlp(): tf.LayersModel {
  const model = tf.sequential({ name: 'mlp' });
  model.add(tf.layers.dense({ units: 8, inputShape: [4], activation: 'relu', name: 'hidden' }));
  model.add(tf.layers.dropout({ rate: 0.5, name: 'drop' }));
  model.add(tf.layers.dense({ units: 3, activation: 'sigmoid', name: 'out' }));
  model.setWeights(model.getWeights().map((w, i) => tf.randomNormal(w.shape, 0, 1, 'float32', 10 + i)));
  return model;
}

describe('TF.js layers model → Keras (.h5, .keras) → TF.js: the model survives both ways', () => {
  const cases: [string, () => tf.LayersModel, number[]][] = [['functional CNN', functionalCnn, [2, 6, 6, 3]], ['Sequential MLP', sequentialMlp, [3, 4]]];
  for (const [what, make, inputShape] of cases) {
    for (const ext of ['h5', 'keras']) {
      test(`${what} through .${ext} loads in tfjs and predicts the same`, async () => {
        const dir = tempDir();
        const source = make();
        const input = tf.randomUniform(inputShape, -1, 1, 'float32', 7);
        const want = predict(source, input);
        await saveTfjs(source, path.join(dir, 'tfjs'));
        const keras = path.join(dir, `model.${ext}`);
        const note = convert(path.join(dir, 'tfjs'), keras);
        assert.doesNotMatch(note, /weights-only/);
        const dict = await open(keras);
        try {
          assert.ok(dict.kerasModel, 'the Keras output carries the model config');
          assert.deepEqual(dict.tensors.map((t) => t.name).sort(), source.weights.map((w) => w.originalName.replace('/', '.')).sort());
        } finally {
          await dict.close();
        }
        convert(keras, path.join(dir, 'back', 'model.json'));
        const loaded = await tf.loadLayersModel(folderHandler(path.join(dir, 'back')));
        assertClose(predict(loaded, input), want, what);
      });
    }
  }

  test('the .h5 is a Keras full model and the .keras a Keras 3 zip, as h5py and zipfile see them', { skip: NO_H5PY }, async () => {
    const dir = tempDir();
    await saveTfjs(functionalCnn(), path.join(dir, 'tfjs'));
    convert(path.join(dir, 'tfjs'), path.join(dir, 'model.h5'));
    convert(path.join(dir, 'tfjs'), path.join(dir, 'model.keras'));
    // A Keras 2 full model rewritten as .h5 keeps its config and version.
    convert(path.join(dir, 'model.h5'), path.join(dir, 'again.h5'));
    const kept = python(`
import h5py, sys
a, b = h5py.File(sys.argv[1]), h5py.File(sys.argv[2])
print(all(a.attrs[k] == b.attrs[k] for k in ['model_config', 'keras_version', 'backend']) and set(a.attrs) == set(b.attrs))`, path.join(dir, 'model.h5'), path.join(dir, 'again.h5'));
    assert.equal(kept.trim(), 'True');
    const seen = JSON.parse(python(`
import h5py, json, sys, zipfile, io
f = h5py.File(sys.argv[1])
g = f['model_weights']
names = [n.decode() if isinstance(n, bytes) else n for n in g.attrs['layer_names']]
z = zipfile.ZipFile(sys.argv[2])
config = json.loads(z.read('config.json'))
w = h5py.File(io.BytesIO(z.read('model.weights.h5')))
paths = []
w.visititems(lambda n, o: paths.append(n) if isinstance(o, h5py.Dataset) else None)
print(json.dumps({
  'model_class': json.loads(f.attrs['model_config'])['class_name'], 'keras_version': f.attrs['keras_version'],
  'layer_names': names, 'stem': [n.decode() if isinstance(n, bytes) else n for n in g['stem'].attrs['weight_names']],
  'members': z.namelist(), 'metadata': json.loads(z.read('metadata.json')),
  'zip_class': [config['module'], config['class_name']], 'layer_modules': sorted({l['module'] for l in config['config']['layers']}),
  'paths': sorted(paths)}))`, path.join(dir, 'model.h5'), path.join(dir, 'model.keras')));
    // The TF.js config as tfjs-layers wrote it (Keras 2 reads `Model` as a functional model).
    assert.equal(seen.model_class, 'Model');
    assert.equal(seen.keras_version, '2.15.0');
    assert.deepEqual(seen.layer_names, ['image', 'stem', 'stem_bn', 'stem_relu', 'dw', 'proj', 'sum', 'pool', 'head']);
    assert.deepEqual(seen.stem, ['stem/kernel:0', 'stem/bias:0']);
    assert.deepEqual(seen.members, ['metadata.json', 'config.json', 'model.weights.h5']);
    assert.equal(seen.metadata.keras_version, '3.0.0');
    assert.deepEqual(seen.zip_class, ['keras.src.models.functional', 'Functional']);
    assert.deepEqual(seen.layer_modules, ['keras.layers']);
    assert.deepEqual(seen.paths, [
      'layers/batch_normalization/vars/0', 'layers/batch_normalization/vars/1', 'layers/batch_normalization/vars/2', 'layers/batch_normalization/vars/3',
      'layers/conv2d/vars/0', 'layers/conv2d/vars/1', 'layers/conv2d_1/vars/0', 'layers/dense/vars/0', 'layers/dense/vars/1',
      'layers/depthwise_conv2d/vars/0', 'layers/depthwise_conv2d/vars/1',
    ]);
  });
});

describe('Keras corpus models → TF.js layers models', { skip: !HAS_CORPUS && 'no ../shared/corpus' }, () => {
  const mlps = ['keras-h5/keras38-legacy-h5-churn/model.h5', 'keras-h5/keras3-legacy-h5-adam/model.h5', 'keras-v3/keras311-mlp-15cls-small/your_model2.keras'];
  for (const model of mlps) {
    test(`${model}: tf.loadLayersModel loads it and predicts what the Keras weights compute`, async () => {
      const file = path.join(CORPUS, model);
      const out = path.join(tempDir(), 'tfjs');
      convert(file, `${out}/`); // a folder: a TF.js model

      const json = JSON.parse(fs.readFileSync(path.join(out, 'model.json'), 'utf8'));
      assert.equal(json.format, 'layers-model');
      const loaded = await tf.loadLayersModel(folderHandler(out));
      // The reference: dense layers in config order, computed from the weights ckpt reads from the Keras file.
      const dict = await open(file);
      try {
        const layers = (dict.kerasModel!.config.config as { layers: { class_name: string; config: { name: string; activation?: string } }[] }).layers;
        const inputSize = dict.tensors[0]!.shape[0]!;
        const input = tf.randomUniform([4, inputSize], -2, 2, 'float32', 3);
        let x: tf.Tensor = input;
        for (const layer of layers.filter((l) => l.class_name === 'Dense')) {
          const weight = async (w: string) => {
            const t = dict.tensors.find((d) => d.name === `${layer.config.name}.${w}`)!;
            const bytes = await t.read();
            return tf.tensor(new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4), [...t.shape]);
          };
          x = tf.add(tf.matMul(x, await weight('kernel')), await weight('bias'));
          x = layer.config.activation === 'relu' ? tf.relu(x) : layer.config.activation === 'sigmoid' ? tf.sigmoid(x) : layer.config.activation === 'softmax' ? tf.softmax(x) : x;
        }
        assertClose(predict(loaded, input), Array.from(x.dataSync()), model);
      } finally {
        await dict.close();
      }
    });
  }

  test('nsfwjs MobileNetV2 (a tfjs 1.x layers model) → .keras → TF.js predicts exactly what the original does', async () => {
    const dir = tempDir();
    const source = path.join(CORPUS, 'tfjs/nsfwjs-mobilenet_v2/model.json');
    convert(source, path.join(dir, 'model.keras'));
    convert(path.join(dir, 'model.keras'), path.join(dir, 'back', 'model.json'));
    const input = tf.randomUniform([1, 224, 224, 3], 0, 1, 'float32', 1);
    const original = await tf.loadLayersModel(folderHandler(path.dirname(source)));
    const roundTripped = await tf.loadLayersModel(folderHandler(path.join(dir, 'back')));
    assert.deepEqual(predict(roundTripped, input), predict(original, input));
  });

  test('SSD7 (save_weights, no config) becomes weights named as tfjs-layers looks them up, said to be weights-only', async () => {
    const out = path.join(tempDir(), 'ssd7');
    const note = convert(path.join(CORPUS, 'keras-h5/ssd7-2cls-weights/ssd7_weights.h5'), path.join(out, 'model.json'));
    assert.match(note, /weights-only TF\.js weights: .* has no Keras model config/);
    const json = JSON.parse(fs.readFileSync(path.join(out, 'model.json'), 'utf8'));
    assert.equal(json.modelTopology, undefined);
    // A tfjs model with SSD7's first layers takes its weights by name from the written manifest.
    const model = tf.sequential({ layers: [
      tf.layers.conv2d({ inputShape: [32, 32, 3], filters: 32, kernelSize: 5, name: 'conv1' }),
      tf.layers.batchNormalization({ name: 'bn1' }),
    ] });
    const artifacts = await folderHandler(out).load!();
    const weights = tf.io.decodeWeights(artifacts.weightData as ArrayBuffer, artifacts.weightSpecs!);
    model.loadWeights(Object.fromEntries(Object.entries(weights).filter(([name]) => /^(conv1|bn1)\//.test(name))));
    const dict = await open(path.join(CORPUS, 'keras-h5/ssd7-2cls-weights/ssd7_weights.h5'));
    try {
      const bytes = await dict.tensors.find((t) => t.name === 'bn1.moving_variance')!.read();
      assert.deepEqual(Array.from(model.getLayer('bn1').getWeights()[3]!.dataSync()), Array.from(new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4)));
    } finally {
      await dict.close();
    }
  });

  test('.h5 output keeps the source\'s model_config, training_config, keras_version and backend', { skip: NO_H5PY }, () => {
    const source = path.join(CORPUS, 'keras-h5/keras38-legacy-h5-churn/model.h5');
    const out = path.join(tempDir(), 'churn.h5');
    convert(source, out);
    const attrs = (file: string) => JSON.parse(python(`
import h5py, json, sys
f = h5py.File(sys.argv[1])
print(json.dumps({k: (json.loads(v) if k.endswith('_config') else v) for k, v in f.attrs.items()}))`, file));
    assert.deepEqual(attrs(out), attrs(source));
    const hashes = (file: string) => JSON.parse(runCli(['inspect', '--json', '--hash', file]).stdout).tensors.map((t: { name: string; sha256: string }) => [t.name, t.sha256]);
    assert.deepEqual(hashes(out), hashes(source));
  });

  test('apply into a Keras target writes the target\'s model config and version, with the source\'s values', { skip: NO_H5PY }, () => {
    const dir = tempDir();
    const target = path.join(CORPUS, 'keras-h5/keras3-legacy-h5-adam/model.h5');
    const plan = path.join(dir, 'plan.json');
    assert.equal(runCli(['plan', path.join(CORPUS, 'keras-v3/keras311-mlp-15cls-small/your_model2.keras'), target, '-o', plan]).status, 0);
    const r = runCli(['apply', plan, '-o', path.join(dir, 'applied.h5')]);
    assert.equal(r.status, 0, r.stderr);
    const attrs = (file: string) => python(`
import h5py, json, sys
config = lambda file: json.loads(h5py.File(file).attrs['model_config'])
print(h5py.File(sys.argv[1]).attrs['keras_version'], config(sys.argv[1]) == config(sys.argv[2]))`, file, target).trim();
    assert.equal(attrs(path.join(dir, 'applied.h5')), '3.1.1 True');
  });

  test('.weights.h5 output is in the Keras 3 layout and reads back with the same values', { skip: NO_H5PY }, () => {
    const source = path.join(CORPUS, 'keras-h5/keras3-legacy-h5-adam/model.h5');
    const out = path.join(tempDir(), 'model.weights.h5');
    convert(source, out);
    const paths = JSON.parse(python(`
import h5py, json, sys
f = h5py.File(sys.argv[1]); paths = []
f.visititems(lambda n, o: paths.append(n))
print(json.dumps(paths))`, out));
    assert.deepEqual(paths.filter((p: string) => p.startsWith('layers/dense')), [
      'layers/dense', 'layers/dense/vars', 'layers/dense/vars/0', 'layers/dense/vars/1',
      'layers/dense_1', 'layers/dense_1/vars', 'layers/dense_1/vars/0', 'layers/dense_1/vars/1',
      'layers/dense_2', 'layers/dense_2/vars', 'layers/dense_2/vars/0', 'layers/dense_2/vars/1',
      'layers/dense_3', 'layers/dense_3/vars', 'layers/dense_3/vars/0', 'layers/dense_3/vars/1',
    ]);
    assert.ok(paths.includes('vars') && paths.includes('layers/dropout_2/vars'));
    const values = (file: string) => JSON.parse(runCli(['inspect', '--json', '--hash', file]).stdout).tensors.map((t: { shape: number[]; sha256: string }) => [t.shape, t.sha256]);
    assert.deepEqual(values(out), values(source));
  });
});

describe('strip and filter of a layers model say what they wrote', () => {
  test('stripping a TF.js layers model drops its topology, with a note, instead of a model tfjs cannot load', async () => {
    const dir = tempDir();
    await saveTfjs(sequentialMlp(), path.join(dir, 'tfjs'));
    const r = runCli(['strip', path.join(dir, 'tfjs'), '--exclude', 'out.*', '-o', path.join(dir, 'stripped')]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /note: weights-only TF\.js weights, without the model config: 2 weight\(s\) of the model are not written \(out\.kernel, out\.bias\)/);
    const json = JSON.parse(fs.readFileSync(path.join(dir, 'stripped', 'model.json'), 'utf8'));
    assert.equal(json.modelTopology, undefined);
    assert.equal(json.format, undefined);
    assert.deepEqual(json.weightsManifest[0].weights.map((w: { name: string }) => w.name), ['hidden/kernel', 'hidden/bias']);
  });

  test('a filter that keeps every weight keeps the model, which still loads', async () => {
    const dir = tempDir();
    const source = sequentialMlp();
    await saveTfjs(source, path.join(dir, 'tfjs'));
    const r = runCli(['filter', path.join(dir, 'tfjs'), '--include', '.*', '-o', path.join(dir, 'all')]);
    assert.equal(r.status, 0, r.stderr);
    const input = tf.randomUniform([2, 4], -1, 1, 'float32', 5);
    assertClose(predict(await tf.loadLayersModel(folderHandler(path.join(dir, 'all'))), input), predict(source, input), 'filtered');
  });

  test('stripping a Keras full model writes a save_weights file, said in a note', { skip: !HAS_CORPUS && 'no ../shared/corpus' }, async () => {
    const out = path.join(tempDir(), 'stripped.h5');
    const r = runCli(['strip', path.join(CORPUS, 'keras-h5/keras38-legacy-h5-churn/model.h5'), '--exclude', 'dense_2.*', '-o', out]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /note: weights-only Keras HDF5, without the model config: 2 weight\(s\) of the model are not written/);
    const dict = await open(out);
    try {
      assert.equal(dict.metadata.layout, 'keras-h5-weights');
      assert.equal(dict.kerasModel, undefined);
      assert.equal(dict.metadata.kerasVersion, '3.8.0');
    } finally {
      await dict.close();
    }
  });

  test('a .keras output of weights without a model config is refused, naming what to write instead', { skip: !HAS_CORPUS && 'no ../shared/corpus' }, () => {
    const dir = tempDir();
    const r = runCli(['convert', path.join(CORPUS, 'keras-h5/ssd7-2cls-weights/ssd7_weights.h5'), path.join(dir, 'out.keras')]);
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /a \.keras file is a whole model, but .* has no Keras model config; write \.weights\.h5 or \.h5/);
    assert.equal(fs.existsSync(path.join(dir, 'out.keras')), false);
  });
});

describe('Keras 3 layers beyond Dense and Conv: TF.js → .keras → TF.js predicts the same', () => {
  /** Embedding, LSTM, GRU, a Bidirectional SimpleRNN, a TimeDistributed Dense, LayerNormalization and PReLU. */
  function sequenceModel(): tf.LayersModel {
    const model = tf.sequential({ name: 'sequences', layers: [
      tf.layers.embedding({ inputDim: 12, outputDim: 4, inputLength: 5, name: 'tokens' }),
      tf.layers.lstm({ units: 6, returnSequences: true, name: 'lstm' }),
      tf.layers.gru({ units: 5, returnSequences: true, name: 'gru' }),
      tf.layers.bidirectional({ layer: tf.layers.simpleRNN({ units: 3, returnSequences: true, name: 'rnn' }), name: 'both_ways' }),
      tf.layers.timeDistributed({ layer: tf.layers.dense({ units: 4, name: 'per_step' }), name: 'steps' }),
      tf.layers.layerNormalization({ name: 'norm' }),
      tf.layers.prelu({ name: 'prelu' }),
    ] });
    model.setWeights(model.getWeights().map((w, i) => tf.randomNormal(w.shape, 0, 0.5, 'float32', 20 + i)));
    return model;
  }

  /** Conv2DTranspose, DepthwiseConv2D, SeparableConv2D and PReLU over an image. */
  function convModel(): tf.LayersModel {
    const model = tf.sequential({ name: 'convs', layers: [
      tf.layers.conv2dTranspose({ filters: 4, kernelSize: 3, strides: 2, inputShape: [5, 5, 3], name: 'up' }),
      tf.layers.depthwiseConv2d({ kernelSize: 3, depthMultiplier: 2, name: 'depthwise' }),
      tf.layers.separableConv2d({ filters: 3, kernelSize: 3, name: 'separable' }),
      tf.layers.prelu({ name: 'prelu' }),
      tf.layers.globalAveragePooling2d({ name: 'pool' }),
      tf.layers.dense({ units: 2, name: 'head' }),
    ] });
    model.setWeights(model.getWeights().map((w, i) => tf.randomNormal(w.shape, 0, 0.5, 'float32', 40 + i)));
    return model;
  }

  const cases: [string, () => tf.LayersModel, () => tf.Tensor][] = [
    ['recurrent and embedding layers', sequenceModel, () => tf.randomUniform([3, 5], 0, 12, 'int32', 8).cast('float32')],
    ['transposed, depthwise and separable convolutions', convModel, () => tf.randomUniform([2, 5, 5, 3], -1, 1, 'float32', 9)],
  ];
  for (const [what, make, input] of cases) for (const ext of ['keras', 'h5']) {
    test(`${what} through .${ext}: every weight named as Keras and tfjs-layers place it`, async () => {
      const dir = tempDir();
      const source = make();
      const x = input();
      await saveTfjs(source, path.join(dir, 'tfjs'));
      convert(path.join(dir, 'tfjs'), path.join(dir, `model.${ext}`));
      const dict = await open(path.join(dir, `model.${ext}`));
      try {
        assert.deepEqual(dict.tensors.map((t) => t.name).sort(), source.weights.map((w) => w.originalName.replace(/\//g, '.')).sort());
      } finally {
        await dict.close();
      }
      const note = convert(path.join(dir, `model.${ext}`), path.join(dir, 'back', 'model.json'));
      assert.doesNotMatch(note, /weights-only/);
      const loaded = await tf.loadLayersModel(folderHandler(path.join(dir, 'back')));
      assert.deepEqual(predict(loaded, x), predict(source, x));
    });
  }

  test('the .keras keeps recurrent weights in their cells, as Keras 3 saves them', { skip: NO_H5PY }, async () => {
    const dir = tempDir();
    await saveTfjs(sequenceModel(), path.join(dir, 'tfjs'));
    convert(path.join(dir, 'tfjs'), path.join(dir, 'model.keras'));
    const paths = JSON.parse(python(`
import h5py, io, json, sys, zipfile
w = h5py.File(io.BytesIO(zipfile.ZipFile(sys.argv[1]).read('model.weights.h5')))
paths = []
w.visititems(lambda n, o: paths.append(n) if isinstance(o, h5py.Dataset) or n.endswith('/vars') else None)
print(json.dumps(sorted(paths)))`, path.join(dir, 'model.keras')));
    assert.deepEqual(paths.filter((p: string) => /^layers\/(lstm|bidirectional|time_distributed)/.test(p)), [
      'layers/bidirectional/backward_layer/cell/vars', 'layers/bidirectional/backward_layer/cell/vars/0', 'layers/bidirectional/backward_layer/cell/vars/1', 'layers/bidirectional/backward_layer/cell/vars/2',
      'layers/bidirectional/backward_layer/vars',
      'layers/bidirectional/forward_layer/cell/vars', 'layers/bidirectional/forward_layer/cell/vars/0', 'layers/bidirectional/forward_layer/cell/vars/1', 'layers/bidirectional/forward_layer/cell/vars/2',
      'layers/bidirectional/forward_layer/vars',
      'layers/bidirectional/vars',
      'layers/lstm/cell/vars', 'layers/lstm/cell/vars/0', 'layers/lstm/cell/vars/1', 'layers/lstm/cell/vars/2', 'layers/lstm/vars',
      'layers/time_distributed/layer/vars', 'layers/time_distributed/layer/vars/0', 'layers/time_distributed/layer/vars/1', 'layers/time_distributed/vars',
    ]);
  });

  test('a layer tfjs-layers does not have makes TF.js weights-only output, said in the note', { skip: NO_H5PY }, async () => {
    const dir = tempDir();
    await saveTfjs(sequentialMlp(), path.join(dir, 'tfjs'));
    convert(path.join(dir, 'tfjs'), path.join(dir, 'model.h5'));
    // The hidden layer becomes a MultiHeadAttention in the config (Keras has it; tfjs-layers does not).
    python(`
import h5py, json, sys
f = h5py.File(sys.argv[1], 'r+')
config = json.loads(f.attrs['model_config'])
for layer in config['config']['layers']:
    if layer['config']['name'] == 'hidden': layer['class_name'] = 'MultiHeadAttention'
f.attrs['model_config'] = json.dumps(config)`, path.join(dir, 'model.h5'));
    const note = convert(path.join(dir, 'model.h5'), path.join(dir, 'back', 'model.json'));
    assert.match(note, /weights-only TF\.js weights, without the model config: tfjs-layers does not support MultiHeadAttention layers/);
    const json = JSON.parse(fs.readFileSync(path.join(dir, 'back', 'model.json'), 'utf8'));
    assert.equal(json.modelTopology, undefined);
    assert.deepEqual(json.weightsManifest[0].weights.map((w: { name: string }) => w.name), ['hidden/kernel', 'hidden/bias', 'out/kernel', 'out/bias']);
  });

  test("a GRU with Keras 3's default reset_after=true, which tfjs-layers refuses, makes TF.js weights-only output", { skip: NO_H5PY }, async () => {
    const dir = tempDir();
    await saveTfjs(tf.sequential({ layers: [tf.layers.gru({ units: 3, inputShape: [4, 2], name: 'gru' })] }), path.join(dir, 'tfjs'));
    convert(path.join(dir, 'tfjs'), path.join(dir, 'model.h5'));
    python(`
import h5py, json, sys
f = h5py.File(sys.argv[1], 'r+')
config = json.loads(f.attrs['model_config'])
config['config']['layers'][-1]['config']['reset_after'] = True
f.attrs['model_config'] = json.dumps(config)`, path.join(dir, 'model.h5'));
    const note = convert(path.join(dir, 'model.h5'), path.join(dir, 'back', 'model.json'));
    assert.match(note, /tfjs-layers does not support GRUs with reset_after=true \(Keras 3's default\)/);
  });
});
