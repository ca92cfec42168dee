import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { open } from '../src/index.js';
import { seededRandom } from '../src/core/random.js';
import type { TensorInfo } from '../src/core/statedict.js';
import { tfliteWriter } from '../src/formats/tflite/write.js';
import { CORPUS, HAS_CORPUS, loadOutcome, runCli, tempDir } from './helpers.js';
import { buildTflite, sampleTflite, type ModelSpec } from './tflite-fixtures.js';

const dir = tempDir('ckpt-tflite-');
const sample = path.join(dir, 'sample.tflite');
fs.writeFileSync(sample, sampleTflite());
const floats = async (t: TensorInfo) => [...new Float32Array(Uint8Array.from(await t.read()).buffer)];

test('every subgraph\'s buffer-backed tensors, stored types, quantization and graph roles', () => {
  const r = runCli(['inspect', '--json', sample]);
  assert.equal(r.status, 0, r.stderr);
  const listing = JSON.parse(r.stdout) as { metadata: Record<string, unknown>; tensors: { name: string; source: string; dtype: string; shape: number[]; byteLength: number; role: string; layout?: string; encoding?: Record<string, unknown> }[] };
  assert.deepEqual(listing.tensors.map((t) => [t.source, t.dtype, t.shape, t.byteLength, t.role, t.layout ?? '']), [
    ['conv/weights', 'int8', [2, 2, 2, 1], 8, 'weight', 'OHWI'],
    ['conv/bias', 'int32', [2], 8, 'weight', ''],
    ['half', 'float16', [3], 6, 'weight', ''],
    ['nibbles', 'int4', [4], 2, 'weight', ''],
    ['labels', 'string', [2], 21, 'constant', ''],
    ['fc/weights', 'float32', [1, 4], 16, 'weight', 'OI'],
    ['shape', 'int32', [2], 8, 'constant', ''],
  ]);
  assert.deepEqual(listing.tensors[0]!.encoding, { label: 'int8 per-channel(axis 0)', dequantized: 'float32', scale: [0.5, 0.25], zeroPoint: [0, 1], axis: 0 });
  assert.deepEqual(listing.metadata.operators, ['CONV_2D', 'FULLY_CONNECTED', 'RESHAPE']);
  assert.deepEqual(listing.metadata.subgraphs, ['main', 'head']);
  assert.deepEqual(listing.metadata.dynamicShapes, { input: [-1, 4, 4, 1], x: [-1, 4] });
  assert.match(runCli(['inspect', sample]).stdout, /int8 per-channel\(axis 0\) → float32/);
});

test('values: scale × (q − zero point) per channel, int4 unpacked low nibble first, strings split, a buffer past the flatbuffer', async () => {
  const dict = await open(sample);
  try {
    const t = (name: string) => dict.tensors.find((x) => x.source === name)!;
    assert.deepEqual(await floats(t('conv/weights')), [0.5, -1, 1.5, -2, 1, -1.75, 1.5, -2.25]);
    assert.deepEqual(await floats(t('conv/bias')), [Math.fround(1), Math.fround(-1)]);
    assert.deepEqual(await floats(t('nibbles')), [2, 4, -16, -2]);
    assert.deepEqual((await t('labels').readStrings()).map((s) => Buffer.from(s).toString()), ['hi', 'cat']);
    assert.deepEqual(await floats(t('fc/weights')), [0.5, 1.5, 2.5, 3.5]);
    assert.deepEqual(Buffer.from(await t('conv/weights').encoding!.readStored()), Buffer.from(Int8Array.from([1, -2, 3, -4, 5, -6, 7, -8]).buffer));
  } finally {
    await dict.close();
  }
});

test('corpus: int8 models read as the scales in the reference listing say', { skip: !HAS_CORPUS && 'no corpus' }, async () => {
  const model = path.join(CORPUS, 'tflite', 'tflm-micro-speech-int8', 'micro_speech_quantized.tflite');
  const expected = JSON.parse(fs.readFileSync(path.join(CORPUS, 'expected', 'tflite', 'tflm-micro-speech-int8', 'micro_speech_quantized.tflite.json'), 'utf8')) as { tensors: { source: string; shape: number[]; quantization?: { scale: number[]; zero_point: number[]; quantized_dimension: number } }[] };
  const dict = await open(model);
  try {
    for (const e of expected.tensors.filter((x) => x.quantization)) {
      const t = dict.tensors.find((x) => x.source === e.source)!;
      const stored = await t.encoding!.readStored();
      const ints = t.encoding!.stored === 'int8' ? new Int8Array(stored.buffer, stored.byteOffset, stored.length) : new Int32Array(Uint8Array.from(stored).buffer);
      const q = e.quantization!;
      const inner = e.shape.slice(q.quantized_dimension + 1).reduce((n, d) => n * d, 1);
      const channel = (i: number) => (q.scale.length === 1 ? 0 : Math.floor(i / inner) % e.shape[q.quantized_dimension]!);
      const want = Array.from(ints, (v, i) => Math.fround(Math.fround(q.scale[channel(i)]!) * (v - q.zero_point[channel(i)]!)));
      assert.deepEqual(await floats(t), want, e.source);
    }
  } finally {
    await dict.close();
  }
});

