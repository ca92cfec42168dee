import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { open } from '../src/index.js';
import { seededRandom } from '../src/core/random.js';
import { loadOutcome, runCli, tempDir } from './helpers.js';
import { refusal } from './refusal.js';

/**
 * Paddle inference models written field by field: a ProgramDesc with a conv2d + bias add +
 * batch_norm + reshape2 program, and its persistables as LoDTensor records, combined in
 * sorted-name order (`.pdiparams`, `__params__`) or one file per variable (fluid folders).
 */
const varint = (n: number | bigint): number[] => {
  let v = BigInt.asUintN(64, BigInt(n));
  const out: number[] = [];
  do {
    out.push(Number(v & 0x7fn) | (v > 0x7fn ? 0x80 : 0));
    v >>= 7n;
  } while (v > 0n);
  return out;
};
const field = (no: number, payload: Uint8Array | string | number[]): number[] => {
  const bytes = typeof payload === 'string' ? [...Buffer.from(payload)] : [...payload];
  return [...varint(no * 8 + 2), ...varint(bytes.length), ...bytes];
};
const number = (no: number, value: number | bigint) => [...varint(no * 8), ...varint(value)];

interface Var { name: string; dataType: number; dims: number[]; values: number[] }
const F32 = 5;
const I32 = 2;
const I64 = 3;

const VARS: Var[] = [
  { name: 'conv_w', dataType: F32, dims: [2, 1, 1, 1], values: [0.5, -1] },
  { name: 'conv_b', dataType: F32, dims: [2], values: [1, 2] },
  { name: 'bn_scale', dataType: F32, dims: [2], values: [3, 4] },
  { name: 'bn_offset', dataType: F32, dims: [2], values: [5, 6] },
  { name: 'bn_mean', dataType: F32, dims: [2], values: [7, 8] },
  { name: 'bn_variance', dataType: F32, dims: [2], values: [9, 10] },
  { name: 'target_shape', dataType: I32, dims: [2], values: [1, -1] },
  { name: 'global_step', dataType: I64, dims: [1], values: [42] },
];

const tensorDesc = (v: Pick<Var, 'dataType' | 'dims'>) => [...number(1, v.dataType), ...v.dims.flatMap((d) => number(2, d))];

function varDesc(name: string, type: number, persistable: boolean, tensor?: Pick<Var, 'dataType' | 'dims'>): number[] {
  const varType = [...number(1, type), ...(tensor ? field(3, [...field(1, tensorDesc(tensor)), ...number(2, 0)]) : [])];
  return field(3, [...field(1, name), ...field(2, varType), ...number(3, persistable ? 1 : 0)]);
}

function opDesc(type: string, inputs: Record<string, string>, outputs: Record<string, string>): number[] {
  const slots = (no: number, map: Record<string, string>) => Object.entries(map).flatMap(([slot, arg]) => field(no, [...field(1, slot), ...field(2, arg)]));
  return field(4, [...slots(1, inputs), ...slots(2, outputs), ...field(3, type)]);
}

function program(vars: readonly Var[] = VARS): Buffer {
  const block = [
    ...number(1, 0), ...number(2, -1),
    ...varDesc('feed', 9, true), ...varDesc('fetch', 10, true),
    ...varDesc('x', 7, false, { dataType: F32, dims: [-1, 1, 4, 4] }),
    ...vars.flatMap((v) => varDesc(v.name, 7, true, v)),
    ...opDesc('conv2d', { Input: 'x', Filter: 'conv_w' }, { Output: 'conv_out' }),
    ...opDesc('elementwise_add', { X: 'conv_out', Y: 'conv_b' }, { Out: 'add_out' }),
    ...opDesc('batch_norm', { X: 'add_out', Scale: 'bn_scale', Bias: 'bn_offset', Mean: 'bn_mean', Variance: 'bn_variance' }, { Y: 'bn_out' }),
    ...opDesc('reshape2', { X: 'bn_out', Shape: 'target_shape' }, { XShape: 'xshape', Out: 'out' }),
  ];
  return Buffer.from([...field(1, block), ...field(4, number(1, 2006000))]);
}

