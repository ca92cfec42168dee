import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { open } from '../src/index.js';
import { runCli, tempDir } from './helpers.js';
import { startServer, tar, type TestServer } from './http-fixture.js';

/**
 * PaddleDetection 1.x pretrained weights: a fluid persistables folder (one LoDTensor file per
 * variable, no program), shipped as `faster_rcnn_r50_1x.tar`. Its transfer-learning guide passes
 * that tar by URL; `ckpt strip URL --preset faster-rcnn` must work the same way.
 */

/** A LoDTensor file as fluid's save_persistables writes it: versions, no LoD, a TensorDesc, float32 values. */
function lodTensor(dims: number[], values: number[]): Buffer {
  const varint = (n: number) => {
    const out: number[] = [];
    for (; n > 0x7f; n = Math.floor(n / 128)) out.push((n & 0x7f) | 0x80);
    out.push(n);
    return out;
  };
  const desc = Buffer.from([0x08, ...varint(5), ...dims.flatMap((d) => [0x10, ...varint(d)])]); // FP32 = 5, dims repeated
  const head = Buffer.alloc(20);
  head.writeUInt32LE(0, 0);
  head.writeBigUInt64LE(0n, 4);
  head.writeUInt32LE(0, 12);
  head.writeUInt32LE(desc.length, 16);
  return Buffer.concat([head, desc, Buffer.from(new Float32Array(values).buffer)]);
}

const variables: Record<string, [number[], number[]]> = {
  conv1_weights: [[2, 1, 1, 2], [1, 2, 3, 4]],
  bn_conv1_scale: [[2], [0.5, 0.25]],
  cls_score_w: [[3, 2], [1, 0, 0, 1, 1, 1]],
  bbox_pred_w: [[2, 2], [9, 8, 7, 6]],
};

const root = tempDir();
const folder = path.join(root, 'faster_rcnn_r50_1x');
fs.mkdirSync(folder);
for (const [name, [dims, values]] of Object.entries(variables)) fs.writeFileSync(path.join(folder, name), lodTensor(dims, values));
fs.writeFileSync(path.join(root, 'faster_rcnn_r50_1x.tar'), tar(Object.fromEntries(Object.entries(variables).map(([name, [dims, values]]) => [`faster_rcnn_r50_1x/${name}`, lodTensor(dims, values)]))));

test('a persistables folder opens as one tensor per file, named after it, values read in place', async () => {
  const dict = await open(folder);
  try {
    assert.equal(dict.format, 'paddle-persistables');
    assert.deepEqual(dict.tensors.map((t) => [t.name, t.dtype, [...t.shape]]), [
      ['bbox_pred_w', 'float32', [2, 2]], ['bn_conv1_scale', 'float32', [2]], ['cls_score_w', 'float32', [3, 2]], ['conv1_weights', 'float32', [2, 1, 1, 2]],
    ]);
    const scale = dict.tensors.find((t) => t.name === 'bn_conv1_scale')!;
    assert.deepEqual([...new Float32Array((await scale.read()).slice().buffer)], [0.5, 0.25]);
  } finally {
    await dict.close();
  }
});

test('a file that is not a LoDTensor in the folder is refused by name', () => {
  const broken = path.join(root, 'broken');
  fs.cpSync(folder, broken, { recursive: true });
  const file = path.join(broken, 'conv1_weights');
  fs.writeFileSync(file, fs.readFileSync(file).subarray(0, 30));
  const r = runCli(['inspect', broken]);
  assert.equal(r.status, 3, r.stderr);
  assert.match(r.stderr, /conv1_weights/);
});

const servers: TestServer[] = [];
after(async () => {
  for (const s of servers) await s.stop();
});

test("the guide's faster_rcnn_r50_1x.tar by URL: strip --preset faster-rcnn writes the backbone without the class heads", async () => {
  const s = await startServer({ root });
  servers.push(s);
  const out = path.join(tempDir(), 'backbone.safetensors');
  const r = runCli(['strip', `${s.url}/faster_rcnn_r50_1x.tar`, '--preset', 'faster-rcnn', '-o', out, '--json'], { XDG_CACHE_HOME: tempDir() });
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual((JSON.parse(r.stdout) as { removed: { name: string }[] }).removed.map((t) => t.name), ['bbox_pred_w', 'cls_score_w']);
  const written = await open(out);
  try {
    assert.deepEqual(written.tensors.map((t) => t.name), ['bn_conv1_scale', 'conv1_weights']);
  } finally {
    await written.close();
  }
});
