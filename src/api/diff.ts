import { usageError } from '../core/errors.js';
import { diffStateDicts, type DiffReport } from '../ops/diff.js';
import type { TensorStats } from '../ops/stats.js';
import { readTensors } from '../ops/tensor-stats.js';
import type { TensorInfo } from '../core/statedict.js';
import { withModel, type ModelInput, type Progress } from './common.js';

export interface DiffOptions {
  /** Compare values of matched tensors too (reads every matched pair, one at a time). */
  values?: boolean;
  /** Absolute tolerance of the value comparison (default 0); needs `values`. */
  atol?: number;
  /** Relative tolerance (default 0): equal when |A−B| ≤ atol + rtol·|B|; needs `values`. */
  rtol?: number;
  /** Include optimizer state and other non-model tensors (models given as paths). */
  all?: boolean;
  /** Called after each matched pair whose values were compared. */
  onProgress?: Progress;
  /** Also compute each side's per-tensor statistics (what `--html` draws as histograms); reads every tensor. */
  stats?: boolean;
  /** Called with the bytes read for `stats`, and their total. */
  onStatsProgress?: Progress;
}

/** A diff report, with both sides' statistics by tensor name when asked for. */
export type DiffResult = DiffReport & { stats?: { a: Record<string, TensorStats>; b: Record<string, TensorStats> } };

/** What `ckpt diff --json` prints: `equal` is false when names, shapes, dtypes (or with `values`, values) differ. */
export async function diff(a: ModelInput, b: ModelInput, options: DiffOptions = {}): Promise<DiffResult> {
  for (const [name, value] of [['--atol', options.atol], ['--rtol', options.rtol]] as const) {
    if (value !== undefined && !(Number.isFinite(value) && value >= 0)) throw usageError(`${name} must be a non-negative number, got '${value}'`);
  }
  if ((options.atol !== undefined || options.rtol !== undefined) && !options.values) throw usageError('--atol and --rtol apply to values: add --values');
  return withModel(a, { all: options.all }, (dictA) => withModel(b, { all: options.all }, async (dictB) => {
    const total = Math.min(dictA.tensors.length, dictB.tensors.length);
    let done = 0;
    // Progress is worth showing only while values are read.
    const onPair = options.values ? () => options.onProgress?.(++done, total) : undefined;
    // Statistics of the tensors the comparison reads come from that same read; the rest are read after.
    const taken = new Map<TensorInfo, TensorStats>();
    const onStats = options.stats ? (_side: 'a' | 'b', t: TensorInfo, stats: TensorStats) => taken.set(t, stats) : undefined;
    const report = await diffStateDicts(dictA, dictB, { values: options.values, atol: options.atol, rtol: options.rtol, onPair, onStats });
    if (!options.stats) return report;
    const rest = [...dictA.tensors, ...dictB.tensors].filter((t) => !taken.has(t));
    const bytes = rest.reduce((n, t) => n + t.byteLength, 0);
    let read = 0;
    for await (const { tensor, stats } of readTensors(rest, { stats: true, hash: false })) {
      if (stats) taken.set(tensor, stats);
      options.onStatsProgress?.((read += tensor.byteLength), bytes);
    }
    const byName = (tensors: readonly TensorInfo[]) => {
      const out: Record<string, TensorStats> = {};
      for (const t of tensors) if (taken.has(t)) out[t.name] = taken.get(t)!;
      return out;
    };
    return { ...report, stats: { a: byName(dictA.tensors), b: byName(dictB.tensors) } };
  }));
}
