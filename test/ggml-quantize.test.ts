import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ROOT } from './helpers.js';
import { dequantizeBlocks } from '../src/core/ggml.js';
import { firstNonFinite, firstOverflowingBlock, quantizableTypes, quantizeBlocks } from '../src/core/ggml-quantize.js';
import { halfToNumber } from '../src/core/decode.js';
import { cosineData, quantizeCases } from './ggml-quantize-inputs.js';

/**
 * ckpt's quantizers give the bytes of ggml's C reference quantizers (quantize_row_*_ref of
 * ggml-quants.c), on seeded random blocks, edge-case blocks and llama.cpp's cosine test data; the
 * fixture's provenance says which commit, functions and compiler made it.
 */
interface ReferenceCase { inputs: string; blocks: number; sha256: string; raw: string[] }
interface Reference { provenance: { commit: string; functions: string[] }; types: Record<string, Record<string, ReferenceCase>> }
const reference = JSON.parse(fs.readFileSync(path.join(ROOT, 'test', 'fixtures', 'ggml-quantize-reference.json'), 'utf8')) as Reference;
const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

function quantized(typeName: string, values: Float32Array): Uint8Array {
  const type = quantizableTypes().find((t) => t.name === typeName)!;
  const out = new Uint8Array((values.length / type.blockSize) * type.typeSize);
  quantizeBlocks(type, values, out);
  return out;
}

test('the reference covers every type ckpt quantizes to', () => {
  assert.deepEqual(quantizableTypes().map((t) => t.name), ['q4_0', 'q4_1', 'q5_0', 'q5_1', 'q8_0', 'q4_k', 'q5_k', 'q6_k', 'q8_k']);
  assert.deepEqual(Object.keys(reference.types).sort(), quantizableTypes().map((t) => t.name).sort());
});

for (const type of quantizableTypes()) {
  for (const c of quantizeCases(type.blockSize)) {
    test(`${type.name} quantizes the ${c.name} blocks byte for byte as ggml's ${type.name.replace(/_k$/, '_K')} reference does`, () => {
      const expected = reference.types[type.name]![c.name]!;
      assert.equal(sha256(new Uint8Array(c.values.buffer)), expected.inputs, 'the seeded inputs are those the reference was run on');
      const ours = quantized(type.name, c.values);
      assert.equal(ours.length / type.typeSize, expected.blocks);
      // Raw blocks first, so that a difference names its edge case and shows the bytes.
      expected.raw.forEach((hex, b) => {
        const block = Buffer.from(ours.subarray(b * type.typeSize, (b + 1) * type.typeSize)).toString('hex');
        assert.equal(block, hex, `block ${b}${c.blockNames ? ` (${c.blockNames[b]})` : ''}`);
      });
      assert.equal(sha256(ours), expected.sha256);
    });
  }
}

test('the edge blocks include an all-zero block, one huge value, a negative maximum and subnormal scales', () => {
  const edges = quantizeCases(32).find((c) => c.name === 'edges')!;
  for (const name of ['all zero', 'one huge value', 'the largest magnitude is negative', 'float16 subnormal scales', 'float32 subnormal values: 1/d overflows']) {
    assert.ok(edges.blockNames!.includes(name), name);
  }
  // q8_0 of the subnormal block: its float16 scale is a subnormal (exponent bits zero, not zero).
  const q8 = quantized('q8_0', edges.values);
  const scale = Buffer.from(q8).readUInt16LE(edges.blockNames!.indexOf('float16 subnormal scales') * 34);
  assert.ok(scale > 0 && scale < 0x400, `scale bits ${scale.toString(16)}`);
});

/** llama.cpp's test-quantize-fns: sqrt(Σ(x − x̂)²) / n on its cosine data stays under 0.002 for 4 bits and more. */
for (const type of quantizableTypes()) {
  test(`${type.name} round trip: the total error on llama.cpp's test data is under its published 0.002`, () => {
    const data = cosineData();
    const back = dequantizeBlocks(type, quantized(type.name, data));
    let sum = 0;
    for (let i = 0; i < data.length; i++) sum += (data[i]! - back[i]!) ** 2;
    const totalError = Math.sqrt(sum) / data.length;
    assert.ok(totalError < 0.002, `${type.name}: ${totalError}`);
  });
}

/**
 * Per element, the 32-blocks are within what their scheme allows: half a step (q8_0, and the _1
 * types whose min is stored), one step for q4_0/q5_0 (ggml clamps the level at the far end from the
 * extreme), plus the float16 rounding of the scale (times the largest level) and of the min: half a
 * float16 ulp, relative 2^-11, or 2^-25 where the value is a float16 subnormal.
 */
const halfRounding = (v: number) => Math.max(Math.abs(v) * 2 ** -11, 2 ** -25);
const STEP_BOUNDS: Record<string, { levels: number; steps: number; offset: boolean }> = {
  q8_0: { levels: 127, steps: 0.5, offset: false },
  q4_0: { levels: 8, steps: 1, offset: false },
  q5_0: { levels: 16, steps: 1, offset: false },
  q4_1: { levels: 15, steps: 0.5, offset: true },
  q5_1: { levels: 31, steps: 0.5, offset: true },
};
for (const [name, bound] of Object.entries(STEP_BOUNDS)) {
  test(`${name} round trip: every element within ${bound.steps} step of its block plus the float16 rounding of the scale`, () => {
    const type = quantizableTypes().find((t) => t.name === name)!;
    const { values } = quantizeCases(32).find((c) => c.name === 'random')!;
    const back = dequantizeBlocks(type, quantized(name, values));
    for (let b = 0; b < values.length / 32; b++) {
      const block = values.subarray(b * 32, b * 32 + 32);
      const min = Math.min(...block), max = Math.max(...block);
      const step = bound.offset ? (max - min) / bound.levels : Math.max(-min, max) / bound.levels;
      const allowed = step * bound.steps + bound.levels * halfRounding(step) + (bound.offset ? halfRounding(min) : 0) + Math.max(-min, max) * 1e-6;
      for (let j = 0; j < 32; j++) {
        assert.ok(Math.abs(block[j]! - back[b * 32 + j]!) <= allowed, `block ${b} element ${j}: ${block[j]} → ${back[b * 32 + j]} (allowed ${allowed})`);
      }
    }
  });
}

test('non-finite values and float16 overflow are found before anything is written', () => {
  assert.equal(firstNonFinite(Float32Array.of(1, 2, NaN, Infinity)), 2);
  assert.equal(firstNonFinite(Float32Array.of(1, -Infinity)), 1);
  assert.equal(firstNonFinite(Float32Array.of(0, 1e-40, 3e38)), -1);
  const type = quantizableTypes().find((t) => t.name === 'q8_0')!;
  const values = new Float32Array(64);
  values[40] = 1e7; // amax / 127 is past float16's 65504
  assert.equal(firstOverflowingBlock(type, quantized('q8_0', values)), 1);
  values[40] = 8e6;
  assert.equal(firstOverflowingBlock(type, quantized('q8_0', values)), -1);
  assert.ok(halfToNumber(Buffer.from(quantized('q8_0', values)).readUInt16LE(34)) < 65504);
});
