// Writes the PaddlePaddle and PyTorch samples in samples/ from the ONNX ones (scripts/make-samples.js)
// with ckpt's own code, no Python or framework needed. Deterministic: running it again gives
// identical bytes (a test checks that, and that torch.load and pickle + numpy read them).
//
//   detector-90.pdparams, detector-92.pdparams
//       what `paddle.save(model.state_dict(), …)` writes for the detector: a dict of numpy arrays
//       under the ONNX names (Paddle conv weights are OIHW too), plus Paddle's
//       `StructuredToParameterName@@` table (`backbone.conv1.weight` → `conv2d_0.w_0`).
//   detector-90-train.pth
//       a training checkpoint as people download them: what
//       `torch.save({'epoch': 120, 'state_dict': DataParallel(model).state_dict(),
//       'optimizer': SGD(momentum=0.9).state_dict()}, 'detector-90-train.pth')` writes in torch's
//       zip format — `module.`-prefixed weights (with the `_metadata` torch keeps on a state dict),
//       and one momentum buffer per parameter (deterministic pseudo-random values).
//
// Run after `npm run build` and the ONNX samples: node scripts/make-checkpoint-samples.js [out-folder]
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { open } from '../dist/src/index.js';
import { PickleWriter } from '../dist/src/core/pickle-write.js';
import { ZipWriter } from '../dist/src/core/zip.js';
import { writePaddle } from '../dist/src/formats/paddle/write.js';
import { pickleTensor } from '../dist/src/formats/pytorch/write.js';
import { random } from './sample-network.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** The ONNX sample's weights, in file order, each read once: { name, shape, bytes }. */
async function onnxWeights(classes) {
  const dict = await open(path.join(root, 'samples', `detector-${classes}.onnx`));
  try {
    const weights = [];
    for (const t of dict.tensors) {
      if (t.dtype !== 'float32') throw new Error(`${t.name} is ${t.dtype}; the samples are float32`);
      weights.push({ name: t.name, shape: t.shape, bytes: Buffer.from(await t.read()), tensor: t });
    }
    return { dict, weights };
  } catch (err) {
    await dict.close();
    throw err;
  }
}

/** Paddle's parameter names for the detector's three conv layers, in creation order. */
function paddleParameterNames(weights) {
  const layers = [...new Set(weights.map((w) => w.name.replace(/\.(weight|bias)$/, '')))];
  return Object.fromEntries(weights.map((w) => {
    const layer = layers.indexOf(w.name.replace(/\.(weight|bias)$/, ''));
    return [w.name, `conv2d_${layer}.${w.name.endsWith('.weight') ? 'w' : 'b'}_0`];
  }));
}

async function writePdparams(classes, file) {
  const { dict, weights } = await onnxWeights(classes);
  try {
    // writePaddle keeps the name table of a Paddle source: give it the one paddle.save would write.
    const source = { ...dict, format: 'paddle', metadata: { structuredToParameterName: paddleParameterNames(weights) } };
    await writePaddle(file, weights.map((w) => ({ name: w.name, tensor: w.tensor })), source);
  } finally {
    await dict.close();
  }
}

/** A dict of `entries` ([key, write-value] pairs) on the stack, set in CPython's batches. */
function pickleDict(p, entries) {
  p.emptyDict();
  const next = p.items(entries.length);
  for (const [key, write] of entries) {
    p.value(key);
    write();
    next();
  }
}

/** Small deterministic momentum buffers: SGD's running average of gradients, one per parameter. */
function momentumBuffer(index, shape) {
  const next = random(0x5eed1000 + index);
  const bytes = Buffer.alloc(4 * shape.reduce((n, d) => n * d, 1));
  for (let i = 0; i < bytes.length; i += 4) bytes.writeFloatLE((next() * 2 - 1) * 0.01, i);
  return bytes;
}

/**
 * data.pkl of `{'epoch', 'state_dict', 'optimizer'}` as torch.save pickles it: the state dict an
 * OrderedDict of `module.<name>` tensors with its `_metadata` (one entry per module, DataParallel
 * first) set by BUILD; storages numbered in the order the pickle reaches them.
 */
