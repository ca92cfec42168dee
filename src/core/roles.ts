import type { DType } from './dtype.js';
import { parameterCount, type TensorInfo, type TensorRole } from './statedict.js';

/**
 * What a tensor is to its model (weight, buffer or constant), from the graph that consumes it when
 * the file has one, else from naming conventions. Pure: readers describe their graph through
 * `GraphView` and get a role per tensor.
 */

/** One node input that reads a tensor. */
export interface GraphUse {
  readonly opType: string;
  readonly inputIndex: number;
  /** All inputs and outputs of the consuming node (names as the graph spells them). */
  readonly inputs: readonly string[];
  readonly outputs: readonly string[];
}

export interface GraphView {
  usesOf(name: string): readonly GraphUse[];
  /** The node that computes a value, when a node does. */
  producerOf(name: string): { readonly opType: string; readonly inputs: readonly string[] } | undefined;
}

/** Learned inputs per op (ONNX, onnxruntime contrib and TensorFlow op names): input index → role. */
const LEARNED: Readonly<Record<string, Readonly<Record<number, TensorRole>>>> = {
  // ONNX
  Conv: { 1: 'weight', 2: 'weight' },
  ConvTranspose: { 1: 'weight', 2: 'weight' },
  Gemm: { 1: 'weight', 2: 'weight' },
  MatMul: { 0: 'weight', 1: 'weight' },
  Einsum: { 0: 'weight', 1: 'weight', 2: 'weight' },
  BatchNormalization: { 1: 'weight', 2: 'weight', 3: 'buffer', 4: 'buffer' },
  InstanceNormalization: { 1: 'weight', 2: 'weight' },
  LayerNormalization: { 1: 'weight', 2: 'weight' },
  GroupNormalization: { 1: 'weight', 2: 'weight' },
  SimplifiedLayerNormalization: { 1: 'weight' },
  SkipLayerNormalization: { 2: 'weight', 3: 'weight', 4: 'weight' },
  SkipSimplifiedLayerNormalization: { 2: 'weight', 3: 'weight' },
  EmbedLayerNormalization: { 2: 'weight', 3: 'weight', 4: 'weight', 5: 'weight', 6: 'weight' },
  Attention: { 1: 'weight', 2: 'weight' },
  FastGelu: { 1: 'weight' },
  BiasGelu: { 1: 'weight' },
  FusedConv: { 1: 'weight', 2: 'weight' },
  FusedGemm: { 1: 'weight', 2: 'weight' },
  FusedMatMul: { 0: 'weight', 1: 'weight' },
  LSTM: { 1: 'weight', 2: 'weight', 3: 'weight' },
  GRU: { 1: 'weight', 2: 'weight', 3: 'weight' },
  RNN: { 1: 'weight', 2: 'weight', 3: 'weight' },
  PRelu: { 1: 'weight' },
  Gather: { 0: 'weight' },
  QLinearConv: { 3: 'weight', 4: 'weight', 5: 'weight', 8: 'weight' },
  QLinearMatMul: { 3: 'weight', 4: 'weight', 5: 'weight' },
  ConvInteger: { 1: 'weight', 3: 'weight' },
  MatMulInteger: { 1: 'weight', 3: 'weight' },
  MatMulNBits: { 1: 'weight', 2: 'weight', 3: 'weight', 5: 'weight' },
  // TensorFlow (TF.js graph models)
  Conv2D: { 1: 'weight' },
  Conv3D: { 1: 'weight' },
  DepthwiseConv2dNative: { 1: 'weight' },
  Conv2DBackpropInput: { 1: 'weight' },
  _FusedConv2D: { 1: 'weight', 2: 'weight', 3: 'weight', 4: 'weight', 5: 'weight' },
  FusedDepthwiseConv2dNative: { 1: 'weight', 2: 'weight' },
  _FusedMatMul: { 1: 'weight', 2: 'weight' },
  BatchMatMulV2: { 0: 'weight', 1: 'weight' },
  BiasAdd: { 1: 'weight' },
  FusedBatchNorm: { 1: 'weight', 2: 'weight', 3: 'buffer', 4: 'buffer' },
  FusedBatchNormV3: { 1: 'weight', 2: 'weight', 3: 'buffer', 4: 'buffer' },
  Prelu: { 1: 'weight' },
  GatherV2: { 0: 'weight' },
  ResourceGather: { 0: 'weight' },
};

/** Ops whose integer inputs are quantized weights rather than structural arguments. */
const QUANTIZED = new Set(['QLinearConv', 'QLinearMatMul', 'ConvInteger', 'MatMulInteger', 'MatMulNBits']);

/** Ops that pass a value on unchanged in meaning: the tensor is what its output feeds. */
const PASS_THROUGH = new Set(['Identity', 'Cast', 'Transpose', 'Squeeze', 'Unsqueeze', 'Reshape', 'DequantizeLinear', 'Flatten', 'ExpandDims']);

/** Ops whose output a bias or scale is added to: Add(MatMul(x, W), b) is a Linear layer's bias. */
const LINEAR = new Set(['Conv', 'ConvTranspose', 'MatMul', 'Gemm', 'Einsum', 'Conv2D', 'DepthwiseConv2dNative', 'BatchMatMulV2', 'MatMulInteger', 'FusedMatMul']);
/** Ops ending a normalization whose affine scale follows as Mul (decomposed LayerNorm/GroupNorm). */
const NORMALIZED = new Set(['Div', 'InstanceNormalization', 'MeanVarianceNormalization', 'Rsqrt']);
const ELEMENTWISE = new Set(['Add', 'AddV2', 'Sub', 'Mul', 'Div']);

