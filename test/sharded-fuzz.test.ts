import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { TensorInfo } from '../src/core/statedict.js';
import { writeSafetensors } from '../src/formats/safetensors/write.js';
import { loadOutcome, tempDir } from './helpers.js';

/**
 * A sharded checkpoint with a mutated index or shard loads or fails with exit 3/4: never another
 * exception, a crash or a hang. CKPT_FUZZ_ITERATIONS raises the mutation count.
 */
const ITERATIONS = Number(process.env.CKPT_FUZZ_ITERATIONS ?? 100);

function tensor(name: string, shape: number[], seed: number): TensorInfo {
  const n = shape.reduce((a, b) => a * b, 1);
  const bytes = new Uint8Array(Float32Array.from({ length: n }, (_, i) => seed + i).buffer);
  return { name, source: name, dtype: 'float32', shape, byteLength: bytes.length, origin: 'weight', read: async () => bytes, readStrings: async () => [] };
}

test(`${ITERATIONS} mutated shard indexes and shards each load or fail with exit 3/4`, async () => {
  const seedDir = tempDir();
  const shards = ['model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors'];
  const layers = [tensor('embed.weight', [8, 4], 0), tensor('layers.0.weight', [4, 4], 100), tensor('lm_head.weight', [8, 4], 300)];
  await writeSafetensors(path.join(seedDir, shards[0]!), layers.slice(0, 2).map((t) => ({ name: t.name, tensor: t })));
  await writeSafetensors(path.join(seedDir, shards[1]!), layers.slice(2).map((t) => ({ name: t.name, tensor: t })));
  const index = 'model.safetensors.index.json';
  fs.writeFileSync(path.join(seedDir, index), JSON.stringify({ metadata: { total_size: 256 }, weight_map: Object.fromEntries(layers.map((t, i) => [t.name, shards[i < 2 ? 0 : 1]])) }));
  const originals = [index, ...shards].map((name) => [name, fs.readFileSync(path.join(seedDir, name))] as const);
  assert.equal(await loadOutcome(path.join(seedDir, index)), 'ok', 'the seed checkpoint is valid');

  let seed = 4099;
  const random = () => ((seed = (seed * 48271) % 2147483647) / 2147483647);
  const dir = tempDir();
  const seen: Record<string, number> = {};
  for (let i = 0; i < ITERATIONS; i++) {
    const victim = i % originals.length;
    originals.forEach(([name, bytes], k) => {
      const b = Buffer.from(bytes);
      if (k === victim) for (let e = 0; e < 1 + Math.floor(random() * 4); e++) b[Math.floor(random() * b.length)] = Math.floor(random() * 256);
      fs.writeFileSync(path.join(dir, name), k === victim && random() < 0.2 ? b.subarray(0, Math.floor(random() * b.length)) : b);
    });
    const outcome = await loadOutcome(path.join(dir, index));
    assert.ok(outcome === 'ok' || outcome === 3 || outcome === 4, `case ${i}: exit ${outcome}`);
    seen[outcome] = (seen[outcome] ?? 0) + 1;
  }
  assert.ok((seen['3'] ?? 0) > 0, `mutations should break some checkpoints: ${JSON.stringify(seen)}`);
});
