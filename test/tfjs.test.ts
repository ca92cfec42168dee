import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { open, CkptError } from '../src/index.js';
import { CORPUS, HAS_CORPUS, ROOT, SAMPLES, runCli, tempDir } from './helpers.js';

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
type Spec = tf.io.WeightsManifestEntry;

/** Writes a model.json whose weights are `specs` over `data`, cut into shards of `shardBytes`. */
function writeModel(dir: string, specs: Spec[], data: Uint8Array, shardBytes = data.length || 1, extra: object = {}): string {
  const paths: string[] = [];
  for (let at = 0, i = 0; at < data.length || i === 0; at += shardBytes, i++) {
    const name = `w${i}.bin`;
    fs.writeFileSync(path.join(dir, name), data.subarray(at, at + shardBytes));
    paths.push(name);
    if (data.length === 0) break;
  }
  const file = path.join(dir, 'model.json');
  fs.writeFileSync(file, JSON.stringify({ format: 'graph-model', weightsManifest: [{ paths, weights: specs }], ...extra }));
  return file;
}

/** What @tensorflow/tfjs itself decodes, as little-endian bytes per weight. */
function tfjsDecoded(specs: Spec[], data: Uint8Array): Map<string, Uint8Array> {
  const tensors = tf.io.decodeWeights(Uint8Array.from(data).buffer, specs);
  return new Map(Object.entries(tensors).map(([name, t]) => {
    const values = t.dataSync();
    return [name, new Uint8Array(values.buffer, values.byteOffset, values.byteLength).slice()];
  }));
}

describe('TF.js reader against @tensorflow/tfjs decodeWeights', () => {
  test('uint8, uint16 and float16 quantization, int32 from uint8, bool, int32 — spanning shard boundaries', async () => {
    const u8 = Uint8Array.from({ length: 50 }, (_, i) => (i * 37) % 256);
    const u16 = new Uint16Array(Array.from({ length: 30 }, (_, i) => (i * 2741) % 65536));
    const f16 = new Uint16Array([0x3c00, 0xc000, 0x7bff, 0x0001, 0x8400, 0x7c00, 0xfc00, 0x3555]);
    const i32 = new Int32Array([1, -2, 3, 2147483647]);
    const bool = new Uint8Array([1, 0, 1]);
    const qInt = new Uint8Array([0, 1, 2, 255]);
    const specs: Spec[] = [
      { name: 'q8', shape: [5, 10], dtype: 'float32', quantization: { dtype: 'uint8', scale: 0.0123456789, min: -1.3333 } },
      { name: 'q16', shape: [30], dtype: 'float32', quantization: { dtype: 'uint16', scale: 3.1e-5, min: -0.777 } },
      { name: 'h', shape: [2, 4], dtype: 'float32', quantization: { dtype: 'float16' } },
      { name: 'n', shape: [4], dtype: 'int32' },
      { name: 'flags', shape: [3], dtype: 'bool' },
      { name: 'qi', shape: [4], dtype: 'int32', quantization: { dtype: 'uint8', scale: 1.5, min: 3 } },
    ];
    const data = Buffer.concat([u8, new Uint8Array(u16.buffer), new Uint8Array(f16.buffer), new Uint8Array(i32.buffer), bool, qInt]);
    const file = writeModel(tempDir(), specs, data, 37);
    const expected = tfjsDecoded(specs, data);
    const dict = await open(file);
    assert.equal(dict.format, 'tfjs');
    for (const t of dict.tensors) assert.equal(sha(await t.read()), sha(expected.get(t.source)!), t.source);
    assert.deepEqual(dict.tensors.map((t) => t.dtype), ['float32', 'float32', 'float32', 'int32', 'bool', 'int32']);
    await dict.close();
  });

  test('string weights: a uint32 length then the bytes, per element', async () => {
    const strings = ['ab', '', 'ünï'].map((s) => new TextEncoder().encode(s));
    const data = Buffer.concat([...strings.flatMap((s) => [new Uint8Array(new Uint32Array([s.length]).buffer), s]), new Uint8Array(new Float32Array([2.5]).buffer)]);
    const specs: Spec[] = [{ name: 'vocab', shape: [3], dtype: 'string' }, { name: 'after', shape: [], dtype: 'float32' }];
    const dict = await open(writeModel(tempDir(), specs, data));
    const [vocab, after] = dict.tensors;
    assert.deepEqual((await vocab!.readStrings()).map((b) => new TextDecoder().decode(b)), ['ab', '', 'ünï']);
    assert.deepEqual(new Float32Array(Uint8Array.from(await after!.read()).buffer)[0], 2.5);
    await dict.close();
  });

  test('optimizer weights are listed only with --all', () => {
    const dir = tempDir();
    writeModel(dir, [{ name: 'w', shape: [1], dtype: 'float32' }, { name: 'Adam/iter', shape: [], dtype: 'int32', group: 'optimizer' } as Spec], new Uint8Array(8));
    assert.deepEqual(JSON.parse(runCli(['inspect', '--json', dir]).stdout).tensors.map((t: { name: string }) => t.name), ['w']);
    const all = JSON.parse(runCli(['inspect', '--json', '--all', dir]).stdout).tensors;
    assert.deepEqual(all.map((t: { name: string; group?: string }) => [t.name, t.group]), [['w', undefined], ['Adam.iter', 'optimizer']]);
  });
});

