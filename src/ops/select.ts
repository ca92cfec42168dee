import { usageError } from '../core/errors.js';

/**
 * The selection language shared by every command that picks tensors:
 *   PATTERN        regular expression matched at the START of the name (PaddleDetection's
 *                  finetune_exclude_pretrained_params semantics: `cls_score` matches `cls_score_w`)
 *   re:PATTERN     regular expression searched anywhere in the name
 *   part:PATTERN   regular expression matched at the start of any dotted (or `/`) part of the name,
 *                  for heads frameworks nest (`yolo_output` in `yolo_head.yolo_output.0.weight`)
 *   glob:PATTERN   shell glob over the whole name (`*` within a dotted part, `**` across parts)
 *   =NAME          exactly this name
 */
export interface Pattern {
  readonly text: string;
  test(name: string): boolean;
}

export function parsePattern(text: string): Pattern {
  if (text === '') throw usageError('empty pattern');
  if (text.startsWith('=')) {
    const exact = text.slice(1);
    return { text, test: (name) => name === exact };
  }
  if (text.startsWith('glob:')) {
    const re = globToRegExp(text.slice(5));
    return { text, test: (name) => re.test(name) };
  }
  const searchAnywhere = text.startsWith('re:');
  const anyPart = text.startsWith('part:');
  const source = searchAnywhere ? text.slice(3) : anyPart ? text.slice(5).replace(/^\^/, '') : text;
  let re: RegExp;
  try {
    re = new RegExp(searchAnywhere ? source : anyPart ? `(?:^|[./])(?:${source})` : `^(?:${source})`);
  } catch (err) {
    throw usageError(`invalid pattern '${text}': ${(err as Error).message}`);
  }
  return { text, test: (name) => re.test(name) };
}

/**
 * One pattern per option value, never split: a comma belongs to the pattern (`re:\\d{2,2}`, a
 * name with ", " in it), so several patterns are given by repeating the option.
 */
export function parsePatterns(values: readonly string[] | undefined): Pattern[] {
  return (values ?? []).map(parsePattern);
}

/** Said next to a pattern that matched nothing when a comma suggests it was meant as a list. */
export function commaHint(pattern: string): string {
  return pattern.includes(',') ? ' (patterns are not split at commas: repeat the option for several)' : '';
}

export function globToRegExp(glob: string): RegExp {
  let out = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '*' && glob[i + 1] === '*') {
      out += '.*';
      i++;
    } else if (c === '*') out += '[^.]*';
    else if (c === '?') out += '[^.]';
    else out += c.replace(/[\\^$+.()|{}[\]]/g, '\\$&');
  }
  return new RegExp(`^${out}$`);
}

/** Per-pattern match counts, so a pattern that matched nothing can be reported. */
export function countMatches(patterns: readonly Pattern[], names: readonly string[]): { pattern: string; matched: number }[] {
  return patterns.map((p) => ({ pattern: p.text, matched: names.filter((n) => p.test(n)).length }));
}

/**
 * The names a pattern that matched nothing was probably meant for (a typo such as `classifer`):
 * closest first by edit distance to the whole name, its start, or one of its dotted parts.
 */
export function nearestNames(pattern: string, names: readonly string[], count = 3): string[] {
  const literal = pattern.replace(/^(re:|glob:|=)/, '').replace(/[\\^$*+?()[\]{}|]/g, '');
  const distance = (name: string) => Math.min(
    editDistance(literal, name),
    editDistance(literal, name.slice(0, literal.length)),
    ...name.split(/[./]/).map((part) => editDistance(literal, part)),
  );
  return names
    .map((name) => ({ name, distance: distance(name) }))
    .sort((a, b) => a.distance - b.distance || a.name.localeCompare(b.name))
    .slice(0, count)
    .map((x) => x.name);
}

/** Levenshtein distance: insertions, deletions and substitutions of one character each cost 1. */
function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = current;
  }
  return previous[b.length]!;
}
