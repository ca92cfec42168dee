import * as fs from 'node:fs';
import { sameShape } from '../core/dtype.js';
import * as os from 'node:os';
import * as path from 'node:path';
import { invalidInput, usageError } from '../core/errors.js';
import { graphNodesOf, openOnnx } from '../formats/onnx/index.js';
import type { GraphNode } from '../formats/onnx/model.js';
import { firstLine, openSession, requireOnnxModel, runOptions, type ProviderChoice } from './session.js';
import { exposingModel } from './expose.js';
import { makeFeeds, valuesOf, type Feeds, type InputOptions, type InputReport } from './inputs.js';
import type * as Ort from 'onnxruntime-node';

/**
 * Output comparison: two ONNX models run in onnxruntime-node on the same inputs, output by output
 * (max and mean |A−B|, cosine, within atol + rtol·|B|). With a class map, outputs of a grown head
 * are compared on the old classes only; with bisect, intermediate outputs name the first node
 * whose output diverges.
 */

/**
 * A grown axis: `blocks` blocks of sourceSize/blocks values each became targetSize/blocks, old
 * values first — or where `rows` says (a plan's row map: for each row of a target block, the
 * source row it came from, -1 for a new class).
 */
export interface Expansion {
  sourceSize: number;
  targetSize: number;
  blocks: number;
  rows?: readonly number[];
}

/** Old → new class counts (`90:92`), or the expansions of a plan (their exact axis sizes). */
export type ClassMap = { from: number; to: number } | { expansions: readonly Expansion[] };

export interface CompareOptions extends InputOptions {
  /** Equal when |A−B| ≤ atol + rtol·|B| everywhere (defaults DEFAULT_ATOL, DEFAULT_RTOL). */
  atol?: number;
  rtol?: number;
  classMap?: ClassMap;
  provider?: ProviderChoice;
  /** Name the first node whose output diverges (the graphs must have the same op sequence). */
  bisect?: boolean;
  /** Intermediate outputs exposed per run while bisecting (bounds memory; default 32). */
  bisectBatch?: number;
  /** How A and B are named in messages (default their paths). */
  labels?: { a: string; b: string };
}

export const DEFAULT_ATOL = 1e-5;
export const DEFAULT_RTOL = 1e-4;

/** Which values of a class output are compared: each block's first oldBlock values along `axis`, or those `rows` maps. */
export interface OldColumns {
  axis: number;
  blocks: number;
  oldBlock: number;
  newBlock: number;
  /** Present where old classes moved (a class map, a background row last): B's row j of a block holds A's row rows[j], -1 none. */
  rows?: number[];
}

export interface OutputComparison {
  name: string;
  dtype: string;
  shapeA: number[];
  shapeB: number[];
  /** Values compared (all of them, or the old classes' with a class map). */
  compared: number;
  columns?: OldColumns;
  maxAbs: number;
  meanAbs: number;
  /** Cosine similarity of the compared values (1 when both are all zeros). */
  cosine: number;
  /** Values outside the tolerance (a NaN or infinity on one side only counts here too). */
  outside: number;
  equal: boolean;
  /** Why the values could not be compared: present in one model only, shapes that no class map explains, dtypes. */
  problem?: string;
}

export interface DivergentNode {
  index: number;
  name: string;
  opType: string;
  output: OutputComparison;
}

export interface BisectReport {
  /** The first node, in graph order, with an output outside the tolerance; absent when none. */
  firstDivergent?: DivergentNode;
  nodes: number;
  /** onnxruntime runs of each model, each exposing at most `batch` intermediate outputs. */
  runs: number;
  batch: number;
}

export interface CompareResult {
  a: string;
  b: string;
  provider: 'cpu' | 'cuda';
  inputs: InputReport[];
  atol: number;
  rtol: number;
  classMap?: ClassMap;
  outputs: OutputComparison[];
  equal: boolean;
  bisect?: BisectReport;
}

type OrtTensor = Ort.Tensor;

