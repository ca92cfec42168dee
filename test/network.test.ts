import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { open } from '../src/index.js';
import { encodeModel, float32Tensor, tensorProto, type NodeSpec } from '../src/formats/onnx/build.js';
import { graphNodesOf } from '../src/formats/onnx/index.js';
import { analyzeNetwork, measureShapes, networkGradientModel } from '../src/train/network.js';
import { seededRandom } from '../src/train/engine.js';
import { CkptError } from '../src/index.js';
import { tempDir } from './helpers.js';

const random = seededRandom(5);
const values = (n: number, scale = 0.5) => Float32Array.from({ length: n }, () => (random() * 2 - 1) * scale);
const weight = (name: string, shape: number[], scale = 0.5) => float32Tensor(name, shape, values(shape.reduce((a, b) => a * b, 1), scale));

function model(name: string, inputShape: number[], classes: number, nodes: NodeSpec[], initializers: ReturnType<typeof weight>[]): string {
  const file = path.join(tempDir(), `${name}.onnx`);
  fs.writeFileSync(file, encodeModel({
    graphName: name, nodes, initializers,
    inputs: [{ name: 'x', dtype: 'float32', shape: ['batch', ...inputShape] }],
    outputs: [{ name: 'probabilities', dtype: 'float32', shape: ['batch', classes] }],
  }));
  return file;
}

/** Largest |analytic − central difference| over every parameter element. */
async function gradientError(file: string, batch = 3): Promise<number> {
  const dict = await open(file);
  const net = analyzeNetwork(dict, graphNodesOf(dict)!);
  const shapes = await measureShapes(dict, net, batch);
  const { model: bytes, parameters } = await networkGradientModel(net, shapes, batch, 'cross-entropy');
  const session = await ort.InferenceSession.create(bytes, { executionProviders: ['cpu'] });
  const params = await Promise.all(net.parameters.map(async (p) => new Float32Array(Uint8Array.from(await p.read()).buffer)));
  const classes = shapes.get(net.logits)![1]!;
  const x = values(batch * net.input.shape.reduce((a, b) => a * b, 1), 1);
  const y = new Float32Array(batch * classes);
  for (let i = 0; i < batch; i++) y[i * classes + (i % classes)] = 1;
  const run = (ps: Float32Array[]) => session.run({
    x: new ort.Tensor('float32', x, [batch, ...net.input.shape]), y: new ort.Tensor('float32', y, [batch, classes]),
    ...Object.fromEntries(parameters.map((name, i) => [name, new ort.Tensor('float32', ps[i]!, [...net.parameters[i]!.shape])])),
  });
  const analytic = await run(params);
  let worst = 0;
  const eps = 1e-3;
  for (let p = 0; p < params.length; p++) {
    for (let i = 0; i < params[p]!.length; i++) {
      const plus = params.map((a) => a.slice());
      const minus = params.map((a) => a.slice());
      plus[p]![i]! += eps;
      minus[p]![i]! -= eps;
      const numeric = (((await run(plus)).loss!.data as Float32Array)[0]! - ((await run(minus)).loss!.data as Float32Array)[0]!) / (2 * eps);
      worst = Math.max(worst, Math.abs((analytic[`grad_${parameters[p]}`]!.data as Float32Array)[i]! - numeric));
    }
  }
  await session.release();
  await dict.close();
  return worst;
}

