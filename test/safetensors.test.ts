import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { open, CkptError } from '../src/index.js';
import { writeSafetensors } from '../src/formats/safetensors/write.js';
import { SAMPLES, runCli, tempDir } from './helpers.js';

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const ITERATIONS = Number(process.env.CKPT_FUZZ_ITERATIONS ?? 300);

/** A safetensors file from a header object (or raw header text) and the data bytes. */
function file(header: object | string | Buffer, data: Uint8Array, trailing = 0): string {
  const json = Buffer.isBuffer(header) ? header : Buffer.from(typeof header === 'string' ? header : JSON.stringify(header));
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(json.length));
  const out = path.join(tempDir(), 'model.safetensors');
  fs.writeFileSync(out, Buffer.concat([length, json, data, Buffer.alloc(trailing)]));
  return out;
}

describe('safetensors reader', () => {
  test('tensors in header order (integer-like names too), metadata kept', async () => {
    const header = '{"__metadata__":{"format":"pt"},"b":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"10":{"dtype":"I64","shape":[],"data_offsets":[8,16]},"2":{"dtype":"BF16","shape":[1],"data_offsets":[16,18]}}';
    const dict = await open(file(header, new Uint8Array(18)));
    assert.deepEqual(dict.tensors.map((t) => [t.source, t.dtype, t.shape]), [['b', 'float32', [2]], ['10', 'int64', []], ['2', 'bfloat16', [1]]]);
    assert.deepEqual(dict.metadata.metadata, { format: 'pt' });
    await dict.close();
  });

  test('offsets may come in any JSON order: listed in header order, each tensor read from its own range', async () => {
    const data = Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    const header = { z: { dtype: 'U8', shape: [2, 2], data_offsets: [8, 12] }, a: { dtype: 'I32', shape: [2], data_offsets: [0, 8] } };
    const dict = await open(file(header, data));
    assert.deepEqual(dict.tensors.map((t) => [t.source, t.dtype, t.shape]), [['z', 'uint8', [2, 2]], ['a', 'int32', [2]]]);
    // Listing read the 8-byte length and the header, nothing else.
    assert.equal(dict.bytesRead!(), 8 + JSON.stringify(header).length);
    assert.deepEqual(await dict.tensors[0]!.read(), data.subarray(8, 12));
    assert.deepEqual(await dict.tensors[1]!.read(), data.subarray(0, 8));
    await dict.close();
  });

  test('read → write → read is bit-exact: every dtype, scalars, empty tensors, integer-like names, metadata', async () => {
    const dir = tempDir();
    const specs: [string, string, number[], number][] = [
      ['10', 'F64', [2], 8], ['2', 'F32', [3], 4], ['h', 'F16', [2, 2], 2], ['bf', 'BF16', [1], 2], ['f8', 'F8_E4M3', [3], 1], ['e5', 'F8_E5M2', [1], 1],
      ['l', 'I64', [], 8], ['i', 'I32', [2], 4], ['s', 'I16', [1], 2], ['b', 'I8', [1], 1], ['u64', 'U64', [1], 8], ['u32', 'U32', [1], 4],
      ['u16', 'U16', [1], 2], ['u8', 'U8', [4], 1], ['flag', 'BOOL', [2], 1], ['c', 'C64', [1], 8], ['empty', 'F32', [0, 3], 4],
    ];
    let offset = 0;
    const header: Record<string, unknown> = { __metadata__: { format: 'pt', note: 'ü' } };
    for (const [name, dtype, shape, width] of specs) {
      const size = shape.reduce((n, d) => n * d, 1) * width;
      header[name] = { dtype, shape, data_offsets: [offset, offset + size] };
      offset += size;
    }
    // JSON.stringify of this object puts '2' and '10' first, which is also a valid order.
    const source = await open(file(header, Uint8Array.from({ length: offset }, (_, i) => (i * 37) % 256)));
    const out = path.join(dir, 'out.safetensors');
    await writeSafetensors(out, source.tensors.map((t) => ({ name: t.source, tensor: t })), source.metadata.metadata as Record<string, string>);
    const back = await open(out);
    const essentials = async (d: typeof source) => Promise.all(d.tensors.map(async (t) => [t.source, t.dtype, t.shape, sha(await t.read())]));
    assert.deepEqual(await essentials(back), await essentials(source));
    assert.deepEqual(back.metadata, source.metadata);
    assert.equal(Number(fs.readFileSync(out).readBigUInt64LE(0)) % 8, 0);
    await source.close();
    await back.close();
  });

  test('the writer refuses what safetensors cannot store, and leaves no file', async () => {
    const dir = tempDir();
    const strings = { name: 's', source: 's', dtype: 'string' as const, shape: [1], byteLength: 1, origin: 'weight' as const, read: async () => new Uint8Array(0), readStrings: async () => [new Uint8Array(1)] };
    await assert.rejects(writeSafetensors(path.join(dir, 'x.safetensors'), [{ name: 's', tensor: strings }]), /cannot store 's' \(string\)/);
    assert.deepEqual(fs.readdirSync(dir), []);
  });

  test('inspect --hash names an earlier tensor with the same dtype, shape and values (sameAs); equal scalars are not flagged', () => {
    const t = (begin: number, shape: number[]) => ({ dtype: 'F32', shape, data_offsets: [begin, begin + 4 * shape.reduce((n, d) => n * d, 1)] });
    const data = Buffer.from(new Float32Array([1, 2, 1, 2, 1, 2, 7, 7]).buffer);
    const f = file({ 'encoder.embed': t(0, [2]), 'decoder.embed': t(8, [2]), 'lm_head.weight': t(16, [1, 2]), 'a.step': t(24, []), 'b.step': t(28, []) }, data);
    const r = runCli(['inspect', '--hash', '--json', f]);
    assert.equal(r.status, 0, r.stderr);
    const same = (JSON.parse(r.stdout).tensors as { name: string; sameAs?: string }[]).map((x) => [x.name, x.sameAs]);
    assert.deepEqual(same, [['encoder.embed', undefined], ['decoder.embed', 'encoder.embed'], ['lm_head.weight', undefined], ['a.step', undefined], ['b.step', undefined]]);
    assert.match(runCli(['inspect', '--hash', f]).stdout, /decoder\.embed .*│ encoder\.embed\s+│/);
  });

  test('a tensor over the 4 GiB one Node.js buffer holds lists, and reading it whole is a clear error, not a crash', async () => {
    // A sparse file: the 5 GiB of zeros take no disk space.
    const numel = 5 * 2 ** 28;
    const f = file({ big: { dtype: 'F32', shape: [numel], data_offsets: [0, numel * 4] } }, new Uint8Array(0));
    fs.truncateSync(f, fs.statSync(f).size + numel * 4);
    assert.equal(runCli(['inspect', f]).status, 0);
    const dict = await open(f);
    try {
      // Hashing, comparing and writing stream it in chunks instead (hash.test.ts).
      await assert.rejects(dict.tensors[0]!.read(), /tensor 'big' is 5368709120 bytes; ckpt reads one tensor at a time and Node\.js holds at most \d+ bytes in one buffer/);
    } finally {
      await dict.close();
    }
  });

  test('convert writes what it reads back, in order, with the same values', () => {
    const out = path.join(tempDir(), 'd.safetensors');
    assert.equal(runCli(['convert', path.join(SAMPLES, 'detector-90.onnx'), out]).status, 0);
    const r = runCli(['diff', '--values', path.join(SAMPLES, 'detector-90.onnx'), out]);
    assert.equal(r.status, 0, r.stdout);
    const bytes = fs.readFileSync(out);
    assert.equal(Number(bytes.readBigUInt64LE(0)) % 8, 0, 'header padded to 8 bytes');
  });
});

