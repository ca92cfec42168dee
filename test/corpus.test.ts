import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { CORPUS, HAS_CORPUS, expectedListings, runCli, valueHashes } from './helpers.js';
import { READERS } from '../src/index.js';

/**
 * `inspect --json --hash` must agree exactly with what independent readers (python onnx, h5py,
 * @tensorflow/tfjs, torch…) see in every real file of the shared corpus: the same tensors, with the
 * same source names, dtypes, shapes and value hashes. Compared in source-name order: the readers
 * list in their own traversal order (h5py alphabetically), ckpt in the file's model order
 * (Keras `layer_names`/`weight_names`).
 */
const FAMILY_TO_FORMAT: Record<string, string> = {
  onnx: 'onnx',
  keras: 'keras',
  tfjs: 'tfjs',
  safetensors: 'safetensors',
  pytorch: 'pytorch',
  'tf-checkpoint': 'tf-checkpoint',
  paddle: 'paddle',
  npz: 'numpy',
};

const supported = new Set(READERS.map((r) => r.name));

/**
 * Reference listings that disagree with the reference tool itself, checked by hand: the silero
 * archive pickles `num_batches_tracked` with size () and torch 1.13's
 * `torch.jit.load(f).state_dict()` gives torch.Size([]) too, but its listing says [1]
 * (test/torchscript.test.ts compares against torch.jit.load directly where torch is installed).
 */
const REFERENCE_ERRATA: Record<string, Record<string, { shape: number[] }>> = {
  'torchscript/silero-vad-micro-qdynamic/model_micro.jit': Object.fromEntries(
    [3, 8, 13].map((i) => [`encoder.${i}.num_batches_tracked`, { shape: [] }]),
  ),
};

/**
 * Families whose reference listings are of the decoded values: tfjs's are what `tf.io.decodeWeights`
 * returns, the float32 view of uint8/uint16/float16-stored weights, where `inspect --hash` lists
 * the stored type and hashes the stored bytes (as for GGUF and TFLite). For those, an encoded
 * tensor is compared by its dequantized dtype and the hash of its float view (`read()`).
 */
const DECODED_REFERENCE = new Set(['tfjs']);

interface ListedTensor { source: string; dtype: string; shape: number[]; sha256?: string; encoding?: { dequantized: string } }

for (const expected of expectedListings()) {
  const format = FAMILY_TO_FORMAT[expected.format_family] ?? expected.format_family;
  const skip = !supported.has(format) && `no ${expected.format_family} reader yet`;
  test(`corpus: ${expected.model} agrees with ${expected.reference.split(',')[0]}`, { skip }, async () => {
    const file = path.join(CORPUS, expected.model);
    const r = runCli(['inspect', '--json', '--hash', file]);
    assert.equal(r.stderr, '');
    assert.equal(r.status, 0);
    const ours = JSON.parse(r.stdout) as { format: string; tensors: ListedTensor[] };
    assert.equal(ours.format, format);
    if (DECODED_REFERENCE.has(expected.format_family)) {
      const decoded = await valueHashes(file);
      ours.tensors = ours.tensors.map((t) => (t.encoding ? { ...t, dtype: t.encoding.dequantized, sha256: decoded.get(t.source)! } : t));
    }
    const essentials = (list: typeof expected.tensors) => list
      .map((t) => ({ source: t.source, dtype: t.dtype, shape: t.shape, ...(t.sha256 ? { sha256: t.sha256 } : {}) }))
      .sort((a, b) => (a.source < b.source ? -1 : a.source > b.source ? 1 : 0));
    const errata = REFERENCE_ERRATA[expected.model] ?? {};
    assert.deepEqual(essentials(ours.tensors), essentials(expected.tensors.map((t) => ({ ...t, ...errata[t.source] }))));
  });
}

test('corpus is present, or these tests skip', { skip: HAS_CORPUS ? false : 'no ../shared/corpus beside the checkout' }, () => {
  assert.ok(expectedListings().length > 0);
});
