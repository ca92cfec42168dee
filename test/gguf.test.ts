import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { open } from '../src/index.js';
import { seededRandom } from '../src/core/random.js';
import { loadOutcome, runCli, tempDir, ROOT } from './helpers.js';
import { pythonHas, python } from './python.js';
import { encodeKeyValues, referenceBlocks, writeSampleGguf } from './gguf-fixtures.js';
import { writeGguf } from '../src/formats/gguf/write.js';
import { ggmlType } from '../src/core/ggml.js';
import type { TensorInfo } from '../src/core/statedict.js';

const dir = tempDir('ckpt-gguf-');
const sample = path.join(dir, 'tiny.gguf');
await writeSampleGguf(sample);
const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const reference = JSON.parse(fs.readFileSync(path.join(ROOT, 'test', 'fixtures', 'ggml-reference.json'), 'utf8')) as { types: Record<string, { float32: string }> };

test('block-quantized tensors list their ggml type, hash their blocks and read as float32 as ggml dequantizes them', async () => {
  const r = runCli(['inspect', '--json', '--hash', sample]);
  assert.equal(r.status, 0, r.stderr);
  const listing = JSON.parse(r.stdout) as { format: string; tensors: { source: string; dtype: string; shape: number[]; byteLength: number; sha256: string; encoding?: { label: string; dequantized: string } }[] };
  assert.equal(listing.format, 'gguf');
  const q4k = listing.tensors.find((t) => t.source === 'blk.0.attn_q.weight')!;
  assert.deepEqual([q4k.dtype, q4k.shape, q4k.byteLength, q4k.sha256, q4k.encoding], ['q4_k', [3, 256], 3 * 144, sha256(referenceBlocks('q4_k')), { label: 'q4_k', dequantized: 'float32' }]);
  assert.deepEqual(listing.tensors.map((t) => [t.source, t.dtype, t.shape]), [
    ['token_embd.weight', 'float32', [4, 2]], ['output_norm.weight', 'float16', [2]],
    ['blk.0.attn_q.weight', 'q4_k', [3, 256]], ['blk.0.attn_k.weight', 'q8_0', [3, 32]], ['blk.0.ffn_down.weight', 'q6_k', [3, 256]],
  ]);
  const dict = await open(sample);
  try {
    for (const [name, type] of [['blk.0.attn_q.weight', 'q4_k'], ['blk.0.attn_k.weight', 'q8_0'], ['blk.0.ffn_down.weight', 'q6_k']] as const) {
      const t = dict.tensors.find((x) => x.source === name)!;
      assert.equal(t.dtype, 'float32');
      assert.equal(Buffer.from(await t.read()).toString('hex'), reference.types[type]!.float32, name);
    }
  } finally {
    await dict.close();
  }
  const text = runCli(['inspect', sample]).stdout;
  assert.match(text, /q4_k → float32/);
  assert.match(text, /q6_k → float32/);
});

test('metadata: every value type, 64-bit integers beyond 2^53 as text, a tokenizer vocabulary summarized', async () => {
  const dict = await open(sample);
  await dict.close();
  const m = dict.metadata as { version: number; architecture: string; values: Record<string, unknown>; valueTypes: Record<string, string> };
  assert.equal(m.version, 3);
  assert.equal(m.architecture, 'llama');
  assert.deepEqual(m.values['tokenizer.ggml.tokens'], { type: 'array', of: 'string', length: 1000, first: Array.from({ length: 16 }, (_, i) => `tok${i}`) });
  assert.deepEqual(m.values['tokenizer.ggml.scores'], [0, 1, 2]);
  assert.deepEqual(
    ['u8', 'i8', 'u16', 'i16', 'i32', 'f32', 'flag', 'u64', 'i64', 'f64'].map((k) => m.values[k]),
    [200, -3, 60000, -300, -70000, 0.5, true, (2n ** 60n).toString(), -5, 0.25],
  );
  assert.equal(m.valueTypes['tokenizer.ggml.tokens'], 'array[string]');
});

test('gguf-py (llama.cpp\'s reader) reads the files ckpt writes', { skip: !pythonHas('gguf') && 'no gguf python module' }, () => {
  const out = python(`
import gguf, sys, hashlib
r = gguf.GGUFReader(sys.argv[1])
for t in r.tensors: print(t.name, t.tensor_type.name, list(map(int, t.shape)), hashlib.sha256(t.data.tobytes()).hexdigest())
print(len(r.fields['tokenizer.ggml.tokens'].data))`, sample);
  const lines = out.trim().split('\n');
  assert.equal(lines[2]!.split(' ').slice(0, 3).join(' '), 'blk.0.attn_q.weight Q4_K [256,');
  assert.equal(lines[2]!.split(' ').at(-1), sha256(referenceBlocks('q4_k')));
  assert.equal(lines.at(-1), '1000');
});

