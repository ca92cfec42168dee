import { open } from '../open.js';
import { CkptError, ExitCode, usageError } from '../core/errors.js';
import type { StateDict, TensorInfo } from '../core/statedict.js';
import { commaHint, countMatches, nearestNames, parsePatterns } from '../ops/select.js';
import { PRESETS, presetPatterns } from '../ops/presets.js';
import { chooseWriter } from '../formats/writers.js';
import { formatInt, formatShape, newTable } from './format.js';
import { totals } from '../ops/summary.js';

export interface SelectCommandOptions {
  exclude?: string[];
  include?: string[];
  preset?: string;
  matchSource?: boolean;
  strict?: boolean;
  allowEmpty?: boolean;
  dryRun?: boolean;
  output?: string;
  to?: string;
  json?: boolean;
}

export function presetsCommand(options: { json?: boolean }): number {
  if (options.json) process.stdout.write(`${JSON.stringify(PRESETS, null, 2)}\n`);
  else {
    const table = newTable(['preset', 'excluded heads (regex at the start of any dotted part of the name)'], ['elide', 'wrap']);
    for (const [name, patterns] of Object.entries(PRESETS)) table.push([name, patterns.join(', ')]);
    process.stdout.write(`${table.toString()}\n`);
  }
  return ExitCode.ok;
}

/**
 * `strip` (write without the selected tensors) and `filter` (write only them) share everything
 * but the direction of the selection.
 */
export async function selectCommand(mode: 'strip' | 'filter', input: string, options: SelectCommandOptions): Promise<number> {
  const texts = [...(mode === 'strip' ? options.exclude ?? [] : options.include ?? []), ...presetPatterns(options.preset)];
  const patterns = parsePatterns(texts);
  if (patterns.length === 0) throw usageError(`${mode} needs at least one ${mode === 'strip' ? '--exclude' : '--include'} pattern or --preset`);
  if (!options.dryRun && !options.output) throw usageError(`${mode} needs -o OUT (or --dry-run)`);
  const dict = await open(input);
  try {
    const key = (t: TensorInfo) => (options.matchSource ? t.source : t.name);
    const selected = new Set(dict.tensors.filter((t) => patterns.some((p) => p.test(key(t)))));
    const kept = dict.tensors.filter((t) => (mode === 'strip' ? !selected.has(t) : selected.has(t)));
    const removed = dict.tensors.filter((t) => !kept.includes(t));
    const counts = countMatches(patterns, dict.tensors.map(key));
    const unmatched = counts.filter((c) => c.matched === 0);
    const names = dict.tensors.map(key);
    for (const c of unmatched) {
      process.stderr.write(`ckpt: warning: pattern '${c.pattern}' matched no tensor in ${input}${commaHint(c.pattern)}; nearest names: ${nearestNames(c.pattern, names).join(', ')}\n`);
    }
    if (unmatched.length && options.strict) {
      throw usageError(`--strict: ${unmatched.length} pattern(s) matched nothing: ${unmatched.map((c) => c.pattern).join(', ')}`);
    }
    if (kept.length === 0 && dict.tensors.length > 0 && !options.allowEmpty) throw emptyOutput(mode, input, dict.tensors.length);
    let notes: string[] = [];
    let format: string | undefined;
    if (!options.dryRun) {
      const writer = chooseWriter(options.output!, options.to, dict.format);
      const sameFormat = writer.format === dict.format;
      const report = await writer.write(options.output!, kept.map((t) => ({ name: sameFormat ? t.source : t.name, tensor: t })), dict);
      notes = report.notes;
      format = report.format;
    }
    printSelection(mode, dict, counts, kept, removed, { ...options, format, notes });
    return ExitCode.ok;
  } finally {
    await dict.close();
  }
}

/** A selection that leaves nothing is almost always a typo: refused (the warnings above name the nearest names). */
function emptyOutput(mode: 'strip' | 'filter', input: string, tensors: number): CkptError {
  const what = mode === 'filter' ? 'the patterns select no tensor' : `the patterns remove all ${tensors} tensors`;
  return new CkptError(ExitCode.differs, input, undefined, `${mode}: ${what}, so the output would be empty (--allow-empty writes it anyway)`);
}

function printSelection(
  mode: 'strip' | 'filter', dict: StateDict, counts: { pattern: string; matched: number }[],
  kept: TensorInfo[], removed: TensorInfo[], options: SelectCommandOptions & { format?: string; notes: string[] },
): void {
  const brief = (t: TensorInfo) => ({ name: t.name, source: t.source, dtype: t.dtype, shape: [...t.shape] });
  if (options.json) {
    const body = {
      input: dict.path, output: options.dryRun ? null : options.output, format: options.format ?? null, dryRun: options.dryRun === true,
      patterns: counts, kept: kept.map(brief), removed: removed.map(brief), notes: options.notes,
    };
    process.stdout.write(`${JSON.stringify(body, null, 2)}\n`);
    return;
  }
  const t = totals(kept);
  const verb = options.dryRun ? 'would write' : `wrote ${options.output} (${options.format})`;
  const lines = [
    `${mode}: ${dict.path}: ${verb}: kept ${formatInt(kept.length)} of ${formatInt(dict.tensors.length)} tensors (${formatInt(t.parameters)} parameters), removed ${formatInt(removed.length)}`,
    `patterns: ${counts.map((c) => `${c.pattern} → ${c.matched}`).join(', ')}`,
  ];
  if (removed.length) {
    const table = newTable(['removed', 'dtype', 'shape']);
    table.push(...removed.map((r) => [r.name, r.dtype, formatShape(r.shape)]));
    lines.push(table.toString());
  }
  lines.push(...options.notes.map((n) => `note: ${n}`));
  process.stdout.write(`${lines.join('\n')}\n`);
}
