import type { DType } from '../src/core/dtype.js';
import { HISTOGRAM_BINS, type TensorStats } from '../src/ops/stats.js';

/** The smallest normal value of each float dtype: nonzero values below it are subnormal (none for integers). */
export const SMALLEST_NORMAL: Partial<Record<DType, number>> = { float32: 2 ** -126, bfloat16: 2 ** -126, float64: 2 ** -1022, float16: 2 ** -14 };

/**
 * The statistics by their definition, one value after another in element order: min and max the
 * first of equal values (so the sign of a zero), the histogram's bins ((v − min)·scale) | 0 in
 * float64, the last closed. The kernels add sums in another order: compare mean and std with a tolerance.
 */
export function plainStats(values: ArrayLike<number>, dtype: DType): TensorStats {
  const tiny = SMALLEST_NORMAL[dtype] ?? Number.MIN_VALUE;
  let [finite, sum, min, max, zeros, nan, posInf, negInf, subnormal] = [0, 0, Infinity, -Infinity, 0, 0, 0, 0, 0];
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (Number.isNaN(v)) nan++;
    else if (v === Infinity) posInf++;
    else if (v === -Infinity) negInf++;
    else {
      finite++;
      sum += v;
      if (v < min) min = v;
      if (v > max) max = v;
      if (v === 0) zeros++;
      else if (Math.abs(v) < tiny) subnormal++;
    }
  }
  const mean = sum / finite;
  const range = max - min;
  const scale = range > 0 && Number.isFinite(range) ? HISTOGRAM_BINS / range : 0;
  let squares = 0;
  const histogram = new Array<number>(HISTOGRAM_BINS).fill(0);
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (!Number.isFinite(v)) continue;
    squares += (v - mean) * (v - mean);
    histogram[Math.min(HISTOGRAM_BINS - 1, ((v - min) * scale) | 0)]!++;
  }
  const any = finite > 0;
  return {
    min: any ? min : null, max: any ? max : null, mean: any ? mean : null, std: any ? Math.sqrt(squares / finite) : null,
    zeros: values.length ? zeros / values.length : 0, nan, posInf, negInf, subnormal, histogram,
  };
}

