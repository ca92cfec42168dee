import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { open, CkptError } from '../src/index.js';
import { encodeNpyHeader } from '../src/formats/numpy/header.js';
import { writeNpy, writeNpz } from '../src/formats/numpy/write.js';
import { ZipWriter } from '../src/core/zip.js';
import { SAMPLES, runCli, tempDir } from './helpers.js';
import { python, pythonHas } from './python.js';

const noNumpy = !pythonHas('numpy') && 'Debian python3-numpy is not installed';
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

function npz(file: string, members: [string, Uint8Array][]): string {
  const parts: Uint8Array[] = [];
  const zip = new ZipWriter((b) => parts.push(Uint8Array.from(b)));
  for (const [name, bytes] of members) zip.add(name, [bytes]);
  zip.finish();
  fs.writeFileSync(file, Buffer.concat(parts));
  return file;
}

/** A .npy whose header dict is `text` (framing, padding and newline done right). */
function rawNpy(text: string, data = Buffer.alloc(0)): Buffer {
  const padded = text.padEnd(Math.ceil((10 + text.length + 1) / 64) * 64 - 11, ' ') + '\n';
  const pre = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0, 0, 0]);
  pre.writeUInt16LE(padded.length, 8);
  return Buffer.concat([pre, Buffer.from(padded, 'latin1'), data]);
}

/** A one-member ZIP64 archive (sizes and offset in the zip64 extra field, zip64 end records). */
function zip64(name: string, data: Buffer): Buffer {
  const nameBytes = Buffer.from(name);
  const crc = zlib.crc32(data);
  const local = Buffer.alloc(30);
  local.writeUInt32LE(0x04034b50, 0); local.writeUInt16LE(45, 4); local.writeUInt32LE(crc, 14);
  local.writeUInt32LE(0xffffffff, 18); local.writeUInt32LE(0xffffffff, 22); local.writeUInt16LE(nameBytes.length, 26); local.writeUInt16LE(20, 28);
  const localExtra = Buffer.alloc(20);
  localExtra.writeUInt16LE(1, 0); localExtra.writeUInt16LE(16, 2); localExtra.writeBigUInt64LE(BigInt(data.length), 4); localExtra.writeBigUInt64LE(BigInt(data.length), 12);
  const body = Buffer.concat([local, nameBytes, localExtra, data]);
  const central = Buffer.alloc(46);
  central.writeUInt32LE(0x02014b50, 0); central.writeUInt16LE(45, 4); central.writeUInt16LE(45, 6); central.writeUInt32LE(crc, 16);
  central.writeUInt32LE(0xffffffff, 20); central.writeUInt32LE(0xffffffff, 24); central.writeUInt16LE(nameBytes.length, 28); central.writeUInt16LE(28, 30);
  central.writeUInt32LE(0xffffffff, 42);
  const extra = Buffer.alloc(28);
  extra.writeUInt16LE(1, 0); extra.writeUInt16LE(24, 2); extra.writeBigUInt64LE(BigInt(data.length), 4); extra.writeBigUInt64LE(BigInt(data.length), 12); extra.writeBigUInt64LE(0n, 20);
  const directory = Buffer.concat([central, nameBytes, extra]);
  const record = Buffer.alloc(56 + 20);
  record.writeUInt32LE(0x06064b50, 0); record.writeBigUInt64LE(44n, 4); record.writeUInt16LE(45, 12); record.writeUInt16LE(45, 14);
  record.writeBigUInt64LE(1n, 24); record.writeBigUInt64LE(1n, 32); record.writeBigUInt64LE(BigInt(directory.length), 40); record.writeBigUInt64LE(BigInt(body.length), 48);
  record.writeUInt32LE(0x07064b50, 56); record.writeBigUInt64LE(BigInt(body.length + directory.length), 64); record.writeUInt32LE(1, 72);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0); end.writeUInt16LE(0xffff, 8); end.writeUInt16LE(0xffff, 10); end.writeUInt32LE(0xffffffff, 12); end.writeUInt32LE(0xffffffff, 16);
  return Buffer.concat([body, directory, record, end]);
}

/** A .npy with a version 2 or 3 header (4-byte length; v3 is UTF-8). */
function npyVersion(major: 2 | 3, text: string, data: Buffer): Buffer {
  const header = Buffer.from(text.padEnd(Math.ceil((12 + text.length + 1) / 64) * 64 - 13, ' ') + '\n', 'utf8');
  const pre = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, major, 0, 0, 0, 0, 0]);
  pre.writeUInt32LE(header.length, 8);
  return Buffer.concat([pre, header, data]);
}

const npy = (dtype: 'float32' | 'int64', shape: number[], data: ArrayBufferView) =>
  Buffer.concat([encodeNpyHeader(dtype, shape), new Uint8Array(data.buffer, data.byteOffset, data.byteLength)]);

