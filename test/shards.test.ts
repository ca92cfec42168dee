import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { open } from '../src/index.js';
import type { TensorInfo } from '../src/core/statedict.js';
import { writeSafetensors } from '../src/formats/safetensors/write.js';
import { parseByteSize, planShards } from '../src/formats/sharded/write.js';
import { chooseWriter, writeWithOptions } from '../src/formats/writers.js';
import { encodeModel, float32Tensor } from '../src/formats/onnx/build.js';
import { runCli, tempDir } from './helpers.js';
import { python, pythonHas } from './python.js';

function tensor(name: string, numel: number, seed: number): TensorInfo {
  const bytes = new Uint8Array(Float32Array.from({ length: numel }, (_, i) => seed + i * 0.5).buffer);
  return { name, source: name, dtype: 'float32', shape: [numel], byteLength: bytes.length, origin: 'weight', read: async () => bytes, readStrings: async () => [] };
}

/** Five tensors of 400, 400, 1200, 40 and 400 bytes. */
async function checkpoint(dir: string): Promise<string> {
  const file = path.join(dir, 'source.safetensors');
  const layers = [tensor('embed.weight', 100, 1), tensor('layers.0.weight', 100, 2), tensor('layers.1.weight', 300, 3), tensor('layers.1.bias', 10, 4), tensor('head.weight', 100, 5)];
  await writeSafetensors(file, layers.map((t) => ({ name: t.name, tensor: t })));
  return file;
}

describe('sharded output', () => {
  test('sizes as Hugging Face writes them: decimal KB/MB/GB, binary KiB/MiB/GiB', () => {
    assert.equal(parseByteSize('5GB', '--shard-size'), 5e9);
    assert.equal(parseByteSize('4GiB', '--shard-size'), 4 * 2 ** 30);
    assert.equal(parseByteSize('500mb', '--shard-size'), 5e8);
    assert.equal(parseByteSize('1.5KiB', '--shard-size'), 1536);
    assert.equal(parseByteSize('1000', '--shard-size'), 1000);
    assert.throws(() => parseByteSize('5 parsecs', '--shard-size'), /--shard-size 5 parsecs: expected a positive size/);
    assert.throws(() => parseByteSize('0GB', '--shard-size'), /expected a positive size/);
  });

  test('a shard closes before the tensor that would take it over; a larger tensor gets its own', () => {
    const sizes = (shards: { tensor: { byteLength: number } }[][]) => shards.map((s) => s.map((t) => t.tensor.byteLength));
    const items = [400, 400, 1200, 40, 400].map((byteLength) => ({ tensor: { byteLength } }));
    assert.deepEqual(sizes(planShards(items, 1000)), [[400, 400], [1200], [40, 400]]);
    assert.deepEqual(sizes(planShards(items, 10000)), [[400, 400, 1200, 40, 400]]);
  });

  test('safetensors shards and model.safetensors.index.json: the layout from_pretrained reads, read back equal', async () => {
    const dir = tempDir();
    const source = await checkpoint(dir);
    const out = path.join(dir, 'hf', 'model.safetensors');
    const r = runCli(['convert', source, out, '--shard-size', '1KB']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /3 shards of at most 1000 bytes \(model-00001-of-00003\.safetensors … model-00003-of-00003\.safetensors\) and model\.safetensors\.index\.json/);
    assert.deepEqual(fs.readdirSync(path.dirname(out)).sort(), ['model-00001-of-00003.safetensors', 'model-00002-of-00003.safetensors', 'model-00003-of-00003.safetensors', 'model.safetensors.index.json']);
    const index = JSON.parse(fs.readFileSync(`${out}.index.json`, 'utf8'));
    assert.deepEqual(index, {
      metadata: { total_size: 2440 },
      weight_map: {
        'embed.weight': 'model-00001-of-00003.safetensors', 'head.weight': 'model-00003-of-00003.safetensors', 'layers.0.weight': 'model-00001-of-00003.safetensors',
        'layers.1.bias': 'model-00003-of-00003.safetensors', 'layers.1.weight': 'model-00002-of-00003.safetensors',
      },
    });
    assert.deepEqual(Object.keys(index.weight_map), Object.keys(index.weight_map).sort(), 'keys sorted, as transformers writes them');
    const diff = runCli(['diff', '--values', source, path.dirname(out)]);
    assert.equal(diff.status, 0, diff.stdout);

    // Written again with a larger limit: one file, and the old set (shards, index) is gone.
    assert.equal(runCli(['convert', source, out, '--shard-size', '1MB']).status, 0);
    assert.deepEqual(fs.readdirSync(path.dirname(out)), ['model.safetensors']);
    // And sharded again: the single file would shadow the index for from_pretrained, so it goes.
    assert.equal(runCli(['convert', source, out, '--shard-size', '2000']).status, 0);
    assert.deepEqual(fs.readdirSync(path.dirname(out)).sort(), ['model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors', 'model.safetensors.index.json']);
  });

  test('PyTorch shards and pytorch_model.bin.index.json load in torch', { skip: !pythonHas('torch') && 'needs python3-torch' }, async () => {
    const dir = tempDir();
    const source = await checkpoint(dir);
    const out = path.join(dir, 'pt', 'pytorch_model.bin');
    assert.equal(runCli(['convert', source, out, '--shard-size', '1000']).status, 0);
    const loaded = JSON.parse(python(`
import json, os, sys, torch
index = json.load(open(sys.argv[1] + '.index.json'))
state = {}
for shard in sorted(set(index['weight_map'].values())):
    state.update(torch.load(os.path.join(os.path.dirname(sys.argv[1]), shard), weights_only=True))
print(json.dumps({k: [float(v[0]), float(v[-1]), v.numel()] for k, v in state.items()}))`, out)) as Record<string, [number, number, number]>;
    assert.deepEqual(loaded, {
      'embed.weight': [1, 50.5, 100], 'layers.0.weight': [2, 51.5, 100], 'layers.1.weight': [3, 152.5, 300], 'layers.1.bias': [4, 8.5, 10], 'head.weight': [5, 54.5, 100],
    });
  });

  test('--shard-size does not apply to TF.js or ONNX output', async () => {
    const dir = tempDir();
    const source = await checkpoint(dir);
    const r = runCli(['convert', source, path.join(dir, 'x', 'model.json'), '--shard-size', '1MB']);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /--shard-size does not apply to tfjs output/);
  });
});