export async function compare(a: string, b: string, options: CompareOptions = {}): Promise<CompareResult> {
  const labels = options.labels ?? { a, b };
  const atol = options.atol ?? DEFAULT_ATOL;
  const rtol = options.rtol ?? DEFAULT_RTOL;
  const choice = options.provider ?? 'auto';
  const bisectBatch = options.bisectBatch ?? 32;
  if (!(atol >= 0) || !(rtol >= 0)) throw usageError('--atol and --rtol must be numbers ≥ 0');
  if (!(Number.isInteger(bisectBatch) && bisectBatch >= 1)) throw usageError('--bisect-batch must be a whole number ≥ 1');
  requireOnnxModel(a, 'compare');
  requireOnnxModel(b, 'compare');
  // Checked before any model runs: a bisect that cannot be done is refused at once.
  const topology = options.bisect ? await sameTopology(a, b, labels) : undefined;

  // One session at a time: the second model is loaded after the first is released.
  let fed: Feeds | undefined;
  const first = await runModel(a, choice, labels.a, async (session) => (fed = await makeFeeds(session, options, labels.a)).feeds);
  const { feeds, inputs } = fed!;
  const second = await runModel(b, choice, labels.b, async (session) => {
    checkSameInputs(session, inputs, labels);
    return feeds;
  });

  const names = [...new Set([...Object.keys(first.outputs), ...Object.keys(second.outputs)])];
  const tolerance = { atol, rtol, classMap: options.classMap };
  const outputs = names.map((name) => compareTensors(name, first.outputs[name], second.outputs[name], tolerance));
  const equal = outputs.every((o) => o.equal);
  const result: CompareResult = {
    a: labels.a, b: labels.b, provider: first.provider, inputs, atol, rtol,
    ...(options.classMap ? { classMap: options.classMap } : {}), outputs, equal,
  };
  if (topology) result.bisect = equal ? { nodes: topology.a.length, runs: 0, batch: bisectBatch } : await bisect(a, b, topology, feeds, choice, labels, tolerance, bisectBatch);
  return result;
}

/** Opens a model, gets its feeds, runs it once (all outputs, or `fetches`), releases it. */
async function runModel(
  model: string, choice: ProviderChoice, label: string, feedsFor: (session: Ort.InferenceSession) => Promise<Record<string, OrtTensor>>,
  fetches?: readonly string[],
): Promise<{ outputs: Record<string, OrtTensor>; provider: 'cpu' | 'cuda' }> {
  const { session, provider } = await openSession(model, choice, label);
  try {
    const feeds = await feedsFor(session);
    try {
      const outputs = fetches ? await session.run(feeds, [...fetches], runOptions()) : await session.run(feeds, runOptions());
      return { outputs, provider };
    } catch (err) {
      throw invalidInput(label, 'forward pass', firstLine(err));
    }
  } finally {
    await session.release();
  }
}

/** B must take the inputs A was fed: same names and dtypes. */
function checkSameInputs(session: Ort.InferenceSession, inputs: readonly InputReport[], labels: { a: string; b: string }): void {
  const theirs = new Map(session.inputMetadata.map((m) => [m.name, m.isTensor ? m.type : 'non-tensor']));
  const ours = inputs.map((i) => i.name);
  const missing = ours.filter((n) => !theirs.has(n));
  const extra = [...theirs.keys()].filter((n) => !ours.includes(n));
  if (missing.length || extra.length) {
    throw invalidInput(labels.b, 'inputs', `the models take different inputs (A: ${ours.join(', ')}; B: ${[...theirs.keys()].join(', ')}); compare runs both on the same inputs`);
  }
  for (const input of inputs) {
    if (theirs.get(input.name) !== input.dtype) {
      throw invalidInput(labels.b, `input '${input.name}'`, `is ${theirs.get(input.name)} here and ${input.dtype} in A; compare runs both on the same inputs`);
    }
  }
}

interface Tolerance {
  atol: number;
  rtol: number;
  classMap?: ClassMap;
}

/** Compares one output (or intermediate tensor) of A and B. */
export function compareTensors(name: string, x: OrtTensor | undefined, y: OrtTensor | undefined, tolerance: Tolerance): OutputComparison {
  const base = {
    name, dtype: x?.type ?? y!.type, shapeA: x ? [...x.dims] : [], shapeB: y ? [...y.dims] : [],
    compared: 0, maxAbs: 0, meanAbs: 0, cosine: 0, outside: 0,
  };
  if (!x || !y) return { ...base, equal: false, problem: `only in ${x ? 'A' : 'B'}` };
  if (x.type !== y.type) return { ...base, dtype: `${x.type} / ${y.type}`, equal: false, problem: `dtype ${x.type} in A, ${y.type} in B` };
  if (x.type === 'string') {
    const same = sameShape(x.dims, y.dims) && (x.data as string[]).every((s, i) => s === (y.data as string[])[i]);
    return { ...base, compared: x.size, cosine: same ? 1 : 0, outside: same ? 0 : 1, equal: same };
  }
  const shapesMatch = sameShape(x.dims, y.dims);
  const columns = shapesMatch ? undefined : oldColumns(base.shapeA, base.shapeB, tolerance.classMap);
  if (!shapesMatch && !columns) {
    const why = tolerance.classMap ? 'shapes differ and the class map does not explain it' : 'shapes differ (a grown class head? --class-map OLD:NEW)';
    return { ...base, equal: false, problem: why };
  }
  const stats = differences(valuesOf(x), valuesOf(y), base.shapeA, base.shapeB, columns, tolerance);
  return { ...base, ...stats, ...(columns ? { columns } : {}), equal: stats.outside === 0 };
}