describe('NumPy reader', () => {
  test('a .npy is one tensor named after the file; an .npz one per member', async () => {
    const dir = tempDir();
    fs.writeFileSync(path.join(dir, 'weights.npy'), npy('float32', [2, 3], new Float32Array([1, 2, 3, 4, 5, 6])));
    const single = await open(path.join(dir, 'weights.npy'));
    assert.deepEqual(single.tensors.map((t) => [t.name, t.dtype, t.shape]), [['weights', 'float32', [2, 3]]]);
    await single.close();
    const file = npz(path.join(dir, 'a.npz'), [['w.npy', npy('float32', [2], new Float32Array([1, 2]))], ['step.npy', npy('int64', [], new BigInt64Array([7n]))]]);
    const dict = await open(file);
    assert.deepEqual(dict.tensors.map((t) => [t.name, t.dtype, t.shape]), [['w', 'float32', [2]], ['step', 'int64', []]]);
    assert.deepEqual([...new BigInt64Array(Uint8Array.from(await dict.tensors[1]!.read()).buffer)], [7n]);
    await dict.close();
  });

  test('version 2 and 3 headers, ZIP64 archives', async () => {
    const dir = tempDir();
    const v2 = path.join(dir, 'v2.npy');
    fs.writeFileSync(v2, npyVersion(2, "{'descr': '<i2', 'fortran_order': False, 'shape': (3,), }", Buffer.from(Int16Array.from([1, -2, 3]).buffer)));
    const v3 = path.join(dir, 'v3.npz');
    fs.writeFileSync(v3, zip64('w.npy', npyVersion(3, "{'descr': '|u1', 'fortran_order': False, 'shape': (2, 1), }", Buffer.from([7, 9]))));
    const a = await open(v2);
    const b = await open(v3);
    assert.deepEqual([a.tensors[0]!.dtype, a.tensors[0]!.shape, [...new Int16Array(Uint8Array.from(await a.tensors[0]!.read()).buffer)]], ['int16', [3], [1, -2, 3]]);
    assert.deepEqual([b.tensors[0]!.source, b.tensors[0]!.dtype, b.tensors[0]!.shape, [...(await b.tensors[0]!.read())]], ['w', 'uint8', [2, 1], [7, 9]]);
    await a.close();
    await b.close();
  });

  test('read → writeNpz / writeNpy → read is bit-exact, and numpy dtypes only', async () => {
    const dir = tempDir();
    const source = path.join(dir, 'source.npz');
    const arrays: [string, string, number[], number][] = [
      ['f64', '<f8', [2], 8], ['f16', '<f2', [2, 2], 2], ['i8', '|i1', [3], 1], ['u64', '<u8', [], 8], ['flags', '|b1', [2], 1], ['c', '<c8', [1], 8], ['none', '<f4', [0, 5], 4],
    ];
    npz(source, arrays.map(([name, descr, shape, width]) => {
      const size = shape.reduce((n, d) => n * d, 1) * width;
      const tuple = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
      return [`${name}.npy`, rawNpy(`{'descr': '${descr}', 'fortran_order': False, 'shape': ${tuple}, }`, Buffer.from(Array.from({ length: size }, (_, i) => (name === 'flags' ? i % 2 : (i * 29) % 256))))];
    }));
    const dict = await open(source);
    const essentials = async (file: string) => {
      const d = await open(file);
      const out = await Promise.all(d.tensors.map(async (t) => [t.source, t.dtype, t.shape, sha(await t.read())]));
      await d.close();
      return out;
    };
    await writeNpz(path.join(dir, 'out.npz'), dict.tensors.map((t) => ({ name: t.source, tensor: t })));
    assert.deepEqual(await essentials(path.join(dir, 'out.npz')), await essentials(source));
    await writeNpy(path.join(dir, 'f16.npy'), [{ name: 'f16', tensor: dict.tensors[1]! }]);
    assert.deepEqual(await essentials(path.join(dir, 'f16.npy')), [(await essentials(source))[1]]);
    const bf16 = { ...dict.tensors[1]!, dtype: 'bfloat16' as const };
    await assert.rejects(writeNpz(path.join(dir, 'bf.npz'), [{ name: 'x', tensor: bf16 }]), /NumPy cannot store 'x' \(bfloat16\)/);
    await assert.rejects(writeNpy(path.join(dir, 'two.npy'), dict.tensors.slice(0, 2).map((t) => ({ name: t.source, tensor: t }))), /holds one array; 2 tensors/);
    assert.ok(!fs.existsSync(path.join(dir, 'bf.npz')));
    await dict.close();
  });

  test('what numpy writes — compressed, big-endian, Fortran order, v2 headers, bool — reads as numpy sees it', { skip: noNumpy }, async () => {
    const dir = tempDir();
    const file = path.join(dir, 'np.npz');
    python(`
import numpy as np, sys
a = np.arange(24, dtype='>f4').reshape(2, 3, 4)
f = np.asfortranarray(np.arange(6, dtype='<i2').reshape(2, 3))
np.savez_compressed(sys.argv[1], big=a, fortran=f, flags=np.array([True, False, True]), c=np.array([1+2j], dtype='<c8'))
np.save(sys.argv[2], np.ones((3,), dtype='<f8'))
`, file, path.join(dir, 'v.npy'));
    const expected = JSON.parse(python(`
import numpy as np, sys, hashlib, json
d = np.load(sys.argv[1])
print(json.dumps({k: [str(v.dtype.newbyteorder('<').name), list(v.shape), hashlib.sha256(np.ascontiguousarray(v).astype(v.dtype.newbyteorder('<')).tobytes()).hexdigest()] for k, v in d.items()}))
`, file));
    const dict = await open(file);
    for (const t of dict.tensors) {
      const [dtype, shape, hash] = expected[t.name];
      assert.deepEqual([t.shape, sha(await t.read())], [shape, hash], t.name);
      assert.equal(t.dtype, dtype.replace('bool', 'bool'));
    }
    await dict.close();
    const v = await open(path.join(dir, 'v.npy'));
    assert.deepEqual([v.tensors[0]!.dtype, v.tensors[0]!.shape], ['float64', [3]]);
    await v.close();
  });

  test('convert to .npz writes what numpy.load reads, bit for bit', { skip: noNumpy }, async () => {
    const out = path.join(tempDir(), 'detector.npz');
    const r = runCli(['convert', path.join(SAMPLES, 'detector-90.onnx'), out]);
    assert.equal(r.status, 0, r.stderr);
    const seen = JSON.parse(python(`
import numpy as np, sys, hashlib, json
d = np.load(sys.argv[1], allow_pickle=False)
print(json.dumps({k: [list(v.shape), hashlib.sha256(v.tobytes()).hexdigest()] for k, v in d.items()}))
`, out));
    const ours = JSON.parse(runCli(['inspect', '--json', '--hash', path.join(SAMPLES, 'detector-90.onnx')]).stdout).tensors;
    assert.deepEqual(Object.keys(seen), ours.map((t: { name: string }) => t.name));
    for (const t of ours) assert.deepEqual(seen[t.name], [t.shape, t.sha256]);
    const back = JSON.parse(runCli(['inspect', '--json', '--hash', out]).stdout).tensors;
    assert.deepEqual(back.map((t: { sha256: string }) => t.sha256), ours.map((t: { sha256: string }) => t.sha256));
  });
});

