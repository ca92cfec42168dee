import { open } from '../open.js';
import { ExitCode, usageError } from '../core/errors.js';
import { diffStateDicts, type DiffReport, type PairReport } from '../ops/diff.js';
import { fitLine, formatInt, formatShape, progress, newTable, type Fit } from './format.js';

export interface DiffCommandOptions {
  json?: boolean;
  values?: boolean;
  atol?: string;
  rtol?: string;
  all?: boolean;
}

function tolerance(name: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const value = Number(text);
  if (!Number.isFinite(value) || value < 0) throw usageError(`${name} must be a non-negative number, got '${text}'`);
  return value;
}

/** `ckpt diff A B`: exit 0 when equal under the chosen comparison, 1 when they differ. */
export async function diffCommand(pathA: string, pathB: string, options: DiffCommandOptions): Promise<number> {
  const atol = tolerance('--atol', options.atol);
  const rtol = tolerance('--rtol', options.rtol);
  const a = await open(pathA, { all: options.all });
  try {
    const b = await open(pathB, { all: options.all });
    try {
      const bar = progress('comparing', options.values ? Math.min(a.tensors.length, b.tensors.length) : 0);
      const report = await diffStateDicts(a, b, { values: options.values, atol, rtol, onPair: () => bar.tick() });
      bar.done();
      process.stdout.write(options.json ? `${JSON.stringify(report, null, 2)}\n` : renderDiff(report, options.values === true));
      return report.equal ? ExitCode.ok : ExitCode.differs;
    } finally {
      await b.close();
    }
  } finally {
    await a.close();
  }
}

export function diffHeadline(r: DiffReport): string {
  const reasons = ['name', 'prefix', 'convention', 'suffix'].map((reason) => [reason, r.matched.filter((p) => p.reason === reason).length] as const).filter(([, n]) => n > 0);
  const how = reasons.length ? ` (${reasons.map(([reason, n]) => `${n} by ${reason}`).join(', ')})` : '';
  const parts = [
    `A: ${r.a.tensors} tensors, B: ${r.b.tensors}`,
    `matched ${r.matched.length}${how}`,
    `${r.onlyInA.length} only in A`,
    `${r.onlyInB.length} only in B`,
    `${r.shapeMismatches.length} shape mismatches`,
    `${r.dtypeMismatches.length} dtype mismatches`,
  ];
  if (r.ambiguous.length) parts.push(`${r.ambiguous.length} ambiguous`);
  if (r.matched.some((p) => p.values)) parts.push(`${r.valueDifferences.length} value differences`);
  return `${parts.join('; ')} → ${r.equal ? 'equal' : 'different'}`;
}

function renderDiff(r: DiffReport, values: boolean): string {
  const out = [`A: ${r.a.path} (${r.a.format})`, `B: ${r.b.path} (${r.b.format})`, fitLine(diffHeadline(r), '; ')];
  // On a narrow terminal names give way (elided), notes wrap, shapes, dtypes and numbers stay whole.
  const fitOf = (column: string): Fit => (column === 'name' ? 'elide' : column === 'note' || column.startsWith('candidates') ? 'wrap' : 'keep');
  const section = (title: string, head: string[], rows: (string | number)[][]) => {
    if (!rows.length) return;
    const table = newTable(head, head.map(fitOf));
    table.push(...rows.map((row) => row.map(String)));
    out.push('', `${title} (${rows.length})`, table.toString());
  };
  const brief = (t: { name: string; dtype: string; shape: number[] }) => [t.name, t.dtype, formatShape(t.shape)];
  section('Only in A', ['name', 'dtype', 'shape'], r.onlyInA.map(brief));
  section('Only in B', ['name', 'dtype', 'shape'], r.onlyInB.map(brief));
  section('Ambiguous (not aligned; rename to disambiguate)', ['name', 'in', 'candidates in the other'], r.ambiguous.map((x) => [x.name, x.side.toUpperCase(), x.candidates.join(', ')]));
  const names = (p: PairReport) => (p.a === p.b ? p.a : `${p.a} ↔ ${p.b}`);
  section('Shape mismatches', ['name', 'A', 'B', 'note'], r.shapeMismatches.map((p) => [
    names(p), formatShape(p.shapeA), formatShape(p.shapeB), p.transpose ? `layout transpose (B = A.transpose(${p.transpose.join(',')}))` : '',
  ]));
  section('Dtype mismatches', ['name', 'A', 'B'], r.dtypeMismatches.map((p) => [names(p), p.dtypeA, p.dtypeB]));
  if (values) {
    const compared = r.matched.filter((p) => p.values);
    const num = (x: number | undefined) => (x === undefined ? '' : x === 0 ? '0' : x.toPrecision(3));
    section('Values', ['name', 'max |A−B|', 'mean |A−B|', 'cosine', 'identical', 'within tolerance'], compared.map((p) => [
      names(p), num(p.values!.maxAbsDiff), num(p.values!.meanAbsDiff), p.values!.cosine === undefined ? '' : p.values!.cosine.toFixed(6),
      p.values!.bitIdentical ? 'yes' : 'no', p.values!.withinTolerance ? 'yes' : 'NO',
    ]));
    if (compared.length < r.matched.length) out.push(`(${formatInt(r.matched.length - compared.length)} matched pairs with incompatible shapes were not compared)`);
  }
  return `${out.join('\n')}\n`;
}