test('writing keeps the flatbuffer: unchanged values give the same file, new ones are quantized with the tensor\'s own scales', async () => {
  const copy = path.join(dir, 'copy.tflite');
  assert.equal(runCli(['convert', sample, copy]).status, 0);
  assert.ok(fs.readFileSync(copy).equals(fs.readFileSync(sample)));
  const source = await open(sample);
  try {
    const replaced = (t: TensorInfo, values: number[]): TensorInfo => ({ ...t, read: async () => new Uint8Array(Float32Array.from(values).buffer) });
    const out = path.join(dir, 'new.tflite');
    await tfliteWriter.write(out, source.tensors.map((t) => ({
      name: t.source,
      tensor: t.source === 'conv/weights' ? replaced(t, [1, 1, 1, 1, 1, 1, 1, 100]) : t.source === 'fc/weights' ? replaced(t, [4, 3, 2, 1]) : t,
    })), source);
    const written = await open(out);
    try {
      const t = (name: string) => written.tensors.find((x) => x.source === name)!;
      assert.deepEqual([...new Int8Array(Uint8Array.from(await t('conv/weights').encoding!.readStored()).buffer)], [2, 2, 2, 2, 5, 5, 5, 127]);
      assert.deepEqual(await floats(t('fc/weights')), [4, 3, 2, 1]);
      assert.deepEqual(await floats(t('conv/bias')), await floats(source.tensors.find((x) => x.source === 'conv/bias')!));
      assert.equal(fs.statSync(out).size, fs.statSync(sample).size);
    } finally {
      await written.close();
    }
    await assert.rejects(tfliteWriter.write(path.join(dir, 'x.tflite'), source.tensors.slice(1).map((t) => ({ name: t.source, tensor: t })), source), /every constant its operators read; 1 would be left out: conv.weights/);
    await assert.rejects(tfliteWriter.write(path.join(dir, 'x.tflite'), source.tensors.map((t) => ({ name: `${t.source}2`, tensor: t })), source), /keeps the model's tensor names/);
  } finally {
    await source.close();
  }
  const other = path.join(dir, 'w.safetensors');
  const header = Buffer.from(JSON.stringify({ w: { dtype: 'F32', shape: [1], data_offsets: [0, 4] } }));
  fs.writeFileSync(other, Buffer.concat([Buffer.from(BigUint64Array.from([BigInt(header.length)]).buffer), header, Buffer.alloc(4)]));
  const r = runCli(['convert', other, path.join(dir, 'x.tflite')]);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /writing TFLite needs a TFLite model to put the weights in/);
});

/** One-subgraph models with one thing wrong. */
function badModel(change: (spec: ModelSpec) => void): Buffer {
  const spec: ModelSpec = {
    opcodes: [9],
    buffers: [undefined, { data: new Uint8Array(16) }],
    subgraphs: [{ name: 'main', tensors: [{ name: 'w', shape: [4], type: 0, buffer: 1 }], operators: [{ opcode: 0, inputs: [0], outputs: [0] }] }],
  };
  change(spec);
  return buildTflite(spec);
}

test('bad TFLite input fails with exit 3, naming what is wrong', () => {
  const good = badModel(() => {});
  const cases: [string, Buffer, RegExp][] = [
    ['sparse', badModel((s) => { s.subgraphs[0]!.tensors[0]!.sparse = true; }), /sparse tensor \(SparsityParameters\)/],
    ['short buffer', badModel((s) => { s.subgraphs[0]!.tensors[0]!.shape = [5]; }), /buffer 1 holds 16 bytes, but float32 \[5\] takes 20/],
    ['buffer index', badModel((s) => { s.subgraphs[0]!.tensors[0]!.buffer = 7; }), /refers to buffer 7 of 2/],
    ['scales', badModel((s) => { s.subgraphs[0]!.tensors[0]!.type = 9; s.subgraphs[0]!.tensors[0]!.shape = [16]; s.subgraphs[0]!.tensors[0]!.quantization = { scale: [1, 2], zeroPoint: [0, 0], axis: 0 }; }), /2 scales along quantized_dimension 0 of shape \[16\]/],
    ['resource', badModel((s) => { s.subgraphs[0]!.tensors[0]!.type = 13; }), /TensorType RESOURCE/],
    ['negative dim', badModel((s) => { s.subgraphs[0]!.tensors[0]!.shape = [-4]; }), /negative dimension/],
    ['opcode', badModel((s) => { s.subgraphs[0]!.operators[0]!.opcode = 3; }), /operator code 3 of 1/],
    ['external past end', badModel((s) => { s.buffers[1] = { external: new Uint8Array(16) }; }).subarray(0, -8), /run past the end of the file/],
    ['truncated', good.subarray(0, 60), /outside the file|past the end/],
    ['version 2', badModel((s) => { s.version = 2; }), /schema version 2 is not 3/],
  ];
  for (const [name, bytes, message] of cases) {
    const file = path.join(dir, `${name}.tflite`);
    fs.writeFileSync(file, bytes);
    const r = runCli(['inspect', '--hash', file]);
    assert.equal(r.status, 3, `${name}: ${r.stdout}${r.stderr}`);
    assert.match(r.stderr, message, name);
  }
});

const ITERATIONS = Number(process.env.CKPT_FUZZ_ITERATIONS ?? 300);

test(`${ITERATIONS} mutated TFLite files each load or fail with exit 3`, async () => {
  const seed = sampleTflite();
  const next = seededRandom(13);
  const file = path.join(dir, 'fuzz.tflite');
  for (let i = 0; i < ITERATIONS; i++) {
    const bytes = Buffer.from(seed);
    let mutated: Buffer = bytes;
    if (next() < 0.85) {
      for (let k = 0; k < 1 + Math.floor(next() * 4); k++) bytes[8 + Math.floor(next() * (bytes.length - 8))] = next() < 0.3 ? 0xff : Math.floor(next() * 256);
    } else mutated = bytes.subarray(0, Math.floor(next() * bytes.length));
    fs.writeFileSync(file, mutated);
    const outcome = await loadOutcome(file);
    assert.ok(outcome === 'ok' || outcome === 3, `iteration ${i}: exit ${outcome}`);
  }
});
