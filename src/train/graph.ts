import type onnxProto from 'onnx-proto';
import type { AttributeValue, NodeSpec, ValueSpec } from '../formats/onnx/build.js';
import { encodeModel, float32Tensor, tensorProto } from '../formats/onnx/build.js';
import { OPSET, optimizerStates, trainingLoopModel, type BodyBuilder, type OptimizerSpec, type TrainingInterface } from './loop.js';

/**
 * Training computations generated as ONNX, since onnxruntime-node has no training API: the
 * forward pass of a chain of dense layers, the loss and its gradients written out by hand; the
 * optimizer update and the Loop around the steps are loop.ts's. One `run` executes many steps
 * inside an ONNX Loop, so on CUDA the weights stay on the device between steps.
 */
export interface DenseLayer {
  /** Weight layout: `IO` is [in, out] (Gemm transB=0, MatMul), `OI` is [out, in] (transB=1). */
  layout: 'IO' | 'OI';
  inFeatures: number;
  outFeatures: number;
  hasBias: boolean;
  /** A Relu follows this layer. */
  relu: boolean;
}

export type Loss = 'cross-entropy' | 'mse';

export interface TrainSpec {
  layers: DenseLayer[];
  loss: Loss;
  optimizer: OptimizerSpec;
  /** Output rows of the last layer that stay fixed (the pretrained classes, --freeze-old-classes). */
  frozenOutputs?: number;
}

/** Parameter names, in graph-input order: W0, b0, W1, b1, … (biases only where a layer has one). */
export function parameterNames(spec: TrainSpec): string[] {
  return spec.layers.flatMap((l, i) => (l.hasBias ? [`W${i}`, `b${i}`] : [`W${i}`]));
}

export function parameterShape(spec: TrainSpec, name: string): number[] {
  const layer = spec.layers[Number(name.slice(1))]!;
  if (name.startsWith('b')) return [layer.outFeatures];
  return layer.layout === 'IO' ? [layer.inFeatures, layer.outFeatures] : [layer.outFeatures, layer.inFeatures];
}

/** Optimizer state tensors per parameter: momentum velocity, or Adam's two moments. */
export function stateNames(spec: TrainSpec): string[] {
  return optimizerStates(parameterNames(spec), spec.optimizer);
}

/** Collects nodes with fresh names: `op()` returns the output name. */
class Builder implements BodyBuilder {
  readonly nodes: NodeSpec[] = [];
  readonly initializers: onnxProto.onnx.ITensorProto[] = [];
  private counter = 0;

  constructor(private readonly prefix: string) {}

  op(op: string, inputs: string[], attributes: Record<string, AttributeValue> = {}): string {
    const output = `${this.prefix}${op.toLowerCase()}_${this.counter++}`;
    this.nodes.push({ op, inputs, outputs: [output], attributes, name: output });
    return output;
  }

  scalar(value: number): string {
    const name = `${this.prefix}const_${this.counter++}`;
    this.initializers.push(float32Tensor(name, [], new Float32Array([value])));
    return name;
  }

  ints(values: number[]): string {
    const name = `${this.prefix}ints_${this.counter++}`;
    const data = new BigInt64Array(values.map(BigInt));
    this.initializers.push(tensorProto(name, 'int64', [values.length], new Uint8Array(data.buffer)));
    return name;
  }

  floats(values: Float32Array, shape: number[]): string {
    const name = `${this.prefix}floats_${this.counter++}`;
    this.initializers.push(float32Tensor(name, shape, values));
    return name;
  }
}

function forward(b: Builder, spec: TrainSpec, x: string, params: Record<string, string>): { logits: string; inputs: string[]; preActivations: string[] } {
  let h = x;
  const inputs: string[] = [];
  const preActivations: string[] = [];
  spec.layers.forEach((layer, i) => {
    inputs.push(h);
    const gemmInputs = [h, params[`W${i}`]!, ...(layer.hasBias ? [params[`b${i}`]!] : [])];
    const z = b.op('Gemm', gemmInputs, layer.layout === 'OI' ? { transB: 1 } : {});
    preActivations.push(z);
    h = layer.relu ? b.op('Relu', [z]) : z;
  });
  return { logits: h, inputs, preActivations };
}