/**
 * The old classes' place in a grown output: the one axis whose size differs, split in blocks as
 * the class map says (90:92 on 285 → 291 channels: 3 blocks of 95 → 97, the first 95 of each).
 */
export function oldColumns(shapeA: readonly number[], shapeB: readonly number[], classMap: ClassMap | undefined): OldColumns | undefined {
  if (!classMap || shapeA.length !== shapeB.length) return undefined;
  const axes = shapeA.map((_, i) => i).filter((i) => shapeA[i] !== shapeB[i]);
  if (axes.length !== 1) return undefined;
  const axis = axes[0]!;
  const sourceSize = shapeA[axis]!;
  const targetSize = shapeB[axis]!;
  let blocks: number | undefined;
  let rows: readonly number[] | undefined;
  if ('expansions' in classMap) {
    const expansion = classMap.expansions.find((e) => e.sourceSize === sourceSize && e.targetSize === targetSize);
    blocks = expansion?.blocks;
    rows = expansion?.rows;
  } else {
    const grown = (targetSize - sourceSize) / (classMap.to - classMap.from);
    if (Number.isInteger(grown) && grown >= 1 && sourceSize / grown >= classMap.from) blocks = grown;
  }
  if (blocks === undefined || sourceSize % blocks !== 0 || targetSize % blocks !== 0) return undefined;
  const [oldBlock, newBlock] = [sourceSize / blocks, targetSize / blocks];
  const inOrder = !rows || rows.every((from, j) => from === (j < oldBlock ? j : -1));
  return { axis, blocks, oldBlock, newBlock, ...(inOrder ? {} : { rows: [...rows!] }) };
}

interface Differences {
  compared: number;
  maxAbs: number;
  meanAbs: number;
  cosine: number;
  outside: number;
}

/** Statistics over the compared values; identical non-finite values (NaN and NaN, ∞ and ∞) agree. */
function differences(
  x: Float64Array, y: Float64Array, shapeA: readonly number[], shapeB: readonly number[], columns: OldColumns | undefined, tolerance: Tolerance,
): Differences {
  let compared = 0;
  let maxAbs = 0;
  let sumAbs = 0;
  let finite = 0;
  let dot = 0;
  let normX = 0;
  let normY = 0;
  let outside = 0;
  const add = (u: number, v: number) => {
    compared++;
    if (!Number.isFinite(u) || !Number.isFinite(v)) {
      if (!(Object.is(u, v) || (Number.isNaN(u) && Number.isNaN(v)))) outside++;
      return;
    }
    const delta = Math.abs(u - v);
    finite++;
    sumAbs += delta;
    if (delta > maxAbs) maxAbs = delta;
    dot += u * v;
    normX += u * u;
    normY += v * v;
    if (delta > tolerance.atol + tolerance.rtol * Math.abs(v)) outside++;
  };
  if (!columns) {
    for (let i = 0; i < x.length; i++) add(x[i]!, y[i]!);
  } else {
    const { axis, blocks, oldBlock, newBlock } = columns;
    const rows = columns.rows ?? Array.from({ length: newBlock }, (_, j) => (j < oldBlock ? j : -1));
    const outer = shapeA.slice(0, axis).reduce((n, d) => n * d, 1);
    const inner = shapeA.slice(axis + 1).reduce((n, d) => n * d, 1);
    const sizeA = shapeA[axis]!;
    const sizeB = shapeB[axis]!;
    for (let o = 0; o < outer; o++) {
      for (let k = 0; k < blocks; k++) {
        for (let c = 0; c < newBlock; c++) {
          if (rows[c]! < 0) continue;
          const rowA = (o * sizeA + k * oldBlock + rows[c]!) * inner;
          const rowB = (o * sizeB + k * newBlock + c) * inner;
          for (let i = 0; i < inner; i++) add(x[rowA + i]!, y[rowB + i]!);
        }
      }
    }
  }
  const cosine = normX === 0 && normY === 0 ? 1 : normX === 0 || normY === 0 ? 0 : dot / Math.sqrt(normX * normY);
  return { compared, maxAbs, meanAbs: finite ? sumAbs / finite : 0, cosine, outside };
}

interface Topology {
  a: readonly GraphNode[];
  b: readonly GraphNode[];
  graphOutputs: { a: ReadonlySet<string>; b: ReadonlySet<string> };
}

/** The main graphs' nodes, when both have the same op sequence (else a clear refusal). */
async function sameTopology(a: string, b: string, labels: { a: string; b: string }): Promise<Topology> {
  const [nodesA, outputsA] = await graphOf(a, labels.a);
  const [nodesB, outputsB] = await graphOf(b, labels.b);
  const mismatch = firstTopologyDifference(nodesA, nodesB);
  if (mismatch) throw invalidInput(labels.b, 'graph', `--bisect needs two graphs of the same topology (the same op sequence): ${mismatch}`);
  return { a: nodesA, b: nodesB, graphOutputs: { a: outputsA, b: outputsB } };
}

