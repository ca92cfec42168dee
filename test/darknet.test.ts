import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { open } from '../src/index.js';
import { seededRandom } from '../src/core/random.js';
import { CkptError } from '../src/core/errors.js';
import { darknetWriter } from '../src/formats/darknet/write.js';
import { safetensorsWriter } from '../src/formats/safetensors/write.js';
import type { StateDict } from '../src/core/statedict.js';
import { CORPUS, HAS_CORPUS, loadOutcome, runCli, tempDir } from './helpers.js';
import { refusal } from './refusal.js';


/** Writes `dict`'s tensors (all, or those `keep` selects) as darknet weights to `out`. */
async function writeWeights(dict: StateDict, out: string, keep = (_: string) => true) {
  return darknetWriter.write(out, dict.tensors.filter((t) => keep(t.name)).map((tensor) => ({ name: tensor.name, tensor })), dict);
}

/**
 * Darknet: the .cfg alone says which arrays the .weights holds, in which order. A small network
 * with every weighted layer kind and the weightless ones that change channel counts between them.
 */
const CFG = `[net]
# comments and blank lines are skipped
width=8
height=8
channels=3

[convolutional]
batch_normalize=1
filters=4
size=3
stride=1
pad=1
activation=leaky

[maxpool]
size=2
stride=2

[convolutional]
filters=4
size=3
groups=4
pad=1
batch_normalize=1

[route]
layers=-1,-3

[shortcut]
from=-2

[convolutional]
filters=18
size=1
activation=linear

[yolo]
mask = 0,1,2
anchors = 10,14,  23,27,  37,58
classes=1
num=3

[route]
layers=-3

[batchnorm]

[connected]
output=5
`;

/** Layer, field and element count of every array, in file order, as darknet's load_weights reads them. */
const ARRAYS: [string, number[]][] = [
  ['layers.0.biases', [4]], ['layers.0.scales', [4]], ['layers.0.rolling_mean', [4]], ['layers.0.rolling_variance', [4]], ['layers.0.weights', [4, 3, 3, 3]],
  ['layers.2.biases', [4]], ['layers.2.scales', [4]], ['layers.2.rolling_mean', [4]], ['layers.2.rolling_variance', [4]], ['layers.2.weights', [4, 1, 3, 3]],
  ['layers.5.biases', [18]], ['layers.5.weights', [18, 8, 1, 1]],
  ['layers.8.scales', [8]], ['layers.8.rolling_mean', [8]], ['layers.8.rolling_variance', [8]],
  ['layers.9.biases', [5]], ['layers.9.weights', [5, 8 * 4 * 4]],
];
const numel = (shape: number[]) => shape.reduce((a, b) => a * b, 1);
const TOTAL = ARRAYS.reduce((n, [, s]) => n + numel(s), 0);

function header(major: number, minor: number, revision: number, seen: number): Buffer {
  const wide = major * 10 + minor >= 2;
  const b = Buffer.alloc(wide ? 20 : 16);
  [major, minor, revision].forEach((v, i) => b.writeInt32LE(v, i * 4));
  if (wide) b.writeBigUInt64LE(BigInt(seen), 12);
  else b.writeUInt32LE(seen, 12);
  return b;
}

/** Values 0, 1, 2 … across the whole file, so each array's first value is its offset in floats. */
function network(dir = tempDir(), options: { cfg?: string; head?: Buffer; floats?: number } = {}): string {
  const cfg = path.join(dir, 'net.cfg');
  fs.writeFileSync(cfg, options.cfg ?? CFG);
  const values = Float32Array.from({ length: options.floats ?? TOTAL }, (_, i) => i);
  fs.writeFileSync(path.join(dir, 'net.weights'), Buffer.concat([options.head ?? header(0, 2, 5, 123456789012), Buffer.from(values.buffer)]));
  return cfg;
}

test('the cfg gives every array its name, shape and place; header and yolo heads are metadata', async () => {
  const dict = await open(network());
  try {
    assert.equal(dict.format, 'darknet');
    assert.deepEqual(dict.tensors.map((t) => [t.source, t.shape]), ARRAYS);
    let at = 0;
    for (const [i, t] of dict.tensors.entries()) {
      const values = new Float32Array((await t.read()).slice().buffer);
      assert.equal(values[0], at, t.source);
      at += numel(ARRAYS[i]![1]);
    }
    assert.deepEqual(dict.tensors.filter((t) => t.role === 'buffer').map((t) => t.source), ['layers.0.rolling_mean', 'layers.0.rolling_variance', 'layers.2.rolling_mean', 'layers.2.rolling_variance', 'layers.8.rolling_mean', 'layers.8.rolling_variance']);
    const meta = dict.metadata.darknet as { seen: number; version: number[]; yolo_heads: { layer: number; layout: string; tensor?: string; anchors: string }[] };
    assert.equal(meta.seen, 123456789012);
    assert.deepEqual(meta.version, [0, 2, 5]);
    assert.equal(meta.yolo_heads.length, 1);
    assert.deepEqual({ ...meta.yolo_heads[0], anchors: undefined }, { layer: 6, anchors: undefined, mask: '0,1,2', classes: '1', num: '3', layout: 'yolo:3', tensor: 'layers.5.weights' });
  } finally {
    await dict.close();
  }
});

