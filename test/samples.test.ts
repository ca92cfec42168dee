import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { ROOT, SAMPLES, tempDir } from './helpers.js';

const ONNX_SAMPLES = fs.readdirSync(SAMPLES).filter((f) => f.endsWith('.onnx')).sort();

test('the ONNX samples are exactly what scripts/make-samples.js generates', () => {
  const out = tempDir();
  const r = spawnSync(process.execPath, [path.join(ROOT, 'scripts', 'make-samples.js'), out], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(fs.readdirSync(out).sort(), ONNX_SAMPLES);
  for (const name of ONNX_SAMPLES) {
    assert.ok(fs.readFileSync(path.join(out, name)).equals(fs.readFileSync(path.join(SAMPLES, name))), `${name} differs`);
  }
});

for (const [name, classes] of [['detector-90.onnx', 90], ['detector-92.onnx', 92]] as const) {
  test(`onnxruntime-node loads and runs ${name}: ${3 * (5 + classes)} finite output channels`, async () => {
    const session = await ort.InferenceSession.create(path.join(SAMPLES, name), { executionProviders: ['cpu'] });
    const input = new ort.Tensor('float32', new Float32Array(3 * 64 * 64).map((_, i) => Math.sin(i)), [1, 3, 64, 64]);
    const { yolo_output: output } = await session.run({ images: input });
    assert.deepEqual(output!.dims, [1, 3 * (5 + classes), 16, 16]);
    assert.ok((output!.data as Float32Array).every(Number.isFinite));
    await session.release();
  });
}
