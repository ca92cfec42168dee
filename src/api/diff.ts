import { usageError } from '../core/errors.js';
import { diffStateDicts, type DiffReport } from '../ops/diff.js';
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
}

/** What `ckpt diff --json` prints: `equal` is false when names, shapes, dtypes (or with `values`, values) differ. */
export async function diff(a: ModelInput, b: ModelInput, options: DiffOptions = {}): Promise<DiffReport> {
  for (const [name, value] of [['--atol', options.atol], ['--rtol', options.rtol]] as const) {
    if (value !== undefined && !(Number.isFinite(value) && value >= 0)) throw usageError(`${name} must be a non-negative number, got '${value}'`);
  }
  if ((options.atol !== undefined || options.rtol !== undefined) && !options.values) throw usageError('--atol and --rtol apply to values: add --values');
  return withModel(a, { all: options.all }, (dictA) => withModel(b, { all: options.all }, (dictB) => {
    const total = Math.min(dictA.tensors.length, dictB.tensors.length);
    let done = 0;
    // Progress is worth showing only while values are read.
    const onPair = options.values ? () => options.onProgress?.(++done, total) : undefined;
    return diffStateDicts(dictA, dictB, { values: options.values, atol: options.atol, rtol: options.rtol, onPair });
  }));
}