test('convert: safetensors → GGUF keeps names, dtypes and values; GGUF → GGUF is byte-identical', async () => {
  const st = path.join(dir, 'in.safetensors');
  const header = Buffer.from(JSON.stringify({ 'model.layers.0.mlp.up_proj.weight': { dtype: 'F16', shape: [2, 2], data_offsets: [0, 8] }, bias: { dtype: 'BF16', shape: [2], data_offsets: [8, 12] } }));
  const size = Buffer.alloc(8);
  size.writeBigUInt64LE(BigInt(header.length));
  fs.writeFileSync(st, Buffer.concat([size, header, Buffer.from([0, 0x3c, 0, 0x40, 0, 0x42, 0, 0x44, 0x80, 0x3f, 0, 0x40])]));
  const out = path.join(dir, 'out.gguf');
  assert.equal(runCli(['convert', st, out]).status, 0);
  const hashes = (file: string) => (JSON.parse(runCli(['inspect', '--json', '--hash', file]).stdout) as { tensors: { source: string; dtype: string; shape: number[]; sha256: string }[] }).tensors.map((t) => [t.source, t.dtype, t.shape, t.sha256]);
  assert.deepEqual(hashes(out), hashes(st));
  const copy = path.join(dir, 'copy.gguf');
  assert.equal(runCli(['convert', sample, copy]).status, 0);
  assert.ok(fs.readFileSync(copy).equals(fs.readFileSync(sample)));
  const diff = runCli(['diff', '--values', sample, copy]);
  assert.equal(diff.status, 0, diff.stdout + diff.stderr);
});

test('types GGUF has no place for are refused by name', () => {
  const st = path.join(dir, 'u8.safetensors');
  const header = Buffer.from(JSON.stringify({ mask: { dtype: 'U8', shape: [2], data_offsets: [0, 2] } }));
  const size = Buffer.alloc(8);
  size.writeBigUInt64LE(BigInt(header.length));
  fs.writeFileSync(st, Buffer.concat([size, header, Buffer.from([1, 2])]));
  const r = runCli(['convert', st, path.join(dir, 'u8.gguf')]);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /GGUF cannot store 'mask' \(uint8\)/);
});

/** A one-tensor GGUF whose header fields are given, for the bad-input cases. */
function rawGguf(fields: { version?: number; dims?: number[]; type?: number; offset?: number; alignment?: number; data?: number }): Buffer {
  const u32 = (v: number) => { const b = Buffer.alloc(4); b.writeUInt32LE(v); return b; };
  const u64 = (v: number) => { const b = Buffer.alloc(8); b.writeBigUInt64LE(BigInt(v)); return b; };
  const kv = encodeKeyValues(fields.alignment === undefined ? [] : [['general.alignment', 4, fields.alignment]]);
  const dims = fields.dims ?? [4];
  const info = Buffer.concat([u64(1), Buffer.from('w'), u32(dims.length), ...dims.map(u64), u32(fields.type ?? 0), u64(fields.offset ?? 0)]);
  const head = Buffer.concat([Buffer.from('GGUF'), u32(fields.version ?? 3), u64(1), u64(kv.count), kv.bytes, info]);
  const align = fields.alignment && fields.alignment > 0 ? fields.alignment : 32;
  return Buffer.concat([head, Buffer.alloc((align - (head.length % align)) % align), Buffer.alloc(fields.data ?? 16)]);
}

