import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ExitCode, usageError } from '../core/errors.js';
import { formatPercent } from '../core/percent.js';
import { parseProvider, requireOnnxModel, setOrtVerbose } from '../runtime/session.js';
import type { InputOptions } from '../runtime/inputs.js';
import { applyPlanFile, readPlan, type PlanFile } from '../api/plan.js';
import { compareWithSource, isPlanFile, runCheck, type CheckReport } from '../api/check.js';
import { optionalNumber, parseClassMap, renderComparison } from './compare.js';
import { newTable } from './format.js';

export interface CheckOptions {
  ep?: string;
  shape?: string[];
  input?: string[];
  minLoaded?: string;
  atol?: string;
  rtol?: string;
  classMap?: string;
  verbose?: boolean;
  json?: boolean;
}

/**
 * The pre-flight: load the model in onnxruntime-node, run one forward pass on generated (or given)
 * inputs, report output shapes and whether every value is finite. For a plan, the applied target
 * is checked, and when the plan's source is an ONNX model of the same graph, the old classes'
 * outputs must equal the source's. Exit 0 when all holds, 1 otherwise, 3 when it does not
 * load/run, 6 when the file is not an ONNX model.
 */
export async function checkCommand(target: string, options: CheckOptions): Promise<number> {
  setOrtVerbose(options.verbose === true);
  const choice = parseProvider(options.ep);
  const inputOptions: InputOptions = { shape: options.shape, input: options.input };
  const tolerance = { atol: optionalNumber('--atol', options.atol), rtol: optionalNumber('--rtol', options.rtol) };
  let model = target;
  let plan: PlanFile | undefined;
  let planInfo: CheckReport['plan'];
  let temp: string | undefined;
  if (isPlanFile(target)) {
    plan = readPlan(target);
    const minLoaded = options.minLoaded === undefined ? 0.9 : Number(options.minLoaded);
    if (!(minLoaded >= 0 && minLoaded <= 1)) throw usageError(`--min-loaded must be between 0 and 1, got '${options.minLoaded}'`);
    planInfo = { path: target, fractionLoaded: plan.summary.fractionLoaded, minLoaded, enough: plan.summary.fractionLoaded >= minLoaded };
    if (plan.target.format !== 'onnx') throw usageError(`check runs ONNX models; the plan's target ${plan.target.path} is ${plan.target.format}`);
    temp = fs.mkdtempSync(path.join(os.tmpdir(), 'ckpt-check-'));
    model = path.join(temp, 'applied.onnx');
    await applyPlanFile(target, model);
  } else {
    if (options.minLoaded !== undefined) throw usageError('--min-loaded applies to a plan (ckpt check plan.json)');
    if (options.atol !== undefined || options.rtol !== undefined || options.classMap !== undefined) {
      throw usageError('--atol, --rtol and --class-map apply to a plan whose source is an ONNX model (ckpt check plan.json)');
    }
    requireOnnxModel(target, 'check');
  }
  try {
    const report = await runCheck(model, choice, inputOptions, target);
    if (planInfo) report.plan = planInfo;
    if (plan) {
      const classMap = options.classMap === undefined ? undefined : parseClassMap(options.classMap);
      report.sourceComparison = await compareWithSource(plan, model, choice, inputOptions, { ...tolerance, classMap });
    }
    report.ok = report.ok && (planInfo?.enough ?? true) && (report.sourceComparison?.result?.equal ?? true);
    process.stdout.write(options.json ? `${JSON.stringify(report, null, 2)}\n` : renderCheck(report));
    return report.ok ? ExitCode.ok : ExitCode.differs;
  } finally {
    if (temp) fs.rmSync(temp, { recursive: true, force: true });
  }
}

function renderCheck(r: CheckReport): string {
  const failures = [
    ...(r.outputs.some((o) => !o.finite) ? ['non-finite outputs'] : []),
    ...(r.plan && !r.plan.enough ? ['too few parameters loaded'] : []),
    ...(r.sourceComparison?.result && !r.sourceComparison.result.equal ? ["outputs differ from the source's"] : []),
  ];
  const verdict = r.ok ? 'OK' : `FAILED (${failures.join('; ')})`;
  const lines = [`check: ${r.model}: ${verdict} — ran on ${r.provider} in ${r.milliseconds.toFixed(1)} ms`];
  const inputs = newTable(['input', 'dtype', 'shape', 'values']);
  inputs.push(...r.inputs.map((i) => [i.name, i.dtype, `[${i.shape.join(', ')}]`, i.from === 'generated' ? 'generated' : i.from === 'file' ? 'from file' : 'given']));
  const outputs = newTable(['output', 'dtype', 'shape', 'finite']);
  outputs.push(...r.outputs.map((o) => [o.name, o.dtype, `[${o.shape.join(', ')}]`, o.finite ? 'yes' : `NO (${o.nonFinite} non-finite)`]));
  lines.push(inputs.toString(), outputs.toString());
  if (r.plan) {
    lines.push(`plan ${r.plan.path}: ${formatPercent(r.plan.fractionLoaded)} of parameters loaded (minimum ${formatPercent(r.plan.minLoaded)})${r.plan.enough ? '' : ' — BELOW THE MINIMUM'}`);
  }
  const c = r.sourceComparison;
  if (c?.skipped) lines.push(`outputs not compared with the source ${c.source}: ${c.skipped}`);
  if (c?.result) lines.push(renderComparison(c.result, 'outputs vs the source').trimEnd());
  return `${lines.join('\n')}\n`;
}
