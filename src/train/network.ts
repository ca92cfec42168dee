import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type onnxProto from 'onnx-proto';
import { invalidInput } from '../core/errors.js';
import type { DType } from '../core/dtype.js';
import type { StateDict, TensorInfo } from '../core/statedict.js';
import type { GraphNode } from '../formats/onnx/model.js';
import { encodeModel, float32Tensor, tensorProto, type AttributeValue, type NodeSpec, type ValueSpec } from '../formats/onnx/build.js';
import { rewriteOnnx } from '../formats/onnx/write.js';
import { loadOrt, openSession } from '../runtime/session.js';
import type { Loss, Trainable } from './graph.js';
import { OPSET, optimizerStates, trainingLoopModel, type BodyBuilder, type OptimizerSpec, type TrainingInterface } from './loop.js';

/**
 * Training a whole network (scenario c): the model's own nodes are copied into the generated
 * graph, and the backward pass is written node by node in reverse (reverse-mode differentiation)
 * for the ops small CNNs and MLPs are made of. Every float32 weight feeding a Conv, Gemm, MatMul
 * (+ Add) or BatchNormalization (scale and bias; the running statistics stay) is trained.
 */
export const SUPPORTED_OPS = [
  'Conv', 'Gemm', 'MatMul', 'Add', 'Sub', 'Mul', 'Div', 'Relu', 'MaxPool', 'AveragePool', 'GlobalAveragePool',
  'Flatten', 'Reshape', 'BatchNormalization', 'Identity', 'Dropout', 'Transpose', 'Constant',
] as const;

/** Ops that may turn the logits into the model's output; training works on the logits. */
const OUTPUT_OPS = new Set(['Softmax', 'LogSoftmax']);

export interface NetworkAnalysis {
  input: { name: string; shape: number[] };
  /** The tensor holding the logits [batch, classes]. */
  logits: string;
  outputs: number;
  nodes: GraphNode[];
  /** Trainable weights by their name in the file. */
  parameters: TensorInfo[];
  /** Every other tensor the nodes read from the file (shapes for Reshape, BN statistics…). */
  constants: TensorInfo[];
}

/** Checks the model is made of supported ops and finds its input, logits and weights. */
export function analyzeNetwork(dict: StateDict, allNodes: readonly GraphNode[]): NetworkAnalysis {
  const inputs = dict.metadata.inputs as { name: string; shape?: (number | string | null)[] }[];
  const outputs = dict.metadata.outputs as { name: string }[];
  if (inputs.length !== 1) throw invalidInput(dict.path, 'inputs', `training every layer needs a model with one input, found ${inputs.length}`);
  const producer = new Map<string, GraphNode>();
  for (const n of allNodes) for (const o of n.outputs) producer.set(o, n);
  let logits = outputs[0]?.name;
  if (!logits) throw invalidInput(dict.path, 'outputs', 'the model has no output');
  const skipped = new Set<GraphNode>();
  while (producer.get(logits) && OUTPUT_OPS.has(producer.get(logits)!.opType)) {
    skipped.add(producer.get(logits)!);
    logits = producer.get(logits)!.inputs[0]!;
  }
  const nodes = allNodes.filter((n) => !skipped.has(n));
  const unsupported = [...new Set(nodes.filter((n) => !(SUPPORTED_OPS as readonly string[]).includes(n.opType) || (n.domain !== '' && n.domain !== 'ai.onnx')).map((n) => n.opType))];
  if (unsupported.length) {
    throw invalidInput(dict.path, 'graph', `cannot train every layer through ${unsupported.join(', ')} (supported: ${SUPPORTED_OPS.join(', ')}); train the top layers instead with --train-last K or --train PATTERN`);
  }
  const weights = new Map(dict.tensors.map((t) => [t.source, t]));
  const trainableSlots: Record<string, number[]> = { Conv: [1, 2], Gemm: [1, 2], MatMul: [1], BatchNormalization: [1, 2] };
  const parameters = new Set<TensorInfo>();
  for (const n of nodes) {
    for (const slot of trainableSlots[n.opType] ?? []) {
      const w = weights.get(n.inputs[slot] ?? '');
      if (w && w.dtype === 'float32' && w.origin !== 'constant') parameters.add(w);
    }
    // A bias added after a MatMul.
    if (n.opType === 'Add' && n.inputs.some((i) => producer.get(i)?.opType === 'MatMul')) {
      for (const i of n.inputs) {
        const w = weights.get(i);
        if (w && w.dtype === 'float32' && w.origin !== 'constant') parameters.add(w);
      }
    }
  }
  if (parameters.size === 0) throw invalidInput(dict.path, 'graph', 'no trainable float32 weights found');
  const read = new Set(nodes.flatMap((n) => n.inputs));
  const constants = dict.tensors.filter((t) => read.has(t.source) && !parameters.has(t));
  const dims = (inputs[0]!.shape ?? []).slice(1);
  if (!dims.every((d) => typeof d === 'number' && d > 0)) {
    throw invalidInput(dict.path, `input '${inputs[0]!.name}'`, `its per-example dims [${dims.join(', ')}] must be fixed to train every layer`);
  }
  return {
    input: { name: inputs[0]!.name, shape: dims as number[] },
    logits,
    outputs: 0,
    nodes,
    parameters: [...parameters],
    constants,
  };
}