describe('NumPy reader: bad input is exit 3 with a message naming the problem', () => {
  const dir = tempDir();
  const cases: [string, Buffer, RegExp][] = [
    ['list.npy', rawNpy("['descr', '<f4']"), /header is not a dict/],
    ['objdtype.npy', rawNpy("{'descr': '|O', 'fortran_order': False, 'shape': (2,), }", Buffer.alloc(16)), /holds Python objects/],
    ['structured.npy', rawNpy("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,), }"), /no 'descr' string/],
    ['short.npy', npy('float32', [4], new Float32Array(3)), /data is 12 bytes, expected 16/],
    ['negative.npy', rawNpy("{'descr': '<f4', 'fortran_order': False, 'shape': (-1,), }"), /non-negative integers/],
    ['long-header.npy', (() => { const b = Buffer.from(encodeNpyHeader('float32', [1])); b.writeUInt16LE(60000, 8); return b; })(), /longer than the 10000/],
    ['eval.npy', rawNpy("{'descr': __import__('os').system('true'), }"), /unexpected character/],
    ['unicode.npy', rawNpy("{'descr': '<U4', 'fortran_order': False, 'shape': (1,), }", Buffer.alloc(16)), /unsupported dtype '<U4'/],
    ['version4.npy', (() => { const b = rawNpy("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", Buffer.alloc(4)); b[6] = 4; return b; })(), /\.npy version 4\.0 is not 1, 2 or 3/],
    ['unterminated.npy', rawNpy("{'descr': '<f4", Buffer.alloc(4)), /unterminated string/],
    ['truncated.npz', fs.readFileSync(npz(path.join(dir, 'whole.npz'), [['w.npy', npy('float32', [2], new Float32Array(2))]])).subarray(0, 90), /zip: no end-of-central-directory record \(truncated or not a zip\)/],
    ['short-member.npz', fs.readFileSync(npz(path.join(dir, 'short.npz'), [['w.npy', npy('float32', [4], new Float32Array(3))]])), /member 'w\.npy': holds 12 data bytes, expected 16/],
  ];
  for (const [name, content, message] of cases) {
    test(name, () => {
      const file = path.join(dir, name);
      fs.writeFileSync(file, content);
      const r = runCli(['inspect', '--hash', file]);
      assert.equal(r.status, 3, r.stderr);
      assert.match(r.stderr, message);
    });
  }

  test('a deflated member that inflates past what its header declares stops there (zip bomb)', async () => {
    const header = encodeNpyHeader('float32', [4]);
    const data = Buffer.concat([header, Buffer.alloc(1 << 20)]);
    const deflated = zlib.deflateRawSync(data);
    // Hand-made zip entry: method 8, claims the small size.
    const name = Buffer.from('bomb.npy');
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0); local.writeUInt16LE(20, 4); local.writeUInt16LE(8, 8);
    local.writeUInt32LE(0, 14); local.writeUInt32LE(deflated.length, 18); local.writeUInt32LE(header.length + 16, 22);
    local.writeUInt16LE(name.length, 26);
    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0); central.writeUInt16LE(20, 6); central.writeUInt16LE(8, 10);
    central.writeUInt32LE(deflated.length, 20); central.writeUInt32LE(header.length + 16, 24); central.writeUInt16LE(name.length, 28);
    const body = Buffer.concat([local, name, deflated]);
    const end = Buffer.alloc(22);
    end.writeUInt32LE(0x06054b50, 0); end.writeUInt16LE(1, 8); end.writeUInt16LE(1, 10);
    end.writeUInt32LE(46 + name.length, 12); end.writeUInt32LE(body.length, 16);
    const file = path.join(dir, 'bomb.npz');
    fs.writeFileSync(file, Buffer.concat([body, central, name, end]));
    const dict = await open(file);
    await assert.rejects(dict.tensors[0]!.read(), (err: unknown) => err instanceof CkptError && /member 'bomb\.npy'.*inflate/.test(err.message));
    await dict.close();
  });

  test('a member named with .. is refused', () => {
    const file = npz(path.join(dir, 'escape.npz'), [['../x.npy', npy('float32', [1], new Float32Array(1))]]);
    const r = runCli(['inspect', file]);
    assert.equal(r.status, 3);
    assert.match(r.stderr, /member '\.\.\/x\.npy': member name is absolute or contains \.\./);
  });

  test('mutated .npy headers load or fail with exit 3/4, never crash', async () => {
    const base = npy('float32', [3, 2], new Float32Array(6).fill(1));
    let next = 5;
    const random = () => ((next = (next * 48271) % 2147483647) / 2147483647);
    const iterations = Number(process.env.CKPT_FUZZ_ITERATIONS ?? 300);
    const file = path.join(dir, 'fuzz.npy');
    for (let i = 0; i < iterations; i++) {
      const bytes = Buffer.from(base);
      // The dict literal sits in bytes 10..63.
      for (let k = 0; k < 1 + Math.floor(random() * 3); k++) bytes[Math.floor(random() * 64)] = random() < 0.5 ? Math.floor(random() * 256) : "{}()[]',: TrueFalse<>|f4O"[Math.floor(random() * 25)]!.charCodeAt(0);
      fs.writeFileSync(file, bytes);
      try {
        const dict = await open(file);
        for (const t of dict.tensors) await t.read();
        await dict.close();
      } catch (err) {
        assert.ok(err instanceof CkptError && (err.exitCode === 3 || err.exitCode === 4), String((err as Error).stack));
      }
    }
  });

  test('mutated .npz files load or fail with exit 3/4, never crash', async () => {
    const base = fs.readFileSync(npz(path.join(dir, 'base.npz'), [['w.npy', npy('float32', [3, 2], new Float32Array(6).fill(1))], ['b.npy', npy('float32', [2], new Float32Array(2))]]));
    let next = 9;
    const random = () => ((next = (next * 48271) % 2147483647) / 2147483647);
    const iterations = Number(process.env.CKPT_FUZZ_ITERATIONS ?? 300);
    for (let i = 0; i < iterations; i++) {
      const bytes = Buffer.from(base);
      for (let k = 0; k < 1 + Math.floor(random() * 3); k++) bytes[Math.floor(random() * bytes.length)] = Math.floor(random() * 256);
      const file = path.join(dir, 'fuzz.npz');
      fs.writeFileSync(file, random() < 0.2 ? bytes.subarray(0, Math.floor(random() * bytes.length)) : bytes);
      try {
        const dict = await open(file);
        for (const t of dict.tensors) await t.read();
        await dict.close();
      } catch (err) {
        assert.ok(err instanceof CkptError && (err.exitCode === 3 || err.exitCode === 4), String((err as Error).stack));
      }
    }
  });
});
