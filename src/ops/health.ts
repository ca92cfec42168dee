import { isFloat, toFloat64 } from '../core/decode.js';
import { parameterCount, type StateDict, type TensorInfo } from '../core/statedict.js';
import { graphNodesOf } from '../formats/onnx/index.js';
import type { ExpandSpec } from './plan.js';
import { hasStats, StatsScratch, valueStats, type TensorStats } from './stats.js';

/**
 * Magnitude beyond which a weight or buffer is taken for uninitialized memory (`torch.empty`
 * leftovers read as ~1e37): trained values are many orders of magnitude smaller, counters fit.
 */
export const DEFAULT_MAX_ABS = 1e10;

export type HealthCheckName = 'non-finite' | 'max-abs' | 'all-zero' | 'constant' | 'variance' | 'new-rows';

export interface HealthProblem {
  tensor: string;
  check: HealthCheckName;
  detail: string;
}

export interface HealthReport {
  /** Tensors whose values were read (numeric weights and buffers; constants are the graph's own). */
  checked: number;
  maxAbs: number;
  problems: HealthProblem[];
  ok: boolean;
}

/** Rows an expansion added to a tensor (plan rows −1), checked on their own after `apply`. */
export interface NewRows {
  expand: ExpandSpec;
}

export interface HealthOptions {
  maxAbs?: number;
  /** Per tensor name: the expansion whose new rows are checked apart. */
  newRows?: ReadonlyMap<string, NewRows>;
  onTensor?: (t: TensorInfo) => void;
}

const VARIANCE_NAMES = /(^|[._/])(running_var|moving_variance)$|(^|[a-z0-9./])_variance$|(^|[./])batch_norm_\d+\.w_2$/;

/**
 * Health of a checkpoint's values, one tensor at a time: no NaN or infinity, nothing beyond
 * `maxAbs`, no weight of two or more dims that is all zeros or one value (a layer never trained
 * or never loaded; biases and normalization vectors may legitimately be constant), no BatchNorm
 * running variance ≤ 0. Constants (shapes, masks, anchor priors) are the graph's own and not read.
 */
export async function checkHealth(dict: StateDict, options: HealthOptions = {}): Promise<HealthReport> {
  const maxAbs = options.maxAbs ?? DEFAULT_MAX_ABS;
  const variances = varianceTensors(dict);
  const problems: HealthProblem[] = [];
  const scratch = new StatsScratch();
  let checked = 0;
  for (const t of dict.tensors) {
    if (t.role !== 'constant' && hasStats(t.dtype)) {
      checked++;
      const bytes = await t.read();
      const stats = valueStats(bytes, t.dtype, scratch);
      problems.push(...valueProblems(t.name, stats, maxAbs, isFloat(t.dtype)));
      if (t.role !== 'buffer' && t.shape.length >= 2 && stats.nan + stats.posInf + stats.negInf === 0) problems.push(...sameValueProblems(t, stats));
      if (variances.has(t.name) && stats.min !== null && stats.min <= 0) {
        const values = toFloat64(bytes, t.dtype);
        const count = values.reduce((n, v) => (v <= 0 ? n + 1 : n), 0);
        problems.push({ tensor: t.name, check: 'variance', detail: `BatchNorm running variance ≤ 0 in ${count} of ${values.length} channels (min ${stats.min})` });
      }
      const added = options.newRows?.get(t.name);
      if (added) problems.push(...newRowProblems(t, bytes, added.expand, maxAbs, scratch));
    }
    options.onTensor?.(t);
  }
  return { checked, maxAbs, problems, ok: problems.length === 0 };
}

function valueProblems(name: string, s: TensorStats, maxAbs: number, float: boolean, what = ''): HealthProblem[] {
  const problems: HealthProblem[] = [];
  const nonFinite = s.nan + s.posInf + s.negInf;
  if (nonFinite) {
    const parts = [[s.nan, 'NaN'], [s.posInf, '+Inf'], [s.negInf, '−Inf']].filter(([n]) => n).map(([n, label]) => `${n} ${label}`);
    problems.push({ tensor: name, check: 'non-finite', detail: `${what}${parts.join(', ')}` });
  }
  // Integer counters (num_batches_tracked, step) may grow large: the bound is for floats.
  const largest = Math.max(Math.abs(s.min ?? 0), Math.abs(s.max ?? 0));
  if (float && largest > maxAbs) {
    problems.push({ tensor: name, check: 'max-abs', detail: `${what}|value| up to ${largest.toExponential(3)}, beyond --max-abs ${maxAbs} (uninitialized memory?)` });
  }
  return problems;
}

function sameValueProblems(t: TensorInfo, s: TensorStats): HealthProblem[] {
  const count = parameterCount(t);
  if (count < 2 || s.min === null || s.min !== s.max) return [];
  if (s.min === 0) return [{ tensor: t.name, check: 'all-zero', detail: `all ${count} values are 0 (a weight that was never trained or loaded?)` }];
  return [{ tensor: t.name, check: 'constant', detail: `all ${count} values are ${s.min} (a weight should vary)` }];
}

/**
 * The rows an expansion initialized (row map −1), gathered along its axis: they must be finite
 * and within bounds, and, unless made with --init zeros, not all one value (a target head whose
 * own values were never initialized).
 */
function newRowProblems(t: TensorInfo, bytes: Uint8Array, x: ExpandSpec, maxAbs: number, scratch: StatsScratch): HealthProblem[] {
  if (!hasStats(t.dtype)) return [];
  const block = x.targetSize / x.blocks;
  const fresh: number[] = [];
  for (let b = 0; b < x.blocks; b++) x.rows.forEach((from, j) => { if (from === -1) fresh.push(b * block + j); });
  if (!fresh.length) return [];
  const values = toFloat64(bytes, t.dtype);
  const outer = t.shape.slice(0, x.axis).reduce((n, d) => n * d, 1);
  const inner = t.shape.slice(x.axis + 1).reduce((n, d) => n * d, 1);
  const size = t.shape[x.axis]!;
  const rows = new Float64Array(outer * fresh.length * inner);
  let at = 0;
  for (let o = 0; o < outer; o++) {
    for (const r of fresh) {
      const start = (o * size + r) * inner;
      rows.set(values.subarray(start, start + inner), at);
      at += inner;
    }
  }
  const stats = valueStats(new Uint8Array(rows.buffer), 'float64', scratch);
  const what = `the ${fresh.length} new row(s) of axis ${x.axis}: `;
  const problems = valueProblems(t.name, stats, maxAbs, isFloat(t.dtype), what);
  if (x.init !== 'zeros' && t.shape.length >= 2 && rows.length > 1 && stats.min !== null && stats.min === stats.max) {
    problems.push({ tensor: t.name, check: 'new-rows', detail: `${what}all ${rows.length} values are ${stats.min} (--init ${x.init}; the target's own values were never initialized? --init normal draws new ones)` });
  }
  return problems;
}

/** BatchNorm running variances: by the graph where the file has one (input 4), else by name. */
function varianceTensors(dict: StateDict): Set<string> {
  const names = new Set(dict.tensors.filter((t) => VARIANCE_NAMES.test(t.name)).map((t) => t.name));
  const bySource = new Map(dict.tensors.map((t) => [t.source, t.name]));
  for (const node of graphNodesOf(dict) ?? []) {
    if (node.opType !== 'BatchNormalization') continue;
    const name = bySource.get(node.inputs[4] ?? '');
    if (name) names.add(name);
  }
  return names;
}
