import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { applyPlan, check, open, plan, write } from '../src/index.js';
import { withValues, type TensorInfo } from '../src/core/statedict.js';
import { tempDir } from './helpers.js';

/**
 * A Darknet YOLO detector grown from 80 COCO classes to 82: the `[yolo]` sections of the cfg say
 * which convolutions feed the heads and their layout (3 anchors × (5 + classes)), so the plan
 * copies every anchor block's box, objectness and old class rows without a --head rule.
 */
const coco = '../shared/corpus/darknet/yolo-fastest-coco/yolo-fastest.cfg';
const HEADS = /^layers\.(114|124)\.(weights|biases)$/;

/** The 82-class network: its cfg, and weights of its shapes (new head rows all 0.01, as if never initialized). */
async function target82(folder: string): Promise<string> {
  const cfg = path.join(folder, 'detector-82.cfg');
  fs.writeFileSync(cfg, fs.readFileSync(coco, 'utf8').replace(/classes=80/g, 'classes=82').replace(/filters=255/g, 'filters=261'));
  await using source = await open(coco);
  const grown = source.tensors.map((t): TensorInfo => {
    if (!HEADS.test(t.name)) return t;
    const shape = [261, ...t.shape.slice(1)];
    const n = shape.reduce((a, b) => a * b, 1);
    return withValues(t, { shape, byteLength: n * 4, read: async () => new Uint8Array(new Float32Array(n).fill(0.01).buffer) });
  });
  // Written for the 82-class cfg: through another format, as a darknet source would bring its own cfg.
  const staged = path.join(folder, 'detector-82.safetensors');
  await write(source, staged, 'safetensors', grown);
  await using weights = await open(staged);
  await write(weights, path.join(folder, 'detector-82.weights'), 'darknet');
  return cfg;
}

test('80 → 82 classes: the YOLO heads expand anchor block by anchor block, from the cfg alone', { skip: !fs.existsSync(coco) && 'corpus absent' }, async () => {
  const folder = tempDir();
  const target = await target82(folder);
  const planned = await plan(coco, target);
  const heads = planned.entries.filter((e) => HEADS.test(e.target));
  assert.deepEqual(heads.map((e) => [e.target, e.action, e.expand?.blocks, e.expand?.sourceSize, e.expand?.targetSize]), [
    ['layers.114.biases', 'expand', 3, 255, 261], ['layers.114.weights', 'expand', 3, 255, 261],
    ['layers.124.biases', 'expand', 3, 255, 261], ['layers.124.weights', 'expand', 3, 255, 261],
  ].sort());
  assert.ok(heads.every((e) => /\(the \[yolo\] section of the cfg\)/.test(e.why ?? '')));
  assert.equal(planned.summary.loaded + planned.summary.expanded, planned.summary.targetTensors);

  // The target's never-initialized new rows are caught; --init normal draws new ones and passes.
  assert.equal((await check(planned)).ok, false);
  const drawn = await plan(coco, target, { init: 'normal' });
  const report = await check(drawn);
  assert.equal(report.ok, true, JSON.stringify(report.health.problems));

  // Old classes land in each anchor block: rows 0..84 of a block are the source's, 85 and 86 new.
  const out = path.join(folder, 'applied.weights');
  await applyPlan(drawn, out);
  fs.copyFileSync(target, path.join(folder, 'applied.cfg'));
  await using source = await open(coco);
  await using applied = await open(path.join(folder, 'applied.cfg'));
  const rows = async (t: TensorInfo) => new Float32Array((await t.read()).slice().buffer);
  const [was, now] = [await rows(source.tensors.find((t) => t.name === 'layers.124.biases')!), await rows(applied.tensors.find((t) => t.name === 'layers.124.biases')!)];
  for (const block of [0, 1, 2]) assert.deepEqual([...now.subarray(block * 87, block * 87 + 85)], [...was.subarray(block * 85, block * 85 + 85)]);
});