async function graphOf(model: string, label: string): Promise<[GraphNode[], Set<string>]> {
  const dict = await openOnnx(model).catch((err: unknown) => {
    throw invalidInput(label, undefined, `not an ONNX model: ${firstLine(err)}`);
  });
  try {
    const outputs = new Set((dict.metadata.outputs as { name: string }[] | undefined ?? []).map((o) => o.name));
    return [graphNodesOf(dict) ?? [], outputs];
  } finally {
    await dict.close();
  }
}

/** Where two node lists stop having the same ops (and output counts), or undefined when they agree. */
export function firstTopologyDifference(a: readonly GraphNode[], b: readonly GraphNode[]): string | undefined {
  const op = (n: GraphNode) => (n.domain ? `${n.domain}.${n.opType}` : n.opType);
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    if (op(a[i]!) !== op(b[i]!)) return `node ${i} is ${op(a[i]!)} '${a[i]!.name}' in A, ${op(b[i]!)} '${b[i]!.name}' in B`;
    if (a[i]!.outputs.length !== b[i]!.outputs.length) return `node ${i} '${a[i]!.name}' has ${a[i]!.outputs.length} outputs in A, ${b[i]!.outputs.length} in B`;
  }
  return a.length === b.length ? undefined : `A has ${a.length} nodes, B ${b.length}`;
}

/**
 * Runs both models again with a batch of intermediate outputs exposed at a time, in graph order,
 * and stops at the first batch holding a divergent output: memory stays at `batch` tensors per
 * model. The search is linear over batches because "diverges" is not monotone along node order
 * (a branch beside the perturbed one stays equal), so halving could skip the first divergence.
 */
async function bisect(
  a: string, b: string, topology: Topology, feeds: Record<string, OrtTensor>, choice: ProviderChoice,
  labels: { a: string; b: string }, tolerance: Tolerance, batch: number,
): Promise<BisectReport> {
  const temp = fs.mkdtempSync(path.join(os.tmpdir(), 'ckpt-bisect-'));
  let runs = 0;
  try {
    for (let start = 0; start < topology.a.length; start += batch) {
      const indices = topology.a.map((_, i) => i).slice(start, start + batch);
      const pairs = indices.flatMap((i) => topology.a[i]!.outputs.map((name, k) => ({ node: i, a: name, b: topology.b[i]!.outputs[k]! }))).filter((p) => p.a && p.b);
      if (!pairs.length) continue;
      const exposedA = await exposing(a, pairs.map((p) => p.a), topology.graphOutputs.a, temp, 'a');
      const ranA = await runModel(exposedA, choice, labels.a, async () => feeds, pairs.map((p) => p.a));
      const exposedB = await exposing(b, pairs.map((p) => p.b), topology.graphOutputs.b, temp, 'b');
      const ranB = await runModel(exposedB, choice, labels.b, async () => feeds, pairs.map((p) => p.b));
      runs++;
      for (const pair of pairs) {
        const output = compareTensors(pair.a, ranA.outputs[pair.a], ranB.outputs[pair.b], tolerance);
        if (!output.equal) {
          const node = topology.a[pair.node]!;
          return { firstDivergent: { index: pair.node, name: node.name, opType: node.opType, output }, nodes: topology.a.length, runs, batch };
        }
      }
    }
    return { nodes: topology.a.length, runs, batch };
  } finally {
    fs.rmSync(temp, { recursive: true, force: true });
  }
}

/** A copy of the model with these tensors as extra graph outputs (those already outputs are left as they are). */
async function exposing(model: string, names: readonly string[], graphOutputs: ReadonlySet<string>, folder: string, stem: string): Promise<string> {
  const extra = [...new Set(names)].filter((n) => !graphOutputs.has(n));
  return extra.length ? exposingModel(model, extra, folder, stem) : model;
}

/** `90:92`, or a plan.json's expansions. */
export function parseClassCounts(text: string): ClassMap {
  const m = /^(\d+):(\d+)$/.exec(text);
  if (!m || Number(m[2]) <= Number(m[1]) || Number(m[1]) === 0) throw usageError(`--class-map '${text}': expected OLD:NEW with NEW > OLD > 0, e.g. 90:92, or a plan.json`);
  return { from: Number(m[1]), to: Number(m[2]) };
}

/** A class map in words, for reports. */
export function describeClassMap(map: ClassMap): string {
  if ('from' in map) return `${map.from} → ${map.to} classes`;
  return map.expansions.map((e) => `${e.sourceSize} → ${e.targetSize}${e.blocks > 1 ? ` in ${e.blocks} blocks` : ''}`).join(', ');
}
