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

/** Splits repeated and comma-separated pattern options into patterns. */
export function parsePatterns(values: readonly string[] | undefined): Pattern[] {
  return (values ?? [])
    .flatMap((v) => v.split(','))
    .map((v) => v.trim())
    .filter((v) => v !== '')
    .map(parsePattern);
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
