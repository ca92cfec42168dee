import { open } from '../open.js';
import { hiddenTensorCount, parameterCount } from '../core/statedict.js';
import type { Totals } from '../ops/summary.js';
import { isParameter } from '../core/roles.js';
import { inspect, type InspectResult, type TensorJson, type TreeJson } from '../api/inspect.js';
import { transferFigures, transferSummary } from '../core/remote-settings.js';
import { formatPercent } from '../core/percent.js';
import type { TensorStats } from '../ops/stats.js';
import { fitLine, formatBytes, formatInt, formatShape, newTable, sparkline } from './format.js';
import { reportedProgress } from './progress.js';

export interface InspectOptions {
  json?: boolean;
  hash?: boolean;
  tree?: boolean;
  filter?: string[];
  all?: boolean;
  stats?: boolean;
  html?: string;
}

export async function inspectCommand(path: string, options: InspectOptions): Promise<void> {
  const dict = await open(path, { all: options.all });
  try {
    const bar = reportedProgress(options.hash ? 'hashing' : 'statistics');
    const result = await inspect(dict, { ...options, onProgress: bar.onProgress }).finally(() => bar.done());
    if (options.html) await (await import('../report/index.js')).writeReport(options.html, { kind: 'inspect', title: dict.path, data: result });
    if (options.json) {
      // What reading a remote model cost goes with the listing, as the headline says it in text.
      const transfer = transferFigures();
      process.stdout.write(`${JSON.stringify({ ...result, ...(transfer ? { transfer } : {}) }, null, 2)}\n`);
    } else process.stdout.write(renderText(dict.path, result));
  } finally {
    await dict.close();
  }
}

/** The header line: what the file is and how big, before any table. */
export function headline(r: Pick<InspectResult, 'format' | 'metadata' | 'totals'>): string {
  const m = r.metadata;
  const parts = [r.format];
  const producer = [m.producerName, m.producerVersion].filter((s) => typeof s === 'string' && s !== '').join(' ');
  if (producer) parts.push(`producer ${producer}`);
  if (typeof m.irVersion === 'number') parts.push(`IR ${m.irVersion}`);
  const opset = m.opsetImport as Record<string, number> | undefined;
  if (opset && opset[''] !== undefined) parts.push(`opset ${opset['']}`);
  if (typeof m.kerasVersion === 'string') parts.push(`keras ${m.kerasVersion}`);
  if (Array.isArray(m.shards)) parts.push(`${formatInt(m.shards.length)} shards (${String(m.index)})`);
  if (r.format === 'pytorch' && m.container === 'legacy') parts.push('legacy format (torch < 1.6)');
  const values = m.values as Record<string, unknown> | undefined;
  if (typeof values?.epoch === 'number') parts.push(`epoch ${values.epoch}`);
  const t = r.totals;
  parts.push(`${formatInt(t.tensors)} tensors${roleBreakdown(t)}`, `${formatInt(t.parameters)} parameters`, formatBytes(t.bytes));
  const hidden = hiddenTensorCount(r);
  if (hidden) parts.push(`${formatInt(hidden)} optimizer tensors not shown (--all)`);
  return parts.join(' · ');
}

/** " (104 weights, 8 constants)": the split by role, when some tensor is not a weight. */
function roleBreakdown(t: Totals): string {
  const { weights, buffers, constants } = t.roles;
  if (buffers.tensors === 0 && constants.tensors === 0) return '';
  const part = (n: number, what: string) => (n ? [`${formatInt(n)} ${what}${n === 1 ? '' : 's'}`] : []);
  return ` (${[...part(weights.tensors, 'weight'), ...part(buffers.tensors, 'buffer'), ...part(constants.tensors, 'constant')].join(', ')})`;
}

