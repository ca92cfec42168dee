import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { invalidInput, usageError } from '../core/errors.js';
import { readTextFile } from '../core/file.js';
import { firstLine, openSession, runOptions, setOrtVerbose, type ProviderChoice } from '../runtime/session.js';
import { makeFeeds, type InputOptions, type InputReport } from '../runtime/inputs.js';
import { compare, firstTopologyDifference, type ClassMap, type CompareResult } from '../runtime/compare.js';
import { detectFormat } from '../open.js';
import { checkHealth, type HealthReport, type NewRows } from '../ops/health.js';
import { graphNodesOf, openOnnx } from '../formats/onnx/index.js';
import type { GraphNode, ValueInfo } from '../formats/onnx/model.js';
import { applyPlanFile, classMapOfPlan, planBody, readPlan, type PlanFile } from './plan.js';
import { withModel } from './common.js';

export interface CheckOptions {
  /** Execution provider: cpu, cuda or auto (CUDA when it loads; the default). */
  provider?: ProviderChoice;
  /** Input shapes for dynamic dims, 'NAME=1x3x320x320'. */
  shape?: readonly string[];
  /** Input values, 'NAME=VALUE', 'NAME=V1,V2,…' or 'NAME=FILE.npy'. */
  input?: readonly string[];
  /** For a plan: fail below this fraction of parameters loaded (default 0.9). */
  minLoaded?: number;
  /** For a plan: tolerances of the output comparison with the source (defaults 1e-5 and 1e-4). */
  atol?: number;
  rtol?: number;
  /** For a plan: where the old classes are in grown outputs (default: the head layout plan infers). */
  classMap?: ClassMap;
  /** Show onnxruntime's own log. */
  verbose?: boolean;
  /** Values beyond ±this are a problem (default: ops/health's DEFAULT_MAX_ABS, which catches uninitialized memory). */
  maxAbs?: number;
  /** Called with the bytes of values read so far, and their total. */
  onProgress?: (done: number, total: number) => void;
}

/**
 * The pre-flight: the values of every weight and buffer are healthy (any checkpoint); an ONNX
 * model also loads in onnxruntime-node and one forward pass on generated (or given) inputs gives
 * finite outputs. For a plan (plan.json or a PlanFile), the applied target is checked, its
 * expanded rows on their own too, and when the plan's source is an ONNX model of the same graph,
 * the old classes' outputs must equal the source's. `ok` says whether all holds; a model that does
 * not load or run throws.
 */
export async function check(model: string | PlanFile, options: CheckOptions = {}): Promise<CheckReport> {
  setOrtVerbose(options.verbose === true);
  const choice = options.provider ?? 'auto';
  const inputOptions: InputOptions = { shape: options.shape && [...options.shape], input: options.input && [...options.input] };
  const label = typeof model === 'string' ? model : 'plan';
  if (options.maxAbs !== undefined && !(options.maxAbs > 0)) throw usageError(`--max-abs must be a positive number, got '${options.maxAbs}'`);
  const plan = typeof model !== 'string' ? model : isPlanFile(model) ? readPlan(model) : undefined;
  if (!plan) {
    if (options.minLoaded !== undefined) throw usageError('--min-loaded applies to a plan (ckpt check plan.json)');
    if (options.atol !== undefined || options.rtol !== undefined || options.classMap !== undefined) {
      throw usageError('--atol, --rtol and --class-map apply to a plan whose source is an ONNX model (ckpt check plan.json)');
    }
    return checkModel(label, label, detectFormat(label) === 'onnx', new Map(), choice, inputOptions, options);
  }
  const minLoaded = options.minLoaded ?? 0.9;
  if (!(minLoaded >= 0 && minLoaded <= 1)) throw usageError(`--min-loaded must be between 0 and 1, got '${options.minLoaded}'`);
  const planInfo = { path: label, fractionLoaded: plan.summary.fractionLoaded, minLoaded, enough: plan.summary.fractionLoaded >= minLoaded };
  const onnx = plan.target.format === 'onnx';
  const temp = fs.mkdtempSync(path.join(os.tmpdir(), 'ckpt-check-'));
  try {
    // Darknet weights are written as .weights, with their network's cfg beside them, and opened by that cfg.
    const darknet = plan.target.format === 'darknet';
    const written = path.join(temp, `applied${onnx ? '.onnx' : darknet ? '.weights' : path.extname(plan.target.path)}`);
    await applyPlanFile(label, written, plan);
    const applied = darknet ? path.join(temp, 'applied.cfg') : written;
    const newRows = new Map<string, NewRows>(plan.entries.filter((e) => e.expand).map((e) => [e.target, { expand: e.expand! }]));
    const report = await checkModel(applied, label, onnx, newRows, choice, inputOptions, options);
    report.plan = planInfo;
    if (onnx) report.sourceComparison = await compareWithSource(plan, applied, choice, inputOptions, { atol: options.atol, rtol: options.rtol, classMap: options.classMap });
    report.ok = report.ok && planInfo.enough && (report.sourceComparison?.result?.equal ?? true);
    return report;
  } finally {
    fs.rmSync(temp, { recursive: true, force: true });
  }
}

/** The values of `model`, and for an ONNX model one forward pass. */
async function checkModel(
  model: string, label: string, onnx: boolean, newRows: Map<string, NewRows>, choice: ProviderChoice, inputOptions: InputOptions, options: CheckOptions,
): Promise<CheckReport> {
  const health = await healthOf(model, { maxAbs: options.maxAbs, newRows, onProgress: options.onProgress });
  const forward = onnx ? await runCheck(model, choice, inputOptions, label) : undefined;
  return {
    model: label, ...forward, ...(onnx ? {} : { notRun: 'not an ONNX model: no forward pass, values checked only' }),
    health, ok: health.ok && (forward?.outputs.every((o) => o.finite) ?? true),
  };
}

/** Reads every weight and buffer of `model` once. */
async function healthOf(model: string, options: { maxAbs?: number; newRows: Map<string, NewRows>; onProgress?: (done: number, total: number) => void }): Promise<HealthReport> {
  return withModel(model, {}, (dict) => {
    const total = dict.tensors.reduce((n, t) => n + t.byteLength, 0);
    let done = 0;
    return checkHealth(dict, { maxAbs: options.maxAbs, newRows: options.newRows, onTensor: (t) => options.onProgress?.((done += t.byteLength), total) });
  });
}

export interface OutputReport { name: string; dtype: string; shape: number[]; finite: boolean; nonFinite: number }

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
  return withModel(plan.source.path, {}, (source) =>
    withModel(plan.target.path, {}, async (target) => classMapOfPlan((await planBody(source, target, plan.options)).body)));
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
