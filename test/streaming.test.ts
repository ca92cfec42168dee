import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { open, tensorSha256, type TensorInfo } from '../src/index.js';
import { RandomAccessFile } from '../src/core/file.js';
import { CHUNK_BYTES, tensorChunks } from '../src/core/chunks.js';
import { CkptError } from '../src/core/errors.js';
import { writeSafetensors } from '../src/formats/safetensors/write.js';
import { diffStateDicts } from '../src/ops/diff.js';
import { pairParts, SPLIT_BYTES } from '../src/ops/compare-pool.js';
import { formatInt } from '../src/cli/format.js';
import { SAMPLES, runCli, tempDir } from './helpers.js';

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const bytesOf = (v: Float32Array | Float64Array) => new Uint8Array(v.buffer, v.byteOffset, v.byteLength);

/** A tensor held in memory, as a writer takes it. */
function memoryTensor(name: string, values: Float32Array | Float64Array): TensorInfo {
  const bytes = bytesOf(values);
  return {
    name, source: name, dtype: values instanceof Float32Array ? 'float32' : 'float64', shape: [values.length], byteLength: bytes.length, origin: 'weight',
    read: async () => bytes,
    readStrings: async () => [],
  };
}

async function safetensorsFile(tensors: Record<string, Float32Array | Float64Array>): Promise<string> {
  const out = path.join(tempDir(), 'model.safetensors');
  await writeSafetensors(out, Object.entries(tensors).map(([name, values]) => ({ name, tensor: memoryTensor(name, values) })));
  return out;
}

/** Values that differ from element to element, spanning more than one chunk when `length` is large. */
function ramp(length: number, scale = 1, Type: typeof Float32Array | typeof Float64Array = Float32Array): Float32Array | Float64Array {
  const v = new Type(length);
  for (let i = 0; i < length; i++) v[i] = Math.sin(i * 0.37) * scale;
  return v;
}

/** The same state dict without `stored`: every pair compared from whole in-memory reads. */
const inMemory = (dict: Awaited<ReturnType<typeof open>>) => ({ ...dict, tensors: dict.tensors.map((t) => ({ ...t, stored: undefined })) });

describe('RandomAccessFile.readInto', () => {
  test('fills the given buffer with the bytes at the offset and returns it', () => {
    const file = path.join(tempDir(), 'bytes.bin');
    fs.writeFileSync(file, Uint8Array.from({ length: 100 }, (_, i) => i));
    const raf = RandomAccessFile.open(file);
    try {
      const target = Buffer.alloc(10);
      assert.equal(raf.readInto(90, target), target);
      assert.deepEqual([...target], [90, 91, 92, 93, 94, 95, 96, 97, 98, 99]);
      assert.deepEqual([...raf.readInto(3, target.subarray(0, 2))], [3, 4]);
      assert.equal(raf.readInto(100, Buffer.alloc(0)).length, 0);
    } finally {
      raf.close();
    }
  });

  test('a range past the end or before the start is an invalid-input error naming the file, the offset and what was read', () => {
    const file = path.join(tempDir(), 'short.bin');
    fs.writeFileSync(file, Buffer.alloc(16));
    const raf = RandomAccessFile.open(file);
    try {
      assert.throws(() => raf.readInto(10, Buffer.alloc(8), "tensor 'w'"), (err: unknown) => {
        assert.ok(err instanceof CkptError);
        assert.equal(err.code, 'invalid-input');
        assert.equal(err.file, file);
        assert.equal(err.where, 'offset 10');
        assert.match(err.detail, /tensor 'w' needs 8 bytes but the file ends at 16/);
        return true;
      });
      assert.throws(() => raf.readInto(-1, Buffer.alloc(1)), /offset -1/);
    } finally {
      raf.close();
    }
  });
});