/** Shapes of every tensor for one batch size, measured by running the model (see finetune). */
export type ShapeTable = ReadonlyMap<string, readonly number[]>;

interface Context {
  readonly nodes: NodeSpec[];
  readonly initializers: onnxProto.onnx.ITensorProto[];
  readonly shapes: ShapeTable;
  readonly prefix: string;
  counter: number;
}

function op(ctx: Context, type: string, inputs: string[], attributes: Record<string, AttributeValue> = {}, outputs = 1): string[] {
  const names = Array.from({ length: outputs }, (_, k) => `${ctx.prefix}g${ctx.counter}_${type}_${k}`);
  ctx.counter++;
  ctx.nodes.push({ op: type, inputs, outputs: names, attributes, name: names[0] });
  return names;
}
const op1 = (ctx: Context, type: string, inputs: string[], attributes: Record<string, AttributeValue> = {}) => op(ctx, type, inputs, attributes)[0]!;

function ints(ctx: Context, values: readonly number[]): string {
  const name = `${ctx.prefix}ints${ctx.counter++}`;
  ctx.initializers.push(tensorProto(name, 'int64', [values.length], new Uint8Array(new BigInt64Array(values.map(BigInt)).buffer)));
  return name;
}

function scalar(ctx: Context, value: number): string {
  const name = `${ctx.prefix}c${ctx.counter++}`;
  ctx.initializers.push(float32Tensor(name, [], new Float32Array([value])));
  return name;
}

function shapeOf(ctx: Context, tensor: string): readonly number[] {
  const shape = ctx.shapes.get(tensor);
  if (!shape) throw new Error(`no shape measured for '${tensor}'`);
  return shape;
}

/** Sums a broadcast gradient back down to the shape of the operand it flows to. */
function reduceTo(ctx: Context, grad: string, gradShape: readonly number[], target: readonly number[]): string {
  if (gradShape.length === target.length && gradShape.every((d, i) => d === target[i])) return grad;
  const padded = [...Array(gradShape.length - target.length).fill(1), ...target];
  const axes = gradShape.map((d, i) => (padded[i] === 1 && d !== 1 ? i : -1)).filter((i) => i >= 0);
  const summed = axes.length ? op1(ctx, 'ReduceSum', [grad, ints(ctx, axes)], { keepdims: 1 }) : grad;
  return op1(ctx, 'Reshape', [summed, ints(ctx, target.length ? [...target] : [])]);
}

