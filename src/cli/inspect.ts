import { open } from '../open.js';
import { hiddenTensorCount, parameterCount, type StateDict, type TensorInfo } from '../core/statedict.js';
import { tensorSha256 } from '../ops/hash.js';
import { parsePatterns } from '../ops/select.js';
import { filterTensors, nameTree, sameValues, totals, type Totals, type TreeNode } from '../ops/summary.js';
import { isParameter } from '../core/roles.js';
import { transferSummary } from '../core/http-source.js';
import { fitLine, formatBytes, formatInt, formatShape, progress, newTable } from './format.js';

export interface InspectOptions {
  json?: boolean;
  hash?: boolean;
  tree?: boolean;
  filter?: string[];
  all?: boolean;
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
  sha256?: string;
  /** With --hash: an earlier tensor with the same dtype, shape and values. */
  sameAs?: string;
}

export async function inspectCommand(path: string, options: InspectOptions): Promise<void> {
  const dict = await open(path, { all: options.all });
  try {
    const tensors = filterTensors(dict, parsePatterns(options.filter));
    const hashes = options.hash ? await hashAll(tensors) : undefined;
    const out = options.json ? renderJson(dict, tensors, hashes, options.tree) : renderText(dict, tensors, hashes, options.tree);
    process.stdout.write(out);
  } finally {
    await dict.close();
  }
}

async function hashAll(tensors: readonly TensorInfo[]): Promise<Map<TensorInfo, string | undefined>> {
  const bar = progress('hashing', tensors.length);
  const hashes = new Map<TensorInfo, string | undefined>();
  try {
    for (const t of tensors) {
      hashes.set(t, await tensorSha256(t));
      bar.tick();
    }
  } finally {
    bar.done();
  }
  return hashes;
}

export function tensorJson(t: TensorInfo, sha256?: string, sameAs?: string): TensorJson {
  return {
    name: t.name,
    source: t.source,
    dtype: t.dtype,
    shape: [...t.shape],
    byteLength: t.byteLength,
    origin: t.origin,
    ...(t.layout ? { layout: t.layout } : {}),
    ...(t.role ? { role: t.role, roleFrom: t.roleFrom } : {}),
    ...(t.group && t.group !== 'model' ? { group: t.group } : {}),
    ...(sha256 ? { sha256 } : {}),
    ...(sameAs ? { sameAs } : {}),
  };
}

function renderJson(dict: StateDict, tensors: TensorInfo[], hashes: Map<TensorInfo, string | undefined> | undefined, tree?: boolean): string {
  const same = hashes ? sameValues(tensors, hashes) : new Map<TensorInfo, string>();
  const body: Record<string, unknown> = {
    format: dict.format,
    metadata: dict.metadata,
    totals: totals(tensors),
    tensors: tensors.map((t) => tensorJson(t, hashes?.get(t), same.get(t))),
  };
  if (tree) {
    const toJson = (n: TreeNode): unknown =>
      n.tensor
        ? { name: n.name, tensor: n.tensor.name, parameters: n.parameters, bytes: n.bytes }
        : { name: n.name, parameters: n.parameters, bytes: n.bytes, tensors: n.tensors, children: n.children.map(toJson) };
    body.tree = nameTree(tensors).map(toJson);
  }
  return `${JSON.stringify(body, null, 2)}\n`;
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

function renderText(dict: StateDict, tensors: TensorInfo[], hashes: Map<TensorInfo, string | undefined> | undefined, tree?: boolean): string {
  const lines = [fitLine(`${dict.path}: ${[headline(dict, tensors), transferSummary()].filter(Boolean).join(' · ')}`, ' · ')];
  if (tree) {
    const walk = (nodes: TreeNode[], indent: string) => {
      nodes.forEach((n, i) => {
        const last = i === nodes.length - 1;
        const branch = indent + (last ? '└─ ' : '├─ ');
        if (n.tensor) {
          lines.push(`${branch}${n.name}  ${n.tensor.dtype} ${formatShape(n.tensor.shape)}  ${formatInt(n.parameters)}`);
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
  const head = ['name', ...(showSource ? ['source'] : []), 'dtype', 'shape', ...(showLayout ? ['layout'] : []), ...(showRole ? ['role'] : []), 'params', 'bytes', ...(hashes ? ['sha256'] : []), ...(same.size ? ['same values as'] : [])];
  const kept = new Set(['dtype', 'shape', 'role', 'params', 'bytes']);
  const table = newTable(head, head.map((column) => (kept.has(column) ? 'keep' : column === 'source' || column === 'layout' ? 'optional' : 'elide')));
  for (const t of tensors) {
    table.push([
      t.name,
      ...(showSource ? [t.source === t.name ? '' : t.source] : []),
      t.dtype,
      formatShape(t.shape),
      ...(showLayout ? [t.layout ?? ''] : []),
      ...(showRole ? [t.role ?? ''] : []),
      // A constant's values are not parameters: its size is in the shape and bytes columns.
      { hAlign: 'right' as const, content: isParameter(t) ? formatInt(parameterCount(t)) : '–' },
      { hAlign: 'right' as const, content: formatBytes(t.byteLength) },
      ...(hashes ? [hashes.get(t) ?? ''] : []),
      ...(same.size ? [same.get(t) ?? ''] : []),
    ]);
  }
  if (tensors.length) lines.push(table.toString());
  return `${lines.join('\n')}\n`;
}