describe('TF.js samples and writer', () => {
  test('the samples are what scripts/make-tfjs-samples.js writes with @tensorflow/tfjs', () => {
    const out = tempDir();
    const r = spawnSync(process.execPath, [path.join(ROOT, 'scripts', 'make-tfjs-samples.js'), out], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    for (const folder of ['detector-90-tfjs', 'detector-92-tfjs']) {
      for (const file of fs.readdirSync(path.join(SAMPLES, folder))) {
        assert.ok(fs.readFileSync(path.join(out, folder, file)).equals(fs.readFileSync(path.join(SAMPLES, folder, file))), `${folder}/${file}`);
      }
    }
  });

  test('the TF.js detector holds the ONNX detector\'s weights in HWIO: diff aligns them by convention and layout', () => {
    const r = runCli(['diff', '--values', '--json', path.join(SAMPLES, 'detector-90.onnx'), path.join(SAMPLES, 'detector-90-tfjs')]);
    const report = JSON.parse(r.stdout);
    assert.equal(report.matched.length, 6);
    assert.deepEqual(report.shapeMismatches.map((p: { transpose: number[] }) => p.transpose), [[2, 3, 1, 0], [2, 3, 1, 0], [2, 3, 1, 0]]);
    assert.ok(report.matched.every((p: { values: { maxAbsDiff: number } }) => p.values.maxAbsDiff === 0));
  });

  test('planning TF.js weights into the 92-class ONNX model equals planning the ONNX weights', async () => {
    const dir = tempDir();
    for (const [source, out] of [[path.join(SAMPLES, 'detector-90-tfjs'), 'from-tfjs.onnx'], [path.join(SAMPLES, 'detector-90.onnx'), 'from-onnx.onnx']]) {
      const plan = path.join(dir, `${out}.plan.json`);
      assert.equal(runCli(['plan', source!, path.join(SAMPLES, 'detector-92.onnx'), '-o', plan]).status, 0);
      assert.equal(runCli(['apply', plan, '-o', path.join(dir, out!)]).status, 0);
    }
    assert.ok(fs.readFileSync(path.join(dir, 'from-tfjs.onnx')).equals(fs.readFileSync(path.join(dir, 'from-onnx.onnx'))));
  });

  test('every corpus TF.js model round-trips through the writer, and tfjs decodes what it wrote', { skip: !HAS_CORPUS && 'no corpus' }, async () => {
    const models = ['face-api-tiny_face_detector_model/tiny_face_detector_model-weights_manifest.json', 'human-antispoof/antispoof.json', 'human-blazeface/blazeface.json', 'nsfwjs-mobilenet_v2/model.json'];
    for (const model of models) {
      const out = path.join(tempDir(), 'out');
      const r = runCli(['convert', path.join(CORPUS, 'tfjs', model), out, '--to', 'tfjs']);
      assert.equal(r.status, 0, r.stderr);
      const before = JSON.parse(runCli(['inspect', '--json', '--hash', path.join(CORPUS, 'tfjs', model)]).stdout).tensors;
      const after = JSON.parse(runCli(['inspect', '--json', '--hash', out]).stdout).tensors;
      const essentials = (t: { source: string; dtype: string; shape: number[]; sha256: string }) => [t.source, t.dtype, t.shape, t.sha256];
      assert.deepEqual(after.map(essentials), before.map(essentials), model);
      const json = JSON.parse(fs.readFileSync(path.join(out, 'model.json'), 'utf8'));
      const manifest = Array.isArray(json) ? json : json.weightsManifest;
      const data = Buffer.concat(manifest[0].paths.map((p: string) => fs.readFileSync(path.join(out, p))));
      const decoded = tfjsDecoded(manifest[0].weights, data);
      for (const t of before) assert.equal(sha(decoded.get(t.source)!), t.sha256, `${model}: ${t.source}`);
    }
  });
});

describe('TF.js bad input: exit 3 or 4, naming the weight or shard', () => {
  const spec: Spec[] = [{ name: 'w', shape: [4], dtype: 'float32' }];
  const cases: [string, (dir: string) => string, number, RegExp][] = [
    ['a shard shorter than the manifest needs', (d) => writeModel(d, spec, new Uint8Array(12)), 3, /weight 'w'.*needs bytes up to 16 but the shards of group 0 \(w0\.bin\) hold 12/],
    ['a shard longer than the manifest needs', (d) => writeModel(d, spec, new Uint8Array(20)), 3, /weights need 16 bytes but the shards 'w0\.bin' hold 20/],
    ['a missing shard', (d) => { const f = writeModel(d, spec, new Uint8Array(16)); fs.rmSync(path.join(d, 'w0.bin')); return f; }, 4, /w0\.bin.*no such file/],
    ['malformed JSON', (d) => { fs.writeFileSync(path.join(d, 'model.json'), '{"weightsManifest": [ {'); return path.join(d, 'model.json'); }, 3, /not valid JSON/],
    ['an unknown dtype', (d) => writeModel(d, [{ name: 'w', shape: [4], dtype: 'float64' as 'float32' }], new Uint8Array(32)), 3, /'w': unknown dtype "float64"/],
    ['uint8 quantization without min/scale', (d) => writeModel(d, [{ name: 'w', shape: [4], dtype: 'float32', quantization: { dtype: 'uint8' } }], new Uint8Array(4)), 3, /uint8 quantization without numeric min and scale/],
    ['float16 quantization of an int32 weight', (d) => writeModel(d, [{ name: 'w', shape: [2], dtype: 'int32', quantization: { dtype: 'float16' } }], new Uint8Array(4)), 3, /float16 quantization of a int32 weight/],
    ['a shard path with ..', (d) => { fs.writeFileSync(path.join(d, 'model.json'), JSON.stringify({ weightsManifest: [{ paths: ['../w.bin'], weights: spec }] })); return path.join(d, 'model.json'); }, 3, /contains '\.\.'/],
    ['an absolute shard path', (d) => { fs.writeFileSync(path.join(d, 'model.json'), JSON.stringify({ weightsManifest: [{ paths: ['/etc/passwd'], weights: spec }] })); return path.join(d, 'model.json'); }, 3, /is absolute/],
    ['a URL shard path', (d) => { fs.writeFileSync(path.join(d, 'model.json'), JSON.stringify({ weightsManifest: [{ paths: ['http://example.com/w.bin'], weights: spec }] })); return path.join(d, 'model.json'); }, 3, /must be a plain relative path/],
    ['a shard symlinked out of the folder', (d) => {
      const outside = tempDir();
      fs.writeFileSync(path.join(outside, 'w.bin'), new Uint8Array(16));
      fs.symlinkSync(path.join(outside, 'w.bin'), path.join(d, 'w.bin'));
      fs.writeFileSync(path.join(d, 'model.json'), JSON.stringify({ weightsManifest: [{ paths: ['w.bin'], weights: spec }] }));
      return path.join(d, 'model.json');
    }, 3, /symbolic link/],
  ];
  for (const [name, make, code, message] of cases) {
    test(name, () => {
      const r = runCli(['inspect', '--hash', make(tempDir())]);
      assert.equal(r.status, code, r.stderr);
      assert.match(r.stderr, message);
      assert.doesNotMatch(r.stderr, /\n\s+at /);
    });
  }

  test('mutated manifests and shards load or fail with exit 3/4, never crash', async () => {
    const dir = tempDir();
    const specs: Spec[] = [
      { name: 'a', shape: [3, 2], dtype: 'float32', quantization: { dtype: 'uint8', scale: 0.1, min: -1 } },
      { name: 's', shape: [2], dtype: 'string' },
      { name: 'b', shape: [2], dtype: 'float32' },
    ];
    const data = Buffer.concat([new Uint8Array(6), new Uint8Array([1, 0, 0, 0, 65, 2, 0, 0, 0, 66, 67]), new Uint8Array(8)]);
    const file = writeModel(dir, specs, data, 9);
    const json = fs.readFileSync(file, 'utf8');
    let seed = 3;
    const random = () => ((seed = (seed * 48271) % 2147483647) / 2147483647);
    const iterations = Number(process.env.CKPT_FUZZ_ITERATIONS ?? 300);
    for (let i = 0; i < iterations; i++) {
      const chars = [...json];
      for (let k = 0; k < 1 + Math.floor(random() * 3); k++) chars[Math.floor(random() * chars.length)] = '0123456789[]{}",:-ae'[Math.floor(random() * 20)]!;
      fs.writeFileSync(file, chars.join(''));
      const shard = path.join(dir, `w${Math.floor(random() * 3)}.bin`);
      const original = fs.readFileSync(shard);
      const mutated = Buffer.from(original);
      if (mutated.length) mutated[Math.floor(random() * mutated.length)] = Math.floor(random() * 256);
      fs.writeFileSync(shard, random() < 0.2 ? mutated.subarray(0, Math.floor(random() * mutated.length)) : mutated);
      try {
        const dict = await open(file);
        for (const t of dict.tensors) await (t.dtype === 'string' ? t.readStrings() : t.read());
        await dict.close();
      } catch (err) {
        assert.ok(err instanceof CkptError && (err.exitCode === 3 || err.exitCode === 4), `${chars.join('')}: ${(err as Error).stack}`);
      }
      fs.writeFileSync(shard, original);
    }
  });
});
