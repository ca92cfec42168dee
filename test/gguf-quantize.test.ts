import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { convert, open } from '../src/index.js';
import { castFloats } from '../src/core/cast.js';
import { seededRandom } from '../src/core/random.js';
import { quantizableTypes, quantizeBlocks } from '../src/core/ggml-quantize.js';
import { parseGgufQuantizeRules } from '../src/formats/gguf/quantize.js';
import { runCli, tempDir } from './helpers.js';
import { python, pythonHas } from './python.js';
import { writeSampleGguf } from './gguf-fixtures.js';

/**
 * `convert --quantize q4_0 model.safetensors out.gguf`: matrices become ggml blocks made by the
 * reference quantizers, 1-D tensors, norms and rows that do not fill blocks stay float, and the
 * result lists, hashes and diffs like any GGUF.
 */
const dir = tempDir('ckpt-gguf-quantize-');

interface Entry { name: string; dtype: 'F32' | 'F16' | 'BF16' | 'I64'; shape: number[]; values: Float32Array | BigInt64Array }

function writeSafetensors(file: string, entries: readonly Entry[]): void {
  const header: Record<string, unknown> = {};
  const parts: Buffer[] = [];
  let offset = 0;
  for (const e of entries) {
    const bytes = e.values instanceof BigInt64Array
      ? Buffer.from(e.values.buffer)
      : Buffer.from(castFloats(new Uint8Array(e.values.buffer), 'float32', e.dtype === 'F16' ? 'float16' : e.dtype === 'BF16' ? 'bfloat16' : 'float32'));
    header[e.name] = { dtype: e.dtype, shape: e.shape, data_offsets: [offset, offset + bytes.length] };
    parts.push(bytes);
    offset += bytes.length;
  }
  const json = Buffer.from(JSON.stringify(header));
  fs.writeFileSync(file, Buffer.concat([Buffer.from(BigUint64Array.from([BigInt(json.length)]).buffer), json, ...parts]));
}

const random = seededRandom(316);
const values = (n: number) => Float32Array.from({ length: n }, () => (random() - 0.5) * 0.2);
const MODEL: Entry[] = [
  { name: 'model.embed_tokens.weight', dtype: 'F32', shape: [64, 64], values: values(64 * 64) },
  { name: 'model.layers.0.self_attn.q_proj.weight', dtype: 'F16', shape: [64, 64], values: values(64 * 64) },
  { name: 'model.layers.0.mlp.down_proj.weight', dtype: 'BF16', shape: [8, 256], values: values(8 * 256) },
  { name: 'model.layers.0.input_layernorm.weight', dtype: 'F32', shape: [64], values: values(64) },
  { name: 'model.layers.0.self_attn.q_norm.weight', dtype: 'F32', shape: [2, 64], values: values(128) },
  { name: 'model.layers.0.odd_proj.weight', dtype: 'F32', shape: [4, 48], values: values(4 * 48) },
  { name: 'position_ids', dtype: 'I64', shape: [1, 64], values: BigInt64Array.from({ length: 64 }, (_, i) => BigInt(i)) },
];
const source = path.join(dir, 'model.safetensors');
writeSafetensors(source, MODEL);

interface Listing { tensors: { source: string; dtype: string; shape: number[]; sha256: string; encoding?: { label: string; dequantized: string } }[] }
const listing = (file: string) => JSON.parse(runCli(['inspect', '--json', '--hash', file]).stdout) as Listing;
const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

