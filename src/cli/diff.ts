import { ExitCode } from '../core/errors.js';
import type { DiffReport, PairReport } from '../ops/diff.js';
import { diff } from '../api/diff.js';
import { optionalNumber } from './compare.js';
import { formatEpsilon } from '../ops/structure.js';
import { fitLine, formatInt, formatShape, newTable, type Fit } from './format.js';
import { reportedProgress } from './progress.js';
import { writeReport } from '../report/index.js';

export interface DiffCommandOptions {
  json?: boolean;
  values?: boolean;
  atol?: string;
  rtol?: string;
  all?: boolean;
  html?: string;
}

/**
 * `ckpt diff A B`: exit 0 when nothing differs in what was compared (names, shapes and dtypes;
 * values too with --values), 1 when something does.
 */
export async function diffCommand(pathA: string, pathB: string, options: DiffCommandOptions): Promise<number> {
  const bar = reportedProgress('comparing', 'items');
  const statsBar = reportedProgress('statistics');
  // The report's histograms need both sides' statistics: read with --html, and in --json then too (the page embeds that document).
  const report = await diff(pathA, pathB, {
    values: options.values, atol: optionalNumber('--atol', options.atol), rtol: optionalNumber('--rtol', options.rtol), all: options.all,
    onProgress: bar.onProgress,
    stats: options.html !== undefined,
    onStatsProgress: statsBar.onProgress,
  }).finally(() => {
    bar.done();
    statsBar.done();
  });
  if (options.html) await writeReport(options.html, { kind: 'diff', title: `${pathA} vs ${pathB}`, data: report });
  const { stats: _stats, ...listed } = report;
  process.stdout.write(options.json ? `${JSON.stringify(options.html ? report : listed, null, 2)}\n` : renderDiff(listed, options.values === true));
  return report.equal ? ExitCode.ok : ExitCode.differs;
}

const REASONS: Record<string, string> = { name: 'name', prefix: 'prefix', convention: 'convention', suffix: 'suffix', structure: 'graph position' };

export function diffHeadline(r: DiffReport): string {
  const reasons = Object.entries(REASONS).map(([reason, said]) => [said, r.matched.filter((p) => p.reason === reason).length] as const).filter(([, n]) => n > 0);
  const how = reasons.length ? ` (${reasons.map(([said, n]) => `${n} by ${said}`).join(', ')})` : '';
  const parts = [
    `A: ${r.a.tensors} tensors, B: ${r.b.tensors}`,
    `matched ${r.matched.length}${how}`,
    `${r.onlyInA.length} only in A`,
    `${r.onlyInB.length} only in B`,
    `${r.shapeMismatches.length} shape mismatches`,
    `${r.dtypeMismatches.length} dtype mismatches`,
  ];
  if (r.integersOnlyInOne.length) parts.push(`${r.integersOnlyInOne.length} integer tensors in one only (counters, graph constants: not compared)`);
  if (r.ambiguous.length) parts.push(`${r.ambiguous.length} ambiguous`);
  if (r.valuesCompared) parts.push(`${r.valueDifferences.length} value differences`);
  for (const [side, s] of [['A', r.a], ['B', r.b]] as const) {
    if (s.hiddenTensors) parts.push(`${side}: ${formatInt(s.hiddenTensors)} optimizer tensors not compared (--all)`);
  }
  const c = r.constants;
  const constants = c.a || c.b
    ? ` (constants apart, not model tensors: A ${c.a}, B ${c.b}, ${c.onlyInA.length} only in A, ${c.onlyInB.length} only in B, ${c.differing.length} differing)`
    : '';
  return `${parts.join('; ')} → ${verdict(r)}${foldSummary(r)}${constants}`;
}

/** Never "equal" for values that were not read. */
function verdict(r: DiffReport): string {
  if (!r.equal) return 'different';
  return r.valuesCompared ? 'equal' : 'same names, shapes and dtypes; values not compared (--values)';
}

/** " after folding 35 BatchNorm layers, max |Δ| 4.77e-7 (folded tensors within rtol 1e-5, atol 1e-6)" */
function foldSummary(r: DiffReport): string {
  if (!r.foldedBatchNorms) return '';
  const folded = r.matched.filter((p) => p.fold);
  const what = `${r.equal && r.valuesCompared ? ' after folding' : '; folded'} ${r.foldedBatchNorms} BatchNorm layers`;
  if (!r.foldTolerance) return `${what} (values not compared)`;
  const maxAbs = Math.max(0, ...folded.map((p) => p.values?.maxAbsDiff ?? 0));
  return `${what}, max |Δ| ${maxAbs.toPrecision(3)} (folded tensors compared with rtol ${r.foldTolerance.rtol.toExponential()}, atol ${r.foldTolerance.atol.toExponential()})`;
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
  const generated = r.generatedNames.a + r.generatedNames.b;
  if (generated) out.push(`${generated} tensors with exporter-generated names (A ${r.generatedNames.a}, B ${r.generatedNames.b}) were not paired by name: the files do not share them`);
  section('Only in A', ['name', 'dtype', 'shape'], r.onlyInA.map(brief));
  section('Only in B', ['name', 'dtype', 'shape'], r.onlyInB.map(brief));
  section('Ambiguous (not aligned; rename to disambiguate)', ['name', 'in', 'candidates in the other'], r.ambiguous.map((x) => [x.name, x.side.toUpperCase(), x.candidates.join(', ')]));
  section('Integer tensors in one only (not learned; not compared)', ['name', 'in', 'dtype', 'shape'], r.integersOnlyInOne.map((t) => [t.name, t.side.toUpperCase(), t.dtype, formatShape(t.shape)]));
  const names = (p: PairReport) => (p.a === p.b ? p.a : `${p.a} ↔ ${p.b}`);
  section('Paired by graph position', ['A', 'B', 'why'], r.matched.filter((p) => p.why).map((p) => [
    p.a, p.b, p.fold ? `${p.why}; ${p.fold.side.toUpperCase()} with BatchNorm ${p.fold.batchNorm} folded in (ε ${formatEpsilon(p.fold.epsilon)}, ${p.fold.epsilonFrom})` : p.why!,
  ]));
  section('Shape mismatches', ['name', 'A', 'B', 'note'], r.shapeMismatches.map((p) => [
    names(p), formatShape(p.shapeA), formatShape(p.shapeB), p.transpose ? `layout transpose (B = A.transpose(${p.transpose.join(',')}))` : '',
  ]));
  section('Dtype mismatches', ['name', 'A', 'B'], r.dtypeMismatches.map((p) => [names(p), p.dtypeA, p.dtypeB]));
  const constantRows = [
    ...r.constants.onlyInA.map((t) => [t.name, `${t.dtype} ${formatShape(t.shape)}`, '']),
    ...r.constants.onlyInB.map((t) => [t.name, '', `${t.dtype} ${formatShape(t.shape)}`]),
    ...r.constants.differing.map((d) => [d.name, d.a, d.b]),
  ];
  section('Constants that differ (graph constants: not model tensors, do not make A and B different)', ['name', 'A', 'B'], constantRows);
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
