import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { tempDir, loadOutcome } from './helpers.js';

/**
 * Bad TF.js input of every kind (mutated model.json text, manifest fields set to hostile values,
 * shards changed, cut, grown or deleted) must end in a CkptError with exit 3 or 4: never another
 * exception, a crash or a hang. CKPT_FUZZ_ITERATIONS raises the mutation count.
 */
const ITERATIONS = Number(process.env.CKPT_FUZZ_ITERATIONS ?? 300);

const bytesOf = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
const stringBytes = (items: string[]) => Buffer.concat(items.flatMap((s) => [bytesOf(new Uint32Array([Buffer.byteLength(s)])), Buffer.from(s)]));

/** A model with every dtype and quantization, two groups, shards cut inside weights. */
function seedModel(): { json: Record<string, unknown>; shards: Map<string, Uint8Array> } {
  const groups = [
    {
      weights: [
        { name: 'conv/kernel', shape: [2, 3], dtype: 'float32', quantization: { dtype: 'uint8', scale: 0.1, min: -1 } },
        { name: 'conv/bias', shape: [3], dtype: 'float32', quantization: { dtype: 'uint16', scale: 0.001, min: -2 } },
        { name: 'vocab', shape: [2], dtype: 'string' },
        { name: 'half', shape: [2], dtype: 'float32', quantization: { dtype: 'float16' } },
        { name: 'steps', shape: [], dtype: 'int32', quantization: { dtype: 'uint8', scale: 1, min: 3 } },
      ],
      data: Buffer.concat([new Uint8Array(6).fill(7), bytesOf(new Uint16Array([1, 2, 3])), stringBytes(['A', 'BC']), bytesOf(new Uint16Array([0x3c00, 0x7e00])), new Uint8Array([9])]),
    },
    {
      weights: [
        { name: 'dense/kernel', shape: [2], dtype: 'float32' },
        { name: 'flags', shape: [3], dtype: 'bool' },
        { name: 'c', shape: [1], dtype: 'complex64' },
        { name: 'Adam/iter', shape: [], dtype: 'int32', group: 'optimizer' },
      ],
      data: Buffer.concat([bytesOf(new Float32Array([1, 2])), new Uint8Array([1, 0, 1]), bytesOf(new Float32Array([3, 4])), bytesOf(new Int32Array([5]))]),
    },
  ];
  const shards = new Map<string, Uint8Array>();
  const manifest = groups.map((g, gi) => {
    const paths: string[] = [];
    for (let at = 0; at < g.data.length; at += 9) {
      paths.push(`group${gi + 1}-shard${paths.length + 1}`);
      shards.set(paths.at(-1)!, g.data.subarray(at, at + 9));
    }
    return { paths, weights: g.weights };
  });
  const json = { format: 'layers-model', modelTopology: { class_name: 'Sequential', config: { layers: [{ class_name: 'Dense', config: { name: 'dense' } }] } }, weightsManifest: manifest };
  return { json, shards };
}

/** Deterministic PRNG so a failure can be replayed. */
function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s ^ (s >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0;
    return s / 4294967296;
  };
}

const HOSTILE: unknown[] = [
  -1, 0, 2.5, 1e20, 2 ** 53, 'x', '', null, true, [], [-1], [1e20, 1e20], [2.5], ['3'], {}, { dtype: 'uint16' }, { dtype: 'float16' },
  { dtype: 'uint8', min: 'a', scale: 1 }, { dtype: 'int4' }, 'float64', 'string', 'bool', 'complex64', 'int32', 'optimizer',
  '../x', '/etc/passwd', 'a\\b', 'file:///etc/passwd', 'missing.bin', 'group1-shard1', 'conv/kernel',
];

type Json = Record<string, unknown>;

/** Sets one field of the manifest (a group's paths or a weight's name, shape, dtype, group, quantization) to a hostile value. */
function mutateManifest(json: Json, next: () => number): void {
  const pick = <T>(items: readonly T[]) => items[Math.floor(next() * items.length)]!;
  const manifest = json.weightsManifest as { paths: unknown[]; weights: Json[] }[];
  const group = pick(manifest);
  const value = structuredClone(pick(HOSTILE));
  const where = next();
  if (where < 0.15) group.paths[Math.floor(next() * (group.paths.length + 1))] = value;
  else if (where < 0.2) (group as Json)[pick(['paths', 'weights'])] = value;
  else if (where < 0.25) group.weights.splice(Math.floor(next() * group.weights.length), 1);
  else pick(group.weights)[pick(['name', 'shape', 'dtype', 'group', 'quantization', 'quantization'])] = value;
}