test('--quantize q4_0: matrices become q4_0, 1-D tensors, norms, short rows and integers stay as they were, and the output says which and why', () => {
  const out = path.join(dir, 'q4_0.gguf');
  const r = runCli(['convert', '--json', '--quantize', 'q4_0', source, out]);
  assert.equal(r.status, 0, r.stderr);
  const result = JSON.parse(r.stdout) as { notes: string[]; quantization: { quantized: { name: string; type: string }[]; unquantized: { name: string; reason: string }[] } };
  assert.deepEqual(result.quantization.quantized, [
    { name: 'model.embed_tokens.weight', type: 'q4_0' },
    { name: 'model.layers.0.self_attn.q_proj.weight', type: 'q4_0' },
    { name: 'model.layers.0.mlp.down_proj.weight', type: 'q4_0' },
  ]);
  assert.deepEqual(result.quantization.unquantized, [
    { name: 'model.layers.0.input_layernorm.weight', reason: '1-D' },
    { name: 'model.layers.0.self_attn.q_norm.weight', reason: 'a norm' },
    { name: 'model.layers.0.odd_proj.weight', reason: 'rows of 48, not a multiple of 32' },
    { name: 'position_ids', reason: 'int64, not floating' },
  ]);
  assert.ok(result.notes.includes("3 tensor(s) quantized to q4_0 (ggml's reference quantizer)"), result.notes.join('\n'));
  assert.ok(result.notes.some((n) => n.startsWith('4 selected tensor(s) stay float, as llama.cpp leaves them: 1-D: model.layers.0.input_layernorm.weight; a norm: ')), result.notes.join('\n'));

  const types = Object.fromEntries(listing(out).tensors.map((t) => [t.source, t.encoding ? `${t.encoding.label} → ${t.encoding.dequantized}` : t.dtype]));
  assert.deepEqual(types, {
    'model.embed_tokens.weight': 'q4_0 → float32',
    'model.layers.0.self_attn.q_proj.weight': 'q4_0 → float32',
    'model.layers.0.mlp.down_proj.weight': 'q4_0 → float32',
    'model.layers.0.input_layernorm.weight': 'float32',
    'model.layers.0.self_attn.q_norm.weight': 'float32',
    'model.layers.0.odd_proj.weight': 'float32',
    position_ids: 'int64',
  });
  const text = runCli(['inspect', out]).stdout;
  assert.match(text, /q4_0 → float32/);
  assert.match(runCli(['convert', '--quantize', 'q4_0', source, path.join(dir, 'again.gguf')]).stdout, /note: 4 selected tensor\(s\) stay float/);
});

test('the blocks written are the reference quantizer\'s bytes of the source values (f32, f16 and bf16 sources)', async () => {
  const out = path.join(dir, 'q8_0.gguf');
  assert.equal(runCli(['convert', '--quantize', 'q8_0', source, out]).status, 0);
  const hashes = Object.fromEntries(listing(out).tensors.map((t) => [t.source, t.sha256]));
  const type = quantizableTypes().find((t) => t.name === 'q8_0')!;
  const dict = await open(source);
  try {
    for (const name of ['model.embed_tokens.weight', 'model.layers.0.self_attn.q_proj.weight', 'model.layers.0.mlp.down_proj.weight']) {
      const tensor = dict.tensors.find((t) => t.name === name)!;
      const float32 = castFloats(await tensor.read(), tensor.dtype, 'float32');
      const blocks = new Uint8Array((float32.byteLength / 4 / 32) * 34);
      quantizeBlocks(type, new Float32Array(float32.slice().buffer), blocks);
      assert.equal(hashes[name], sha256(blocks), name);
    }
  } finally {
    await dict.close();
  }
});

test('diff --values source.safetensors out.gguf reports the quantization error, within each type\'s step', () => {
  for (const [typeName, bound] of [['q8_0', 0.1 / 127], ['q4_1', 0.2 / 15 / 2], ['q5_0', 0.1 / 16], ['q4_0', 0.1 / 8]] as const) {
    const out = path.join(dir, `diff-${typeName}.gguf`);
    assert.equal(runCli(['convert', '--quantize', typeName, source, out]).status, 0);
    const r = runCli(['diff', '--values', '--json', source, out]);
    const report = JSON.parse(r.stdout) as { matched: { a: string; values?: { maxAbsDiff?: number; bitIdentical: boolean } }[]; onlyInA: unknown[]; onlyInB: unknown[] };
    assert.deepEqual([report.onlyInA, report.onlyInB], [[], []]);
    const embed = report.matched.find((p) => p.a === 'model.embed_tokens.weight')!.values!;
    assert.equal(embed.bitIdentical, false);
    assert.ok(embed.maxAbsDiff! > 0 && embed.maxAbsDiff! <= bound * 1.01, `${typeName}: ${embed.maxAbsDiff} vs ${bound}`);
    const norm = report.matched.find((p) => p.a === 'model.layers.0.input_layernorm.weight')!.values!;
    assert.equal(norm.maxAbsDiff, 0);
  }
});