test('bad GGUF input fails with exit 3, naming what is wrong', async () => {
  const cases: [string, Buffer, RegExp][] = [
    ['v1', rawGguf({ version: 1 }), /GGUF version 1/],
    ['big-endian', rawGguf({ version: 0x03000000 }), /big-endian GGUF/],
    ['v9', rawGguf({ version: 9 }), /version 9 is not one ckpt reads/],
    ['five dims', rawGguf({ dims: [1, 1, 1, 1, 1] }), /5 dimensions; ggml has at most 4/],
    ['unknown type', rawGguf({ type: 77 }), /ggml type 77, which ckpt does not know/],
    ['truncated data', rawGguf({ data: 15 }), /runs past the end of the file/],
    ['unaligned', rawGguf({ offset: 4, data: 64 }), /not a multiple of the alignment 32/],
    ['alignment 3', rawGguf({ alignment: 3 }), /general.alignment must be a power of two/],
    ['partial block', rawGguf({ dims: [16], type: 2 }), /not a multiple of q4_0's block of 32/],
    ['huge count', Buffer.concat([rawGguf({}).subarray(0, 8), Buffer.from('ffffffff00000000', 'hex'), rawGguf({}).subarray(16)]), /cannot fit/],
  ];
  for (const [name, bytes, message] of cases) {
    const file = path.join(dir, `${name}.gguf`);
    fs.writeFileSync(file, bytes);
    const r = runCli(['inspect', '--hash', file]);
    assert.equal(r.status, 3, `${name}: ${r.stderr}`);
    assert.match(r.stderr, message, name);
  }
});

test('codebook types (iq2_xxs…) are listed and hashed, and refuse their float values by name', async () => {
  const file = path.join(dir, 'iq2.gguf');
  const blocks = new Uint8Array(66).fill(1);
  await writeGguf(file, [{ name: 'w', shape: [256], type: ggmlType(16)!, byteLength: 66, read: async () => blocks }], encodeKeyValues([]));
  const listing = JSON.parse(runCli(['inspect', '--json', '--hash', file]).stdout) as { tensors: { dtype: string; sha256: string }[] };
  assert.deepEqual(listing.tensors.map((t) => [t.dtype, t.sha256]), [['iq2_xxs', sha256(blocks)]]);
  assert.equal(await loadOutcome(file), 3);
});

const ITERATIONS = Number(process.env.CKPT_FUZZ_ITERATIONS ?? 300);

test(`${ITERATIONS} mutated GGUF files each load or fail with exit 3`, async () => {
  const seed = fs.readFileSync(sample);
  const next = seededRandom(16);
  const file = path.join(dir, 'fuzz.gguf');
  // The header is where the structure is: mutate there mostly, with some cuts anywhere.
  const headerEnd = 1200;
  for (let i = 0; i < ITERATIONS; i++) {
    const bytes = Buffer.from(seed);
    const kind = next();
    let mutated: Buffer = bytes;
    if (kind < 0.8) {
      for (let k = 0; k < 1 + Math.floor(next() * 4); k++) bytes[Math.floor(next() * headerEnd)] = next() < 0.3 ? 0xff : Math.floor(next() * 256);
    } else mutated = bytes.subarray(0, Math.floor(next() * bytes.length));
    fs.writeFileSync(file, mutated);
    const outcome = await loadOutcome(file);
    assert.ok(outcome === 'ok' || outcome === 3, `iteration ${i}: exit ${outcome}`);
  }
});

test('llama.cpp names pair with the Hugging Face names of the same llama model (diff --values through the float view)', async () => {
  const hf = path.join(dir, 'hf.safetensors');
  const dict = await open(sample);
  const entries: [string, TensorInfo][] = [['model.embed_tokens.weight', dict.tensors[0]!], ['model.norm.weight', dict.tensors[1]!], ['model.layers.0.self_attn.q_proj.weight', dict.tensors[2]!], ['model.layers.0.self_attn.k_proj.weight', dict.tensors[3]!], ['model.layers.0.mlp.down_proj.weight', dict.tensors[4]!]];
  try {
    const values = await Promise.all(entries.map(async ([, t]) => Buffer.from(await t.read())));
    let offset = 0;
    const header: Record<string, unknown> = {};
    entries.forEach(([name, t], i) => {
      header[name] = { dtype: t.dtype === 'float16' ? 'F16' : 'F32', shape: t.shape, data_offsets: [offset, offset + values[i]!.length] };
      offset += values[i]!.length;
    });
    const json = Buffer.from(JSON.stringify(header));
    fs.writeFileSync(hf, Buffer.concat([Buffer.from(BigUint64Array.from([BigInt(json.length)]).buffer), json, ...values]));
  } finally {
    await dict.close();
  }
  const r = runCli(['diff', '--values', '--json', sample, hf]);
  assert.equal(r.status, 0, r.stdout + r.stderr);
  const report = JSON.parse(r.stdout) as { onlyInA: unknown[]; onlyInB: unknown[] };
  assert.deepEqual([report.onlyInA.length, report.onlyInB.length], [0, 0]);
});