describe('whole-network gradients (scenario c) match finite differences', () => {
  test('Div by a constant, Conv (stride 2, pads), Relu, MaxPool, Flatten, Gemm (transB), Softmax', async () => {
    const file = model('cnn', [1, 6, 6], 3, [
      { op: 'Constant', inputs: [], outputs: ['two'], attributes: { value: { tensor: float32Tensor('two', [], new Float32Array([2])) } } },
      { op: 'Div', inputs: ['x', 'two'], outputs: ['scaled'] },
      { op: 'Conv', inputs: ['scaled', 'conv.weight', 'conv.bias'], outputs: ['c'], attributes: { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] } },
      { op: 'Relu', inputs: ['c'], outputs: ['r'] },
      { op: 'MaxPool', inputs: ['r'], outputs: ['p'], attributes: { kernel_shape: [2, 2], strides: [1, 1] } },
      { op: 'Flatten', inputs: ['p'], outputs: ['f'], attributes: { axis: 1 } },
      { op: 'Gemm', inputs: ['f', 'fc.weight', 'fc.bias'], outputs: ['logits'], attributes: { transB: 1 } },
      { op: 'Softmax', inputs: ['logits'], outputs: ['probabilities'], attributes: { axis: 1 } },
    ], [weight('conv.weight', [2, 1, 3, 3]), weight('conv.bias', [2]), weight('fc.weight', [3, 8]), weight('fc.bias', [3])]);
    const error = await gradientError(file);
    assert.ok(error < 3e-3, `max error ${error}`);
  });

  test('BatchNormalization, AveragePool, GlobalAveragePool, Reshape, MatMul + Add', async () => {
    const file = model('bn', [2, 4, 4], 4, [
      { op: 'Conv', inputs: ['x', 'conv.weight'], outputs: ['c'], attributes: { kernel_shape: [3, 3], pads: [1, 1, 1, 1] } },
      { op: 'BatchNormalization', inputs: ['c', 'bn.scale', 'bn.bias', 'bn.mean', 'bn.var'], outputs: ['n'], attributes: { epsilon: { float: 1e-5 } } },
      { op: 'Relu', inputs: ['n'], outputs: ['r'] },
      { op: 'AveragePool', inputs: ['r'], outputs: ['a'], attributes: { kernel_shape: [2, 2], strides: [2, 2] } },
      { op: 'GlobalAveragePool', inputs: ['a'], outputs: ['g'] },
      { op: 'Reshape', inputs: ['g', 'shape'], outputs: ['v'] },
      { op: 'MatMul', inputs: ['v', 'head.weight'], outputs: ['m'] },
      { op: 'Add', inputs: ['m', 'head.bias'], outputs: ['logits'] },
      { op: 'Softmax', inputs: ['logits'], outputs: ['probabilities'], attributes: { axis: 1 } },
    ], [
      weight('conv.weight', [3, 2, 3, 3]), weight('bn.scale', [3]), weight('bn.bias', [3]), weight('bn.mean', [3], 0.1),
      float32Tensor('bn.var', [3], new Float32Array([0.5, 1, 2])), tensorProto('shape', 'int64', [2], new Uint8Array(new BigInt64Array([-1n, 3n]).buffer)),
      weight('head.weight', [3, 4]), weight('head.bias', [4]),
    ]);
    const dict = await open(file);
    const net = analyzeNetwork(dict, graphNodesOf(dict)!);
    assert.deepEqual(net.parameters.map((p) => p.name), ['conv.weight', 'bn.scale', 'bn.bias', 'head.weight', 'head.bias'], 'running statistics are not trained');
    await dict.close();
    const error = await gradientError(file);
    assert.ok(error < 3e-3, `max error ${error}`);
  });

  test('an MLP through Sub, Mul, Transpose, Identity and Relu', async () => {
    const file = model('mlp', [4], 3, [
      { op: 'Sub', inputs: ['x', 'mean'], outputs: ['centered'] },
      { op: 'Mul', inputs: ['centered', 'scale'], outputs: ['normalized'] },
      { op: 'Gemm', inputs: ['normalized', 'fc1.weight', 'fc1.bias'], outputs: ['h'] },
      { op: 'Relu', inputs: ['h'], outputs: ['hr'] },
      { op: 'Transpose', inputs: ['hr'], outputs: ['ht'], attributes: { perm: [1, 0] } },
      { op: 'Transpose', inputs: ['ht'], outputs: ['hb'], attributes: { perm: [1, 0] } },
      { op: 'Identity', inputs: ['hb'], outputs: ['hi'] },
      { op: 'Gemm', inputs: ['hi', 'fc2.weight', 'fc2.bias'], outputs: ['logits'], attributes: { transB: 1 } },
      { op: 'Softmax', inputs: ['logits'], outputs: ['probabilities'], attributes: { axis: 1 } },
    ], [float32Tensor('mean', [4], new Float32Array([0.1, 0.2, 0.3, 0.4])), float32Tensor('scale', [4], new Float32Array([2, 2, 2, 2])),
      weight('fc1.weight', [4, 5]), weight('fc1.bias', [5]), weight('fc2.weight', [3, 5]), weight('fc2.bias', [3])]);
    const error = await gradientError(file);
    assert.ok(error < 3e-3, `max error ${error}`);
  });

  test('an op without a gradient here is a clear error naming it and suggesting the head scenarios', async () => {
    const file = model('sigmoid', [4], 2, [
      { op: 'Gemm', inputs: ['x', 'fc1.weight'], outputs: ['h'] },
      { op: 'Sigmoid', inputs: ['h'], outputs: ['s'] },
      { op: 'Gemm', inputs: ['s', 'fc2.weight'], outputs: ['probabilities'] },
    ], [weight('fc1.weight', [4, 3]), weight('fc2.weight', [3, 2])]);
    const dict = await open(file);
    assert.throws(() => analyzeNetwork(dict, graphNodesOf(dict)!), (err: unknown) => {
      assert.ok(err instanceof CkptError);
      assert.equal(err.exitCode, 3);
      assert.match(err.message, /cannot train every layer through Sigmoid .*--train-last K/);
      return true;
    });
    await dict.close();
  });
});
