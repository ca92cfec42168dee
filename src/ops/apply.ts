import { dtypeBits } from '../core/dtype.js';
import { fromFloat64, toFloat64, transpose, transposeBytes } from '../core/decode.js';
import type { TensorInfo } from '../core/statedict.js';
import type { PlanEntry } from './plan.js';
import { foldedValues } from './fold.js';
import { seededRandom } from '../core/random.js';

/**
 * The values a plan gives one target tensor, as little-endian bytes of the target dtype.
 * Reads the source tensor (and, for an expansion that keeps the target's own values, the target
 * tensor) — one tensor at a time, so memory stays near the largest tensor.
 */
export async function plannedValues(entry: PlanEntry, source: TensorInfo, target: TensorInfo, seed = 0): Promise<Uint8Array> {
  let bytes = await source.read();
  if (entry.transpose) bytes = transposeBytes(bytes, source.shape, entry.transpose, dtypeBits(source.dtype) / 8);
  if (entry.cast) bytes = fromFloat64(toFloat64(bytes, entry.cast.from), entry.cast.to);
  if (entry.action === 'load') return bytes;
  const spec = entry.expand!;
  const out = await initialValues(spec.init, target, seed);
  const width = dtypeBits(target.dtype) / 8;
  const shape = target.shape;
  const outer = shape.slice(0, spec.axis).reduce((n, d) => n * d, 1);
  const row = shape.slice(spec.axis + 1).reduce((n, d) => n * d, 1) * width;
  const sourceBlock = spec.sourceSize / spec.blocks;
  const targetBlock = spec.targetSize / spec.blocks;
  // The head's row map (same in every block): runs of consecutive source rows copy in one go.
  const runs = rowRuns(spec.rows);
  for (let o = 0; o < outer; o++) {
    for (let b = 0; b < spec.blocks; b++) {
      for (const run of runs) {
        const from = (o * spec.sourceSize + b * sourceBlock + run.from) * row;
        const to = (o * spec.targetSize + b * targetBlock + run.to) * row;
        out.set(bytes.subarray(from, from + run.length * row), to);
      }
    }
  }
  return out;
}

/**
 * A `fold` entry's values: the source layer with its BatchNorm folded in (float64), then the
 * entry's layout transpose, then cast to the target dtype.
 */
export async function foldedEntryValues(entry: PlanEntry, sourceTensor: (name: string) => TensorInfo, target: TensorInfo): Promise<Uint8Array> {
  const f = entry.fold!;
  const weight = sourceTensor(f.weight);
  let values = await foldedValues({
    part: f.part, weight, ...(f.bias ? { bias: sourceTensor(f.bias) } : {}),
    scale: sourceTensor(f.scale), shift: sourceTensor(f.shift), mean: sourceTensor(f.mean), variance: sourceTensor(f.variance),
    epsilon: f.epsilon, axis: f.axis,
  });
  if (entry.transpose && f.part === 'weight') values = transpose(values, weight.shape, entry.transpose);
  return fromFloat64(values, target.dtype);
}

/** [0,1,2,-1,5] → runs {to 0, from 0, length 3}, {to 4, from 5, length 1}; -1 rows are left as initialized. */
function rowRuns(rows: readonly number[]): { to: number; from: number; length: number }[] {
  const runs: { to: number; from: number; length: number }[] = [];
  rows.forEach((from, to) => {
    if (from < 0) return;
    const last = runs[runs.length - 1];
    if (last && last.to + last.length === to && last.from + last.length === from) last.length++;
    else runs.push({ to, from, length: 1 });
  });
  return runs;
}

async function initialValues(init: 'target' | 'zeros' | 'normal', target: TensorInfo, seed: number): Promise<Uint8Array> {
  if (init === 'target') return (await target.read()).slice();
  if (init === 'zeros') return new Uint8Array(target.byteLength);
  const count = target.shape.reduce((n, d) => n * d, 1);
  return fromFloat64(normalValues(count, 0.01, seed), target.dtype);
}

/** N(0, std²) from a seeded generator (mulberry32 + Box–Muller), so applying a plan is repeatable. */
export function normalValues(count: number, std: number, seed: number): Float64Array {
  const random = seededRandom(seed);
  const out = new Float64Array(count);
  for (let i = 0; i < count; i += 2) {
    // 1 − u lies in (0, 1]: the logarithm stays finite.
    const r = Math.sqrt(-2 * Math.log(1 - random()));
    const theta = 2 * Math.PI * random();
    out[i] = std * r * Math.cos(theta);
    if (i + 1 < count) out[i + 1] = std * r * Math.sin(theta);
  }
  return out;
}