/** Loss (scalar, mean over the batch) and its gradient with respect to the logits. */
function lossAndSeed(b: Builder, spec: TrainSpec, logits: string, y: string, batch: number): { loss: string; dz: string } {
  const outputs = spec.layers[spec.layers.length - 1]!.outFeatures;
  if (spec.loss === 'cross-entropy') {
    const logp = b.op('LogSoftmax', [logits], { axis: 1 });
    const loss = b.op('Mul', [b.op('ReduceSum', [b.op('Mul', [y, logp])], { keepdims: 0 }), b.scalar(-1 / batch)]);
    const dz = b.op('Mul', [b.op('Sub', [b.op('Softmax', [logits], { axis: 1 }), y]), b.scalar(1 / batch)]);
    return { loss, dz };
  }
  const diff = b.op('Sub', [logits, y]);
  const loss = b.op('Mul', [b.op('ReduceSum', [b.op('Mul', [diff, diff])], { keepdims: 0 }), b.scalar(1 / (batch * outputs))]);
  const dz = b.op('Mul', [diff, b.scalar(2 / (batch * outputs))]);
  return { loss, dz };
}

/** Gradients of every parameter, by the chain rule through Gemm and Relu, last layer first. */
function backward(b: Builder, spec: TrainSpec, params: Record<string, string>, fwd: ReturnType<typeof forward>, seed: string): Record<string, string> {
  const grads: Record<string, string> = {};
  let dz = seed;
  const last = spec.layers.length - 1;
  for (let i = last; i >= 0; i--) {
    const layer = spec.layers[i]!;
    const hIn = fwd.inputs[i]!;
    grads[`W${i}`] = layer.layout === 'IO' ? b.op('Gemm', [hIn, dz], { transA: 1 }) : b.op('Gemm', [dz, hIn], { transA: 1 });
    if (layer.hasBias) grads[`b${i}`] = b.op('ReduceSum', [dz, b.ints([0])], { keepdims: 0 });
    if (i > 0) {
      const W = params[`W${i}`]!;
      const dh = layer.layout === 'IO' ? b.op('Gemm', [dz, W], { transB: 1 }) : b.op('MatMul', [dz, W]);
      const previous = spec.layers[i - 1]!;
      dz = previous.relu ? b.op('Mul', [dh, b.op('Cast', [b.op('Greater', [fwd.preActivations[i - 1]!, b.scalar(0)])], { to: 1 })]) : dh;
    }
  }
  if (spec.frozenOutputs) freezeOutputs(b, spec, grads);
  return grads;
}

/** Zeroes the gradient of the head's first `frozenOutputs` output rows (old classes stay as loaded). */
function freezeOutputs(b: Builder, spec: TrainSpec, grads: Record<string, string>): void {
  const i = spec.layers.length - 1;
  const layer = spec.layers[i]!;
  const mask = new Float32Array(layer.outFeatures).map((_, k) => (k < spec.frozenOutputs! ? 0 : 1));
  const maskShape = layer.layout === 'IO' ? [1, layer.outFeatures] : [layer.outFeatures, 1];
  grads[`W${i}`] = b.op('Mul', [grads[`W${i}`]!, b.floats(mask, maskShape)]);
  if (layer.hasBias) grads[`b${i}`] = b.op('Mul', [grads[`b${i}`]!, b.floats(mask, [layer.outFeatures])]);
}

const f32 = (name: string, shape: (number | string)[]): ValueSpec => ({ name, dtype: 'float32', shape });

function paramInputs(spec: TrainSpec): ValueSpec[] {
  return parameterNames(spec).map((p) => f32(p, parameterShape(spec, p)));
}

