import { toFloat64 } from '../core/decode.js';
import type { TensorInfo } from '../core/statedict.js';

/** The tensors of one conv/linear layer and the BatchNormalization after it, and ε. */
export interface FoldInputs {
  readonly part: 'weight' | 'bias';
  readonly weight: TensorInfo;
  readonly bias?: TensorInfo;
  readonly scale: TensorInfo;
  readonly shift: TensorInfo;
  readonly mean: TensorInfo;
  readonly variance: TensorInfo;
  readonly epsilon: number;
  /** The axis of `weight` that indexes output channels. */
  readonly axis: number;
}

const valuesOf = async (t: TensorInfo) => toFloat64(await t.read(), t.dtype);

/**
 * BatchNorm folded into the layer before it, in float64, one layer at a time:
 * W' = W·γ/√(σ²+ε) along the output axis, b' = (b−μ)·γ/√(σ²+ε)+β (b = 0 without a bias).
 * The result keeps the source weight's shape and layout.
 */
export async function foldedValues(f: FoldInputs): Promise<Float64Array> {
  const [scale, shift, mean, variance] = await Promise.all([f.scale, f.shift, f.mean, f.variance].map(valuesOf)) as [Float64Array, Float64Array, Float64Array, Float64Array];
  const factor = scale.map((g, c) => g / Math.sqrt(variance[c]! + f.epsilon));
  if (f.part === 'bias') {
    const bias = f.bias ? await valuesOf(f.bias) : new Float64Array(factor.length);
    return factor.map((k, c) => (bias[c]! - mean[c]!) * k + shift[c]!);
  }
  const weight = await valuesOf(f.weight);
  const shape = f.weight.shape;
  const channels = shape[f.axis]!;
  const inner = shape.slice(f.axis + 1).reduce((n, d) => n * d, 1);
  return weight.map((w, i) => w * factor[Math.floor(i / inner) % channels]!);
}