function record(v: Var, options: { version?: number; lod?: boolean; desc?: Pick<Var, 'dataType' | 'dims'> } = {}): Buffer {
  const desc = Buffer.from(tensorDesc(options.desc ?? v));
  const head = Buffer.alloc(4 + 8);
  head.writeUInt32LE(options.version ?? 0, 0);
  head.writeBigUInt64LE(options.lod ? 1n : 0n, 4);
  const lod = options.lod ? Buffer.concat([Buffer.from([16, 0, 0, 0, 0, 0, 0, 0]), Buffer.alloc(16)]) : Buffer.alloc(0);
  const sizes = Buffer.alloc(8);
  sizes.writeInt32LE(desc.length, 4);
  const data = v.dataType === F32 ? Buffer.from(new Float32Array(v.values).buffer) : v.dataType === I32 ? Buffer.from(new Int32Array(v.values).buffer) : Buffer.from(new BigInt64Array(v.values.map(BigInt)).buffer);
  return Buffer.concat([head, lod, sizes, desc, data]);
}

const sortedVars = () => [...VARS].sort((a, b) => (a.name < b.name ? -1 : 1));

function inference(options: { params?: Buffer; model?: Buffer; dir?: string } = {}): string {
  const dir = options.dir ?? tempDir();
  fs.writeFileSync(path.join(dir, 'inference.pdmodel'), options.model ?? program());
  fs.writeFileSync(path.join(dir, 'inference.pdiparams'), options.params ?? Buffer.concat(sortedVars().map((v, i) => record(v, { lod: i === 0 }))));
  return path.join(dir, 'inference.pdmodel');
}


async function listing(file: string) {
  const dict = await open(file);
  try {
    return {
      format: dict.format,
      tensors: await Promise.all(dict.tensors.map(async (t) => ({ source: t.source, dtype: t.dtype, shape: t.shape, role: `${t.role}/${t.roleFrom}`, bytes: Buffer.from(await t.read()).toString('hex') }))),
    };
  } finally {
    await dict.close();
  }
}

test('.pdmodel + .pdiparams: every persistable LoDTensor in the order Paddle saves them, values from the records', async () => {
  const { format, tensors } = await listing(inference());
  assert.equal(format, 'paddle-inference');
  assert.deepEqual(tensors.map((t) => t.source), sortedVars().map((v) => v.name));
  for (const v of VARS) {
    const t = tensors.find((x) => x.source === v.name)!;
    assert.deepEqual(t.shape, v.dims);
    assert.equal(t.bytes, record(v).subarray(-t.bytes.length / 2).toString('hex'));
  }
  assert.deepEqual(tensors.map((t) => t.dtype), ['float32', 'float32', 'float32', 'float32', 'float32', 'float32', 'int64', 'int32']);
});

test('roles come from the ops: the filter, its bias and the BN affine are weights, BN statistics buffers, the reshape target a constant', async () => {
  const roles = Object.fromEntries((await listing(inference())).tensors.map((t) => [t.source, t.role]));
  assert.deepEqual(roles, {
    bn_mean: 'buffer/graph', bn_offset: 'weight/graph', bn_scale: 'weight/graph', bn_variance: 'buffer/graph',
    conv_b: 'weight/graph', conv_w: 'weight/graph', global_step: 'constant/names', target_shape: 'constant/graph',
  });
});

test('fluid folders: __model__ with one file per variable, or with __params__, list the same tensors', async () => {
  const expected = await listing(inference());
  const perVariable = tempDir();
  fs.writeFileSync(path.join(perVariable, '__model__'), program());
  for (const v of VARS) fs.writeFileSync(path.join(perVariable, v.name), record(v));
  const combined = tempDir();
  fs.writeFileSync(path.join(combined, '__model__'), program());
  fs.writeFileSync(path.join(combined, '__params__'), fs.readFileSync(inference().replace(/pdmodel$/, 'pdiparams')));
  const sorted = (l: typeof expected) => ({ ...l, tensors: [...l.tensors].sort((a, b) => (a.source < b.source ? -1 : 1)) });
  assert.deepEqual(sorted(await listing(perVariable)), sorted(expected));
  assert.deepEqual(await listing(combined), expected);
});

