import { RandomAccessFile } from '../../core/file.js';
import { alignedView, castFloats, isCastableFloat } from '../../core/cast.js';
import { usageError } from '../../core/errors.js';
import type { DType } from '../../core/dtype.js';
import type { StateDict, TensorInfo } from '../../core/statedict.js';
import type { DtypeOptions, WriteDType } from '../../ops/cast.js';
import { walkModel } from './model.js';
import { rewriteOnnx, type RewriteOptions, type RewriteReport, type TensorEdit } from './write.js';

/**
 * `--dtype` for ONNX output. The graph types every value a weight feeds, so a weight cannot just
 * be stored narrower: each cast initializer keeps its name, is stored in the new dtype, and a
 * Cast back to its old dtype, placed first in the main graph, feeds every node that read it
 * (subgraphs included). Only learned weights are cast; constants (shapes, scalars, epsilons),
 * Constant nodes and subgraph initializers stay as they are, each with its reason.
 */

/** An initializer stored narrower, and the value that restores its old dtype for the graph. */
export interface CastBack {
  /** The name of the Cast's output, which every consumer of the initializer reads instead. */
  readonly output: string;
  /** The dtype the Cast restores (the initializer's dtype in the source). */
  readonly to: DType;
}

/** What `--dtype` did to an ONNX model's floating tensors, for the command's report. */
export interface DtypeReport {
  readonly dtype: WriteDType;
  readonly cast: { name: string; from: DType }[];
  readonly kept: { name: string; dtype: DType; reason: string }[];
}

export interface OnnxCastPlan {
  readonly report: DtypeReport;
  /** Initializer source name → its Cast. */
  readonly castBack: ReadonlyMap<string, CastBack>;
  /** The tensors to store in the new dtype. */
  readonly tensors: readonly TensorInfo[];
  readonly notes: string[];
}

/** The largest finite float16 (65504) and the point from which rounding reaches infinity. */
const HALF_OVERFLOW = 65520;

/**
 * Decides which of the `written` tensors of the ONNX model `source` are stored as `options.dtype`.
 * A bfloat16 Cast needs opset 13: below it the model is refused rather than written unloadable.
 */
export async function planOnnxCast(source: StateDict, written: readonly TensorInfo[], options: DtypeOptions & { dtype: WriteDType }): Promise<OnnxCastPlan> {
  const to = options.dtype;
  const file = RandomAccessFile.open(source.path);
  let walk;
  try {
    walk = walkModel(file);
  } finally {
    file.close();
  }
  const opset = walk.opsetImport[''] ?? 1;
  if (to === 'bfloat16' && opset < 13) {
    throw usageError(`--dtype bfloat16: '${source.path}' imports ONNX opset ${opset}; Cast from bfloat16 needs opset 13 or later (use --dtype float16)`);
  }
  const taken = new Set<string>([
    ...walk.uses.keys(), ...walk.producers.keys(), ...walk.tensors.map((t) => t.source),
    ...walk.inputs.map((i) => i.name), ...walk.outputs.map((o) => o.name), ...walk.initializerInputs,
  ]);
  const graphOutputs = new Set(walk.outputs.map((o) => o.name));
  const overridable = new Set(walk.initializerInputs);
  const inSubgraphs = new Set(walk.tensors.filter((t) => t.scope !== '' && t.origin === 'initializer').map((t) => t.source));
  const report: DtypeReport = { dtype: to, cast: [], kept: [] };
  const castBack = new Map<string, CastBack>();
  const tensors: TensorInfo[] = [];
  for (const t of written) {
    if (!isCastableFloat(t.dtype) || t.dtype === to) continue;
    const reason = await keptBecause(t, options, walk.uses.get(t.source) ?? [], { graphOutputs, overridable, inSubgraphs }, to);
    if (reason) {
      report.kept.push({ name: t.name, dtype: t.dtype, reason });
      continue;
    }
    const output = uniqueName(`${t.source}_as_${t.dtype}`, taken);
    castBack.set(t.source, { output, to: t.dtype });
    report.cast.push({ name: t.name, from: t.dtype });
    tensors.push(t);
  }
  const notes = dtypeNotes(report);
  for (const p of options.keepDtype ?? []) {
    if (!written.some((t) => p.test(t.name))) notes.push(`--keep-dtype '${p.text}' matched no tensor`);
  }
  return { report, castBack, tensors, notes };
}