test('a version 0.1 header has a 32-bit seen', async () => {
  const dict = await open(network(tempDir(), { head: header(0, 1, 0, 77) }));
  assert.equal((dict.metadata.darknet as { seen: number }).seen, 77);
  assert.equal(dict.tensors.length, ARRAYS.length);
  await dict.close();
});

test('weights that do not end where the cfg says are refused, naming the array or the offset', async () => {
  const short = runCli(['inspect', network(tempDir(), { floats: TOTAL - 1 })]);
  assert.equal(short.status, 3);
  assert.match(short.stderr, /net\.weights: tensor 'layers\.9\.weights' at offset \d+: needs 2560 bytes but the file ends at \d+ \(truncated/);
  const long = await refusal(network(tempDir(), { floats: TOTAL + 2 }));
  assert.equal(long.status, 3);
  assert.match(long.message, /net\.weights: offset \d+: 8 bytes after the last array net\.cfg implies/);
});

test('cfg errors name the line and layer', async () => {
  const cases: [string, RegExp][] = [
    [CFG.replace('[maxpool]', '[lstm]'), /line 15, layer 1 \[lstm\]: \[lstm\] layers are not supported/],
    [CFG.replace('[maxpool]', '[mystery]'), /unknown layer type \[mystery\]/],
    [CFG.replace('layers=-1,-3', 'layers=-1,7'), /layer 3 \[route\]: refers to layer '7', which is not an earlier layer/],
    [CFG.replace('filters=4\nsize=3\ngroups=4', 'filters=4\nsize=3\ngroups=3'), /4 input channels do not divide into groups=3/],
    [CFG.replace('filters=18', 'filters=eighteen'), /filters=eighteen is not an integer/],
    [CFG.replace('[shortcut]\nfrom=-2', '[shortcut]\nfrom=-2\nweights_type=per_channel'), /weighted shortcuts \(weights_type=per_channel\) are not supported/],
    [CFG.replace('stride=2\n', 'stride=2\nthis line has no equals sign\n'), /line \d+: expected '\[section\]' or 'key=value'/],
  ];
  for (const [cfg, message] of cases) {
    const r = await refusal(network(tempDir(), { cfg }));
    assert.equal(r.status, 3, r.message);
    assert.match(r.message, message);
  }
});

test('a transposed-weights header (major or minor over 1000) is refused by name', async () => {
  const r = await refusal(network(tempDir(), { head: header(0, 1001, 0, 0) }));
  assert.equal(r.status, 3);
  assert.match(r.message, /header: version 0\.1001\.0 marks transposed connected weights/);
});

test('the .weights must be a regular file inside the folder: a missing one or a symlink out of it is refused', async () => {
  const dir = tempDir();
  const cfg = network(dir);
  fs.rmSync(path.join(dir, 'net.weights'));
  const missing = await refusal(cfg);
  assert.equal(missing.status, 4);
  assert.match(missing.message, /net\.weights/);
  const elsewhere = network(tempDir());
  fs.symlinkSync(path.join(path.dirname(elsewhere), 'net.weights'), path.join(dir, 'net.weights'));
  const linked = await refusal(cfg);
  assert.equal(linked.status, 3);
  assert.match(linked.message, /weights file: file path 'net\.weights' is a symbolic link/);
});

test('convert writes darknet weights byte for byte, from darknet or any format with the cfg beside the output', async () => {
  const cfg = network();
  const dir = tempDir();
  const same = path.join(dir, 'net.weights');
  assert.equal(runCli(['convert', cfg, same]).status, 0);
  assert.deepEqual(fs.readFileSync(same), fs.readFileSync(cfg.replace(/\.cfg$/, '.weights')));

  // Through safetensors and back: the cfg named after the output gives the layout; the header is 0.2.5 with seen 0.
  const st = path.join(dir, 'net.safetensors');
  const darknet = await open(cfg);
  await safetensorsWriter.write(st, darknet.tensors.map((tensor) => ({ name: tensor.name, tensor })), darknet);
  await darknet.close();
  const other = tempDir();
  fs.copyFileSync(cfg, path.join(other, 'back.cfg'));
  const back = path.join(other, 'back.weights');
  const fromSafetensors = await open(st);
  assert.deepEqual((await writeWeights(fromSafetensors, back)).notes, []);
  await fromSafetensors.close();
  const original = fs.readFileSync(same);
  assert.deepEqual(fs.readFileSync(back).subarray(20), original.subarray(20));
  assert.deepEqual([...fs.readFileSync(back).subarray(0, 20)], [...header(0, 2, 5, 0)]);
});

test('weights written under another name get their cfg beside them, so they open as the same network', async () => {
  const cfg = network();
  const dir = tempDir();
  const renamed = path.join(dir, 'tuned.weights');
  const dict = await open(cfg);
  try {
    assert.deepEqual((await writeWeights(dict, renamed)).notes, [`wrote the network definition beside the weights: ${path.join(dir, 'tuned.cfg')} (a copy of ${cfg})`]);
    assert.deepEqual(fs.readFileSync(path.join(dir, 'tuned.cfg')), fs.readFileSync(cfg));
    // Written again: the cfg there is the same network, nothing to say.
    assert.deepEqual((await writeWeights(dict, renamed)).notes, []);
    fs.writeFileSync(path.join(dir, 'tuned.cfg'), CFG.replace('filters=18', 'filters=12'));
    assert.match((await writeWeights(dict, renamed)).notes.join('\n'), /tuned\.cfg' is another network than the one the weights are for/);
  } finally {
    await dict.close();
  }
  const reopened = await open(path.join(dir, 'tuned.cfg')).then(() => 'opened', (e: unknown) => (e as CkptError).exitCode);
  assert.equal(reopened, 3, 'the other network does not take these weights');
});

test('the writer refuses what the cfg cannot hold: missing arrays, other shapes, no cfg', async () => {
  const cfg = network();
  const dir = tempDir();
  const dict = await open(cfg);
  const refused = async (out: string, keep?: (name: string) => boolean) => {
    const err = await writeWeights(dict, out, keep).then(() => undefined, (e: unknown) => e);
    assert.ok(err instanceof CkptError && err.exitCode === 2, String(err));
    return err.message;
  };
  try {
    assert.match(await refused(path.join(dir, 'net.weights'), (name) => !name.startsWith('layers.9.')), /needs all 17 arrays in the \.weights file; missing 2: layers\.9\.biases, layers\.9\.weights/);
    fs.writeFileSync(path.join(dir, 'narrow.cfg'), CFG.replace('filters=18', 'filters=12'));
    const safetensors = { ...dict, format: 'safetensors' };
    const err = await darknetWriter.write(path.join(dir, 'narrow.weights'), dict.tensors.map((tensor) => ({ name: tensor.name, tensor })), safetensors).then(() => undefined, (e: unknown) => e);
    assert.match(String(err), /'layers\.5\.biases' is \[18\]; narrow\.cfg implies \[12\]/);
    const noCfg = await darknetWriter.write(path.join(dir, 'y.weights'), [], safetensors).then(() => undefined, (e: unknown) => e);
    assert.match(String(noCfg), /needs the network's \.cfg: '.*y\.cfg' does not exist/);
  } finally {
    await dict.close();
  }
  assert.deepEqual(['net.weights', 'narrow.weights', 'y.weights'].filter((f) => fs.existsSync(path.join(dir, f))), []);
});

test('mutated cfgs and weights each open or fail with exit 3/4, never a crash (fixed seed)', async () => {
  const next = seededRandom(7);
  const lines = CFG.split('\n');
  for (let i = 0; i < 100; i++) {
    const dir = tempDir();
    const mutated = [...lines];
    const at = Math.floor(next() * mutated.length);
    const kind = next();
    if (kind < 0.3) mutated.splice(at, 1);
    else if (kind < 0.6) mutated[at] = mutated[at]!.replace(/\d+/, String(Math.floor(next() * 40) - 10));
    else if (kind < 0.8) mutated.splice(at, 0, mutated[Math.floor(next() * mutated.length)]!);
    else mutated[at] = mutated[at]!.slice(0, Math.floor(next() * mutated[at]!.length));
    const cfg = network(dir, { cfg: mutated.join('\n'), floats: Math.floor(next() * TOTAL * 1.2) });
    const outcome = await loadOutcome(cfg);
    assert.ok(outcome === 'ok' || outcome === 3 || outcome === 4, `${cfg}: ${outcome}`);
  }
});

const corpusModel = path.join(CORPUS, 'darknet', 'yolo-fastest-coco', 'yolo-fastest.cfg');
test('corpus: Yolo-Fastest weights written back are byte-identical; its two yolo heads are 3 × (5 + 80) rows', { skip: !HAS_CORPUS && 'no ../shared/corpus' }, async () => {
  const out = path.join(tempDir(), 'yolo-fastest.weights');
  const dict = await open(corpusModel);
  await writeWeights(dict, out);
  assert.deepEqual(fs.readFileSync(out), fs.readFileSync(corpusModel.replace(/\.cfg$/, '.weights')));
  const heads = (dict.metadata.darknet as { yolo_heads: { layout: string; tensor: string }[] }).yolo_heads;
  await dict.close();
  assert.deepEqual(heads.map((h) => h.layout), ['yolo:3', 'yolo:3']);
  for (const h of heads) assert.equal(dict.tensors.find((t) => t.source === h.tensor)!.shape[0], 255);
});
