import { ExitCode } from '../core/errors.js';
import { PRESETS } from '../ops/presets.js';
import { select, type SelectMode, type SelectOptions, type SelectResult } from '../api/select.js';
import { formatInt, formatShape, newTable, warnOnStderr } from './format.js';
import type { WriteCommandOptions } from './write-options.js';
import { writeOptionsFrom } from './write-settings.js';

export interface SelectCommandOptions extends Omit<SelectOptions, 'patterns' | 'format' | 'warn' | 'writeOptions'>, WriteCommandOptions {
  exclude?: string[];
  include?: string[];
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

export async function selectCommand(mode: SelectMode, input: string, options: SelectCommandOptions): Promise<number> {
  const result = await select(mode, input, {
    ...options, patterns: mode === 'strip' ? options.exclude : options.include, format: options.to, writeOptions: writeOptionsFrom(options), warn: warnOnStderr,
  });
  process.stdout.write(options.json ? `${JSON.stringify(result, null, 2)}\n` : renderSelection(mode, result));
  return ExitCode.ok;
}

function renderSelection(mode: SelectMode, r: SelectResult): string {
  const verb = r.dryRun ? 'would write' : `wrote ${r.output} (${r.format})`;
  const lines = [
    `${mode}: ${r.input}: ${verb}: kept ${formatInt(r.kept.length)} of ${formatInt(r.kept.length + r.removed.length)} tensors (${formatInt(r.keptParameters)} parameters), removed ${formatInt(r.removed.length)}`,
    `patterns: ${r.patterns.map((c) => `${c.pattern} → ${c.matched}`).join(', ')}`,
  ];
  if (r.removed.length) {
    const table = newTable(['removed', 'dtype', 'shape']);
    table.push(...r.removed.map((t) => [t.name, t.dtype, formatShape(t.shape)]));
    lines.push(table.toString());
  }
  lines.push(...r.notes.map((n) => `note: ${n}`));
  return `${lines.join('\n')}\n`;
}
