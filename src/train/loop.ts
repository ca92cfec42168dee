import type onnxProto from 'onnx-proto';
import type { AttributeValue, GraphSpec, NodeSpec, ValueSpec } from '../formats/onnx/build.js';
import { encodeModel, tensorProto } from '../formats/onnx/build.js';

/**
 * What the head-chain (graph.ts) and whole-network (network.ts) trainers share: the optimizer
 * update and the ONNX Loop around one training step, so that one onnxruntime `run` takes many
 * steps. Each trainer writes only the forward and backward pass of a minibatch.
 */
export const OPSET = 17;

export interface OptimizerSpec {
  kind: 'sgd' | 'adam';
  momentum: number;
  beta1: number;
  beta2: number;
  epsilon: number;
  weightDecay: number;
}

/** The tensors of a training graph as the training loop (engine.ts) feeds and reads them. */
export interface TrainingInterface {
  /** Per-example input dims of the generated graphs, e.g. [64] or [1, 8, 8]. */
  readonly inputShape: number[];
  readonly outputs: number;
  readonly parameters: string[];
  shapeOf(parameter: string): number[];
  /** Optimizer state tensors; `<parameter>_m`, `<parameter>_v`. */
  readonly states: string[];
}

/** Optimizer state tensors per parameter, in the order `optimizerStep` returns them. */
export function optimizerStates(parameters: string[], optimizer: OptimizerSpec): string[] {
  const suffixes = optimizer.kind === 'adam' ? ['m', 'v'] : ['v'];
  return parameters.flatMap((p) => suffixes.map((s) => `${p}_${s}`));
}

/** The trainer's node builder that the loop body is written with: `op()` and `scalar()` return the new tensor's name. */
export interface BodyBuilder {
  readonly nodes: NodeSpec[];
  readonly initializers: onnxProto.onnx.ITensorProto[];
  op(type: string, inputs: string[], attributes?: Record<string, AttributeValue>): string;
  scalar(value: number): string;
}

/** One minibatch's loss and the gradient each parameter is updated with, in parameter order. */
export interface LossAndGradients {
  loss: string;
  gradients: string[];
}

/**
 * One optimizer update of parameter `p` (its current value `${p}_in`, its state `${p}_v_in` or
 * `${p}_m_in`/`${p}_v_in`) from gradient `g`: SGD with momentum, or Adam with bias correction by
 * the step count `t`.
 */
function optimizerStep(b: BodyBuilder, o: OptimizerSpec, p: string, gradient: string, decays: boolean, t: string): { updated: string; states: string[] } {
  const g = o.weightDecay && decays ? b.op('Add', [gradient, b.op('Mul', [`${p}_in`, b.scalar(o.weightDecay)])]) : gradient;
  if (o.kind === 'sgd') {
    const v = b.op('Add', [b.op('Mul', [`${p}_v_in`, b.scalar(o.momentum)]), g]);
    return { updated: b.op('Sub', [`${p}_in`, b.op('Mul', [v, 'lr'])]), states: [v] };
  }
  const m = b.op('Add', [b.op('Mul', [`${p}_m_in`, b.scalar(o.beta1)]), b.op('Mul', [g, b.scalar(1 - o.beta1)])]);
  const v = b.op('Add', [b.op('Mul', [`${p}_v_in`, b.scalar(o.beta2)]), b.op('Mul', [b.op('Mul', [g, g]), b.scalar(1 - o.beta2)])]);
  const mHat = b.op('Div', [m, b.op('Sub', [b.scalar(1), b.op('Pow', [b.scalar(o.beta1), t])])]);
  const vHat = b.op('Div', [v, b.op('Sub', [b.scalar(1), b.op('Pow', [b.scalar(o.beta2), t])])]);
  const step = b.op('Div', [b.op('Mul', [mHat, 'lr']), b.op('Add', [b.op('Sqrt', [vHat]), b.scalar(o.epsilon)])]);
  return { updated: b.op('Sub', [`${p}_in`, step]), states: [m, v] };
}

const f32 = (name: string, shape: (number | string)[]): ValueSpec => ({ name, dtype: 'float32', shape });

