import { invalidInput } from '../core/errors.js';
import type { StateDict, TensorInfo } from '../core/statedict.js';
import type { GraphNode } from '../formats/onnx/model.js';
import type { DenseLayer } from './graph.js';

/** A dense layer of the model, located in its graph. */
export interface ModelLayer extends DenseLayer {
  weight: TensorInfo;
  bias?: TensorInfo;
  /** The tensor this layer reads (the features it is trained on when it is the first trainable one). */
  input: string;
}

export interface DenseChain {
  /** Dense layers at the end of the model, in forward order. */
  layers: ModelLayer[];
  /** The op that turns logits into the model's output (Softmax…), if any. */
  outputOp?: string;
}

const PASS_THROUGH = new Set(['Softmax', 'LogSoftmax', 'Identity', 'Sigmoid']);

/**
 * Finds the chain of dense layers (Gemm, or MatMul [+ Add], each optionally followed by Relu)
 * that ends the model, walking back from its first output.
 */
export function denseChain(dict: StateDict, nodes: readonly GraphNode[]): DenseChain {
  const producer = new Map<string, GraphNode>();
  for (const n of nodes) for (const o of n.outputs) producer.set(o, n);
  const weights = new Map(dict.tensors.map((t) => [t.source, t]));
  const outputs = dict.metadata.outputs as { name: string }[] | undefined;
  let current = outputs?.[0]?.name;
  if (!current) throw invalidInput(dict.path, 'graph', 'the model has no output');
  let outputOp: string | undefined;
  while (producer.get(current) && PASS_THROUGH.has(producer.get(current)!.opType)) {
    outputOp ??= producer.get(current)!.opType;
    current = producer.get(current)!.inputs[0]!;
  }
  const layers: ModelLayer[] = [];
  let relu = false;
  for (;;) {
    const layer = denseLayerProducing(current, producer, weights, relu);
    if (!layer) break;
    layers.unshift(layer);
    const before = producer.get(layer.input);
    const beforeRelu = before?.opType === 'Relu' ? before.inputs[0]! : undefined;
    if (beforeRelu && denseLayerProducing(beforeRelu, producer, weights, true)) {
      current = beforeRelu;
      relu = true;
    } else {
      current = layer.input;
      relu = false;
      if (beforeRelu) break;
    }
  }
  return { layers, ...(outputOp ? { outputOp } : {}) };
}

function denseLayerProducing(
  tensor: string, producer: Map<string, GraphNode>, weights: Map<string, TensorInfo>, relu: boolean,
): ModelLayer | undefined {
  const node = producer.get(tensor);
  if (!node) return undefined;
  const weightOf = (name: string | undefined) => {
    const w = name === undefined ? undefined : weights.get(name);
    return w && w.dtype === 'float32' ? w : undefined;
  };
  if (node.opType === 'Gemm') {
    const a = node.attributes;
    if ((a.transA ?? 0) !== 0 || (a.alpha ?? 1) !== 1 || (a.beta ?? 1) !== 1) return undefined;
    const weight = weightOf(node.inputs[1]);
    if (!weight || weight.shape.length !== 2) return undefined;
    const layout = a.transB === 1 ? 'OI' : 'IO';
    const [inFeatures, outFeatures] = layout === 'IO' ? weight.shape : [weight.shape[1]!, weight.shape[0]!];
    const bias = weightOf(node.inputs[2] || undefined);
    if (node.inputs[2] && (!bias || bias.shape.reduce((n, d) => n * d, 1) !== outFeatures)) return undefined;
    return { layout, inFeatures: inFeatures!, outFeatures: outFeatures!, hasBias: bias !== undefined, relu, weight, ...(bias ? { bias } : {}), input: node.inputs[0]! };
  }
  const matmulOf = (n: GraphNode | undefined) => {
    if (n?.opType !== 'MatMul') return undefined;
    const weight = weightOf(n.inputs[1]);
    return weight && weight.shape.length === 2 ? { weight, input: n.inputs[0]! } : undefined;
  };
  if (node.opType === 'Add') {
    for (const [m, b] of [[0, 1], [1, 0]] as const) {
      const mm = matmulOf(producer.get(node.inputs[m]!));
      const bias = weightOf(node.inputs[b]);
      if (mm && bias && bias.shape.reduce((n, d) => n * d, 1) === mm.weight.shape[1]) {
        return { layout: 'IO', inFeatures: mm.weight.shape[0]!, outFeatures: mm.weight.shape[1]!, hasBias: true, relu, weight: mm.weight, bias, input: mm.input };
      }
    }
    return undefined;
  }
  const mm = matmulOf(node);
  return mm ? { layout: 'IO', inFeatures: mm.weight.shape[0]!, outFeatures: mm.weight.shape[1]!, hasBias: false, relu, ...mm } : undefined;
}