/** loss and every gradient for one batch: what the finite-difference tests check. */
export function gradientModel(spec: TrainSpec, batch: number): Uint8Array {
  const b = new Builder('');
  const names = parameterNames(spec);
  const params = Object.fromEntries(names.map((p) => [p, p]));
  const fwd = forward(b, spec, 'x', params);
  const { loss, dz } = lossAndSeed(b, spec, fwd.logits, 'y', batch);
  const grads = backward(b, spec, params, fwd, dz);
  b.nodes.push({ op: 'Identity', inputs: [loss], outputs: ['loss'] });
  for (const p of names) b.nodes.push({ op: 'Identity', inputs: [grads[p]!], outputs: [`grad_${p}`] });
  const first = spec.layers[0]!;
  const last = spec.layers[spec.layers.length - 1]!;
  return encodeModel({
    graphName: 'gradients', opset: OPSET, producerName: 'ckpt-finetune',
    nodes: b.nodes, initializers: b.initializers,
    inputs: [f32('x', [batch, first.inFeatures]), f32('y', [batch, last.outFeatures]), ...paramInputs(spec)],
    outputs: [f32('loss', []), ...names.map((p) => f32(`grad_${p}`, parameterShape(spec, p)))],
  });
}

/** Logits for a batch of any size (evaluation). */
export function forwardModel(spec: TrainSpec): Uint8Array {
  const b = new Builder('');
  const params = Object.fromEntries(parameterNames(spec).map((p) => [p, p]));
  const fwd = forward(b, spec, 'x', params);
  b.nodes.push({ op: 'Identity', inputs: [fwd.logits], outputs: ['logits'] });
  return encodeModel({
    graphName: 'forward', opset: OPSET, producerName: 'ckpt-finetune', nodes: b.nodes, initializers: b.initializers,
    inputs: [f32('x', ['n', spec.layers[0]!.inFeatures]), ...paramInputs(spec)],
    outputs: [f32('logits', ['n', spec.layers[spec.layers.length - 1]!.outFeatures])],
  });
}

/** The Loop graph of `steps` optimizer steps (loop.ts) around this chain's forward and backward pass. */
export function trainingModel(spec: TrainSpec, batch: number): Uint8Array {
  const body = new Builder('body_');
  return trainingLoopModel(denseInterface(spec), spec.optimizer, batch, body, (x, y, inputs) => {
    const names = parameterNames(spec);
    const params = Object.fromEntries(names.map((p, k) => [p, inputs[k]!]));
    const fwd = forward(body, spec, x, params);
    const { loss, dz } = lossAndSeed(body, spec, fwd.logits, y, batch);
    const grads = backward(body, spec, params, fwd, dz);
    return { loss, gradients: names.map((p) => grads[p]!) };
  });
}

/**
 * What the training loop needs from a model to train, whatever built it: the dense head chain here,
 * or a whole network (network.ts).
 */
export interface Trainable extends TrainingInterface {
  /** The Loop graph: xs [steps, batch, ...inputShape], ys [steps, batch, outputs], parameters, states, t, lr. */
  trainingModel(batch: number): Uint8Array;
  /** x [n, ...inputShape] and the parameters → logits [n, outputs]. */
  forwardModel(): Uint8Array;
}

function denseInterface(spec: TrainSpec): TrainingInterface {
  return {
    inputShape: [spec.layers[0]!.inFeatures],
    outputs: spec.layers[spec.layers.length - 1]!.outFeatures,
    parameters: parameterNames(spec),
    shapeOf: (p) => parameterShape(spec, p),
    states: stateNames(spec),
  };
}

export function denseTrainable(spec: TrainSpec): Trainable {
  return {
    ...denseInterface(spec),
    trainingModel: (batch) => trainingModel(spec, batch),
    forwardModel: () => forwardModel(spec),
  };
}