function trainingCheckpointPickle(weights, epoch) {
  const parts = [];
  const p = new PickleWriter((bytes) => parts.push(Buffer.from(bytes)));
  const layers = [...new Set(weights.map((w) => w.name.replace(/\.(weight|bias)$/, '')))];
  const modules = ['', 'module', ...new Set(layers.flatMap((l) => l.split('.').map((_, i, a) => `module.${a.slice(0, i + 1).join('.')}`)))];
  const momentum = weights.map((w, i) => momentumBuffer(i, w.shape));
  const SGD = [['lr', 0.01], ['momentum', 0.9], ['dampening', 0], ['weight_decay', 0.0005], ['nesterov', false], ['maximize', false], ['foreach', null], ['differentiable', false]];
  p.proto(2);
  pickleDict(p, [
    ['epoch', () => p.value(epoch)],
    ['state_dict', () => {
      p.global('collections', 'OrderedDict');
      p.value([]);
      p.reduce();
      const next = p.items(weights.length);
      weights.forEach((w, key) => {
        p.unicode(`module.${w.name}`);
        pickleTensor(p, key, { dtype: 'float32', shape: w.shape });
        next();
      });
      pickleDict(p, [['_metadata', () => {
        p.global('collections', 'OrderedDict');
        p.value([]);
        p.reduce();
        const nextModule = p.items(modules.length);
        for (const m of modules) {
          p.unicode(m);
          pickleDict(p, [['version', () => p.value(1)]]);
          nextModule();
        }
      }]]);
      p.build();
    }],
    ['optimizer', () => pickleDict(p, [
      ['state', () => pickleDict(p, weights.map((w, i) => [i, () => pickleDict(p, [['momentum_buffer', () => pickleTensor(p, weights.length + i, { dtype: 'float32', shape: w.shape })]])]))],
      ['param_groups', () => {
        p.emptyList();
        const next = p.appends(1);
        pickleDict(p, [
          ...SGD.map(([k, v]) => [k, () => p.value(v)]), // 0.01 → float, 0 → int, as Python has them
          ['params', () => {
            p.emptyList();
            const nextId = p.appends(weights.length);
            weights.forEach((_, i) => {
              p.value(i);
              nextId();
            });
          }],
        ]);
        next();
      }],
    ])],
  ]);
  p.stop();
  return { pkl: Buffer.concat(parts), storages: [...weights.map((w) => w.bytes), ...momentum] };
}

/** torch's zip container: stored members under `<file stem>/`, 64-byte aligned, as writePytorch lays them out. */
async function writeTrainingCheckpoint(classes, file) {
  const { dict, weights } = await onnxWeights(classes);
  await dict.close();
  const { pkl, storages } = trainingCheckpointPickle(weights, 120);
  const prefix = path.basename(file).replace(/\.[^.]*$/, '');
  const chunks = [];
  const zip = new ZipWriter((bytes) => chunks.push(Buffer.from(bytes)), 64);
  zip.add(`${prefix}/data.pkl`, [pkl]);
  zip.add(`${prefix}/byteorder`, [Buffer.from('little')]);
  storages.forEach((bytes, key) => zip.add(`${prefix}/data/${key}`, [bytes]));
  zip.add(`${prefix}/version`, [Buffer.from('3\n')]);
  zip.finish();
  fs.writeFileSync(file, Buffer.concat(chunks));
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const out = process.argv[2] ?? path.join(root, 'samples');
  fs.mkdirSync(out, { recursive: true });
  const written = [];
  for (const classes of [90, 92]) {
    const file = path.join(out, `detector-${classes}.pdparams`);
    await writePdparams(classes, file);
    written.push(file);
  }
  const train = path.join(out, 'detector-90-train.pth');
  await writeTrainingCheckpoint(90, train);
  written.push(train);
  for (const file of written) console.log(`wrote ${path.relative(process.cwd(), file)}`);
}
