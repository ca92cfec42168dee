import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { invalidInput, usageError } from '../core/errors.js';
import { readTextFile } from '../core/file.js';
import { firstLine, openSession, requireOnnxModel, runOptions, setOrtVerbose, type ProviderChoice } from '../runtime/session.js';
import { makeFeeds, type InputOptions, type InputReport } from '../runtime/inputs.js';
import { compare, firstTopologyDifference, type ClassMap, type CompareResult } from '../runtime/compare.js';
import { open } from '../open.js';
import { graphNodesOf, openOnnx } from '../formats/onnx/index.js';
import type { GraphNode, ValueInfo } from '../formats/onnx/model.js';
import { applyPlanFile, classMapOfPlan, planBody, readPlan, type PlanFile } from './plan.js';

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
}

/**
 * The pre-flight: load the model in onnxruntime-node, run one forward pass on generated (or given)
 * inputs, report output shapes and whether every value is finite. For a plan (plan.json or a
 * PlanFile), the applied target is checked, and when the plan's source is an ONNX model of the
 * same graph, the old classes' outputs must equal the source's. `ok` says whether all holds;
 * a model that does not load or run throws.
 */
export async function check(model: string | PlanFile, options: CheckOptions = {}): Promise<CheckReport> {
  setOrtVerbose(options.verbose === true);
  const choice = options.provider ?? 'auto';
  const inputOptions: InputOptions = { shape: options.shape && [...options.shape], input: options.input && [...options.input] };
  const label = typeof model === 'string' ? model : 'plan';
  const plan = typeof model !== 'string' ? model : isPlanFile(model) ? readPlan(model) : undefined;
  if (!plan) {
    if (options.minLoaded !== undefined) throw usageError('--min-loaded applies to a plan (ckpt check plan.json)');
    if (options.atol !== undefined || options.rtol !== undefined || options.classMap !== undefined) {
      throw usageError('--atol, --rtol and --class-map apply to a plan whose source is an ONNX model (ckpt check plan.json)');
    }
    requireOnnxModel(label, 'check');
    return runCheck(label, choice, inputOptions, label);
  }
  const minLoaded = options.minLoaded ?? 0.9;
  if (!(minLoaded >= 0 && minLoaded <= 1)) throw usageError(`--min-loaded must be between 0 and 1, got '${options.minLoaded}'`);
  const planInfo = { path: label, fractionLoaded: plan.summary.fractionLoaded, minLoaded, enough: plan.summary.fractionLoaded >= minLoaded };
  if (plan.target.format !== 'onnx') throw usageError(`check runs ONNX models; the plan's target ${plan.target.path} is ${plan.target.format}`);
  const temp = fs.mkdtempSync(path.join(os.tmpdir(), 'ckpt-check-'));
  try {
    const applied = path.join(temp, 'applied.onnx');
    await applyPlanFile(label, applied, plan);
    const report = await runCheck(applied, choice, inputOptions, label);
    report.plan = planInfo;
    report.sourceComparison = await compareWithSource(plan, applied, choice, inputOptions, { atol: options.atol, rtol: options.rtol, classMap: options.classMap });
    report.ok = report.ok && planInfo.enough && (report.sourceComparison.result?.equal ?? true);
    return report;
  } finally {
    fs.rmSync(temp, { recursive: true, force: true });
  }
}

export interface OutputReport { name: string; dtype: string; shape: number[]; finite: boolean; nonFinite: number }

/** A plan's applied model against its source model, when both are the same graph. */
export interface SourceComparison {
  source: string;
  /** Why the outputs were not compared (the source is not ONNX, or another graph). */
  skipped?: string;
  result?: CompareResult;
}

export interface CheckReport {
  model: string;
  provider: 'cpu' | 'cuda';
  inputs: InputReport[];
  outputs: OutputReport[];
  milliseconds: number;
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

export async function runCheck(model: string, choice: ProviderChoice, inputOptions: InputOptions, label = model): Promise<CheckReport> {
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
    return { model: label, provider, inputs, outputs, milliseconds, ok: outputs.every((o) => o.finite) };
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
