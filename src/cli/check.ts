import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ExitCode, invalidInput, usageError } from '../core/errors.js';
import { readTextFile } from '../core/file.js';
import { formatPercent } from '../core/percent.js';
import { firstLine, openSession, parseProvider, runOptions, setOrtVerbose, type ProviderChoice } from '../runtime/session.js';
import { makeFeeds, type InputOptions, type InputReport } from '../runtime/inputs.js';
import { compare, firstTopologyDifference, type ClassMap, type CompareResult } from '../runtime/compare.js';
import { detectFormat, open } from '../open.js';
import { checkHealth, type HealthReport, type NewRows } from '../ops/health.js';
import { graphNodesOf, openOnnx } from '../formats/onnx/index.js';
import type { GraphNode, ValueInfo } from '../formats/onnx/model.js';
import { applyPlanFile, planBody, readPlan, type PlanFile } from './plan.js';
import { classMapOfPlan, optionalNumber, parseClassMap, renderComparison } from './compare.js';
import { newTable } from './format.js';
import { progress } from './progress.js';

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

interface OutputReport { name: string; dtype: string; shape: number[]; finite: boolean; nonFinite: number }

/** A plan's applied model against its source model, when both are the same graph. */
export interface SourceComparison {
  source: string;
  /** Why the outputs were not compared (the source is not ONNX, or another graph). */
  skipped?: string;
  result?: CompareResult;
}

/** One forward pass in onnxruntime-node (ONNX models only). */
export interface ForwardPass {
  provider: 'cpu' | 'cuda';
  inputs: InputReport[];
  outputs: OutputReport[];
  milliseconds: number;
}

export interface CheckReport extends Partial<ForwardPass> {
  model: string;
  /** Why no forward pass ran: the checkpoint is not an ONNX model (its values are still checked). */
  notRun?: string;
  /** The values: non-finite, beyond --max-abs, weights that do not vary, BatchNorm variances ≤ 0. */
  health: HealthReport;
  ok: boolean;
  plan?: { path: string; fractionLoaded: number; minLoaded: number; enough: boolean };
  sourceComparison?: SourceComparison;
}

/**
 * The pre-flight: the values of every weight and buffer are healthy (any checkpoint); an ONNX
 * model also loads in onnxruntime-node and one forward pass on generated (or given) inputs gives
 * finite outputs. For a plan, the applied target is checked, its expanded rows on their own too,
 * and when the plan's source is an ONNX model of the same graph, the old classes' outputs must
 * equal the source's. Exit 0 when all holds, 1 otherwise, 3 when it does not load/run.
 */