const RANK: Record<TensorRole, number> = { constant: 0, buffer: 1, weight: 2 };
const strongest = (roles: readonly TensorRole[]): TensorRole => roles.reduce((a, b) => (RANK[b] > RANK[a] ? b : a), 'constant');

const isFloatType = (dtype: DType) => dtype.startsWith('float') || dtype === 'bfloat16';
/** 8-bit and narrower integers are quantized weights; wider ones are shapes, indices and counters. */
const isQuantizedInt = (dtype: DType) => ['int8', 'uint8', 'int4', 'uint4', 'int2', 'uint2'].includes(dtype);

/**
 * The role a graph gives a tensor, or undefined when nothing in the graph consumes it. Learned
 * inputs of known ops are weights (BatchNorm statistics buffers); an elementwise operand is a
 * weight only as the bias or scale of a linear or normalization output; everything else (shapes,
 * axes, indices, pads, scalars, anchor priors) is a constant.
 */
export function graphRole(name: string, tensor: { dtype: DType; shape: readonly number[] }, graph: GraphView): TensorRole | undefined {
  const roles = roleThroughUses(name, tensor, graph, 0);
  return roles.length ? strongest(roles) : undefined;
}

type Described = { dtype: DType; shape: readonly number[] };

function roleThroughUses(value: string, tensor: Described, graph: GraphView, depth: number): TensorRole[] {
  return graph.usesOf(value).map((use) => roleOfUse(use, tensor, graph, depth));
}

function roleOfUse(use: GraphUse, tensor: Described, graph: GraphView, depth: number): TensorRole {
  const { dtype } = tensor;
  if (dtype === 'string' || dtype === 'bool') return 'constant';
  if (PASS_THROUGH.has(use.opType) && use.inputIndex === 0 && use.outputs[0] && depth < 8) {
    const after = roleThroughUses(use.outputs[0], tensor, graph, depth + 1);
    return after.length ? strongest(after) : 'constant';
  }
  const learned = LEARNED[use.opType]?.[use.inputIndex];
  if (learned) {
    if (isFloatType(dtype) || (isQuantizedInt(dtype) && use.opType !== 'Gather')) return learned;
    return QUANTIZED.has(use.opType) ? learned : 'constant';
  }
  // Scalars in arithmetic are factors and epsilons (GELU's 0.5, attention's 1/√d), not biases.
  if (ELEMENTWISE.has(use.opType) && isFloatType(dtype) && tensor.shape.length > 0 && use.inputs.length === 2) {
    const other = graph.producerOf(use.inputs[1 - use.inputIndex]!);
    if (other && isBiasOrScale(use.opType, other, graph)) return 'weight';
  }
  return 'constant';
}

/** Add/Sub right after a linear op, or Mul/Add finishing a normalization with its learned affine. */
function isBiasOrScale(opType: string, other: { opType: string; inputs: readonly string[] }, graph: GraphView): boolean {
  if (LINEAR.has(other.opType)) return opType !== 'Div';
  if (opType === 'Mul') return NORMALIZED.has(other.opType);
  if (opType === 'Add' || opType === 'AddV2') {
    // β after γ: the Mul's other operand is itself a normalization scale.
    return other.opType === 'Mul' && other.inputs.some((input) => {
      const producer = graph.producerOf(input);
      return producer !== undefined && NORMALIZED.has(producer.opType);
    });
  }
  return false;
}

const BUFFER_NAMES = /(^|[._/])(running_mean|running_var|num_batches_tracked|moving_mean|moving_variance)$|(^|[a-z0-9./])_(mean|variance)$|(^|[./])batch_norm_\d+\.w_[12]$/;

/**
 * The role naming conventions give a tensor of a file without a graph: running statistics
 * (PyTorch `running_mean`, Keras `moving_variance`, Paddle `_mean`/`_variance` and static
 * `batch_norm_N.w_1/w_2`) are buffers; wide integers, booleans and strings are constants; the
 * rest are weights.
 */
export function roleFromName(name: string, dtype: DType): TensorRole {
  const plain = name.replace(/:\d+$/, '');
  if (BUFFER_NAMES.test(plain)) return 'buffer';
  if (dtype === 'string' || dtype === 'bool') return 'constant';
  if (!isFloatType(dtype) && !isQuantizedInt(dtype) && !dtype.startsWith('complex')) return 'constant';
  return 'weight';
}

/** Weights and buffers are parameters; a tensor without a role counts as before. */
export function isParameter(t: Pick<TensorInfo, 'role'>): boolean {
  return t.role !== 'constant';
}

/** Parameters of the tensors that are parameters (constants count zero). */
export function learnedParameterCount(t: Pick<TensorInfo, 'role' | 'shape'>): number {
  return isParameter(t) ? parameterCount(t) : 0;
}

export interface RoleSplit {
  readonly weights: { tensors: number; elements: number };
  readonly buffers: { tensors: number; elements: number };
  readonly constants: { tensors: number; elements: number };
}

export function roleSplit(tensors: readonly Pick<TensorInfo, 'role' | 'shape'>[]): RoleSplit {
  const zero = () => ({ tensors: 0, elements: 0 });
  const split = { weights: zero(), buffers: zero(), constants: zero() };
  for (const t of tensors) {
    const bucket = t.role === 'buffer' ? split.buffers : t.role === 'constant' ? split.constants : split.weights;
    bucket.tensors++;
    bucket.elements += parameterCount(t);
  }
  return split;
}

/** Role fields of a tensor in a file without a graph or config: naming conventions alone. */
export function roleByName(name: string, dtype: DType): { role: TensorRole; roleFrom: 'names' } {
  return { role: roleFromName(name, dtype), roleFrom: 'names' };
}
