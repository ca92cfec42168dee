import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { open } from '../src/index.js';
import { SAMPLES, runCli, tempDir } from './helpers.js';

/** A safetensors file from a header object (or raw header text) and the data bytes. */
function file(header: object | string, data: Uint8Array, trailing = 0): string {
  const json = Buffer.from(typeof header === 'string' ? header : JSON.stringify(header));
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

  test('convert writes what it reads back, in order, with the same values', () => {
    const out = path.join(tempDir(), 'd.safetensors');
    assert.equal(runCli(['convert', path.join(SAMPLES, 'detector-90.onnx'), out]).status, 0);
    const r = runCli(['diff', '--values', path.join(SAMPLES, 'detector-90.onnx'), out]);
    assert.equal(r.status, 0, r.stdout);
    const bytes = fs.readFileSync(out);
    assert.equal(Number(bytes.readBigUInt64LE(0)) % 8, 0, 'header padded to 8 bytes');
  });
});

describe('safetensors bad input: every offset checked before any read (exit 3)', () => {
  const t = (begin: number, end: number, shape = [2]) => ({ dtype: 'F32', shape, data_offsets: [begin, end] });
  const cases: [string, () => string, RegExp][] = [
    ['shorter than 8 bytes', () => { const f = path.join(tempDir(), 's'); fs.writeFileSync(f, Buffer.alloc(5)); return f; }, /unrecognized format|8-byte header length/],
    ['header past the end', () => { const f = file({ a: t(0, 8) }, new Uint8Array(8)); const b = fs.readFileSync(f); b.writeBigUInt64LE(1000n); fs.writeFileSync(f, b); return f; }, /runs past the end of the file|unrecognized/],
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
});