const attrInts = (n: GraphNode, name: string, fallback: number[]): number[] => (Array.isArray(n.attributes[name]) ? (n.attributes[name] as number[]) : fallback);
const attrNum = (n: GraphNode, name: string, fallback: number): number => (typeof n.attributes[name] === 'number' ? (n.attributes[name] as number) : fallback);

/** The forward node as in the model, its tensors renamed into the generated graph. */
function copyNode(n: GraphNode, rename: (t: string) => string, extraOutputs = 0): NodeSpec {
  const attributes: Record<string, AttributeValue> = {};
  for (const [k, v] of Object.entries(n.attributes)) {
    attributes[k] = typeof v === 'number' && !Number.isInteger(v) ? { float: v } : v;
  }
  // Gemm's alpha/beta are floats even when whole.
  for (const k of ['alpha', 'beta', 'epsilon', 'momentum', 'ratio']) if (typeof n.attributes[k] === 'number') attributes[k] = { float: n.attributes[k] as number };
  const outputs = n.outputs.map(rename);
  for (let k = 0; k < extraOutputs; k++) outputs.push(`${rename(n.outputs[0]!)}__extra${k}`);
  return { op: n.opType, inputs: n.inputs.map((i) => (i ? rename(i) : '')), outputs, attributes, ...(n.name ? { name: rename(n.name) } : {}) };
}

/**
 * Appends the forward nodes and the backward pass to `ctx`. Returns the logits, the loss and the
 * gradient tensor of every parameter.
 */
