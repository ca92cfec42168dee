import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { open, convert, compare } from '../src/index.js';
import { castFloats } from '../src/core/cast.js';
import { encodeModel, float32Tensor, tensorProto } from '../src/formats/onnx/build.js';
import { CORPUS, HAS_CORPUS, SAMPLES, runCli, tempDir } from './helpers.js';
import { f32, mlpModel, mlpSpec, writeModel } from './onnx-fixtures.js';
import { python, pythonHas } from './python.js';

/**
 * `--dtype float16|bfloat16` into ONNX: weights are stored narrower under their own names and
 * read through a Cast back, so the model still loads (onnxruntime, onnx.checker) and computes
 * what the original computes up to the cast's rounding.
 */

const HAS_ONNX = pythonHas('onnx');
/** float16 keeps 11 significant bits: rounding to nearest moves a value by at most 2^-11 of it. */
const HALF_ROUNDOFF = 2 ** -11;
/**
 * Outputs sum many rounded products through several layers (and recurrent steps): 64 roundoff
 * units, relative and absolute, bound what the models here accumulate.
 */
const OUTPUT_TOLERANCE = 64 * HALF_ROUNDOFF;

function convertJson(input: string, output: string, ...flags: string[]) {
  const r = runCli(['convert', input, output, '--json', ...flags]);
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as { notes: string[]; dtypes: { dtype: string; cast: { name: string; from: string }[]; kept: { name: string; reason: string }[] } };
}

/** onnx.checker, full check; undefined when the model's IR is newer than Debian's onnx knows. */
function checkerSays(model: string): string | undefined {
  const verdict = python(
    'import sys, onnx\ntry:\n  onnx.checker.check_model(sys.argv[1], full_check=True); print("ok")\nexcept onnx.checker.ValidationError as e:\n  print(str(e).splitlines()[0])',
    model,
  ).trim();
  return /ir_version is higher than the checker's/.test(verdict) ? undefined : verdict;
}

/** Runs both models on the same generated inputs; every output must agree within float16's bound. */
async function assertRunsClose(original: string, cast: string, options: Parameters<typeof compare>[2] = {}): Promise<number> {
  const result = await compare(original, cast, { atol: OUTPUT_TOLERANCE, rtol: OUTPUT_TOLERANCE, ...options });
  for (const o of result.outputs) assert.ok(o.equal && !o.problem, `${o.name}: max |Δ| ${o.maxAbs}, ${o.outside} outside, ${o.problem ?? ''}`);
  return Math.max(...result.outputs.map((o) => o.maxAbs));
}

/**
 * `diff --values` pairs every cast tensor by name and reports its rounding: nonzero somewhere,
 * never more than half a float16 step of the tensor's largest value.
 */
async function assertDiffWithinHalf(original: string, cast: string, castNames: readonly string[]): Promise<void> {
  const r = runCli(['diff', '--values', '--json', original, cast]);
  const report = JSON.parse(r.stdout) as { matched: { a: string; dtypeA: string; dtypeB: string; values?: { maxAbsDiff: number } }[] };
  const dict = await open(original);
  try {
    let anyError = false;
    for (const name of castNames) {
      const pair = report.matched.find((m) => m.a === name);
      assert.ok(pair?.values, `diff pairs ${name}`);
      assert.notEqual(pair.dtypeA, pair.dtypeB);
      const t = dict.tensors.find((x) => x.name === name)!;
      const values = new Float32Array(castFloats(await t.read(), t.dtype, 'float32').slice().buffer);
      const largest = values.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
      assert.ok(pair.values.maxAbsDiff <= largest * HALF_ROUNDOFF, `${name}: ${pair.values.maxAbsDiff} > ${largest * HALF_ROUNDOFF}`);
      anyError ||= pair.values.maxAbsDiff > 0;
    }
    assert.ok(anyError, 'the cast rounds some value');
  } finally {
    await dict.close();
  }
}

async function dtypesOf(file: string): Promise<Record<string, string>> {
  const dict = await open(file);
  try {
    return Object.fromEntries(dict.tensors.map((t) => [t.name, t.dtype]));
  } finally {
    await dict.close();
  }
}