function renderText(path: string, r: InspectResult): string {
  const tensors = r.tensors;
  const lines = [fitLine(`${path}: ${[headline(r), transferSummary()].filter(Boolean).join(' · ')}`, ' · ')];
  if (r.tree) {
    const byName = new Map(tensors.map((t) => [t.name, t]));
    const walk = (nodes: TreeJson[], indent: string) => {
      nodes.forEach((n, i) => {
        const last = i === nodes.length - 1;
        const branch = indent + (last ? '└─ ' : '├─ ');
        const tensor = n.tensor === undefined ? undefined : byName.get(n.tensor);
        if (tensor) {
          lines.push(`${branch}${n.name}  ${typeLabel(tensor)} ${formatShape(tensor.shape)}  ${formatInt(n.parameters)}`);
        } else {
          lines.push(`${branch}${n.name}  (${formatInt(n.tensors ?? 0)} tensors, ${formatInt(n.parameters)} params, ${formatBytes(n.bytes)})`);
          walk(n.children ?? [], indent + (last ? '   ' : '│  '));
        }
      });
    };
    walk(r.tree, '');
    return `${lines.join('\n')}\n`;
  }
  const hashed = tensors.some((t) => t.sha256 !== undefined);
  const showSource = tensors.some((t) => t.source !== t.name);
  const showLayout = tensors.some((t) => t.layout);
  const showRole = tensors.some((t) => t.role);
  const showSame = tensors.some((t) => t.sameAs);
  const stats = tensors.some((t) => t.stats);
  // A sparkline of each histogram only on a terminal: piped output stays plain text.
  const sparks = stats && process.stdout.isTTY === true;
  const statColumns = stats ? ['min', 'max', 'mean', 'std', 'zeros', 'non-finite', ...(sparks ? ['histogram'] : [])] : [];
  const head = ['name', ...(showSource ? ['source'] : []), 'dtype', 'shape', ...(showLayout ? ['layout'] : []), ...(showRole ? ['role'] : []), 'params', 'bytes', ...statColumns, ...(hashed ? ['sha256'] : []), ...(showSame ? ['same values as'] : [])];
  const kept = new Set(['dtype', 'shape', 'role', 'params', 'bytes', ...statColumns]);
  const table = newTable(head, head.map((column) => (kept.has(column) ? 'keep' : column === 'source' || column === 'layout' ? 'optional' : 'elide')));
  for (const t of tensors) {
    table.push([
      t.name,
      ...(showSource ? [t.source === t.name ? '' : t.source] : []),
      typeLabel(t),
      formatShape(t.shape),
      ...(showLayout ? [t.layout ?? ''] : []),
      ...(showRole ? [t.role ?? ''] : []),
      // A constant's values are not parameters: its size is in the shape and bytes columns.
      { hAlign: 'right' as const, content: isParameter(t) ? formatInt(parameterCount(t)) : '–' },
      { hAlign: 'right' as const, content: formatBytes(t.byteLength) },
      ...(stats ? statCells(t.stats, sparks) : []),
      ...(hashed ? [t.sha256 ?? ''] : []),
      ...(showSame ? [t.sameAs ?? ''] : []),
    ]);
  }
  if (tensors.length) lines.push(table.toString());
  return `${lines.join('\n')}\n`;
}

/** `q4_k → float32` for an encoded tensor (its stored type, then what its values read as). */
function typeLabel(t: TensorJson): string {
  return t.encoding ? `${t.encoding.label} → ${t.encoding.dequantized}` : t.dtype;
}

/** min, max, mean, std, zeros, non-finite (and the sparkline): blank for tensors without numbers. */
function statCells(s: TensorStats | undefined, sparks: boolean): string[] {
  if (!s) return ['', '', '', '', '', '', ...(sparks ? [''] : [])];
  const num = (v: number | null) => (v === null ? '–' : v === 0 ? '0' : Math.abs(v) >= 1e-3 && Math.abs(v) < 1e5 ? String(Number(v.toPrecision(4))) : v.toExponential(2));
  const special = [[s.nan, 'NaN'], [s.posInf, '+Inf'], [s.negInf, '−Inf']].filter(([n]) => n).map(([n, what]) => `${formatInt(n as number)} ${what}`);
  return [num(s.min), num(s.max), num(s.mean), num(s.std), formatPercent(s.zeros), special.join(', ') || '0', ...(sparks ? [sparkline(s.histogram)] : [])];
}