function forwardBackward(
  ctx: Context, net: NetworkAnalysis, params: Map<string, string>, x: string, y: string, loss: Loss, batch: number,
): { logits: string; loss: string; grads: Map<string, string> } {
  const rename = (t: string) => (t === net.input.name ? x : params.get(t) ?? `${ctx.prefix}${t}`);
  const paramSources = new Set(params.keys());
  // Which tensors depend on a parameter: only those need gradients.
  const needsGrad = new Set<string>(paramSources);
  for (const n of net.nodes) if (n.inputs.some((i) => needsGrad.has(i))) for (const o of n.outputs) needsGrad.add(o);
  const poolIndices = new Map<GraphNode, string>();
  for (const n of net.nodes) {
    if (n.opType === 'Constant') continue; // their values are initializers of the generated graph
    if (n.opType === 'MaxPool' && needsGradUpstream(n, needsGrad)) {
      const node = copyNode(n, rename, n.outputs.length === 1 ? 1 : 0);
      ctx.nodes.push(node);
      poolIndices.set(n, node.outputs[1]!);
    } else if (n.opType === 'Dropout') {
      ctx.nodes.push({ op: 'Identity', inputs: [rename(n.inputs[0]!)], outputs: [rename(n.outputs[0]!)] });
    } else ctx.nodes.push(copyNode(n, rename));
  }
  const logits = rename(net.logits);
  const outputs = shapeOf(ctx, net.logits)[1]!;
  let lossName: string;
  let seed: string;
  if (loss === 'cross-entropy') {
    const logp = op1(ctx, 'LogSoftmax', [logits], { axis: 1 });
    lossName = op1(ctx, 'Mul', [op1(ctx, 'ReduceSum', [op1(ctx, 'Mul', [y, logp])], { keepdims: 0 }), scalar(ctx, -1 / batch)]);
    seed = op1(ctx, 'Mul', [op1(ctx, 'Sub', [op1(ctx, 'Softmax', [logits], { axis: 1 }), y]), scalar(ctx, 1 / batch)]);
  } else {
    const diff = op1(ctx, 'Sub', [logits, y]);
    lossName = op1(ctx, 'Mul', [op1(ctx, 'ReduceSum', [op1(ctx, 'Mul', [diff, diff])], { keepdims: 0 }), scalar(ctx, 1 / (batch * outputs))]);
    seed = op1(ctx, 'Mul', [diff, scalar(ctx, 2 / (batch * outputs))]);
  }

  // Gradients accumulate per tensor (a tensor read twice gets the sum).
  const grads = new Map<string, string>([[net.logits, seed]]);
  const add = (tensor: string, grad: string) => {
    if (!needsGrad.has(tensor)) return;
    const previous = grads.get(tensor);
    grads.set(tensor, previous ? op1(ctx, 'Add', [previous, grad]) : grad);
  };
  for (const n of [...net.nodes].reverse()) {
    const dY = grads.get(n.outputs[0]!);
    if (!dY) continue;
    const X = (k: number) => rename(n.inputs[k]!);
    const shape = (k: number) => shapeOf(ctx, n.inputs[k]!);
    const yShape = shapeOf(ctx, n.outputs[0]!);
    const wants = (k: number) => n.inputs[k] !== undefined && n.inputs[k] !== '' && needsGrad.has(n.inputs[k]!);
    switch (n.opType) {
      case 'Identity':
      case 'Dropout':
        add(n.inputs[0]!, dY);
        break;
      case 'Relu':
        add(n.inputs[0]!, op1(ctx, 'Mul', [dY, op1(ctx, 'Cast', [op1(ctx, 'Greater', [X(0), scalar(ctx, 0)])], { to: 1 })]));
        break;
      case 'Add':
      case 'Sub':
        if (wants(0)) add(n.inputs[0]!, reduceTo(ctx, dY, yShape, shape(0)));
        if (wants(1)) {
          const g = reduceTo(ctx, dY, yShape, shape(1));
          add(n.inputs[1]!, n.opType === 'Sub' ? op1(ctx, 'Neg', [g]) : g);
        }
        break;
      case 'Mul':
        if (wants(0)) add(n.inputs[0]!, reduceTo(ctx, op1(ctx, 'Mul', [dY, X(1)]), yShape, shape(0)));
        if (wants(1)) add(n.inputs[1]!, reduceTo(ctx, op1(ctx, 'Mul', [dY, X(0)]), yShape, shape(1)));
        break;
      case 'Div':
        if (wants(0)) add(n.inputs[0]!, reduceTo(ctx, op1(ctx, 'Div', [dY, X(1)]), yShape, shape(0)));
        if (wants(1)) {
          const g = op1(ctx, 'Neg', [op1(ctx, 'Div', [op1(ctx, 'Mul', [dY, rename(n.outputs[0]!)]), X(1)])]);
          add(n.inputs[1]!, reduceTo(ctx, g, yShape, shape(1)));
        }
        break;
      case 'Flatten':
      case 'Reshape':
        add(n.inputs[0]!, op1(ctx, 'Reshape', [dY, ints(ctx, shape(0))]));
        break;
      case 'Transpose': {
        const perm = attrInts(n, 'perm', shape(0).map((_, i) => shape(0).length - 1 - i));
        const inverse = perm.map((_, i) => perm.indexOf(i));
        add(n.inputs[0]!, op1(ctx, 'Transpose', [dY], { perm: inverse }));
        break;
      }
      case 'Gemm': {
        if (attrNum(n, 'transA', 0) !== 0) throw new Error('Gemm with transA is not supported');
        const transB = attrNum(n, 'transB', 0) === 1;
        const alpha = attrNum(n, 'alpha', 1);
        const beta = attrNum(n, 'beta', 1);
        const scale = (t: string, s: number) => (s === 1 ? t : op1(ctx, 'Mul', [t, scalar(ctx, s)]));
        if (wants(0)) add(n.inputs[0]!, scale(transB ? op1(ctx, 'MatMul', [dY, X(1)]) : op1(ctx, 'Gemm', [dY, X(1)], { transB: 1 }), alpha));
        if (wants(1)) add(n.inputs[1]!, scale(transB ? op1(ctx, 'Gemm', [dY, X(0)], { transA: 1 }) : op1(ctx, 'Gemm', [X(0), dY], { transA: 1 }), alpha));
        if (n.inputs[2] && wants(2)) add(n.inputs[2]!, scale(reduceTo(ctx, dY, yShape, shape(2)), beta));
        break;
      }
      case 'MatMul': {
        if (shape(0).length !== 2 || shape(1).length !== 2) throw new Error('MatMul beyond 2-D is not supported');
        if (wants(0)) add(n.inputs[0]!, op1(ctx, 'Gemm', [dY, X(1)], { transB: 1 }));
        if (wants(1)) add(n.inputs[1]!, op1(ctx, 'Gemm', [X(0), dY], { transA: 1 }));
        break;
      }
      case 'Conv':
        convBackward(ctx, n, dY, X, shape, yShape, wants, add);
        break;
      case 'MaxPool': {
        const indices = poolIndices.get(n)!;
        const xShape = shape(0);
        const size = xShape.reduce((a, b) => a * b, 1);
        const zeros = `${ctx.prefix}zeros${ctx.counter++}`;
        ctx.initializers.push(float32Tensor(zeros, [size], new Float32Array(size)));
        const flat = op1(ctx, 'ScatterElements', [zeros, op1(ctx, 'Reshape', [indices, ints(ctx, [-1])]), op1(ctx, 'Reshape', [dY, ints(ctx, [-1])])], { axis: 0, reduction: 'add' });
        add(n.inputs[0]!, op1(ctx, 'Reshape', [flat, ints(ctx, xShape)]));
        break;
      }
      case 'AveragePool': {
        const kernel = attrInts(n, 'kernel_shape', []);
        const pads = attrInts(n, 'pads', kernel.flatMap(() => [0, 0]));
        if (kernel.length !== 2 || pads.some((p) => p !== 0) || attrNum(n, 'ceil_mode', 0) !== 0) {
          throw new Error('AveragePool is supported for 2-D kernels without padding or ceil_mode');
        }
        const strides = attrInts(n, 'strides', [1, 1]);
        const [N, C, H, W] = shape(0) as number[];
        const [, , OH, OW] = yShape as number[];
        const kernelName = `${ctx.prefix}avg${ctx.counter++}`;
        ctx.initializers.push(float32Tensor(kernelName, [1, 1, kernel[0]!, kernel[1]!], new Float32Array(kernel[0]! * kernel[1]!).fill(1 / (kernel[0]! * kernel[1]!))));
        const outputPadding = [H! - (strides[0]! * (OH! - 1) + kernel[0]!), W! - (strides[1]! * (OW! - 1) + kernel[1]!)];
        const spread = op1(ctx, 'ConvTranspose', [op1(ctx, 'Reshape', [dY, ints(ctx, [N! * C!, 1, OH!, OW!])]), kernelName], { strides, output_padding: outputPadding });
        add(n.inputs[0]!, op1(ctx, 'Reshape', [spread, ints(ctx, [N!, C!, H!, W!])]));
        break;
      }
      case 'GlobalAveragePool': {
        const xShape = shape(0);
        const area = xShape.slice(2).reduce((a, b) => a * b, 1);
        add(n.inputs[0]!, op1(ctx, 'Expand', [op1(ctx, 'Mul', [dY, scalar(ctx, 1 / area)]), ints(ctx, xShape)]));
        break;
      }
      case 'BatchNormalization': {
        if (attrNum(n, 'training_mode', 0) !== 0) throw new Error('BatchNormalization in training mode is not supported');
        const xShape = shape(0);
        const channels = xShape[1]!;
        const broadcast = [1, channels, ...xShape.slice(2).map(() => 1)];
        const axes = xShape.map((_, i) => i).filter((i) => i !== 1);
        const r = (t: string) => op1(ctx, 'Reshape', [t, ints(ctx, broadcast)]);
        const inv = op1(ctx, 'Reciprocal', [op1(ctx, 'Sqrt', [op1(ctx, 'Add', [X(4), scalar(ctx, attrNum(n, 'epsilon', 1e-5))])])]);
        if (wants(0)) add(n.inputs[0]!, op1(ctx, 'Mul', [dY, r(op1(ctx, 'Mul', [X(1), inv]))]));
        if (wants(1)) {
          const xhat = op1(ctx, 'Mul', [op1(ctx, 'Sub', [X(0), r(X(3))]), r(inv)]);
          add(n.inputs[1]!, op1(ctx, 'ReduceSum', [op1(ctx, 'Mul', [dY, xhat]), ints(ctx, axes)], { keepdims: 0 }));
        }
        if (wants(2)) add(n.inputs[2]!, op1(ctx, 'ReduceSum', [dY, ints(ctx, axes)], { keepdims: 0 }));
        break;
      }
      default:
        throw new Error(`no gradient for ${n.opType}`);
    }
  }
  const paramGrads = new Map<string, string>();
  for (const [source] of params) {
    const g = grads.get(source);
    paramGrads.set(source, g ?? op1(ctx, 'Mul', [params.get(source)!, scalar(ctx, 0)]));
  }
  return { logits, loss: lossName, grads: paramGrads };
}

