import { open } from '../open.js';
import { hiddenTensorCount, parameterCount, type StateDict, type TensorInfo } from '../core/statedict.js';
import { bytesSha256 } from '../ops/hash.js';
import { hasStats, sparkline, StatsScratch, valueStats, type TensorStats } from '../ops/stats.js';
import { writeReport } from '../report/index.js';
import { parsePatterns } from '../ops/select.js';
import { filterTensors, nameTree, sameValues, totals, type Totals, type TreeNode } from '../ops/summary.js';
import { isParameter } from '../core/roles.js';
import { transferSummary } from '../core/http-source.js';
import { storedByteLength, typeLabel } from '../core/encoding.js';
import { formatPercent } from '../core/percent.js';
import { fitLine, formatBytes, formatInt, formatShape, newTable } from './format.js';
import { progress } from './progress.js';

export interface InspectOptions {
  json?: boolean;
  hash?: boolean;
  tree?: boolean;
  filter?: string[];
  all?: boolean;
  stats?: boolean;
  html?: string;
}

/** One tensor in the `inspect --json` contract. */
export interface TensorJson {
  name: string;
  source: string;
  dtype: string;
  shape: number[];
  byteLength: number;
  origin: string;
  layout?: string;
  role?: string;
  roleFrom?: string;
  group?: string;
  /** An encoded tensor: `dtype` and `sha256` are of the stored form, the values read as `dequantized`. */
  encoding?: { label: string; dequantized: string; scale?: number[]; zeroPoint?: number[]; axis?: number };
  sha256?: string;
  /** With --hash: an earlier tensor with the same dtype, shape and values. */
  sameAs?: string;
  /** With --stats (numeric dtypes). */
  stats?: TensorStats;
}

export async function inspectCommand(path: string, options: InspectOptions): Promise<void> {
  const dict = await open(path, { all: options.all });
  try {
    const tensors = filterTensors(dict, parsePatterns(options.filter));
    const read = options.hash || options.stats ? await readAll(tensors, options.hash === true, options.stats === true) : undefined;
    const hashes = options.hash ? read!.hashes : undefined;
    const body = jsonBody(dict, tensors, hashes, read?.stats, options.tree);
    if (options.html) await writeReport(options.html, { kind: 'inspect', title: dict.path, data: body });
    const out = options.json ? `${JSON.stringify(body, null, 2)}\n` : renderText(dict, tensors, hashes, options.tree, read?.stats);
    process.stdout.write(out);
  } finally {
    await dict.close();
  }
}

/** Reads each tensor once, one at a time (memory bounded by the largest), for its hash and/or statistics. */
async function readAll(tensors: readonly TensorInfo[], hash: boolean, stats: boolean) {
  const hashes = new Map<TensorInfo, string | undefined>();
  const statistics = new Map<TensorInfo, TensorStats>();
  const bar = progress(hash ? 'hashing' : 'statistics', tensors.reduce((n, t) => n + t.byteLength, 0), 'bytes');
  const scratch = new StatsScratch();
  try {
    for (const t of tensors) {
      const wanted = t.dtype !== 'string' && (hash || (stats && hasStats(t.dtype)));
      const bytes = wanted ? await t.read() : undefined;
      if (hash) hashes.set(t, bytes && bytesSha256(bytes));
      if (stats && bytes && hasStats(t.dtype)) statistics.set(t, valueStats(bytes, t.dtype, scratch));
      bar.tick(t.byteLength);
    }
  } finally {
    bar.done();
  }
  return { hashes, stats: statistics };
}

export function tensorJson(t: TensorInfo, sha256?: string, sameAs?: string, stats?: TensorStats): TensorJson {
  return {
    name: t.name,
    source: t.source,
    dtype: t.encoding?.stored ?? t.dtype,
    shape: [...t.shape],
    byteLength: storedByteLength(t),
    origin: t.origin,
    ...(t.layout ? { layout: t.layout } : {}),
    ...(t.role ? { role: t.role, roleFrom: t.roleFrom } : {}),
    ...(t.group && t.group !== 'model' ? { group: t.group } : {}),
    ...(t.encoding ? { encoding: encodingJson(t) } : {}),
    ...(sha256 ? { sha256 } : {}),
    ...(sameAs ? { sameAs } : {}),
    ...(stats ? { stats } : {}),
  };
}

function encodingJson(t: TensorInfo): NonNullable<TensorJson['encoding']> {
  const e = t.encoding!;
  return { label: e.label, dequantized: t.dtype, ...(e.affine ? { scale: [...e.affine.scale], zeroPoint: [...e.affine.zeroPoint], axis: e.affine.axis } : {}) };
}

/** The `inspect --json` document (also the data of `--html`). */
function jsonBody(dict: StateDict, tensors: TensorInfo[], hashes: Map<TensorInfo, string | undefined> | undefined, stats: Map<TensorInfo, TensorStats> | undefined, tree?: boolean): Record<string, unknown> {
  const same = hashes ? sameValues(tensors, hashes) : new Map<TensorInfo, string>();
  const body: Record<string, unknown> = {
    format: dict.format,
    metadata: dict.metadata,
    totals: totals(tensors),
    tensors: tensors.map((t) => tensorJson(t, hashes?.get(t), same.get(t), stats?.get(t))),
  };
  if (tree) {
    const toJson = (n: TreeNode): unknown =>
      n.tensor
        ? { name: n.name, tensor: n.tensor.name, parameters: n.parameters, bytes: n.bytes }
        : { name: n.name, parameters: n.parameters, bytes: n.bytes, tensors: n.tensors, children: n.children.map(toJson) };
    body.tree = nameTree(tensors).map(toJson);
  }
  return body;
}

