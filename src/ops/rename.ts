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

/** How many names a rule changed, so a rule that matches nothing can be reported. */
export interface RuleMatches {
  readonly rule: string;
  readonly matched: number;
}

/** New names for `names`; two names mapping to one is an error listing every collision. */
export function renameAll(names: readonly string[], options: RenameOptions): Renaming[] {
  return renameCounting(names, options).renamings;
}

/** `renameAll`, with how many names each --strip-prefix and --rename rule changed. */
export function renameCounting(names: readonly string[], options: RenameOptions): { renamings: Renaming[]; rules: RuleMatches[] } {
  const steps = [
    ...(options.stripPrefixes ?? []).map((prefix) => ({
      rule: `--strip-prefix ${prefix}`, apply: (name: string) => (name.startsWith(prefix) ? name.slice(prefix.length) : name),
    })),
    ...(options.rules ?? []).map((text) => {
      const { pattern, replacement } = parseRenameRule(text);
      return { rule: `--rename ${text}`, apply: (name: string) => name.replace(pattern, replacement) };
    }),
  ];
  const matched = steps.map(() => 0);
  const result = names.map((from) => {
    let to = from;
    steps.forEach((step, i) => {
      const next = step.apply(to);
      if (next !== to) matched[i]!++;
      to = next;
    });
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
  return { renamings: result, rules: steps.map((step, i) => ({ rule: step.rule, matched: matched[i]! })) };
}