function needsGradUpstream(n: GraphNode, needsGrad: Set<string>): boolean {
  return n.inputs.some((i) => needsGrad.has(i));
}

function convBackward(
  ctx: Context, n: GraphNode, dY: string, X: (k: number) => string, shape: (k: number) => readonly number[], yShape: readonly number[],
  wants: (k: number) => boolean, add: (tensor: string, grad: string) => void,
): void {
  const xShape = shape(0);
  const wShape = shape(1);
  if (xShape.length !== 4) throw new Error('Conv gradients are supported for 2-D convolutions');
  if (attrNum(n, 'group', 1) !== 1) throw new Error('grouped Conv gradients are not supported');
  if (typeof n.attributes.auto_pad === 'string' && n.attributes.auto_pad !== 'NOTSET') throw new Error('Conv with auto_pad is not supported; export with explicit pads');
  const kernel = wShape.slice(2) as number[];
  const strides = attrInts(n, 'strides', [1, 1]);
  const dilations = attrInts(n, 'dilations', [1, 1]);
  const pads = attrInts(n, 'pads', [0, 0, 0, 0]);
  if (wants(0)) {
    const outputPadding = [0, 1].map((d) => xShape[2 + d]! - (strides[d]! * (yShape[2 + d]! - 1) + (kernel[d]! - 1) * dilations[d]! + 1 - pads[d]! - pads[d + 2]!));
    add(n.inputs[0]!, op1(ctx, 'ConvTranspose', [dY, X(1)], { strides, dilations, pads, output_padding: outputPadding }));
  }
  if (wants(1)) {
    // dW = Conv(Xᵀ, dYᵀ) with strides and dilations swapped (batch acts as the channel sum).
    const xt = op1(ctx, 'Transpose', [X(0)], { perm: [1, 0, 2, 3] });
    const dyt = op1(ctx, 'Transpose', [dY], { perm: [1, 0, 2, 3] });
    const full = op1(ctx, 'Conv', [xt, dyt], { strides: dilations, dilations: strides, pads });
    const sliced = op1(ctx, 'Slice', [full, ints(ctx, [0, 0]), ints(ctx, kernel), ints(ctx, [2, 3])]);
    add(n.inputs[1]!, op1(ctx, 'Transpose', [sliced], { perm: [1, 0, 2, 3] }));
  }
  if (n.inputs[2] && wants(2)) add(n.inputs[2]!, op1(ctx, 'ReduceSum', [dY, ints(ctx, [0, 2, 3])], { keepdims: 0 }));
}

