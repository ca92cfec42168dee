import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { float32Tensor } from '../src/formats/onnx/build.js';
import { encodeRaw, f32 } from './onnx-fixtures.js';
import { SAMPLES, runCli, tempDir, loadOutcome } from './helpers.js';

/**
 * Bad ONNX input of every kind must end in a CkptError with exit 3 (invalid input) or 4 (I/O):
 * never another exception, a crash or a hang. CKPT_FUZZ_ITERATIONS raises the mutation count.
 */
const ITERATIONS = Number(process.env.CKPT_FUZZ_ITERATIONS ?? 300);


/** A model exercising every container the reader walks: initializers, Constants, an If, a function. */
function richModel(): Uint8Array {
  return encodeRaw({
    irVersion: 8,
    producerName: 'fuzz',
    opsetImport: [{ domain: '', version: 17 }],
    graph: {
      name: 'rich',
      initializer: [float32Tensor('w', [2, 2], f32(1, 2, 3, 4)), { name: 'i', dataType: 7, dims: [3], int64Data: [1, -2, 3] }],
      node: [
        { opType: 'Constant', output: ['c'], attribute: [{ name: 'value_floats', type: 6, floats: [1, 2] }] },
        { opType: 'Gemm', input: ['x', 'w'], output: ['y'], attribute: [{ name: 'transB', type: 2, i: 1 }] },
        { opType: 'If', name: 'if', input: ['cond'], output: ['z'], attribute: [
          { name: 'then_branch', type: 5, g: { name: 't', initializer: [float32Tensor('b', [1], f32(5))] } },
        ] },
      ],
      input: [{ name: 'x', type: { tensorType: { elemType: 1, shape: { dim: [{ dimValue: 1 }, { dimValue: 2 }] } } } }],
    },
    functions: [{ name: 'f', node: [{ opType: 'Constant', output: ['fk'], attribute: [{ name: 'value_int', type: 2, i: 4 }] }] }],
  });
}

/** Deterministic PRNG so a failure can be replayed. */
function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s ^ (s >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0;
    return s / 4294967296;
  };
}

function mutate(bytes: Uint8Array, next: () => number): Uint8Array {
  const out = Array.from(bytes);
  const edits = 1 + Math.floor(next() * 4);
  for (let e = 0; e < edits; e++) {
    const at = Math.floor(next() * out.length);
    const kind = next();
    if (kind < 0.5) out[at] = Math.floor(next() * 256);
    else if (kind < 0.65) out[at] = out[at]! ^ 0x80; // flips varint continuation bits
    else if (kind < 0.8) out.splice(at, 1 + Math.floor(next() * 8));
    else if (kind < 0.9) out.splice(at, 0, ...Array.from({ length: 1 + Math.floor(next() * 8) }, () => Math.floor(next() * 256)));
    else out.splice(at, 0, 0xff, 0xff, 0xff, 0xff, 0x0f); // a huge length or dim
  }
  return new Uint8Array(out);
}

test('an empty file and random bytes are rejected with exit 3', async () => {
  const dir = tempDir();
  const empty = path.join(dir, 'empty.onnx');
  fs.writeFileSync(empty, '');
  assert.equal(await loadOutcome(empty).catch(() => 'threw'), 3);
  const next = prng(1);
  for (let i = 0; i < 50; i++) {
    const file = path.join(dir, `random${i}.onnx`);
    fs.writeFileSync(file, Uint8Array.from({ length: 1 + Math.floor(next() * 4096) }, () => Math.floor(next() * 256)));
    assert.equal(await loadOutcome(file), 3, file);
  }
});

test('a model truncated at any offset is rejected, never crashes', async () => {
  const dir = tempDir();
  for (const [name, bytes] of [['rich', richModel()], ['sample', fs.readFileSync(path.join(SAMPLES, 'detector-90.onnx'))]] as const) {
    const step = Math.max(1, Math.floor(bytes.length / 400));
    for (let cut = 1; cut < bytes.length; cut += step) {
      const file = path.join(dir, `${name}-${cut}.onnx`);
      fs.writeFileSync(file, bytes.subarray(0, cut));
      const result = await loadOutcome(file);
      assert.ok(result === 3 || result === 'ok', `${file}: ${result}`);
      fs.rmSync(file);
    }
  }
});

test(`${ITERATIONS} mutated models each load or fail with exit 3/4`, async () => {
  const dir = tempDir();
  const seeds = [richModel(), new Uint8Array(fs.readFileSync(path.join(SAMPLES, 'detector-90.onnx')))];
  const next = prng(42);
  const seen = { ok: 0, rejected: 0 };
  for (let i = 0; i < ITERATIONS; i++) {
    const file = path.join(dir, `m${i}.onnx`);
    fs.writeFileSync(file, mutate(seeds[i % seeds.length]!, next));
    const result = await loadOutcome(file);
    assert.ok(result === 'ok' || result === 3 || result === 4, `${file}: ${result}`);
    seen[result === 'ok' ? 'ok' : 'rejected']++;
    fs.rmSync(file);
  }
  assert.ok(seen.rejected > ITERATIONS / 10, `mutations should mostly break the model: ${JSON.stringify(seen)}`);
});

test('through the CLI a truncated model is one line naming the file and the offset', () => {
  const file = path.join(tempDir(), 'cut.onnx');
  const bytes = fs.readFileSync(path.join(SAMPLES, 'detector-90.onnx'));
  fs.writeFileSync(file, bytes.subarray(0, bytes.length - 100));
  const r = runCli(['inspect', '--hash', file]);
  assert.equal(r.status, 3);
  assert.match(r.stderr, new RegExp(`^ckpt: ${file}: offset \\d+: .*truncated\\?\\)\\n$`));
});