test('bad models and parameters are refused naming the file, the variable and the offset', async () => {
  const vars = sortedVars();
  const params = (edit: (v: Var) => Buffer | undefined) => Buffer.concat(vars.map((v) => edit(v) ?? record(v)));
  const full = params(() => undefined);
  const cases: [Buffer | undefined, Buffer | undefined, RegExp][] = [
    [undefined, full.subarray(0, full.length - 3), /inference\.pdiparams: variable 'target_shape' at offset \d+: values need 8 bytes but the file ends at \d+ \(truncated\?\)/],
    [undefined, full.subarray(0, 32), /offset 32: ends before variable 'bn_offset' \(8 persistable variables in the program/],
    [undefined, Buffer.concat([full, Buffer.alloc(5)]), /offset \d+: 5 bytes after the last of 8 variables/],
    [undefined, params((v) => (v.name === 'conv_b' ? record(v, { desc: { dataType: F32, dims: [3] } }) : undefined)), /variable 'conv_b' at offset \d+: stored as type 5 \[3\], the program declares type 5 \[2\]/],
    [undefined, params((v) => (v.name === 'bn_mean' ? record(v, { version: 3 }) : undefined)), /variable 'bn_mean' at offset \d+: LoDTensor version 3, expected 0/],
    [undefined, params((v) => (v.name === 'bn_mean' ? record(v, { desc: { dataType: 99, dims: [2] } }) : undefined)), /data type 99 is not a tensor element type/],
    [program().subarray(0, 200), full, /inference\.pdmodel: offset \d+: .*(truncated|past the end)/],
  ];
  for (const [model, data, message] of cases) {
    const r = await refusal(inference({ ...(model ? { model } : {}), ...(data ? { params: data } : {}) }));
    assert.equal(r.status, 3, r.message);
    assert.match(r.message, message);
  }
});

test('fluid variable files are resolved inside the folder: a missing one is an I/O error, a name with .. is refused', async () => {
  const dir = tempDir();
  fs.writeFileSync(path.join(dir, '__model__'), program());
  for (const v of VARS.slice(1)) fs.writeFileSync(path.join(dir, v.name), record(v));
  const missing = await refusal(dir);
  assert.equal(missing.status, 4);
  assert.match(missing.message, /conv_w/);
  const escaping = tempDir();
  fs.writeFileSync(path.join(escaping, '__model__'), program(VARS.map((v) => (v.name === 'conv_w' ? { ...v, name: '../conv_w' } : v))));
  const r = await refusal(escaping);
  assert.equal(r.status, 3);
  assert.match(r.message, /file path '\.\.\/conv_w' contains '\.\.'/);
});

test('through the CLI: convert to safetensors keeps every value (diff --values)', () => {
  const model = inference();
  const out = path.join(tempDir(), 'params.safetensors');
  assert.equal(runCli(['convert', model, out]).status, 0);
  const diff = runCli(['diff', '--values', model, out]);
  assert.equal(diff.status, 0, diff.stdout + diff.stderr);
});

test('mutated programs and parameters each open or fail with exit 3/4, never a crash (fixed seed)', async () => {
  const next = seededRandom(5);
  const model = program();
  const params = Buffer.concat(sortedVars().map((v) => record(v)));
  const mutate = (bytes: Buffer) => {
    const out = [...bytes];
    for (let e = 0; e < 1 + Math.floor(next() * 3); e++) {
      const at = Math.floor(next() * out.length);
      const kind = next();
      if (kind < 0.5) out[at] = Math.floor(next() * 256);
      else if (kind < 0.7) out.splice(at, 1 + Math.floor(next() * 6));
      else if (kind < 0.85) out[at] = out[at]! ^ 0x80;
      else out.splice(at, 0, 0xff, 0xff, 0xff, 0xff, 0x0f);
    }
    return Buffer.from(out);
  };
  for (let i = 0; i < 200; i++) {
    const file = inference(i % 2 ? { model: mutate(model) } : { params: mutate(params) });
    const outcome = await loadOutcome(file);
    assert.ok(outcome === 'ok' || outcome === 3 || outcome === 4, `${file}: ${outcome}`);
  }
});