test('k-quants: q6_k and q4_k take the rows of 256; shorter rows stay float and say so', () => {
  for (const typeName of ['q6_k', 'q4_k', 'q5_k']) {
    const out = path.join(dir, `${typeName}.gguf`);
    const r = runCli(['convert', '--json', '--quantize', typeName, source, out]);
    assert.equal(r.status, 0, r.stderr);
    const result = JSON.parse(r.stdout) as { quantization: { quantized: { name: string }[]; unquantized: { name: string; reason: string }[] } };
    assert.deepEqual(result.quantization.quantized.map((q) => q.name), ['model.layers.0.mlp.down_proj.weight']);
    assert.ok(result.quantization.unquantized.some((u) => u.name === 'model.embed_tokens.weight' && u.reason === 'rows of 64, not a multiple of 256'));
    const t = listing(out).tensors.find((x) => x.source === 'model.layers.0.mlp.down_proj.weight')!;
    assert.equal(t.encoding?.label, typeName);
  }
});

test('a pattern rule wins over the plain one; two patterns of different types on one tensor are refused', async () => {
  const out = path.join(dir, 'mixed.gguf');
  const r = runCli(['convert', '--quantize', 'q4_0', '--quantize', 'q8_0:model.embed_tokens', source, out]);
  assert.equal(r.status, 0, r.stderr);
  const labels = Object.fromEntries(listing(out).tensors.map((t) => [t.source, t.encoding?.label ?? t.dtype]));
  assert.equal(labels['model.embed_tokens.weight'], 'q8_0');
  assert.equal(labels['model.layers.0.self_attn.q_proj.weight'], 'q4_0');

  const only = path.join(dir, 'only.gguf');
  assert.equal(runCli(['convert', '--quantize', 'Q8_0:glob:model.layers.*.self_attn.**', source, only]).status, 0);
  const onlyLabels = Object.fromEntries(listing(only).tensors.map((t) => [t.source, t.encoding?.label ?? t.dtype]));
  assert.deepEqual([onlyLabels['model.layers.0.self_attn.q_proj.weight'], onlyLabels['model.embed_tokens.weight']], ['q8_0', 'float32']);

  const both = runCli(['convert', '--quantize', 'q8_0:model.embed', '--quantize', 'q4_0:re:embed', source, path.join(dir, 'both.gguf')]);
  assert.equal(both.status, 2);
  assert.match(both.stderr, /q8_0 and q4_0 both select 'model.embed_tokens.weight'/);

  // The library takes the same rules.
  const api = await convert(source, path.join(dir, 'api.gguf'), { writeOptions: { ggufQuantize: parseGgufQuantizeRules(['q5_1']) } });
  assert.equal(api.quantization?.quantized.length, 3);
});

test('convert --help names exactly the ggml types ckpt quantizes to', () => {
  const help = runCli(['convert', '--help']).stdout.replace(/\s+/g, ' ');
  const listed = /GGUF output: ([\w, ]+?) as ggml's/.exec(help)?.[1];
  assert.equal(listed, quantizableTypes().map((t) => t.name).join(', '));
});

test('--quantize types and outputs that do not go together are usage errors', () => {
  const refused = (args: string[], message: RegExp) => {
    const r = runCli(['convert', ...args]);
    assert.equal(r.status, 2, r.stdout + r.stderr);
    assert.match(r.stderr, message);
  };
  refused(['--quantize', 'q4_0', source, path.join(dir, 'x.safetensors')], /--quantize does not apply to safetensors output/);
  refused(['--quantize', 'q3_k', source, path.join(dir, 'x.gguf')], /--quantize q3_k: ckpt quantizes GGUF to q4_0, q4_1, q5_0, q5_1, q8_0, q4_k, q5_k, q6_k, q8_k/);
  refused(['--quantize', 'uint8', source, path.join(dir, 'x.gguf')], /--quantize does not apply to gguf output/);
  assert.equal(fs.existsSync(path.join(dir, 'x.gguf')), false);
});

