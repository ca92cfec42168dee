import { CkptError, ExitCode, usageError } from '../core/errors.js';
import type { TensorInfo } from '../core/statedict.js';
import { commaHint, countMatches, nearestNames, parsePatterns } from '../ops/select.js';
import { presetPatterns } from '../ops/presets.js';
import { totals } from '../ops/summary.js';
import { withModel, write, type ModelInput, type Warn, type WriteSettings } from './common.js';

export type SelectMode = 'strip' | 'filter';

export interface SelectOptions {
  /** Tensors to remove (strip) or keep (filter): see parsePattern. */
  patterns?: readonly string[];
  /** Add a preset's patterns (PRESETS). */
  preset?: string;
  /** Match the file's own names instead of canonical names. */
  matchSource?: boolean;
  /** A pattern that matches nothing is an error, not a warning. */
  strict?: boolean;
  /** Write the output even when no tensor is left in it. */
  allowEmpty?: boolean;
  /** Only report what would be written. */
  dryRun?: boolean;
  /** Output file (written atomically); needed unless dryRun. */
  output?: string;
  /** Output format (default: from the output's extension, else the input's). */
  format?: string;
  /** Dtypes, quantization, shards, external data of the output. */
  writeOptions?: WriteSettings;
  warn?: Warn;
}

export interface TensorBrief {
  name: string;
  source: string;
  dtype: string;
  shape: number[];
}

/** What `ckpt strip --json` and `ckpt filter --json` print. */
export interface SelectResult {
  input: string;
  output: string | null;
  format: string | null;
  dryRun: boolean;
  patterns: { pattern: string; matched: number }[];
  kept: TensorBrief[];
  removed: TensorBrief[];
  /** Learned parameters in the kept tensors. */
  keptParameters: number;
  notes: string[];
}

/** Writes the model without the selected tensors (ONNX: removed weights become graph inputs). */
export function strip(model: ModelInput, options: SelectOptions): Promise<SelectResult> {
  return select('strip', model, options);
}

/** Writes the model with only the selected tensors. */
export function filter(model: ModelInput, options: SelectOptions): Promise<SelectResult> {
  return select('filter', model, options);
}

/**
 * `strip` (write without the selected tensors) and `filter` (write only them) share everything
 * but the direction of the selection.
 */
export async function select(mode: SelectMode, model: ModelInput, options: SelectOptions): Promise<SelectResult> {
  const patterns = parsePatterns([...(options.patterns ?? []), ...presetPatterns(options.preset)]);
  if (patterns.length === 0) throw usageError(`${mode} needs at least one ${mode === 'strip' ? '--exclude' : '--include'} pattern or --preset`);
  if (!options.dryRun && !options.output) throw usageError(`${mode} needs -o OUT (or --dry-run)`);
  return withModel(model, {}, async (dict) => {
    const key = (t: TensorInfo) => (options.matchSource ? t.source : t.name);
    const selected = new Set(dict.tensors.filter((t) => patterns.some((p) => p.test(key(t)))));
    const kept = dict.tensors.filter((t) => (mode === 'strip' ? !selected.has(t) : selected.has(t)));
    const removed = dict.tensors.filter((t) => !kept.includes(t));
    const counts = countMatches(patterns, dict.tensors.map(key));
    const unmatched = counts.filter((c) => c.matched === 0);
    const names = dict.tensors.map(key);
    for (const c of unmatched) {
      options.warn?.(`pattern '${c.pattern}' matched no tensor in ${dict.path}${commaHint(c.pattern)}; nearest names: ${nearestNames(c.pattern, names).join(', ')}`);
    }
    if (unmatched.length && options.strict) {
      throw usageError(`--strict: ${unmatched.length} pattern(s) matched nothing: ${unmatched.map((c) => c.pattern).join(', ')}`);
    }
    if (kept.length === 0 && dict.tensors.length > 0 && !options.allowEmpty) throw emptyOutput(mode, dict.path, dict.tensors.length);
    const report = options.dryRun ? undefined : await write(dict, options.output!, options.format, kept, options.writeOptions);
    const brief = (t: TensorInfo): TensorBrief => ({ name: t.name, source: t.source, dtype: t.dtype, shape: [...t.shape] });
    return {
      input: dict.path, output: options.dryRun ? null : options.output!, format: report?.format ?? null, dryRun: options.dryRun === true,
      patterns: counts, kept: kept.map(brief), removed: removed.map(brief), keptParameters: totals(kept).parameters, notes: report?.notes ?? [],
    };
  });
}

/** A selection that leaves nothing is almost always a typo: refused (the warnings name the nearest names). */
function emptyOutput(mode: SelectMode, input: string, tensors: number): CkptError {
  const what = mode === 'filter' ? 'the patterns select no tensor' : `the patterns remove all ${tensors} tensors`;
  return new CkptError(ExitCode.differs, input, undefined, `${mode}: ${what}, so the output would be empty (--allow-empty writes it anyway)`);
}
