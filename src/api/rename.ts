import type { TensorInfo } from '../core/statedict.js';
import { parseRenameRule, type RenameOptions } from '../ops/rename.js';

/** How many file names hold what each rule looks for (a prefix anywhere, a pattern's match). */
export function rulesOnFileNames(sources: readonly string[], options: RenameOptions): Map<string, number> {
  const hits = new Map<string, number>();
  for (const prefix of options.stripPrefixes ?? []) hits.set(`--strip-prefix ${prefix}`, sources.filter((s) => s.includes(prefix)).length);
  for (const rule of options.rules ?? []) {
    const { pattern } = parseRenameRule(rule);
    hits.set(`--rename ${rule}`, sources.filter((s) => pattern.test(s)).length);
  }
  return hits;
}

/**
 * The file name for a tensor's new canonical name, in its own format: unchanged when the rules
 * left it alone; else what surrounds the canonical name in the file name is kept
 * (`state_dict/module.` + new name); a file name spelled otherwise gets the canonical one.
 */
export function inFileSpelling(t: TensorInfo, renamed: string): string {
  if (renamed === t.name) return t.source;
  return t.source.endsWith(t.name) ? t.source.slice(0, t.source.length - t.name.length) + renamed : renamed;
}
