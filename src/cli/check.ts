import { ExitCode } from '../core/errors.js';
import { formatPercent } from '../core/percent.js';
import { parseProvider } from '../runtime/session.js';
import { check, type CheckReport } from '../api/check.js';
import { optionalNumber, parseClassMap, renderComparison } from './compare.js';
import { newTable } from './format.js';
import { reportedProgress } from './progress.js';

export interface CheckOptions {
  ep?: string;
  shape?: string[];
  input?: string[];
  minLoaded?: string;
  atol?: string;
  rtol?: string;
  classMap?: string;
  verbose?: boolean;
  maxAbs?: string;
  json?: boolean;
}

/** `ckpt check PATH|plan.json`: exit 0 when all holds, 1 otherwise, 3 when it does not load/run. */
export async function checkCommand(target: string, options: CheckOptions): Promise<number> {
  const bar = reportedProgress('checking values');
  const report = await check(target, {
    ...options, provider: parseProvider(options.ep), minLoaded: optionalNumber('--min-loaded', options.minLoaded),
    atol: optionalNumber('--atol', options.atol), rtol: optionalNumber('--rtol', options.rtol), maxAbs: optionalNumber('--max-abs', options.maxAbs),
    classMap: options.classMap === undefined ? undefined : parseClassMap(options.classMap),
    onProgress: bar.onProgress,
  }).finally(() => bar.done());
  process.stdout.write(options.json ? `${JSON.stringify(report, null, 2)}\n` : renderCheck(report));
  return report.ok ? ExitCode.ok : ExitCode.differs;
}

function renderCheck(r: CheckReport): string {
  const failures = [
    ...(r.health.ok ? [] : [`${r.health.problems.length} value problem(s)`]),
    ...(r.outputs?.some((o) => !o.finite) ? ['non-finite outputs'] : []),
    ...(r.plan && !r.plan.enough ? ['too few parameters loaded'] : []),
    ...(r.sourceComparison?.result && !r.sourceComparison.result.equal ? ["outputs differ from the source's"] : []),
  ];
  const verdict = r.ok ? 'OK' : `FAILED (${failures.join('; ')})`;
  const ran = r.provider === undefined ? r.notRun : `ran on ${r.provider} in ${r.milliseconds!.toFixed(1)} ms`;
  const lines = [`check: ${r.model}: ${verdict} — ${ran}`];
  if (r.inputs && r.outputs) {
    const inputs = newTable(['input', 'dtype', 'shape', 'values']);
    inputs.push(...r.inputs.map((i) => [i.name, i.dtype, `[${i.shape.join(', ')}]`, i.from === 'generated' ? 'generated' : i.from === 'file' ? 'from file' : 'given']));
    const outputs = newTable(['output', 'dtype', 'shape', 'finite']);
    outputs.push(...r.outputs.map((o) => [o.name, o.dtype, `[${o.shape.join(', ')}]`, o.finite ? 'yes' : `NO (${o.nonFinite} non-finite)`]));
    lines.push(inputs.toString(), outputs.toString());
  }
  const h = r.health;
  lines.push(`values: ${h.checked} weights and buffers read; ${h.ok ? 'all finite, within ±' + h.maxAbs.toExponential().replace('e+', 'e') + ', weights vary, variances positive' : `${h.problems.length} problem(s)`}`);
  if (!h.ok) {
    const problems = newTable(['tensor', 'check', 'detail'], ['elide', 'keep', 'wrap']);
    problems.push(...h.problems.map((p) => [p.tensor, p.check, p.detail]));
    lines.push(problems.toString());
  }
  if (r.plan) {
    lines.push(`plan ${r.plan.path}: ${formatPercent(r.plan.fractionLoaded)} of parameters loaded (minimum ${formatPercent(r.plan.minLoaded)})${r.plan.enough ? '' : ' — BELOW THE MINIMUM'}`);
  }
  const c = r.sourceComparison;
  if (c?.skipped) lines.push(`outputs not compared with the source ${c.source}: ${c.skipped}`);
  if (c?.result) lines.push(renderComparison(c.result, 'outputs vs the source').trimEnd());
  return `${lines.join('\n')}\n`;
}