/** Constant tensors of the model, copied into the generated graph under their renamed names. */
async function constantInitializers(net: NetworkAnalysis, prefix: string): Promise<onnxProto.onnx.ITensorProto[]> {
  const out: onnxProto.onnx.ITensorProto[] = [];
  for (const t of net.constants) {
    if (t.dtype === 'string') throw invalidInput(t.source, undefined, 'string constants are not supported in training graphs');
    out.push(tensorProto(`${prefix}${t.source}`, t.dtype as DType, t.shape, Uint8Array.from(await t.read())));
  }
  return out;
}

export interface NetworkTrainableOptions {
  loss: Loss;
  optimizer: OptimizerSpec;
  /** Output rows of the last layer's weight that stay fixed (--freeze-old-classes). */
  frozenOutputs?: number;
  /** The last layer's weight and bias (for freezing rows). */
  head?: { weight: string; bias?: string; rowsAxis: number };
}

const f32 = (name: string, shape: (number | string)[]): ValueSpec => ({ name, dtype: 'float32', shape });

/**
 * A Trainable for the whole network, at a fixed batch size (the backward pass needs every
 * tensor's shape; `shapes` were measured at this batch size).
 */
export async function networkTrainable(net: NetworkAnalysis, shapes: ShapeTable, batch: number, options: NetworkTrainableOptions): Promise<Trainable> {
  const names = net.parameters.map((_, i) => `P${i}`);
  const bySource = new Map(net.parameters.map((p, i) => [p.source, names[i]!]));
  const shapeOfParam = (p: string) => [...net.parameters[Number(p.slice(1))]!.shape];
  const outputs = shapes.get(net.logits)?.[1];
  if (shapes.get(net.logits)?.length !== 2 || !outputs) throw invalidInput(net.logits, undefined, 'the logits must be [batch, classes]');
  const states = optimizerStates(names, options.optimizer);
  const bodyConstants = await constantInitializers(net, 'body_');
  const forwardConstants = await constantInitializers(net, 'fwd_');

  /** The gradient the optimizer applies: zero on the head's first `frozenOutputs` rows (the old classes stay as loaded). */
  const freezeMask = (ctx: Context, param: string, grad: string): string => {
    if (!options.frozenOutputs || !options.head) return grad;
    const source = net.parameters[Number(param.slice(1))]!;
    const isWeight = source.source === options.head.weight;
    if (!isWeight && source.source !== options.head.bias) return grad;
    const shape = source.shape;
    const axis = isWeight ? options.head.rowsAxis : 0;
    const mask = new Float32Array(shape[axis]!).map((_, k) => (k < options.frozenOutputs! ? 0 : 1));
    const maskShape = shape.map((d, i) => (i === axis ? d : 1));
    const name = `${ctx.prefix}mask${ctx.counter++}`;
    ctx.initializers.push(float32Tensor(name, maskShape, mask));
    return op1(ctx, 'Mul', [grad, name]);
  };

  const graph: TrainingInterface = { inputShape: net.input.shape, outputs, parameters: names, shapeOf: shapeOfParam, states };
  return {
    ...graph,
    trainingModel: () => {
      const ctx: Context = { nodes: [], initializers: [...bodyConstants], shapes, prefix: 'body_', counter: 0 };
      const body: BodyBuilder = {
        nodes: ctx.nodes, initializers: ctx.initializers,
        op: (type, inputs, attributes) => op1(ctx, type, inputs, attributes), scalar: (value) => scalar(ctx, value),
      };
      return trainingLoopModel(graph, options.optimizer, batch, body, (x, y, inputs) => {
        const params = new Map(net.parameters.map((p, i) => [p.source, inputs[i]!]));
        const { loss, grads } = forwardBackward(ctx, net, params, x, y, options.loss, batch);
        return { loss, gradients: net.parameters.map((p, i) => freezeMask(ctx, names[i]!, grads.get(p.source)!)) };
      });
    },
    forwardModel: () => {
      const ctx: Context = { nodes: [], initializers: [...forwardConstants], shapes, prefix: 'fwd_', counter: 0 };
      const rename = (t: string) => (t === net.input.name ? 'x' : bySource.get(t) ?? `fwd_${t}`);
      for (const n of net.nodes) if (n.opType !== 'Constant') ctx.nodes.push(n.opType === 'Dropout' ? { op: 'Identity', inputs: [rename(n.inputs[0]!)], outputs: [rename(n.outputs[0]!)] } : copyNode(n, rename));
      ctx.nodes.push({ op: 'Identity', inputs: [rename(net.logits)], outputs: ['logits'] });
      return encodeModel({
        graphName: 'forward', opset: OPSET, producerName: 'ckpt-finetune', nodes: ctx.nodes, initializers: ctx.initializers,
        inputs: [f32('x', ['n', ...net.input.shape]), ...names.map((p) => f32(p, shapeOfParam(p)))],
        outputs: [f32('logits', ['n', outputs])],
      });
    },
  };
}