export async function checkCommand(target: string, options: CheckOptions): Promise<number> {
  setOrtVerbose(options.verbose === true);
  const choice = parseProvider(options.ep);
  const inputOptions: InputOptions = { shape: options.shape, input: options.input };
  const tolerance = { atol: optionalNumber('--atol', options.atol), rtol: optionalNumber('--rtol', options.rtol) };
  const maxAbs = optionalNumber('--max-abs', options.maxAbs);
  if (maxAbs !== undefined && !(maxAbs > 0)) throw usageError(`--max-abs must be a positive number, got '${options.maxAbs}'`);
  let model = target;
  let plan: PlanFile | undefined;
  let planInfo: CheckReport['plan'];
  let temp: string | undefined;
  if (isPlanFile(target)) {
    plan = readPlan(target);
    const minLoaded = options.minLoaded === undefined ? 0.9 : Number(options.minLoaded);
    if (!(minLoaded >= 0 && minLoaded <= 1)) throw usageError(`--min-loaded must be between 0 and 1, got '${options.minLoaded}'`);
    planInfo = { path: target, fractionLoaded: plan.summary.fractionLoaded, minLoaded, enough: plan.summary.fractionLoaded >= minLoaded };
    temp = fs.mkdtempSync(path.join(os.tmpdir(), 'ckpt-check-'));
    model = path.join(temp, `applied${plan.target.format === 'onnx' ? '.onnx' : path.extname(plan.target.path)}`);
    await applyPlanFile(target, model);
  } else {
    if (options.minLoaded !== undefined) throw usageError('--min-loaded applies to a plan (ckpt check plan.json)');
    if (options.atol !== undefined || options.rtol !== undefined || options.classMap !== undefined) {
      throw usageError('--atol, --rtol and --class-map apply to a plan whose source is an ONNX model (ckpt check plan.json)');
    }
  }
  try {
    const onnx = plan ? plan.target.format === 'onnx' : detectFormat(target) === 'onnx';
    const newRows = new Map<string, NewRows>(plan?.entries.filter((e) => e.expand).map((e) => [e.target, { expand: e.expand! }]));
    const health = await healthOf(model, { maxAbs, newRows });
    const forward = onnx ? await runCheck(model, choice, inputOptions, target) : undefined;
    const report: CheckReport = {
      model: target, ...forward, ...(onnx ? {} : { notRun: 'not an ONNX model: no forward pass, values checked only' }),
      health, ok: health.ok && (forward?.outputs.every((o) => o.finite) ?? true),
    };
    if (planInfo) report.plan = planInfo;
    if (plan && onnx) {
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

/**
 * The applied plan must compute what the source computes on the classes they share: run when the
 * source is an ONNX model with the target's op sequence (the graph the plan's weights go into) and
 * every target tensor is loaded or expanded from it.
 */
async function compareWithSource(
  plan: PlanFile, applied: string, choice: ProviderChoice, inputs: InputOptions, given: { atol?: number; rtol?: number; classMap?: ClassMap },
): Promise<SourceComparison> {
  const source = plan.source.path;
  if (plan.source.format !== 'onnx') return { source, skipped: `the source is ${plan.source.format}, not an ONNX model` };
  // Outputs equal the source's only when every weight comes from it: a skipped head is meant to differ.
  if (plan.summary.skipped > 0) return { source, skipped: `${plan.summary.skipped} target tensor(s) are skipped, not taken from the source, so the outputs are meant to differ` };
  const [sourceGraph, targetGraph] = [await graphOf(source), await graphOf(plan.target.path)];
  const difference = firstTopologyDifference(sourceGraph.nodes, targetGraph.nodes);
  if (difference) return { source, skipped: `the source is another graph than the target (${difference})` };
  const [sourceInputs, targetInputs] = [inputSignature(sourceGraph.inputs), inputSignature(targetGraph.inputs)];
  if (sourceInputs !== targetInputs) {
    return { source, skipped: `the two models take other inputs (source ${sourceInputs}, target ${targetInputs}), so no one input runs both` };
  }
  const classMap = given.classMap ?? await replannedClassMap(plan);
  const result = await compare(source, applied, {
    ...inputs, atol: given.atol, rtol: given.rtol, provider: choice, classMap, labels: { a: source, b: `the plan applied to ${plan.target.path}` },
  });
  return { source, result };
}

/**
 * The head layout the comparison trusts: what `ckpt plan` infers afresh from the two models with
 * the plan's recorded options, never the plan's own entries — a hand-edited expansion that put
 * the old classes elsewhere must fail here, not define where they are.
 */
async function replannedClassMap(plan: PlanFile): Promise<ClassMap> {
  const source = await open(plan.source.path);
  try {
    const target = await open(plan.target.path);
    try {
      return classMapOfPlan((await planBody(source, target, plan.options)).body);
    } finally {
      await target.close();
    }
  } finally {
    await source.close();
  }
}

async function graphOf(model: string): Promise<{ nodes: GraphNode[]; inputs: ValueInfo[] }> {
  const dict = await openOnnx(model);
  try {
    return { nodes: graphNodesOf(dict) ?? [], inputs: (dict.metadata.inputs as ValueInfo[] | undefined) ?? [] };
  } finally {
    await dict.close();
  }
}

/** "x float32 [1,3,320,240]": names, types and fixed sizes, which one feed must fit in both models. */
const inputSignature = (inputs: readonly ValueInfo[]) =>
  inputs.map((i) => `${i.name} ${i.dtype ?? '?'} [${(i.shape ?? []).map((d) => (typeof d === 'number' ? d : '?')).join(',')}]`).join(', ');

function isPlanFile(file: string): boolean {
  if (!file.endsWith('.json')) return false;
  try {
    const head = readTextFile(file).slice(0, 200);
    return head.includes('"ckpt-plan"');
  } catch {
    return false;
  }
}

/** Reads every weight and buffer of MODEL once, with a progress bar on a terminal. */
async function healthOf(model: string, options: { maxAbs?: number; newRows: Map<string, NewRows> }): Promise<HealthReport> {
  const dict = await open(model);
  const bar = progress('checking values', dict.tensors.reduce((n, t) => n + t.byteLength, 0), 'bytes');
  try {
    return await checkHealth(dict, { ...options, onTensor: (t) => bar.tick(t.byteLength) });
  } finally {
    bar.done();
    await dict.close();
  }
}

export async function runCheck(model: string, choice: ProviderChoice, inputOptions: InputOptions, label = model): Promise<ForwardPass> {
  const { session, provider } = await openSession(model, choice, label);
  try {
    const { feeds, inputs } = await makeFeeds(session, inputOptions, label);
    const start = performance.now();
    let results: Awaited<ReturnType<typeof session.run>>;
    try {
      results = await session.run(feeds, runOptions());
    } catch (err) {
      const hint = inputOptions.shape?.length || inputOptions.input?.length ? '' : ' (dynamic dims? set input shapes with --shape NAME=1x3x320x320, values with --input NAME=VALUE)';
      throw invalidInput(label, 'forward pass', `${firstLine(err)}${hint}`);
    }
    const milliseconds = performance.now() - start;
    const outputs = Object.entries(results).map(([name, tensor]): OutputReport => {
      const nonFinite = nonFiniteCount(tensor.type, tensor.data);
      return { name, dtype: tensor.type, shape: [...tensor.dims], finite: nonFinite === 0, nonFinite };
    });
    return { provider, inputs, outputs, milliseconds };
  } finally {
    await session.release();
  }
}

/** NaN and infinities among float values (float16 as bit patterns: exponent all ones). */
function nonFiniteCount(type: string, data: unknown): number {
  let count = 0;
  if (data instanceof Float32Array || data instanceof Float64Array) {
    for (const v of data) if (!Number.isFinite(v)) count++;
  } else if (type === 'float16' && data instanceof Uint16Array) {
    for (const h of data) if ((h & 0x7c00) === 0x7c00) count++;
  }
  return count;
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