/**
 * `steps` optimizer steps in one call: xs [steps, batch, ...inputShape] and ys [steps, batch,
 * outputs] are minibatches, lr the learning rate, t the number of steps taken before (Adam's bias
 * correction). Outputs the updated parameters and optimizer state (same names with `_out`) and the
 * loss of each step. `lossAndGradients` appends the forward and backward pass of minibatch x, y to
 * `body`, reading parameter k as tensor `parameters[k]`.
 */
export function trainingLoopModel(
  graph: TrainingInterface, optimizer: OptimizerSpec, batch: number, body: BodyBuilder,
  lossAndGradients: (x: string, y: string, parameters: string[]) => LossAndGradients,
): Uint8Array {
  const { parameters, states } = graph;
  const stateShape = (s: string) => graph.shapeOf(s.replace(/_[mv]$/, ''));
  const x = body.op('Gather', ['xs', 'iter'], { axis: 0 });
  const y = body.op('Gather', ['ys', 'iter'], { axis: 0 });
  const { loss, gradients } = lossAndGradients(x, y, parameters.map((p) => `${p}_in`));
  const t = body.op('Add', ['t_in', body.scalar(1)]);
  const updated: string[] = [];
  const newStates: string[] = [];
  parameters.forEach((p, k) => {
    // Weight decay is for matrices and kernels, not biases or BatchNormalization scales.
    const step = optimizerStep(body, optimizer, p, gradients[k]!, graph.shapeOf(p).length > 1, t);
    updated.push(step.updated);
    newStates.push(...step.states);
  });
  body.nodes.push({ op: 'Identity', inputs: ['cond_in'], outputs: ['cond_out'] });
  const carriedIn = [...parameters.map((p) => `${p}_in`), ...states.map((s) => `${s}_in`), 't_in'];
  const carriedOut = [...updated, ...newStates, t];
  carriedOut.forEach((name, k) => body.nodes.push({ op: 'Identity', inputs: [name], outputs: [`carry_${k}`] }));
  body.nodes.push({ op: 'Identity', inputs: [loss], outputs: ['step_loss'] });
  const carriedShapes = [...parameters.map((p) => graph.shapeOf(p)), ...states.map(stateShape), []];
  const bodyGraph: GraphSpec = {
    graphName: 'train_step', nodes: body.nodes, initializers: body.initializers,
    inputs: [{ name: 'iter', dtype: 'int64', shape: [] }, { name: 'cond_in', dtype: 'bool', shape: [] }, ...carriedIn.map((n, k) => f32(n, carriedShapes[k]!))],
    outputs: [{ name: 'cond_out', dtype: 'bool', shape: [] }, ...carriedOut.map((_, k) => f32(`carry_${k}`, carriedShapes[k]!)), f32('step_loss', [])],
  };
  // The trip count is the steps dimension of xs.
  const main: NodeSpec[] = [
    { op: 'Shape', inputs: ['xs'], outputs: ['steps_shape'], attributes: { start: 0, end: 1 } },
    { op: 'Squeeze', inputs: ['steps_shape', 'axis0'], outputs: ['trip_count'] },
    {
      op: 'Loop', name: 'train_loop', inputs: ['trip_count', 'cond_true', ...parameters, ...states, 't'],
      outputs: [...parameters.map((p) => `${p}_out`), ...states.map((s) => `${s}_out`), 't_out', 'losses'], attributes: { body: { graph: bodyGraph } },
    },
  ];
  return encodeModel({
    graphName: 'training', opset: OPSET, producerName: 'ckpt-finetune', nodes: main,
    initializers: [tensorProto('cond_true', 'bool', [], new Uint8Array([1])), tensorProto('axis0', 'int64', [1], new Uint8Array(8))],
    inputs: [
      f32('xs', ['steps', batch, ...graph.inputShape]), f32('ys', ['steps', batch, graph.outputs]),
      ...parameters.map((p) => f32(p, graph.shapeOf(p))), ...states.map((s) => f32(s, stateShape(s))), f32('t', []), f32('lr', []),
    ],
    outputs: [
      ...parameters.map((p) => f32(`${p}_out`, graph.shapeOf(p))), ...states.map((s) => f32(`${s}_out`, stateShape(s))),
      f32('t_out', []), f32('losses', ['steps']),
    ],
  });
}