/** y = x·W1·W2 with a 1.44 MB first weight (aligned in external data) and a 4 KB second one. */
function matmulModel(dir: string): string {
  const w1 = Float32Array.from({ length: 600 * 600 }, (_, i) => Math.sin(i) / 600);
  const w2 = Float32Array.from({ length: 600 * 2 }, (_, i) => Math.cos(i));
  const bytes = encodeModel({
    graphName: 'chain',
    nodes: [
      { op: 'MatMul', inputs: ['x', 'w1'], outputs: ['h'] },
      { op: 'MatMul', inputs: ['h', 'w2'], outputs: ['y'] },
      { op: 'Add', inputs: ['y', 'b'], outputs: ['z'] },
    ],
    initializers: [float32Tensor('w1', [600, 600], w1), float32Tensor('w2', [600, 2], w2), float32Tensor('b', [2], Float32Array.from([0.5, -0.5]))],
    inputs: [{ name: 'x', dtype: 'float32', shape: [1, 600] }],
    outputs: [{ name: 'z', dtype: 'float32', shape: [1, 2] }],
  });
  const file = path.join(dir, 'chain.onnx');
  fs.writeFileSync(file, bytes);
  return file;
}

const HAS_ONNX = pythonHas('onnx');

function onnxCheck(model: string): { initializers: [string, number, Record<string, string>][] } {
  return JSON.parse(python(`
import json, sys, onnx
onnx.checker.check_model(sys.argv[1])
loaded = onnx.load(sys.argv[1])
assert all(len(t.raw_data) > 0 for t in loaded.graph.initializer), 'external data not loaded'
m = onnx.load(sys.argv[1], load_external_data=False)
print(json.dumps({'initializers': [[t.name, t.data_location, {e.key: e.value for e in t.external_data}] for t in m.graph.initializer]}))`, model));
}

