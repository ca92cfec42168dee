import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { open, tensorSha256 } from '../src/index.js';
import type { TensorInfo } from '../src/core/statedict.js';
import { writeSafetensors } from '../src/formats/safetensors/write.js';
import { writePytorch } from '../src/formats/pytorch/write.js';
import { runCli, tempDir } from './helpers.js';

/** A float32 tensor whose values start at `seed`. */
function tensor(name: string, shape: number[], seed: number): TensorInfo {
  const n = shape.reduce((a, b) => a * b, 1);
  const bytes = new Uint8Array(Float32Array.from({ length: n }, (_, i) => seed + i).buffer);
  return { name, source: name, dtype: 'float32', shape, byteLength: bytes.length, origin: 'weight', read: async () => bytes, readStrings: async () => [] };
}

const LAYERS = [tensor('embed.weight', [8, 4], 0), tensor('layers.0.weight', [4, 4], 100), tensor('layers.1.weight', [4, 4], 200), tensor('lm_head.weight', [8, 4], 300)];
const out = (ts: TensorInfo[]) => ts.map((t) => ({ name: t.name, tensor: t }));

/** A Hugging Face style sharded checkpoint: two shards and the index mapping each tensor to its shard. */
async function sharded(kind: 'safetensors' | 'bin', weightMap?: Record<string, string>): Promise<{ dir: string; index: string; single: string }> {
  const dir = tempDir();
  const [ext, write] = kind === 'safetensors' ? ['safetensors', writeSafetensors] as const : ['bin', writePytorch] as const;
  const prefix = kind === 'safetensors' ? 'model' : 'pytorch_model';
  const shards = [`${prefix}-00001-of-00002.${ext}`, `${prefix}-00002-of-00002.${ext}`];
  await write(path.join(dir, shards[0]!), out(LAYERS.slice(0, 2)));
  await write(path.join(dir, shards[1]!), out(LAYERS.slice(2)));
  const map = weightMap ?? Object.fromEntries(LAYERS.map((t, i) => [t.name, shards[i < 2 ? 0 : 1]!]));
  const index = path.join(dir, `${prefix}.${ext}.index.json`);
  // HF writes the map sorted by name, not in model order.
  const sorted = Object.fromEntries(Object.entries(map).sort(([a], [b]) => a.localeCompare(b)));
  fs.writeFileSync(index, JSON.stringify({ metadata: { total_size: 256 }, weight_map: sorted }, null, 2));
  const single = path.join(tempDir(), `single.${ext}`);
  await write(single, out(LAYERS));
  return { dir, index, single };
}

describe('sharded checkpoints (Hugging Face *.index.json)', () => {
  for (const kind of ['safetensors', 'bin'] as const) {
    test(`${kind}: the index or its folder reads as one state dict in shard order, equal to the single file`, async () => {
      const { dir, index, single } = await sharded(kind);
      for (const input of [index, dir]) {
        const dict = await open(input);
        assert.equal(dict.format, kind === 'safetensors' ? 'safetensors' : 'pytorch');
        assert.deepEqual(dict.tensors.map((t) => t.name), LAYERS.map((t) => t.name));
        assert.deepEqual(await Promise.all(dict.tensors.map(tensorSha256)), await Promise.all(LAYERS.map(tensorSha256)));
        assert.deepEqual((dict.metadata.shards as { tensors: number }[]).map((s) => s.tensors), [2, 2]);
        await dict.close();
      }
      const r = runCli(['diff', '--values', index, single]);
      assert.equal(r.status, 0, r.stdout + r.stderr);
      assert.match(runCli(['inspect', dir]).stdout, new RegExp(`: ${kind === 'bin' ? 'pytorch' : 'safetensors'} · 2 shards \\(${path.basename(index).replace(/\./g, '\\.')}\\) · 4 tensors`));
    });
  }

  test('convert joins the shards into one file', async () => {
    const { index, single } = await sharded('safetensors');
    const joined = path.join(tempDir(), 'joined.safetensors');
    assert.equal(runCli(['convert', index, joined]).status, 0);
    assert.equal(runCli(['diff', '--values', joined, single]).status, 0);
  });

  test('a folder with both kinds of index reads the safetensors one', async () => {
    const { dir } = await sharded('safetensors');
    fs.writeFileSync(path.join(dir, 'pytorch_model.bin.index.json'), JSON.stringify({ weight_map: { x: 'missing.bin' } }));
    const dict = await open(dir);
    assert.equal(dict.metadata.index, 'model.safetensors.index.json');
    await dict.close();
  });

  const shard1 = 'model-00001-of-00002.safetensors';
  const shard2 = 'model-00002-of-00002.safetensors';
  const cases: [string, () => Promise<string>, number, RegExp][] = [
    ['a tensor mapped to the wrong shard', async () => (await sharded('safetensors', { 'embed.weight': shard2, 'layers.0.weight': shard1, 'layers.1.weight': shard2, 'lm_head.weight': shard2 })).index, 3, /weight_map 'embed\.weight': is in shard 'model-00001-of-00002\.safetensors', not 'model-00002-of-00002\.safetensors'/],
    ['a mapped tensor no shard has', async () => (await sharded('safetensors', { ...Object.fromEntries(LAYERS.map((t, i) => [t.name, i < 2 ? shard1 : shard2])), ghost: shard1 })).index, 3, /weight_map 'ghost': is not in shard 'model-00001-of-00002\.safetensors'/],
    ['a shard outside the folder', async () => (await sharded('safetensors', { 'embed.weight': '../elsewhere.safetensors' })).index, 3, /weight_map shard '\.\.\/elsewhere\.safetensors': file path '\.\.\/elsewhere\.safetensors' contains '\.\.'/],
    ['a missing shard', async () => { const { index, dir } = await sharded('safetensors'); fs.rmSync(path.join(dir, shard2)); return index; }, 4, /model-00002-of-00002\.safetensors: .*no such file/],
    ['a weight_map that is not an object', async () => { const f = path.join(tempDir(), 'model.safetensors.index.json'); fs.writeFileSync(f, '{"weight_map": [1]}'); return f; }, 3, /weight_map: expected an object of tensor name → shard file/],
    ['a tensor in two shards', async () => {
      const { index, dir } = await sharded('safetensors');
      await writeSafetensors(path.join(dir, shard2), out([LAYERS[0]!, ...LAYERS.slice(2)]));
      return index;
    }, 3, /shard 'model-00002-of-00002\.safetensors': tensor 'embed\.weight' is also in shard 'model-00001-of-00002\.safetensors'/],
  ];
  for (const [name, make, code, message] of cases) {
    test(`refused: ${name} (exit ${code})`, async () => {
      const r = runCli(['inspect', await make()]);
      assert.equal(r.status, code, r.stderr);
      assert.match(r.stderr, message);
    });
  }
});