describe('streaming tensor values in chunks', () => {
  test('the chunks of a stored tensor, through one reused buffer, are its bytes in order', async () => {
    const values = ramp(CHUNK_BYTES / 2 + 123); // two chunks and a part
    const dict = await open(await safetensorsFile({ w: values }));
    try {
      const tensor = dict.tensors[0]!;
      assert.ok(tensor.stored, 'safetensors says where the values lie');
      const buffer = Buffer.alloc(CHUNK_BYTES);
      const pieces: Buffer[] = [];
      for await (const chunk of tensorChunks(tensor, buffer)) {
        assert.equal(chunk.buffer, buffer.buffer, 'no fresh buffer per chunk');
        pieces.push(Buffer.from(chunk));
      }
      assert.deepEqual(pieces.map((p) => p.length), [CHUNK_BYTES, CHUNK_BYTES, values.byteLength - 2 * CHUNK_BYTES]);
      assert.deepEqual(Buffer.concat(pieces), Buffer.from(bytesOf(values)));
      // A tensor that only reads whole is handed out in the same pieces.
      const whole: Buffer[] = [];
      for await (const chunk of tensorChunks({ ...tensor, stored: undefined }, buffer)) whole.push(Buffer.from(chunk));
      assert.deepEqual(Buffer.concat(whole), Buffer.concat(pieces));
    } finally {
      await dict.close();
    }
  });

  test('tensor hashes are the SHA-256 of the whole values, several at once too', async () => {
    const tensors = { big: ramp(CHUNK_BYTES / 4 * 3 + 5), small: ramp(7, 2), wide: ramp(CHUNK_BYTES / 8 + 1, 3, Float64Array) };
    const dict = await open(await safetensorsFile(tensors));
    try {
      const expected = Object.values(tensors).map((v) => sha(bytesOf(v)));
      assert.deepEqual(await Promise.all(dict.tensors.map(tensorSha256)), expected);
      const sequential: (string | undefined)[] = [];
      for (const t of dict.tensors) sequential.push(await tensorSha256(t));
      assert.deepEqual(sequential, expected);
    } finally {
      await dict.close();
    }
  });
});

