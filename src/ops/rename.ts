import { usageError } from '../core/errors.js';

/**
 * Renaming rules, applied in this order: `--strip-prefix` (each prefix removed when present),
 * then `--rename 'FROM=>TO'` rules in the order given (FROM a regular expression, TO a
 * replacement with $1-style groups; every rule applies to the result of the previous one), then
 * `--add-prefix`.
 */
export interface RenameOptions {
  rules?: readonly string[];
  stripPrefixes?: readonly string[];
  addPrefix?: string;
}

export interface Renaming {
  readonly from: string;
  readonly to: string;
}

export function parseRenameRule(text: string): { pattern: RegExp; replacement: string } {
  const at = text.indexOf('=>');
  if (at <= 0) throw usageError(`--rename '${text}': expected 'FROM=>TO' (FROM a regular expression)`);
  try {
    return { pattern: new RegExp(text.slice(0, at)), replacement: text.slice(at + 2) };
  } catch (err) {
    throw usageError(`--rename '${text}': ${(err as Error).message}`);
  }
}

/** New names for `names`; two names mapping to one is an error listing every collision. */
export function renameAll(names: readonly string[], options: RenameOptions): Renaming[] {
  const rules = (options.rules ?? []).map(parseRenameRule);
  const result = names.map((from) => {
    let to = from;
    for (const prefix of options.stripPrefixes ?? []) if (to.startsWith(prefix)) to = to.slice(prefix.length);
    for (const rule of rules) to = to.replace(rule.pattern, rule.replacement);
    if (options.addPrefix) to = options.addPrefix + to;
    return { from, to };
  });
  const byTarget = new Map<string, string[]>();
  for (const r of result) byTarget.set(r.to, [...(byTarget.get(r.to) ?? []), r.from]);
  const collisions = [...byTarget].filter(([, sources]) => sources.length > 1);
  if (collisions.length) {
    throw usageError(`renaming would give several tensors the same name: ${collisions.map(([to, sources]) => `${sources.join(' + ')} → ${to}`).join('; ')}`);
  }
  const empty = result.find((r) => r.to === '');
  if (empty) throw usageError(`renaming would give '${empty.from}' an empty name`);
  return result;
}