test('NaN, infinities and scales past float16 are refused naming the tensor and element; nothing is written', () => {
  for (const [bad, message] of [
    [NaN, /tensor 'w'.*element 37 is NaN: ggml's q4_0 blocks take finite values/],
    [Infinity, /tensor 'w'.*element 37 is Infinity/],
    [1e7, /tensor 'w'.*elements 32–63 need a q4_0 scale beyond float16's 65504/],
  ] as const) {
    const file = path.join(dir, 'bad.safetensors');
    const w = values(2 * 64);
    w[37] = bad;
    writeSafetensors(file, [{ name: 'w', dtype: 'F32', shape: [2, 64], values: w }]);
    const out = path.join(dir, 'bad.gguf');
    const r = runCli(['convert', '--quantize', 'q4_0', file, out]);
    assert.equal(r.status, 3, r.stderr);
    assert.match(r.stderr, message);
    assert.equal(fs.existsSync(out), false);
    assert.deepEqual(fs.readdirSync(dir).filter((f) => f.startsWith('bad.gguf')), []);
    const json = runCli(['convert', '--json', '--quantize', 'q4_0', file, out]);
    assert.equal((JSON.parse(json.stdout || json.stderr) as { error: { code: string } }).error.code, 'invalid-input');
  }
});

test('gguf-py (llama.cpp\'s Python package) reads the quantized file, and its numpy quantizers give the same blocks', { skip: !pythonHas('gguf') && 'no gguf python module' }, async () => {
  const embed = MODEL[0]!;
  const raw = path.join(dir, 'embed.f32');
  fs.writeFileSync(raw, new Uint8Array((embed.values as Float32Array).buffer));
  for (const typeName of ['q8_0', 'q4_0', 'q4_1', 'q5_0', 'q5_1']) {
    const out = path.join(dir, `py-${typeName}.gguf`);
    assert.equal(runCli(['convert', '--quantize', typeName, source, out]).status, 0);
    const lines = python(`
import sys, numpy as np, gguf
from gguf.quants import quantize
r = gguf.GGUFReader(sys.argv[1])
t = next(t for t in r.tensors if t.name == 'model.embed_tokens.weight')
values = np.fromfile(sys.argv[2], dtype=np.float32).reshape(64, 64)
ours = bytes(t.data.tobytes())
theirs = quantize(values, gguf.GGMLQuantizationType[sys.argv[3].upper()]).tobytes()
print(t.tensor_type.name, list(map(int, t.shape)), ours == theirs)`, out, raw, typeName).trim();
    assert.equal(lines, `${typeName.toUpperCase()} [64, 64] True`);
  }
});

test('a GGUF input: blocks already of the rule\'s type are copied, others are quantized from their float view', async () => {
  const sample = path.join(dir, 'sample.gguf');
  await writeSampleGguf(sample);
  const out = path.join(dir, 'sample-q8_0.gguf');
  const r = runCli(['convert', '--quantize', 'q8_0', sample, out]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /1 tensor\(s\) already of their --quantize type, blocks copied as stored: blk\.0\.attn_k\.weight/);
  const before = Object.fromEntries(listing(sample).tensors.map((t) => [t.source, t]));
  const after = Object.fromEntries(listing(out).tensors.map((t) => [t.source, t]));
  assert.equal(after['blk.0.attn_k.weight']!.sha256, before['blk.0.attn_k.weight']!.sha256);
  assert.equal(after['blk.0.attn_q.weight']!.encoding?.label, 'q8_0');
  const dict = await open(sample);
  try {
    const q4k = dict.tensors.find((t) => t.source === 'blk.0.attn_q.weight')!;
    const blocks = new Uint8Array((768 / 32) * 34);
    quantizeBlocks(quantizableTypes().find((t) => t.name === 'q8_0')!, new Float32Array((await q4k.read()).slice().buffer), blocks);
    assert.equal(after['blk.0.attn_q.weight']!.sha256, sha256(blocks));
  } finally {
    await dict.close();
  }
});