describe('diff --values on stored tensors', () => {
  const nan = (v: Float32Array | Float64Array, at: number[]) => {
    for (const i of at) v[i] = NaN;
    return v;
  };
  const tensorsA = {
    same: ramp(CHUNK_BYTES / 4 + 10),
    nudged: ramp(CHUNK_BYTES / 2 + 3),
    nanBoth: nan(ramp(1000), [5, 999]),
    nanOne: nan(ramp(1000), [7]),
    doubles: ramp(5000, 1, Float64Array),
    zeros: new Float32Array(16),
  };
  const tensorsB = {
    same: ramp(CHUNK_BYTES / 4 + 10),
    nudged: ramp(CHUNK_BYTES / 2 + 3).map((x) => x + 1e-3),
    nanBoth: nan(ramp(1000), [5, 999]),
    nanOne: ramp(1000),
    doubles: ramp(5000, 1.5, Float64Array),
    zeros: new Float32Array(16),
  };

  test('worker threads, this thread in chunks and whole in-memory reads give the same report', async () => {
    const [a, b] = [await open(await safetensorsFile(tensorsA)), await open(await safetensorsFile(tensorsB))];
    try {
      const workers = await diffStateDicts(a, b, { values: true, threads: 2 });
      const oneThread = await diffStateDicts(a, b, { values: true, threads: 1 });
      const whole = await diffStateDicts(inMemory(a), inMemory(b), { values: true });
      assert.deepEqual(workers.matched, oneThread.matched);
      assert.deepEqual(workers.matched, whole.matched);
      const byName = new Map(workers.matched.map((p) => [p.a, p.values!]));
      assert.deepEqual([...byName].filter(([, v]) => v.bitIdentical).map(([n]) => n), ['same', 'nanBoth', 'zeros']);
      assert.deepEqual(workers.valueDifferences.map((p) => p.a), ['nudged', 'nanOne', 'doubles']);
      assert.equal(byName.get('nanBoth')!.withinTolerance, true, 'NaN on both sides counts as equal');
      assert.ok(Math.abs(byName.get('nudged')!.maxAbsDiff! - 1e-3) < 1e-6);
      assert.equal(byName.get('zeros')!.cosine, 1);
      // A tolerance wide enough makes the nudged pair equal, on both paths.
      const tolerant = await diffStateDicts(a, b, { values: true, threads: 2, atol: 2e-3 });
      assert.deepEqual(tolerant.valueDifferences.map((p) => p.a), ['nanOne', 'doubles']);
      assert.deepEqual(tolerant.matched, (await diffStateDicts(a, b, { values: true, threads: 1, atol: 2e-3 })).matched);
    } finally {
      await a.close();
      await b.close();
    }
  });

  test('one tensor of 256 MiB or more is compared in parts on every worker: same maximum, same verdicts, sums equal but for their order', async () => {
    const n = SPLIT_BYTES / 4 + 12345;
    const values = new Float32Array(n);
    for (let i = 0; i < n; i++) values[i] = (i % 1000) * 1e-3 - 0.5;
    const nudged = values.slice();
    for (const at of [7, n >> 1, n - 3]) nudged[at]! += at === n >> 1 ? 0.25 : 1e-3; // the largest difference in the second part
    const [a, b, same] = [await open(await safetensorsFile({ w: values })), await open(await safetensorsFile({ w: nudged })), await open(await safetensorsFile({ w: values }))];
    try {
      const parts = pairParts(n * 4, 2);
      assert.equal(parts.length, 2);
      assert.deepEqual([parts[0]![0], parts[1]![1]], [0, n * 4]);
      assert.equal(parts[0]![1] % CHUNK_BYTES, 0, 'parts are whole chunks');
      const split = (await diffStateDicts(a, b, { values: true, threads: 2 })).matched[0]!.values!;
      const whole = (await diffStateDicts(a, b, { values: true, threads: 1 })).matched[0]!.values!;
      assert.equal(split.bitIdentical, false);
      assert.equal(split.maxAbsDiff, whole.maxAbsDiff);
      assert.equal(split.withinTolerance, whole.withinTolerance);
      assert.ok(Math.abs(split.meanAbsDiff! - whole.meanAbsDiff!) <= 1e-12 * whole.meanAbsDiff!, `${split.meanAbsDiff} vs ${whole.meanAbsDiff}`);
      assert.ok(Math.abs(split.cosine! - whole.cosine!) <= 1e-12);
      assert.equal((await diffStateDicts(a, same, { values: true, threads: 2 })).matched[0]!.values!.bitIdentical, true);
    } finally {
      await Promise.all([a.close(), b.close(), same.close()]);
    }
  });

  test('a file cut short after listing is a clear error from a worker thread, not a crash or a hang', async () => {
    const fileB = await safetensorsFile(tensorsB);
    const [a, b] = [await open(await safetensorsFile(tensorsA)), await open(fileB)];
    try {
      fs.truncateSync(fileB, fs.statSync(fileB).size - 100);
      await assert.rejects(diffStateDicts(a, b, { values: true, threads: 2 }), (err: unknown) => {
        assert.ok(err instanceof CkptError);
        assert.equal(err.file, fileB);
        assert.match(err.detail, /tensor '\w+' needs \d+ bytes but the file ends at/);
        return true;
      });
    } finally {
      await a.close();
      await b.close();
    }
  });
});

describe('modules loaded on demand', () => {
  test('HDF5 in and out still work with h5wasm loaded only when needed', () => {
    const out = path.join(tempDir(), 'detector.h5');
    const convert = runCli(['convert', path.join(SAMPLES, 'detector-90.onnx'), out]);
    assert.equal(convert.status, 0, convert.stderr);
    const listed = runCli(['inspect', '--json', out]);
    assert.equal(listed.status, 0, listed.stderr);
    assert.equal(JSON.parse(listed.stdout).format, 'keras');
    const diff = runCli(['diff', '--values', path.join(SAMPLES, 'detector-90.onnx'), out]);
    assert.equal(diff.status, 0, diff.stdout + diff.stderr);
  });

  test('counts are grouped in thousands without locale data, as en-US groups them', () => {
    for (const n of [0, 7, 999, 1000, -1234, 1234567, 9007199254740991, 12.5]) assert.equal(formatInt(n), n.toLocaleString('en-US'));
  });
});