describe('safetensors sub-byte floats: F4 read through its float32 view, F6 listed and hashed only', () => {
  /**
   * ml_dtypes' published float4_e2m1fn (README: encoding `0bSEEM`, bias 1, no inf/NaN): the
   * absolute values of codes 0–7 are 0, 0.5, 1, 1.5, 2, 3, 4, 6; bit 3 is the sign.
   */
  const E2M1_MAGNITUDES = [0, 0.5, 1, 1.5, 2, 3, 4, 6];
  // Codes 0…15 in element order, two a byte, the first element in the low nibble (torch's float4_e2m1fn_x2).
  const allCodes = Uint8Array.from({ length: 8 }, (_, i) => (2 * i) | ((2 * i + 1) << 4));
  const f4File = () => file({ __metadata__: { format: 'pt' }, codes: { dtype: 'F4', shape: [4, 4], data_offsets: [0, 8] } }, allCodes);

  test('every F4 code decodes to the ml_dtypes float4_e2m1fn value (−0 included); listed float4e2m1 → float32, hashed as stored', async () => {
    const f = f4File();
    const dict = await open(f);
    const [t] = dict.tensors;
    const values = [...new Float32Array((await t!.read()).slice().buffer)];
    assert.deepEqual(values.map((v) => Object.is(v, -0) ? '-0' : v), [...E2M1_MAGNITUDES, '-0', ...E2M1_MAGNITUDES.slice(1).map((m) => -m)]);
    assert.equal(t!.byteLength, 16 * 4);
    await dict.close();
    const listing = JSON.parse(runCli(['inspect', '--json', '--hash', f]).stdout).tensors[0];
    assert.deepEqual([listing.dtype, listing.byteLength, listing.encoding, listing.sha256], ['float4e2m1', 8, { label: 'float4e2m1', dequantized: 'float32' }, sha(allCodes)]);
    assert.match(runCli(['inspect', f]).stdout, /float4e2m1 → float32/);
  });

  test('F4 written back as its stored codes while its values are the file’s; cast, it is written as the new values', async () => {
    const dir = tempDir();
    const copy = path.join(dir, 'copy.safetensors');
    assert.equal(runCli(['rename', f4File(), '--add-prefix', 'q.', '-o', copy]).status, 0);
    const dict = await open(copy);
    assert.deepEqual([dict.tensors[0]!.source, dict.tensors[0]!.encoding?.stored], ['q.codes', 'float4e2m1']);
    assert.deepEqual(await dict.tensors[0]!.encoding!.readStored(), allCodes);
    await dict.close();
    const half = path.join(dir, 'half.safetensors');
    assert.equal(runCli(['convert', copy, half, '--dtype', 'float16']).status, 0);
    assert.equal((await open(half)).tensors[0]!.dtype, 'float16');
    const diff = JSON.parse(runCli(['diff', '--values', '--json', copy, half]).stdout);
    assert.equal(diff.matched[0].values.maxAbsDiff, 0, 'every E2M1 value is exact in float16');
  });

  test('F6_E2M3/F6_E3M2: sized as the crate sizes them, listed and hashed as stored, values refused naming what is missing', async () => {
    const stored = Uint8Array.from([1, 2, 3, 4, 5, 6]);
    const f = file({ a: { dtype: 'F6_E2M3', shape: [4], data_offsets: [0, 3] }, b: { dtype: 'F6_E3M2', shape: [1, 4], data_offsets: [3, 6] } }, stored);
    const r = runCli(['inspect', '--json', '--hash', f]);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout).tensors.map((t: { dtype: string; byteLength: number; sha256: string }) => [t.dtype, t.byteLength, t.sha256]),
      [['float6e2m3', 3, sha(stored.subarray(0, 3))], ['float6e3m2', 3, sha(stored.subarray(3))]]);
    const refused = runCli(['convert', f, path.join(tempDir(), 'x.safetensors')]);
    assert.equal(refused.status, 3);
    assert.match(refused.stderr, /tensor 'a': F6_E2M3 values are not read: the safetensors crate sizes them \(four 6-bit elements in three bytes\) but states no bit order within those bytes/);
  });
});