async function keptBecause(
  t: TensorInfo, options: DtypeOptions, uses: readonly { opType: string }[],
  graph: { graphOutputs: ReadonlySet<string>; overridable: ReadonlySet<string>; inSubgraphs: ReadonlySet<string> }, to: WriteDType,
): Promise<string | undefined> {
  const pattern = options.keepDtype?.find((p) => p.test(t.name));
  if (pattern) return `--keep-dtype '${pattern.text}'`;
  if (t.origin === 'constant') return 'the value of a Constant node (only initializers are cast)';
  if (t.origin !== 'initializer') return `a ${t.origin.replace('_', ' ')} (only dense initializers are cast)`;
  if (t.location?.scope) return `an initializer of the subgraph ${t.location.scope} (only main-graph initializers are cast)`;
  if (graph.graphOutputs.has(t.source)) return "a graph output: its dtype is part of the model's interface";
  // Declaring the input narrower would be consistent, but onnxruntime(-node 1.29) crashes loading
  // any float16 initializer that is also a graph input: such a model would not load.
  if (graph.overridable.has(t.source)) return `also a graph input (overridable, as before IR 4): retyped as ${to}, onnxruntime would not load the model`;
  // onnxruntime then reads the outer initializer inside that subgraph, and onnx types it so:
  // rewiring by scope would change what the subgraph computes.
  if (graph.inSubgraphs.has(t.source)) return 'a subgraph has an initializer of the same name, so which one it reads is ambiguous';
  if (uses.length === 0) return 'no node reads it';
  if (t.role === 'constant') {
    const ops = [...new Set(uses.map((u) => u.opType))].join(', ');
    return `a constant to ${ops} (a shape, scalar, epsilon or index, not a learned weight): rounding it would change what the graph computes`;
  }
  if (to === 'float16') {
    const largest = largestMagnitude(alignedView(castFloats(await t.read(), t.dtype, 'float64'), Float64Array));
    if (largest >= HALF_OVERFLOW) return `values up to ${largest.toPrecision(4)} overflow float16 (largest finite 65504)`;
  }
  return undefined;
}

/** The largest finite magnitude among float64 values (infinities stay infinities in any dtype). */
function largestMagnitude(values: Float64Array): number {
  let largest = 0;
  for (const v of values) {
    const m = Math.abs(v);
    if (m > largest && m !== Infinity) largest = m;
  }
  return largest;
}

function uniqueName(base: string, taken: Set<string>): string {
  let name = base;
  for (let n = 1; taken.has(name); n++) name = `${base}_${n}`;
  taken.add(name);
  return name;
}

/** The plan's tensors as edits storing them in the new dtype (over an edit that already replaces one, its values). */
function castEdits(plan: OnnxCastPlan, edits: Map<TensorInfo, TensorEdit>): void {
  const to = plan.report.dtype;
  for (const t of plan.tensors) {
    const earlier = edits.get(t);
    const from = earlier?.kind === 'replace' ? earlier.dtype : t.dtype;
    const read = earlier?.kind === 'replace' ? earlier.read : () => t.read();
    edits.set(t, { kind: 'replace', dtype: to, shape: t.shape, read: async () => castFloats(await read(), from, to) });
  }
}

/** The report as notes: counts, the first names, and each distinct reason for keeping. */
function dtypeNotes(report: DtypeReport): string[] {
  const first = (names: string[]) => `${names.slice(0, 6).join(', ')}${names.length > 6 ? ', …' : ''}`;
  const notes = [report.cast.length
    ? `${report.cast.length} float weight(s) stored as ${report.dtype} (--dtype, rounded to nearest even), each read through a Cast back to its dtype inserted first in the graph: ${first(report.cast.map((c) => c.name))}`
    : `no float weight could be stored as ${report.dtype} (--dtype): the model is written with its dtypes`];
  const byReason = new Map<string, string[]>();
  for (const k of report.kept) byReason.set(k.reason, [...(byReason.get(k.reason) ?? []), k.name]);
  for (const [reason, names] of byReason) notes.push(`${names.length} kept their dtype, ${reason}: ${first(names)}`);
  return notes;
}

/**
 * Rewrites the ONNX model `source` with `edits`, applying `--dtype` (when given) to the `written`
 * tensors on top of them. Returns the rewrite's report, the notes to show (the cast's first) and
 * what was cast and kept.
 */
export async function rewriteOnnxWithDtype(
  source: StateDict, written: readonly TensorInfo[], edits: Map<TensorInfo, TensorEdit>, out: string, options: RewriteOptions & DtypeOptions,
): Promise<{ report: RewriteReport; notes: string[]; dtypes?: DtypeReport }> {
  const { dtype, keepDtype, ...rewriteOptions } = options;
  const plan = dtype ? await planOnnxCast(source, written, { dtype, ...(keepDtype ? { keepDtype } : {}) }) : undefined;
  if (plan) castEdits(plan, edits);
  const report = await rewriteOnnx(source.path, edits, out, { ...rewriteOptions, ...(plan ? { castBack: plan.castBack } : {}) });
  const notes = [...(plan?.notes ?? []), ...(report.externalData ? [report.externalData] : [])];
  return { report, notes, ...(plan ? { dtypes: plan.report } : {}) };
}