describe('ONNX output under --dtype: the samples', () => {
  for (const classes of [90, 92]) {
    test(`detector-${classes}: float16 weights, a loadable model that predicts as the original`, async () => {
      const original = path.join(SAMPLES, `detector-${classes}.onnx`);
      const out = path.join(tempDir(), 'half.onnx');
      const result = convertJson(original, out, '--dtype', 'float16');
      assert.equal(result.dtypes.cast.length, 6);
      assert.ok(fs.statSync(out).size < 0.6 * fs.statSync(original).size, 'weights take half the bytes');
      assert.ok(Object.values(await dtypesOf(out)).every((d) => d === 'float16'));
      await assertRunsClose(original, out);
      await assertDiffWithinHalf(original, out, result.dtypes.cast.map((c) => c.name));
      if (HAS_ONNX) assert.equal(checkerSays(out), 'ok');
    });
  }

  test('--keep-dtype keeps the tensors it names float32, and says so', async () => {
    const original = path.join(SAMPLES, 'detector-90.onnx');
    const out = path.join(tempDir(), 'half.onnx');
    const result = convertJson(original, out, '--dtype', 'float16', '--keep-dtype', 'yolo_output.*');
    assert.deepEqual(result.dtypes.kept.map((k) => [k.name, k.reason]), [['yolo_output.weight', "--keep-dtype 'yolo_output.*'"], ['yolo_output.bias', "--keep-dtype 'yolo_output.*'"]]);
    const dtypes = await dtypesOf(out);
    assert.equal(dtypes['yolo_output.weight'], 'float32');
    assert.equal(dtypes['backbone.conv1.weight'], 'float16');
    await assertRunsClose(original, out);
  });

  test('convert --graph casts the weights it puts into the model', async () => {
    const out = path.join(tempDir(), 'graph.onnx');
    const r = runCli(['convert', path.join(SAMPLES, 'detector-90.pdparams'), out, '--graph', path.join(SAMPLES, 'detector-90.onnx'), '--dtype', 'float16', '--json']);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).dtypes.cast.length, 6);
    await assertRunsClose(path.join(SAMPLES, 'detector-90.onnx'), out);
  });

  test('a value_info declaring a cast weight declares its new dtype, so onnx.checker still passes', { skip: !HAS_ONNX && 'needs python3-onnx' }, async () => {
    const dir = tempDir();
    const original = path.join(dir, 'declared.onnx');
    python(`
import onnx, sys
from onnx import helper
m = onnx.load(sys.argv[1])
w = next(i for i in m.graph.initializer if i.name == 'backbone.conv1.weight')
m.graph.value_info.append(helper.make_tensor_value_info(w.name, onnx.TensorProto.FLOAT, list(w.dims)))
onnx.save(m, sys.argv[2])`, path.join(SAMPLES, 'detector-90.onnx'), original);
    const out = path.join(dir, 'half.onnx');
    convertJson(original, out, '--dtype', 'float16');
    assert.equal(checkerSays(out), 'ok');
    const declared = python('import onnx, sys; v = onnx.load(sys.argv[1]).graph.value_info[0]; print(v.name, v.type.tensor_type.elem_type, [d.dim_value for d in v.type.tensor_type.shape.dim])', out).trim();
    assert.equal(declared, 'backbone.conv1.weight 10 [8, 3, 3, 3]');
    await assertRunsClose(original, out);
  });

  test('bfloat16 needs opset 13 for its Cast: refused below, written at 17', async () => {
    const dir = tempDir();
    const old = writeModel(dir, 'opset11.onnx', encodeModel({ ...mlpSpec(), opset: 11 }));
    const refused = runCli(['convert', old, path.join(dir, 'bf.onnx'), '--dtype', 'bfloat16']);
    assert.equal(refused.status, 2);
    assert.match(refused.stderr, /imports ONNX opset 11; Cast from bfloat16 needs opset 13/);
    assert.equal(fs.existsSync(path.join(dir, 'bf.onnx')), false);
    const original = path.join(SAMPLES, 'detector-90.onnx');
    const out = path.join(dir, 'bf16.onnx');
    convertJson(original, out, '--dtype', 'bfloat16');
    // bfloat16 keeps 8 significant bits: its roundoff is 2^-8, 8 times float16's.
    await assertRunsClose(original, out, { atol: 8 * OUTPUT_TOLERANCE, rtol: 8 * OUTPUT_TOLERANCE });
    if (HAS_ONNX) assert.equal(checkerSays(out), 'ok');
  });

  test('external data holds the cast tensors, chosen or forced by the inline limit', async () => {
    const dir = tempDir();
    const original = path.join(SAMPLES, 'detector-90.onnx');
    const chosen = path.join(dir, 'chosen.onnx');
    convertJson(original, chosen, '--dtype', 'float16', '--external-data');
    const forced = path.join(dir, 'forced.onnx');
    const result = await convert(original, forced, { writeOptions: { dtype: 'float16', inlineLimit: 4096 } });
    assert.ok(result.notes.some((n) => /written as external data .* over the 4096-byte inline limit/.test(n)), result.notes.join('\n'));
    for (const out of [chosen, forced]) {
      const dict = await open(out);
      const external = dict.tensors.filter((t) => t.location?.external);
      await dict.close();
      assert.ok(external.length > 0 && external.every((t) => t.dtype === 'float16'));
      assert.equal(fs.statSync(`${out}.data`).size, external.reduce((n, t) => n + t.byteLength, 0), 'the external file holds float16 bytes');
      await assertRunsClose(original, out);
      if (HAS_ONNX) assert.equal(checkerSays(out), 'ok');
    }
  });
});

