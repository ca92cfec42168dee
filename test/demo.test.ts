import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { ROOT } from './helpers.js';

test('the README\'s demo runs end to end on the shipped samples', () => {
  const r = spawnSync(process.execPath, [path.join(ROOT, 'scripts', 'demo.js')], { encoding: 'utf8', timeout: 300_000 });
  assert.equal(r.status, 0, r.stdout.slice(-3000) + r.stderr);
  assert.match(r.stdout, /demo: all steps ran/);
  assert.match(r.stdout, /strip: samples\/detector-90\.pdparams: wrote \$OUT\/backbone\.pdparams \(paddle\): kept 4 of 6 tensors/);
  assert.match(r.stdout, /A: samples\/detector-90-train\.pth \(pytorch\)\nB: samples\/detector-90\.onnx \(onnx\)\nA: 6 tensors, B: 6; matched 6 .*→ equal/);
  assert.match(r.stdout, /plan \$OUT\/pth-plan\.json: 98\.4% of parameters loaded/);
  assert.match(r.stdout, /trained fc1\.weight, fc2\.weight on (cpu|cuda): held-out accuracy \d+\.\d% — old digits 0-7 \d+\.\d%, new digits 8-9 \d+\.\d%/);
});
