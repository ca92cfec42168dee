import { invalidInput } from '../core/errors.js';
import { readTextFile } from '../core/file.js';
import { firstLine, openSession, runOptions, type ProviderChoice } from '../runtime/session.js';
import { makeFeeds, type InputOptions, type InputReport } from '../runtime/inputs.js';
import { compare, firstTopologyDifference, type ClassMap, type CompareResult } from '../runtime/compare.js';
import { open } from '../open.js';
import { graphNodesOf, openOnnx } from '../formats/onnx/index.js';
import type { GraphNode, ValueInfo } from '../formats/onnx/model.js';
import { classMapOfPlan, planBody, type PlanFile } from './plan.js';

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
export async function compareWithSource(
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

export function isPlanFile(file: string): boolean {
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
