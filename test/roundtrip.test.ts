import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CORPUS, HAS_CORPUS, expectedListings, tempDir } from './helpers.js';
import { READERS, open, tensorSha256 } from '../src/index.js';
import { WRITERS, chooseWriter } from '../src/formats/writers.js';
import type { TensorInfo } from '../src/core/statedict.js';

/**
 * Every corpus file whose format ckpt writes goes read → write (same format, and safetensors) →
 * read, and comes back with identical tensors: dtypes, shapes and SHA-256 of the values (names as
 * the writer spells them in that format, so compared in order).
 */
const writable = new Set(WRITERS.map((w) => w.format));
const readable = new Set(READERS.map((r) => r.name));
const FAMILY: Record<string, string> = { npz: 'numpy' };
const EXTENSION: Record<string, string> = { onnx: '.onnx', keras: '.h5', tfjs: '', numpy: '.npz', safetensors: '.safetensors', pytorch: '.pt', paddle: '.pdparams', gguf: '.gguf', tflite: '.tflite', darknet: '.weights' };
/** Darknet weights are opened through their network's cfg, which the writer does not write: it goes beside them. */
const OPENED_BY: Record<string, (out: string, model: string) => string> = {
  darknet: (out, model) => {
    const cfg = out.replace(/\.weights$/, '.cfg');
    fs.copyFileSync(model, cfg);
    return cfg;
  },
};

async function essentials(file: string) {
  const dict = await open(file);
  try {
    // Quantized tensors (TFLite int8, GGUF blocks) compare through their float view: what another format stores.
    const hash = async (t: TensorInfo) => (t.encoding ? createHash('sha256').update(await t.read()).digest('hex') : tensorSha256(t));
    return await Promise.all(dict.tensors.map(async (t) => [t.dtype, t.shape, await hash(t)]));
  } finally {
    await dict.close();
  }
}

for (const expected of HAS_CORPUS ? expectedListings() : []) {
  const format = FAMILY[expected.format_family] ?? expected.format_family;
  if (!writable.has(format) || !readable.has(format)) continue;
  for (const target of [format, 'safetensors']) {
    test(`round trip: ${expected.model} → ${target} → read`, async () => {
      const out = path.join(tempDir(), `out${EXTENSION[target]}`);
      // The CLI's convert, in process: the same writer call without starting a node per file.
      const source = await open(path.join(CORPUS, expected.model));
      try {
        const writer = chooseWriter(out, target, source.format);
        await writer.write(out, source.tensors.map((t) => ({ name: writer.format === source.format ? t.source : t.name, tensor: t })), source);
      } finally {
        await source.close();
      }
      assert.ok(fs.existsSync(out));
      const model = path.join(CORPUS, expected.model);
      assert.deepEqual(await essentials(OPENED_BY[target]?.(out, model) ?? out), await essentials(model));
    });
  }
}

test('round trips run where the corpus is', { skip: HAS_CORPUS ? false : 'no ../shared/corpus' }, () => {
  assert.ok(writable.has('safetensors'));
});
