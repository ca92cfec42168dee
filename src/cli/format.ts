import Table from 'cli-table3';

/** Small helpers for the human-readable output. */
export function formatInt(n: number): string {
  // Commas by hand for integers: toLocaleString loads ICU's locale data, a third of start-up.
  return Number.isSafeInteger(n) ? String(n).replace(/\B(?=(\d{3})+$)/g, ',') : n.toLocaleString('en-US');
}

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${n} B` : `${value.toFixed(value >= 100 ? 0 : 1)} ${units[unit]}`;
}

export function formatShape(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}

/**
 * A line of `separator`-joined parts broken into lines no wider than the terminal (continuations
 * indented); unchanged when piped. A single part wider than the terminal stays whole (paths).
 */
export function fitLine(line: string, separator: string): string {
  const columns = terminalColumns();
  if (columns === undefined || [...line].length <= columns) return line;
  // A broken line ends with the separator's mark (`·`, `;`), so that it reads as continued.
  const mark = separator.trimEnd();
  const lines: string[] = [];
  let current = '';
  for (const part of line.split(separator)) {
    const candidate = current === '' ? part : `${current}${separator}${part}`;
    if (current !== '' && [...candidate].length + mark.length > columns) {
      lines.push(`${current}${mark}`);
      current = `  ${part}`;
    } else {
      current = candidate;
    }
  }
  lines.push(current);
  return lines.join('\n');
}

/**
 * How a column gives way when a table is wider than the terminal: `keep` for short values that an
 * ellipsis would falsify (shapes, counts); `optional` is elided like a name and, when the table
 * still does not fit, left out with a note (what `--json` or a pipe shows in full).
 */
export type Fit = 'elide' | 'wrap' | 'keep' | 'optional';

/**
 * The one table style of the CLI: compact, no colours (output is often piped or logged). On a
 * terminal the table fits its width: the widest columns give way first, names elided in the middle
 * (both ends tell tensors apart), `wrap` columns (prose) wrapped at spaces. Piped, it is full width.
 */
export function newTable(head: string[], fits: Fit[] = []): Table.Table {
  const table = new Table({
    head,
    style: { head: [], border: [] },
    chars: { mid: '', 'left-mid': '', 'mid-mid': '', 'right-mid': '' },
  });
  const render = table.toString.bind(table);
  table.toString = () => {
    const columns = terminalColumns();
    const left = columns === undefined ? [] : fitTable(table, columns, fits);
    return left.length ? `${render()}\n${fitLine(`(not shown, to fit the terminal: ${left.join(', ')}; piped or --json shows every column)`, ' ')}` : render();
  };
  return table;
}

/** The terminal's width when stdout is one; undefined when piped (a pseudo-terminal may report 0). */
function terminalColumns(): number | undefined {
  return process.stdout.isTTY && process.stdout.columns > 0 ? process.stdout.columns : undefined;
}

type Cell = Table.Cell;
const textOf = (cell: Cell): string => (typeof cell === 'object' && cell !== null && 'content' in cell ? String(cell.content) : String(cell ?? ''));
const withText = (cell: Cell, text: string): Cell => (typeof cell === 'object' && cell !== null && 'content' in cell ? { ...cell, content: text } : text);
const widthOf = (text: string): number => Math.max(0, ...text.split('\n').map((line) => [...line].length));

/** Below this, a column says too little to be worth narrowing further. */
const MIN_COLUMN = 8;
/** Prose narrower than this reads badly: below it, names give way too. */
const MIN_PROSE = 16;
/** A name elided to fewer characters loses what tells it apart: narrower, it is wrapped instead. */
const MIN_ELIDED = 20;

/** Narrows the table's cells to the terminal; returns the headers of the optional columns left out. */
function fitTable(table: Table.Table, columns: number, fits: Fit[]): string[] {
  const head = (table.options.head ?? []) as Cell[];
  const rows = [head, ...(table as unknown as Cell[][])];
  const count = Math.max(...rows.map((row) => row.length));
  const kinds = Array.from({ length: count }, (_, i): Fit => fits[i] ?? 'elide');
  const natural = Array.from({ length: count }, (_, i) => Math.max(0, ...rows.map((row) => (i < row.length ? widthOf(textOf(row[i]!)) : 0))));
  // Each column has a space of padding on both sides and a border on its right; one border on the left.
  const budget = (n: number) => columns - 1 - 3 * n;
  const sum = (widths: number[]) => widths.reduce((a, b) => a + b, 0);
  // Optional columns go before names would be elided below what tells them apart.
  const left: number[] = [];
  const kept = <T>(list: readonly T[]) => list.filter((_, k) => !left.includes(k));
  const fitted = (lowest: number) => fittedWidths(kept(natural), budget(count - left.length), kept(kinds), lowest);
  for (let i = 0; i < count && sum(fitted(MIN_ELIDED)) > budget(count - left.length); i++) {
    if (kinds[i] === 'optional') left.push(i);
  }
  const narrowed = fitted(MIN_COLUMN);
  const widths = natural.map((w, k) => (left.includes(k) ? w : narrowed[k - left.filter((l) => l < k).length]!));
  for (let i = 0; i < count; i++) {
    if (left.includes(i) || natural[i]! <= widths[i]!) continue;
    const texts = rows.map((row) => (i < row.length ? textOf(row[i]!) : ''));
    const narrowed = keepApart(texts, texts.map((text) => narrow(text, widths[i]!, kinds[i]!)), widths[i]!);
    rows.forEach((row, r) => {
      if (i < row.length) row[i] = withText(row[i]!, narrowed[r]!);
    });
  }
  const names = left.map((i) => textOf(head[i]!));
  for (const row of rows) for (const i of [...left].reverse()) if (i < row.length) row.splice(i, 1);
  return names;
}

/**
 * Names that differ only in the middle (`blocks_0`, `blocks_1`) elide to the same text: those are
 * elided again around the place where each first differs from the others, so no two rows read alike.
 */
function keepApart(texts: string[], narrowed: string[], width: number): string[] {
  const originals = new Map<string, Set<string>>();
  narrowed.forEach((n, r) => originals.set(n, (originals.get(n) ?? new Set()).add(texts[r]!)));
  return narrowed.map((n, r) => {
    const alike = [...originals.get(n)!].filter((other) => other !== texts[r]);
    if (alike.length === 0 || n.includes('\n') || texts[r]!.includes(PAIR)) return n;
    const differsAt = Math.max(...alike.map((other) => commonPrefixLength(texts[r]!, other)));
    return elideAround(texts[r]!, width, differsAt);
  });
}

function commonPrefixLength(a: string, b: string): number {
  const x = [...a];
  const y = [...b];
  let n = 0;
  while (n < x.length && n < y.length && x[n] === y[n]) n++;
  return n;
}

/** `model.…ks_0.atten…ue.weight`: the start or a window around `at`, and the end. */
function elideAround(text: string, width: number, at: number): string {
  const chars = [...text];
  const tail = Math.floor((width - 2) / 2);
  if (at >= chars.length - tail) return elideMiddle(text, width);
  const window = width - 2 - tail;
  const start = Math.max(0, at - Math.floor(window / 3));
  const end = chars.slice(chars.length - tail).join('');
  if (start + window >= chars.length - tail) return `…${chars.slice(chars.length - (width - 1)).join('')}`;
  return start === 0 ? `${chars.slice(0, window + 1).join('')}…${end}` : `…${chars.slice(start, start + window).join('')}…${end}`;
}

/**
 * Column widths within the budget, the widest columns narrowed first to one common cap: prose
 * (wrapping loses nothing) down to MIN_PROSE, then names down to MIN_ELIDED, then both further.
 * Kept columns never narrow.
 */
function fittedWidths(natural: number[], budget: number, fits: Fit[], lowest = MIN_COLUMN): number[] {
  const sum = (widths: number[]) => widths.reduce((a, b) => a + b, 0);
  const narrowed = (from: number[], which: Fit, floor: number) => {
    const gives = (fit: Fit) => fit === which || (which === 'elide' && (fit === 'wrap' || fit === 'optional'));
    const capped = (cap: number) => from.map((w, i) => (gives(fits[i]!) ? Math.min(w, cap) : w));
    let cap = Math.max(...from);
    while (cap > floor && sum(capped(cap)) > budget) cap--;
    return capped(cap);
  };
  let widths = natural;
  for (const [which, floor] of [['wrap', MIN_PROSE], ['elide', MIN_ELIDED], ['elide', MIN_COLUMN]] as const) {
    if (sum(widths) <= budget || floor < lowest) break;
    widths = narrowed(widths, which, floor);
  }
  return widths;
}

/** Joins the two names of a pair (diff): each side is elided on its own, the arrow stays. */
const PAIR = ' ↔ ';

function narrow(text: string, width: number, fit: Fit): string {
  return text.split('\n').flatMap((line) => {
    const names = line.split(PAIR);
    const nameWidth = Math.floor((width - PAIR.length * (names.length - 1)) / names.length);
    if (fit === 'wrap' || nameWidth < MIN_ELIDED) return wrapLine(line, width);
    return [names.map((name) => elideMiddle(name, nameWidth)).join(PAIR)];
  }).join('\n');
}

/** `backbone.layer1.0.conv1.weight` → `backbone.…conv1.weight`: both ends kept, the tail a little longer. */
function elideMiddle(text: string, width: number): string {
  const chars = [...text];
  if (chars.length <= width) return text;
  const kept = width - 1;
  const head = Math.floor(kept / 2);
  return `${chars.slice(0, head).join('')}…${chars.slice(chars.length - (kept - head)).join('')}`;
}

/** Wraps at spaces; a longer word (a name) is broken after a `.`, `/`, `_`, `:` or `,` where one is near the end, else cut. */
function wrapLine(line: string, width: number): string[] {
  const out: string[] = [];
  let current = '';
  for (const word of line.split(' ')) {
    const candidate = current === '' ? word : `${current} ${word}`;
    if ([...candidate].length <= width) {
      current = candidate;
      continue;
    }
    if (current !== '') out.push(current);
    let rest = [...word];
    while (rest.length > width) {
      const boundary = Math.max(...['.', '/', '_', ':', ','].map((c) => rest.slice(0, width).lastIndexOf(c))) + 1;
      const cut = boundary > width / 2 ? boundary : width;
      out.push(rest.slice(0, cut).join(''));
      rest = rest.slice(cut);
    }
    current = rest.join('');
  }
  out.push(current);
  return out;
}

const SPARKS = '▁▂▃▄▅▆▇█';

/** A histogram in eight-level block characters, `width` wide (bins merged in equal groups). */
export function sparkline(histogram: readonly number[], width = 16): string {
  const group = Math.max(1, Math.ceil(histogram.length / width));
  const merged: number[] = [];
  for (let i = 0; i < histogram.length; i += group) merged.push(histogram.slice(i, i + group).reduce((s, c) => s + c, 0));
  const top = Math.max(...merged);
  if (!(top > 0)) return ' '.repeat(merged.length);
  return merged.map((c) => (c === 0 ? ' ' : SPARKS[Math.min(SPARKS.length - 1, Math.floor((c / top) * (SPARKS.length - 1) + 0.5))])).join('');
}

/** A warning from an API call (a pattern or rule that matched nothing…), on stderr: stdout keeps the command's output. */
export function warnOnStderr(message: string): void {
  process.stderr.write(`ckpt: warning: ${message}\n`);
}