describe('ONNX output under --dtype: what is cast and what is kept', () => {
  const weight = (seed: number) => Float32Array.from({ length: 12 }, (_, i) => Math.sin(seed + i) * 0.7 + 1e-3 * i);
  const x = new ort.Tensor('float32', f32(0.3, -1.2, 2.5, 0.7), [1, 4]);

  /** The model's output `z` for each branch of its If, in onnxruntime. */
  async function runBranches(file: string): Promise<number[][]> {
    const session = await ort.InferenceSession.create(file, { logSeverityLevel: 3 });
    const out: number[][] = [];
    for (const cond of [true, false]) out.push([...((await session.run({ cond: new ort.Tensor('bool', [cond], []), x })).z!.data as Float32Array)]);
    await session.release();
    return out;
  }

  /**
   * An If whose branches read the outer weight W (the else-branch adding a bias of its own), then
   * a scalar factor, a Reshape shape and a weight that is also a graph output.
   */
  function branchingModel(): Uint8Array {
    const shape = tensorProto('shape', 'int64', [2], new Uint8Array(BigInt64Array.from([3n, 1n]).buffer));
    return encodeModel({
      graphName: 'branching',
      nodes: [
        { op: 'If', inputs: ['cond'], outputs: ['picked'], attributes: {
          then_branch: { graph: { graphName: 'then', nodes: [{ op: 'MatMul', inputs: ['x', 'W'], outputs: ['then_y'] }], initializers: [], inputs: [], outputs: [{ name: 'then_y', dtype: 'float32', shape: [1, 3] }] } },
          else_branch: { graph: {
            graphName: 'else',
            nodes: [{ op: 'MatMul', inputs: ['x', 'W'], outputs: ['else_xw'] }, { op: 'Add', inputs: ['else_xw', 'else_bias'], outputs: ['else_y'] }],
            initializers: [float32Tensor('else_bias', [3], f32(1, 2, 3))], inputs: [], outputs: [{ name: 'else_y', dtype: 'float32', shape: [1, 3] }],
          } },
        } },
        { op: 'Mul', inputs: ['picked', 'scale'], outputs: ['scaled'] },
        { op: 'Reshape', inputs: ['scaled', 'shape'], outputs: ['y'] },
        { op: 'Add', inputs: ['y', 'exposed'], outputs: ['z'] },
      ],
      initializers: [float32Tensor('W', [4, 3], weight(0)), float32Tensor('scale', [], f32(0.37)), shape, float32Tensor('exposed', [3, 1], f32(0.1, 0.2, 0.3))],
      inputs: [{ name: 'cond', dtype: 'bool', shape: [] }, { name: 'x', dtype: 'float32', shape: [1, 4] }],
      outputs: [{ name: 'z', dtype: 'float32', shape: [3, 1] }, { name: 'exposed', dtype: 'float32', shape: [3, 1] }],
    });
  }

  test('subgraphs reading an outer weight read the Cast; constants, subgraph weights and graph outputs are kept, with why', async () => {
    const dir = tempDir();
    const original = writeModel(dir, 'branching.onnx', branchingModel());
    const out = path.join(dir, 'half.onnx');
    const result = convertJson(original, out, '--dtype', 'float16');
    assert.deepEqual(result.dtypes.cast.map((c) => c.name), ['W']);
    const reasons = result.dtypes.kept.map((k) => k.reason);
    assert.equal(reasons.length, 3, 'the int64 shape is not a float: not listed');
    assert.ok(reasons.some((r) => /^a constant to Mul/.test(r)), 'the scalar factor');
    assert.ok(reasons.some((r) => /^a graph output/.test(r)));
    assert.ok(reasons.some((r) => /^an initializer of the subgraph If_0\/else_branch/.test(r)));
    if (HAS_ONNX) assert.equal(checkerSays(out), 'ok');
    const [before, after] = [await runBranches(original), await runBranches(out)];
    for (const branch of [0, 1]) {
      assert.notDeepEqual(after[branch], before[branch], 'computed with the rounded W');
      after[branch]!.forEach((v, i) => assert.ok(Math.abs(v - before[branch]![i]!) <= OUTPUT_TOLERANCE * Math.max(1, Math.abs(before[branch]![i]!))));
    }
  });

  test('a weight whose name a subgraph initializer repeats stays as it is: the model computes the same', async () => {
    // onnxruntime reads the outer W in the else-branch despite its own; onnx types it so.
    const dir = tempDir();
    const shadowing = encodeModel({
      graphName: 'shadowing',
      nodes: [{ op: 'If', inputs: ['cond'], outputs: ['z'], attributes: {
        then_branch: { graph: { graphName: 'then', nodes: [{ op: 'MatMul', inputs: ['x', 'W'], outputs: ['then_y'] }], initializers: [], inputs: [], outputs: [{ name: 'then_y', dtype: 'float32', shape: [1, 3] }] } },
        else_branch: { graph: { graphName: 'else', nodes: [{ op: 'MatMul', inputs: ['x', 'W'], outputs: ['else_y'] }], initializers: [float32Tensor('W', [4, 3], weight(5))], inputs: [], outputs: [{ name: 'else_y', dtype: 'float32', shape: [1, 3] }] } },
      } }],
      initializers: [float32Tensor('W', [4, 3], weight(0))],
      inputs: [{ name: 'cond', dtype: 'bool', shape: [] }, { name: 'x', dtype: 'float32', shape: [1, 4] }],
      outputs: [{ name: 'z', dtype: 'float32', shape: [1, 3] }],
    });
    const original = writeModel(dir, 'shadowing.onnx', shadowing);
    const out = path.join(dir, 'half.onnx');
    const result = convertJson(original, out, '--dtype', 'float16');
    assert.deepEqual(result.dtypes.cast, []);
    assert.match(result.dtypes.kept.find((k) => k.name === 'W')!.reason, /a subgraph has an initializer of the same name/);
    assert.deepEqual(await runBranches(out), await runBranches(original));
  });

  test("a Loop body whose input is named as the weight reads its loop-carried value, not the weight's Cast", async () => {
    const dir = tempDir();
    // W doubles each of 3 iterations: 8·W when the body reads its own W, 2·W if it read the outer one.
    // (A MatMul reads W too, which makes it a weight.)
    const looping = encodeModel({
      graphName: 'looping',
      nodes: [{ op: 'MatMul', inputs: ['x', 'W'], outputs: ['xw'] }, { op: 'Loop', inputs: ['trips', '', 'W'], outputs: ['z'], attributes: {
        body: { graph: {
          graphName: 'body',
          nodes: [{ op: 'Identity', inputs: ['cond_in'], outputs: ['cond_out'] }, { op: 'Add', inputs: ['W', 'W'], outputs: ['doubled'] }],
          initializers: [],
          inputs: [{ name: 'i', dtype: 'int64', shape: [] }, { name: 'cond_in', dtype: 'bool', shape: [] }, { name: 'W', dtype: 'float32', shape: [4, 3] }],
          outputs: [{ name: 'cond_out', dtype: 'bool', shape: [] }, { name: 'doubled', dtype: 'float32', shape: [4, 3] }],
        } },
      } }],
      initializers: [float32Tensor('W', [4, 3], weight(0)), tensorProto('trips', 'int64', [], new Uint8Array(BigInt64Array.from([3n]).buffer))],
      inputs: [{ name: 'x', dtype: 'float32', shape: [1, 4] }],
      outputs: [{ name: 'z', dtype: 'float32', shape: [4, 3] }, { name: 'xw', dtype: 'float32', shape: [1, 3] }],
    });
    const original = writeModel(dir, 'looping.onnx', looping);
    const out = path.join(dir, 'half.onnx');
    assert.deepEqual(convertJson(original, out, '--dtype', 'float16').dtypes.cast.map((c) => c.name), ['W']);
    if (HAS_ONNX) assert.equal(checkerSays(out), 'ok');
    const run = async (file: string) => {
      const session = await ort.InferenceSession.create(file, { logSeverityLevel: 3 });
      const z = [...((await session.run({ x })).z!.data as Float32Array)];
      await session.release();
      return z;
    };
    const halfW = [...new Float32Array(castFloats(castFloats(new Uint8Array(weight(0).buffer), 'float32', 'float16'), 'float16', 'float32').slice().buffer)];
    assert.deepEqual(await run(out), halfW.map((w) => 8 * w));
    assert.deepEqual(await run(original), [...weight(0)].map((w) => 8 * Math.fround(w)));
  });

  test('a weight with values past float16\'s range stays float32 rather than turn infinite', async () => {
    const dir = tempDir();
    const spec = mlpSpec();
    spec.initializers[0] = float32Tensor('fc1.weight', [3, 2], f32(1, 2, 3, 4, 5, 70000));
    const original = writeModel(dir, 'big.onnx', encodeModel(spec));
    const result = convertJson(original, path.join(dir, 'half.onnx'), '--dtype', 'float16');
    assert.deepEqual(result.dtypes.kept, [{ name: 'fc1.weight', dtype: 'float32', reason: 'values up to 7.000e+4 overflow float16 (largest finite 65504)' }]);
    assert.equal(result.dtypes.cast.length, 3);
    await assertRunsClose(original, path.join(dir, 'half.onnx'), { shape: ['x=1x2'] });
  });

  test('a float16 model written as float32 stores float32 and casts back to float16', async () => {
    const dir = tempDir();
    const half = path.join(dir, 'half.onnx');
    convertJson(path.join(SAMPLES, 'detector-90.onnx'), half, '--dtype', 'float16');
    const single = path.join(dir, 'single.onnx');
    const result = convertJson(half, single, '--dtype', 'float32');
    assert.ok(result.dtypes.cast.every((c) => c.from === 'float16') && result.dtypes.cast.length === 6);
    const r = await compare(half, single, { atol: 0, rtol: 0 });
    assert.ok(r.equal, 'widening is exact');
  });

  test('strip and --dtype together: removed weights become inputs, the rest are cast', async () => {
    const dir = tempDir();
    const model = writeModel(dir, 'mlp.onnx', mlpModel());
    const out = path.join(dir, 'half.onnx');
    const r = runCli(['strip', model, '--exclude', 'head.bias', '-o', out, '--dtype', 'float16']);
    assert.equal(r.status, 0, r.stderr);
    const session = await ort.InferenceSession.create(out, { logSeverityLevel: 3 });
    assert.deepEqual(session.inputNames, ['x', 'head.bias']);
    await session.release();
    assert.deepEqual(await dtypesOf(out), { 'fc1.weight': 'float16', 'fc1.bias': 'float16', 'head.weight': 'float16' });
  });
});