/** Replaces, deletes or inserts a few characters of the JSON text. */
function mutateText(text: string, next: () => number): string {
  const chars = [...text];
  for (let k = 0; k < 1 + Math.floor(next() * 3); k++) {
    const at = Math.floor(next() * chars.length);
    const c = '0123456789[]{}",:-.e \\'[Math.floor(next() * 22)]!;
    const kind = next();
    if (kind < 0.6) chars[at] = c;
    else if (kind < 0.8) chars.splice(at, 1);
    else chars.splice(at, 0, c);
  }
  return chars.join('');
}

/** Changes a byte of a shard (a string length, say), cuts it, grows it or deletes it. */
function mutateShard(shards: Map<string, Uint8Array>, next: () => number): void {
  const names = [...shards.keys()];
  const name = names[Math.floor(next() * names.length)]!;
  const bytes = Buffer.from(shards.get(name)!);
  const kind = next();
  if (kind < 0.5) {
    bytes[Math.floor(next() * bytes.length)] = next() < 0.5 ? 0xff : Math.floor(next() * 256);
    shards.set(name, bytes);
  } else if (kind < 0.7) shards.set(name, bytes.subarray(0, Math.floor(next() * bytes.length)));
  else if (kind < 0.9) shards.set(name, Buffer.concat([bytes, new Uint8Array(1 + Math.floor(next() * 8))]));
  else shards.delete(name);
}


function writeCase(dir: string, text: string, shards: Map<string, Uint8Array>): string {
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir);
  for (const [name, bytes] of shards) fs.writeFileSync(path.join(dir, name), bytes);
  fs.writeFileSync(path.join(dir, 'model.json'), text);
  return path.join(dir, 'model.json');
}

test('the seed model loads', async () => {
  const { json, shards } = seedModel();
  assert.equal(await loadOutcome(writeCase(path.join(tempDir(), 'seed'), JSON.stringify(json), shards), { all: true }), 'ok');
});

test('a shard or model.json cut at any length is rejected with exit 3', async () => {
  const { json, shards } = seedModel();
  const dir = path.join(tempDir(), 'cut');
  const text = JSON.stringify(json);
  for (const [name, bytes] of shards) {
    for (let cut = 0; cut < bytes.length; cut++) {
      assert.equal(await loadOutcome(writeCase(dir, text, new Map([...shards, [name, bytes.subarray(0, cut)]])), { all: true }), 3, `${name} cut at ${cut}`);
    }
  }
  for (let cut = 0; cut < text.length; cut += 7) {
    assert.equal(await loadOutcome(writeCase(dir, text.slice(0, cut), shards), { all: true }), 3, `model.json cut at ${cut}`);
  }
});

test(`${ITERATIONS} mutated manifests, texts and shards each load or fail with exit 3/4`, { timeout: 120_000 }, async () => {
  const next = prng(7);
  const dir = path.join(tempDir(), 'fuzz');
  const seen = { ok: 0, 3: 0, 4: 0 } as Record<string, number>;
  for (let i = 0; i < ITERATIONS; i++) {
    const { json, shards } = seedModel();
    const kind = i % 3;
    if (kind === 0) mutateManifest(json, next);
    if (kind === 2) mutateShard(shards, next);
    const text = kind === 1 ? mutateText(JSON.stringify(json), next) : JSON.stringify(json);
    const result = await loadOutcome(writeCase(dir, text, shards), { all: true });
    assert.ok(result === 'ok' || result === 3 || result === 4, `case ${i}: ${result}\n${text}`);
    seen[result]!++;
  }
  assert.ok(seen[3]! > ITERATIONS / 4 && seen[4]! > 0, `mutations should exercise both kinds of rejection: ${JSON.stringify(seen)}`);
});
