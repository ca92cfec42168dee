import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ROOT } from './helpers.js';
import { dequantizeBlocks, ggmlBlockTypes } from '../src/core/ggml.js';

/**
 * Every ggml block type ckpt dequantizes agrees bit for bit with llama.cpp's reference
 * dequantizer (gguf-py's `gguf.quants.dequantize`, a numpy port of ggml-quants.c) on random
 * blocks; scripts/make-ggml-reference.py made the fixture.
 */
interface Reference { generator: string; types: Record<string, { blocks: string; float32: string }> }
const reference = JSON.parse(fs.readFileSync(path.join(ROOT, 'test', 'fixtures', 'ggml-reference.json'), 'utf8')) as Reference;

for (const type of ggmlBlockTypes().filter((t) => reference.types[t.name])) {
  test(`${type.name} dequantizes as ggml's reference does`, () => {
    const { blocks, float32 } = reference.types[type.name]!;
    const ours = dequantizeBlocks(type, Buffer.from(blocks, 'hex'));
    const expected = Buffer.from(float32, 'hex');
    const differing = [...new Uint32Array(ours.buffer)].flatMap((bits, i) => (bits === expected.readUInt32LE(4 * i) ? [] : [i]));
    assert.deepEqual(differing.slice(0, 5).map((i) => [i, ours[i], expected.readFloatLE(4 * i)]), []);
  });
}

test('the reference covers every block type that dequantizes, except the Q8 intermediates', () => {
  const untested = ggmlBlockTypes().filter((t) => t.dequantize && !reference.types[t.name]).map((t) => t.name);
  assert.deepEqual(untested, ['q8_1', 'q8_k']);
});

test('q8_k and q8_1: a float32 (q8_k) or float16 (q8_1) scale times int8 values', () => {
  const k = new Uint8Array(292);
  new DataView(k.buffer).setFloat32(0, 0.5, true);
  k.set(Int8Array.from({ length: 256 }, (_, i) => i - 128).map((v) => v & 0xff), 4);
  const q8k = dequantizeBlocks(ggmlBlockTypes().find((t) => t.name === 'q8_k')!, k);
  assert.deepEqual([q8k[0], q8k[128], q8k[255]], [-64, 0, 63.5]);
  const one = new Uint8Array(36);
  new DataView(one.buffer).setUint16(0, 0x4000, true); // 2.0
  one[4] = 0xff; // -1
  one[35] = 3;
  const q81 = dequantizeBlocks(ggmlBlockTypes().find((t) => t.name === 'q8_1')!, one);
  assert.deepEqual([q81[0], q81[1], q81[31]], [-2, 0, 6]);
});