describe('ONNX output under --dtype: corpus models', { skip: !HAS_CORPUS && 'no ../shared/corpus' }, () => {
  const cases: { file: string; cast: number; flags?: string[]; inputs?: Parameters<typeof compare>[2] }[] = [
    { file: 'onnx/mlp-3cls-torch28/model.onnx', cast: 6 },
    { file: 'onnx/mnist-cnn-extdata/model.onnx', cast: 10 },
    { file: 'onnx/mnist-cnn-extdata/model.onnx', cast: 10, flags: ['--external-data', 'per-tensor'] },
    { file: 'onnx/ortgenai-tiny-gpt2-fp32/past.onnx', cast: 27 },
    // 68 of its weights are read inside nested If branches (the sample-rate switch).
    { file: 'onnx/silero-vad-v4/silero_vad_legacy.onnx', cast: 68, inputs: { input: ['sr=16000'], shape: ['input=1x512'] } },
  ];
  for (const c of cases) {
    test(`${c.file}${c.flags ? ` ${c.flags.join(' ')}` : ''}: float16 weights, the model loads and predicts as before`, async () => {
      const original = path.join(CORPUS, c.file);
      const out = path.join(tempDir(), 'half.onnx');
      const result = convertJson(original, out, '--dtype', 'float16', ...(c.flags ?? []));
      assert.equal(result.dtypes.cast.length, c.cast);
      await assertRunsClose(original, out, c.inputs);
      await assertDiffWithinHalf(original, out, result.dtypes.cast.map((x) => x.name));
      // mnist-cnn-extdata is IR 10, newer than Debian's onnx 1.12 checker knows.
      const verdict = HAS_ONNX ? checkerSays(out) : undefined;
      if (verdict !== undefined) assert.equal(verdict, 'ok');
    });
  }

  test('UltraFace (IR 4): weights that are also graph inputs stay float32, with why', async () => {
    const original = path.join(CORPUS, 'onnx/ultraface-rfb320-simplified/version-RFB-320_simplified.onnx');
    const out = path.join(tempDir(), 'half.onnx');
    const result = convertJson(original, out, '--dtype', 'float16');
    assert.equal(result.dtypes.cast.length, 0);
    assert.ok(result.dtypes.kept.some((k) => /also a graph input \(overridable, as before IR 4\)/.test(k.reason)));
    assert.ok((await compare(original, out, { atol: 0, rtol: 0 })).equal);
  });
});
