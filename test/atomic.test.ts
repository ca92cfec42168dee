import { describe, test } from 'node:test';
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

describe('writeOnlyIf: the output is put in place only once its gate passes', () => {
  test('a gate that rejects leaves the old OUT, no temporary, and is the error thrown', async () => {
    const { writeAtomic, writeOnlyIf } = await import('../src/core/atomic.js');
    const { invalidInput } = await import('../src/core/errors.js');
    const dir = tempDir();
    const out = path.join(dir, 'out.bin');
    fs.writeFileSync(out, 'previous');
    const stale = invalidInput('plan.json', 'source', 'a.onnx changed since the plan was made');
    await assert.rejects(writeOnlyIf(Promise.reject(stale), () => writeAtomic(out, (fd) => { fs.writeSync(fd, 'new'); })), stale);
    assert.equal(fs.readFileSync(out, 'utf8'), 'previous');
    assert.deepEqual(fs.readdirSync(dir), ['out.bin']);
  });

  test('a gate still pending holds the rename: the write finishes, OUT appears only when the gate resolves', async () => {
    const { writeAtomic, writeOnlyIf } = await import('../src/core/atomic.js');
    const dir = tempDir();
    const out = path.join(dir, 'out.bin');
    let open!: () => void;
    const gate = new Promise<void>((resolve) => { open = resolve; });
    let written = false;
    const done = writeOnlyIf(gate, () => writeAtomic(out, (fd) => { fs.writeSync(fd, 'new'); written = true; }));
    for (let i = 0; i < 100 && !written; i++) await new Promise((r) => setTimeout(r, 1));
    await new Promise((r) => setTimeout(r, 20));
    assert.ok(written);
    assert.equal(fs.existsSync(out), false, 'not in place before the gate');
    open();
    await done;
    assert.equal(fs.readFileSync(out, 'utf8'), 'new');
  });

  test('a set of files (shards and their index) waits for the gate as one', async () => {
    const { writeOnlyIf } = await import('../src/core/atomic.js');
    const { writeFileSet } = await import('../src/core/fileset.js');
    const dir = tempDir();
    const members = ['a.bin', 'b.bin'].map((name) => ({ path: path.join(dir, name), write: (fd: number) => { fs.writeSync(fd, name); } }));
    await assert.rejects(writeOnlyIf(Promise.reject(new Error('stale')), () => writeFileSet(dir, members)), /stale/);
    assert.deepEqual(fs.readdirSync(dir), []);
    await writeOnlyIf(Promise.resolve(), () => writeFileSet(dir, members));
    assert.deepEqual(fs.readdirSync(dir).sort(), ['a.bin', 'b.bin']);
  });
});