/** loss and gradients of every parameter for one batch (finite-difference tests). */
export async function networkGradientModel(net: NetworkAnalysis, shapes: ShapeTable, batch: number, loss: Loss): Promise<{ model: Uint8Array; parameters: string[] }> {
  const ctx: Context = { nodes: [], initializers: await constantInitializers(net, 'g_'), shapes, prefix: 'g_', counter: 0 };
  const names = net.parameters.map((_, i) => `P${i}`);
  const params = new Map(net.parameters.map((p, i) => [p.source, names[i]!]));
  const r = forwardBackward(ctx, net, params, 'x', 'y', loss, batch);
  ctx.nodes.push({ op: 'Identity', inputs: [r.loss], outputs: ['loss'] });
  net.parameters.forEach((p, i) => ctx.nodes.push({ op: 'Identity', inputs: [r.grads.get(p.source)!], outputs: [`grad_${names[i]}`] }));
  const outputs = shapes.get(net.logits)![1]!;
  const model = encodeModel({
    graphName: 'gradients', opset: OPSET, producerName: 'ckpt-finetune', nodes: ctx.nodes, initializers: ctx.initializers,
    inputs: [f32('x', [batch, ...net.input.shape]), f32('y', [batch, outputs]), ...net.parameters.map((p, i) => f32(names[i]!, [...p.shape]))],
    outputs: [f32('loss', []), ...net.parameters.map((p, i) => f32(`grad_${names[i]}`, [...p.shape]))],
  });
  return { model, parameters: names };
}