/** The header line: what the file is and how big, before any table. */
export function headline(dict: StateDict, tensors: readonly TensorInfo[]): string {
  const m = dict.metadata;
  const parts = [dict.format];
  const producer = [m.producerName, m.producerVersion].filter((s) => typeof s === 'string' && s !== '').join(' ');
  if (producer) parts.push(`producer ${producer}`);
  if (typeof m.irVersion === 'number') parts.push(`IR ${m.irVersion}`);
  const opset = m.opsetImport as Record<string, number> | undefined;
  if (opset && opset[''] !== undefined) parts.push(`opset ${opset['']}`);
  if (typeof m.kerasVersion === 'string') parts.push(`keras ${m.kerasVersion}`);
  if (Array.isArray(m.shards)) parts.push(`${formatInt(m.shards.length)} shards (${String(m.index)})`);
  if (dict.format === 'pytorch' && m.container === 'legacy') parts.push('legacy format (torch < 1.6)');
  const values = m.values as Record<string, unknown> | undefined;
  if (typeof values?.epoch === 'number') parts.push(`epoch ${values.epoch}`);
  const t = totals(tensors);
  parts.push(`${formatInt(t.tensors)} tensors${roleBreakdown(t)}`, `${formatInt(t.parameters)} parameters`, formatBytes(t.bytes));
  const hidden = hiddenTensorCount(dict);
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

function renderText(
  dict: StateDict, tensors: TensorInfo[], hashes: Map<TensorInfo, string | undefined> | undefined, tree?: boolean, stats?: Map<TensorInfo, TensorStats>,
): string {
  const lines = [fitLine(`${dict.path}: ${[headline(dict, tensors), transferSummary()].filter(Boolean).join(' · ')}`, ' · ')];
  if (tree) {
    const walk = (nodes: TreeNode[], indent: string) => {
      nodes.forEach((n, i) => {
        const last = i === nodes.length - 1;
        const branch = indent + (last ? '└─ ' : '├─ ');
        if (n.tensor) {
          lines.push(`${branch}${n.name}  ${typeLabel(n.tensor)} ${formatShape(n.tensor.shape)}  ${formatInt(n.parameters)}`);
        } else {
          lines.push(`${branch}${n.name}  (${formatInt(n.tensors)} tensors, ${formatInt(n.parameters)} params, ${formatBytes(n.bytes)})`);
          walk(n.children, indent + (last ? '   ' : '│  '));
        }
      });
    };
    walk(nameTree(tensors), '');
    return `${lines.join('\n')}\n`;
  }
  const showSource = tensors.some((t) => t.source !== t.name);
  const showLayout = tensors.some((t) => t.layout);
  const showRole = tensors.some((t) => t.role);
  const same = hashes ? sameValues(tensors, hashes) : new Map<TensorInfo, string>();
  // A sparkline of each histogram only on a terminal: piped output stays plain text.
  const sparks = stats !== undefined && process.stdout.isTTY === true;
  const statColumns = stats ? ['min', 'max', 'mean', 'std', 'zeros', 'non-finite', ...(sparks ? ['histogram'] : [])] : [];
  const head = ['name', ...(showSource ? ['source'] : []), 'dtype', 'shape', ...(showLayout ? ['layout'] : []), ...(showRole ? ['role'] : []), 'params', 'bytes', ...statColumns, ...(hashes ? ['sha256'] : []), ...(same.size ? ['same values as'] : [])];
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
      { hAlign: 'right' as const, content: formatBytes(storedByteLength(t)) },
      ...(stats ? statCells(stats.get(t), sparks) : []),
      ...(hashes ? [hashes.get(t) ?? ''] : []),
      ...(same.size ? [same.get(t) ?? ''] : []),
    ]);
  }
  if (tensors.length) lines.push(table.toString());
  return `${lines.join('\n')}\n`;
}

/** min, max, mean, std, zeros, non-finite (and the sparkline): blank for tensors without numbers. */
function statCells(s: TensorStats | undefined, sparks: boolean): string[] {
  if (!s) return ['', '', '', '', '', '', ...(sparks ? [''] : [])];
  const num = (v: number | null) => (v === null ? '–' : v === 0 ? '0' : Math.abs(v) >= 1e-3 && Math.abs(v) < 1e5 ? String(Number(v.toPrecision(4))) : v.toExponential(2));
  const special = [[s.nan, 'NaN'], [s.posInf, '+Inf'], [s.negInf, '−Inf']].filter(([n]) => n).map(([n, what]) => `${formatInt(n as number)} ${what}`);
  return [num(s.min), num(s.max), num(s.mean), num(s.std), formatPercent(s.zeros), special.join(', ') || '0', ...(sparks ? [sparkline(s.histogram)] : [])];
}
