import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { ROOT, tempDir } from './helpers.js';

test('a write killed half-way leaves no partial output, no temporary, and the old OUT as it was', async () => {
  const dir = tempDir();
  const { writeBigOnnx } = await import(pathToFileURL(path.join(ROOT, 'bench', 'big-onnx.js')).href);
  const source = path.join(dir, 'big.onnx');
  writeBigOnnx(source, 256);
  const out = path.join(dir, 'out.safetensors');
  fs.writeFileSync(out, 'previous');
  const child = spawn(process.execPath, [path.join(ROOT, 'bin', 'ckpt.js'), 'convert', source, out], { stdio: 'ignore' });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code, signal) => resolve(code ?? (signal ? 128 : null))));
  // Kill as soon as the temporary output exists: the write is under way.
  for (let i = 0; i < 2000 && !fs.readdirSync(dir).some((f) => f.includes('.ckpt-')); i++) await new Promise((r) => setTimeout(r, 2));
  assert.ok(fs.readdirSync(dir).some((f) => f.includes('.ckpt-')), 'the write started');
  child.kill('SIGTERM');
  const code = await exited;
  assert.notEqual(code, 0);
  assert.equal(fs.readFileSync(out, 'utf8'), 'previous');
  assert.deepEqual(fs.readdirSync(dir).sort(), ['big.onnx', 'out.safetensors']);
});