/**
 * Every tensor's shape at `batch` examples, measured by running the model once on zeros with all
 * intermediate tensors exposed as outputs (no shape inference of our own to get wrong).
 */
export async function measureShapes(dict: StateDict, net: NetworkAnalysis, batch: number): Promise<Map<string, number[]>> {
  const shapes = new Map<string, number[]>();
  for (const t of dict.tensors) shapes.set(t.source, [...t.shape]);
  const graphOutputs = new Set((dict.metadata.outputs as { name: string }[]).map((o) => o.name));
  const exposed = [...new Set(net.nodes.filter((n) => n.opType !== 'Constant').flatMap((n) => n.outputs))].filter((o) => !graphOutputs.has(o));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ckpt-shapes-'));
  try {
    const probe = path.join(dir, 'probe.onnx');
    await rewriteOnnx(dict.path, new Map(), probe, { extraOutputs: exposed });
    const ort = await loadOrt();
    const { session } = await openSession(probe, 'cpu', dict.path);
    try {
      const dims = [batch, ...net.input.shape];
      const result = await session.run({ [net.input.name]: new ort.Tensor('float32', new Float32Array(dims.reduce((n, d) => n * d, 1)), dims) });
      for (const [name, t] of Object.entries(result)) shapes.set(name, [...t.dims]);
    } finally {
      await session.release();
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  shapes.set(net.input.name, [batch, ...net.input.shape]);
  return shapes;
}