describe('ONNX external data', () => {
  test('--external-data: one <model>.data file, tensors of 1 KiB or more in it (over 1 MiB at 4096-byte offsets); onnx loads it, onnxruntime runs it the same', async () => {
    const dir = tempDir();
    const inline = matmulModel(dir);
    const out = path.join(dir, 'ext', 'model.onnx');
    fs.mkdirSync(path.dirname(out));
    const r = runCli(['strip', inline, '--exclude', 'b', '-o', out, '--external-data']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /2 weight\(s\) written as external data \(model\.onnx\.data, beside the model\)/);
    // w2 (4800 bytes) first in the file would leave w1 at 4800: w1 comes first here, so only w2 follows it unaligned.
    assert.equal(fs.statSync(path.join(path.dirname(out), 'model.onnx.data')).size, 1440000 + 4800);
    assert.ok(fs.statSync(out).size < 1000, 'the model file holds no weights');
    if (HAS_ONNX) {
      assert.deepEqual(onnxCheck(out).initializers, [
        ['w1', 1, { location: 'model.onnx.data', offset: '0', length: '1440000' }],
        ['w2', 1, { location: 'model.onnx.data', offset: '1440000', length: '4800' }],
      ]);
    }
    const diff = runCli(['diff', '--values', inline, out, '--json']);
    assert.ok(JSON.parse(diff.stdout).matched.every((p: { values: { bitIdentical: boolean } }) => p.values.bitIdentical));
  });

  test('a tensor over 1 MiB after others starts at a 4096-byte offset, zero-padded', async () => {
    const dir = tempDir();
    const inline = matmulModel(dir);
    const out = path.join(dir, 'renamed.onnx');
    // Renaming w1 keeps its place in the file; the order in the data file follows the model's.
    const r = runCli(['rename', inline, '--rename', 'w1=>big', '-o', out, '--external-data']);
    assert.equal(r.status, 0, r.stderr);
    if (HAS_ONNX) assert.deepEqual(onnxCheck(out).initializers.map((t) => t[0]), ['big', 'w2', 'b']);
    const compare = runCli(['compare', inline, out, '--ep', 'cpu']);
    assert.equal(compare.status, 0, compare.stdout + compare.stderr);
  });

  test('--external-data per-tensor: one file per tensor, named after it, as all_tensors_to_one_file=False writes', async () => {
    const dir = tempDir();
    const inline = matmulModel(dir);
    const out = path.join(dir, 'per', 'model.onnx');
    fs.mkdirSync(path.dirname(out));
    assert.equal(runCli(['convert', inline, out, '--external-data', 'per-tensor']).status, 0);
    assert.deepEqual(fs.readdirSync(path.dirname(out)).sort(), ['model.onnx', 'w1', 'w2']);
    if (HAS_ONNX) assert.deepEqual(onnxCheck(out).initializers.map((t) => [t[0], t[2].location ?? null, t[2].offset ?? null]), [['w1', 'w1', '0'], ['w2', 'w2', '0'], ['b', null, null]]);
    const compare = runCli(['compare', inline, out, '--ep', 'cpu']);
    assert.equal(compare.status, 0, compare.stdout + compare.stderr);
    assert.match(runCli(['convert', inline, out, '--external-data', 'some']).stderr, /--external-data some: expected one-file or per-tensor/);
  });

  test('a model that would exceed the inline limit is written with external data, with a note (the limit lowered from 2 GiB)', async () => {
    const dir = tempDir();
    const inline = matmulModel(dir);
    const source = await open(inline);
    const out = path.join(dir, 'auto.onnx');
    try {
      const writer = chooseWriter(out, undefined, source.format);
      const report = await writeWithOptions(writer, out, source.tensors.map((t) => ({ name: t.source, tensor: t })), source, { inlineLimit: 1_000_000 });
      assert.match(report.notes.join('\n'), /2 weight\(s\) written as external data \(auto\.onnx\.data, beside the model\) because the model would be 14\d{5} bytes inline, over the 1000000-byte inline limit/);
      const small = await writeWithOptions(writer, path.join(dir, 'inline.onnx'), source.tensors.map((t) => ({ name: t.source, tensor: t })), source, { inlineLimit: 2_000_000 });
      assert.doesNotMatch(small.notes.join('\n'), /external data/);
    } finally {
      await source.close();
    }
    assert.ok(fs.existsSync(path.join(dir, 'auto.onnx.data')));
    assert.equal(fs.existsSync(path.join(dir, 'inline.onnx.data')), false);
    if (HAS_ONNX) assert.equal(onnxCheck(out).initializers[0]![1], 1);
    const compare = runCli(['compare', inline, out, '--ep', 'cpu']);
    assert.equal(compare.status, 0, compare.stdout + compare.stderr);
  });
});