describe('safetensors bad input: every offset checked before any read (exit 3)', () => {
  const t = (begin: number, end: number, shape = [2]) => ({ dtype: 'F32', shape, data_offsets: [begin, end] });
  const cases: [string, () => string, RegExp][] = [
    ['shorter than 8 bytes', () => { const f = path.join(tempDir(), 's'); fs.writeFileSync(f, Buffer.alloc(5)); return f; }, /unrecognized format/],
    ['a header length over 100 MB', () => { const f = file({ a: t(0, 8) }, new Uint8Array(8)); const b = fs.readFileSync(f); b.writeBigUInt64LE(200_000_000n); fs.writeFileSync(f, b); return f; }, /offset 0: header length 200000000 is over the 100000000 allowed/],
    ['header past the end', () => { const f = file({ a: t(0, 8) }, new Uint8Array(8)); const b = fs.readFileSync(f); b.writeBigUInt64LE(1000n); fs.writeFileSync(f, b); return f; }, /header length 1000 runs past the end of the file \(\d+ bytes\)/],
    ['a header that is not UTF-8', () => file(Buffer.from([0x7b, 0xff, 0xfe, 0x7d]), new Uint8Array(0)), /offset 8: header is not valid UTF-8/],
    ['a first tensor not at 0', () => file({ a: t(4, 12) }, new Uint8Array(12)), /'a': gap before the data \(begins at 4, expected 0\)/],
    ['unsorted offsets with a gap', () => file({ b: t(12, 20), a: t(0, 8) }, new Uint8Array(20)), /'b': gap before the data \(begins at 12, expected 8\)/],
    ['an offset beyond 2^53', () => file('{"a":{"dtype":"U8","shape":[1],"data_offsets":[9007199254740993,9007199254740994]}}', new Uint8Array(1)), /data_offsets must be \[begin, end\]/],
    ['a sub-byte tensor that does not fill whole bytes', () => file({ a: { dtype: 'F4', shape: [3], data_offsets: [0, 2] } }, new Uint8Array(2)), /3 elements of float4e2m1 do not fill whole bytes \(4 bits each\)/],
    ['6-bit floats not a multiple of four elements', () => file({ a: { dtype: 'F6_E3M2', shape: [2, 3], data_offsets: [0, 5] } }, new Uint8Array(5)), /'a': 6 elements of float6e3m2 do not fill whole bytes \(6 bits each\)/],
    ['6-bit floats given one byte each', () => file({ a: { dtype: 'F6_E2M3', shape: [8], data_offsets: [0, 8] } }, new Uint8Array(8)), /'a': data_offsets span 8 bytes, expected 6 for float6e2m3 \[8\]/],
    ['F4 given one byte per element', () => file({ a: { dtype: 'F4', shape: [2], data_offsets: [0, 2] } }, new Uint8Array(2)), /'a': data_offsets span 2 bytes, expected 1 for float4e2m1 \[2\]/],
    ['a header that is not a JSON object', () => file('[{"a":1}]', new Uint8Array(0)), /unrecognized format/],
    ['a gap between tensors', () => file({ a: t(0, 8), b: t(12, 20) }, new Uint8Array(20)), /'b': gap before the data \(begins at 12, expected 8\)/],
    ['overlapping tensors', () => file({ a: t(0, 8), b: t(4, 12) }, new Uint8Array(12)), /'b': data overlaps the previous tensor/],
    ['a byte count that does not fit dtype × shape', () => file({ a: t(0, 12) }, new Uint8Array(12)), /'a': data_offsets span 12 bytes, expected 8/],
    ['trailing bytes after the last tensor', () => file({ a: t(0, 8) }, new Uint8Array(8), 4), /tensors end at .* but the file is/],
    ['an unknown dtype', () => file({ a: { dtype: 'F7', shape: [1], data_offsets: [0, 1] } }, new Uint8Array(1)), /unknown dtype "F7"/],
    ['non-string metadata', () => file({ __metadata__: { n: 1 }, a: t(0, 8) }, new Uint8Array(8)), /metadata values must be strings/],
    ['invalid JSON', () => file('{"a": {', new Uint8Array(0)), /not valid JSON/],
    ['a negative dim', () => file({ a: t(0, 8, [-2]) }, new Uint8Array(8)), /non-negative integers/],
    ['duplicate names', () => file('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}', new Uint8Array(8)), /duplicate tensor name 'a'/],
  ];
  for (const [name, make, message] of cases) {
    test(name, () => {
      const r = runCli(['inspect', make()]);
      assert.equal(r.status, 3, r.stderr);
      assert.match(r.stderr, message);
    });
  }
  test(`mutated files (${ITERATIONS}) load or fail with exit 3/4, never crash`, async () => {
    const header = { __metadata__: { format: 'pt' }, 'w.weight': t(0, 8), 'w.bias': { dtype: 'BF16', shape: [2, 1], data_offsets: [8, 12] }, step: { dtype: 'I64', shape: [], data_offsets: [12, 20] } };
    const base = fs.readFileSync(file(header, new Uint8Array(20).fill(7)));
    let seed = 11;
    const random = () => ((seed = (seed * 48271) % 2147483647) / 2147483647);
    const target = path.join(tempDir(), 'fuzz.safetensors');
    let rejected = 0;
    for (let i = 0; i < ITERATIONS; i++) {
      const bytes = Buffer.from(base);
      // Mostly the header: the JSON is where the offsets live.
      for (let k = 0; k < 1 + Math.floor(random() * 3); k++) bytes[Math.floor(random() * (random() < 0.8 ? Math.min(bytes.length, 8 + 140) : bytes.length))] = Math.floor(random() * 256);
      fs.writeFileSync(target, random() < 0.15 ? bytes.subarray(0, Math.floor(random() * bytes.length)) : bytes);
      try {
        const dict = await open(target);
        for (const x of dict.tensors) await x.read();
        await dict.close();
      } catch (err) {
        assert.ok(err instanceof CkptError && (err.exitCode === 3 || err.exitCode === 4), String((err as Error).stack));
        rejected++;
      }
    }
    assert.ok(rejected > 0);
  });
});
