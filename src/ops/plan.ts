import { sameShape, shapeText, type DType } from '../core/dtype.js';
import { isParameter } from '../core/roles.js';
import { isFloat } from '../core/decode.js';
import { parameterCount, type TensorInfo, type TensorRole } from '../core/statedict.js';
import { usageError } from '../core/errors.js';
import { formatPercent } from '../core/percent.js';
import { alignTensors, layoutPermutation, letterPermutation, type MatchReason } from './align.js';
import type { Pattern } from './select.js';
import { isGeneratedName } from '../core/names.js';
import { consumerPositions, matchStructure, moduleOrder, type FoldSource, type ModelView } from './structure.js';
import { headPlanner, type HeadOptions } from './heads.js';

/**
 * Partial-load planning: for every tensor of the model to train (TARGET), where its initial
 * values come from in the pretrained checkpoint (SOURCE). Pure: works on tensor lists, reads no
 * values; `apply` carries a plan out.
 */
export const PLAN_VERSION = 2;

export type PlanMode = 'auto' | 'full' | 'detection' | 'classification';
export type InitKind = 'target' | 'zeros' | 'normal';

export interface ExpandSpec {
  /** The axis along which target is larger. */
  axis: number;
  sourceSize: number;
  targetSize: number;
  /** Packed heads (YOLO: anchors × (5 + classes)): each anchor's block is copied to its new place. */
  blocks: number;
  /** How the new positions are filled: the target's own values, zeros, or N(0, 0.01²). */
  init: InitKind;
  /** The head layout (src/ops/heads.ts): classes, background-first, anchors:3, yolo:3, box-per-class, … */
  layout: string;
  sourceClasses: number;
  targetClasses: number;
  /** Per block: for each target row, the source row of the same block it copies; -1 = initialized. */
  rows: number[];
}

export type SkipReason = 'excluded' | 'missing' | 'generated-name' | 'shape' | 'dtype' | 'ambiguous' | 'head' | 'not-backbone' | 'batchnorm';

/** A target tensor computed from a source conv/linear layer and the BatchNormalization after it. */
export interface FoldSpec {
  part: 'weight' | 'bias';
  /** Canonical SOURCE names. */
  weight: string;
  bias?: string;
  scale: string;
  shift: string;
  mean: string;
  variance: string;
  epsilon: number;
  /** The BatchNorm attribute in the source graph, or the framework default when the file has no graph. */
  epsilonFrom: string;
  /** The source weight's output-channel axis. */
  axis: number;
}

export interface PlanEntry {
  /** Canonical name in TARGET. */
  target: string;
  /** The name as in the TARGET file. */
  targetInFile: string;
  dtype: DType;
  shape: number[];
  parameters: number;
  /** The target tensor's role; constants are not parameters and are kept unless --load-constants. */
  role?: TensorRole;
  action: 'load' | 'expand' | 'fold' | 'skip' | 'keep';
  /** Canonical name in SOURCE. */
  source?: string;
  /** The name as in the SOURCE file. */
  sourceInFile?: string;
  sourceShape?: number[];
  sourceDtype?: DType;
  /** Why this source tensor: exact name, wrapper prefix, unique suffix + shape, graph position, layout. */
  why?: string;
  transpose?: number[];
  cast?: { from: DType; to: DType };
  expand?: ExpandSpec;
  fold?: FoldSpec;
  skip?: { reason: SkipReason; detail: string; pattern?: string; candidates?: string[] };
  /** Left as in TARGET: graph constants (shapes, indices, anchor priors) are the target's own. */
  keep?: { reason: 'constant'; detail: string };
}

export interface PlanOptions {
  mode?: PlanMode;
  exclude?: readonly Pattern[];
  /** classification mode: tensors matching these are the backbone. */
  backbone?: readonly Pattern[];
  /** Pair every tensor not paired by name by its place in the computation (not only generated names). */
  matchByOrder?: boolean;
  expandClasses?: { from: number; to: number };
  init?: InitKind;
  /** Also load graph constants from SOURCE (by default each model keeps its own). */
  loadConstants?: boolean;
  /** Head layouts stated (--head), a class map (--classes), block counts from the graphs. */
  heads?: HeadOptions;
}

export interface PlanSummary {
  targetTensors: number;
  /** Loaded or folded: values from SOURCE as they are, or with a BatchNorm folded in. */
  loaded: number;
  folded: number;
  /** BatchNorm layers of SOURCE folded into TARGET's conv/linear layers. */
  foldedBatchNorms: number;
  expanded: number;
  /** Target tensors kept as they are (graph constants). */
  kept: number;
  skipped: number;
  /** Weights and buffers of TARGET; constants are not parameters. */
  targetParameters: number;
  /** Parameters whose values come from SOURCE: loaded tensors plus the copied part of expanded ones. */
  parametersFromSource: number;
  fractionLoaded: number;
  skippedBy: Record<string, number>;
  /** --mode full only: some target tensor does not load as it is; `apply` refuses such a plan unless --force. */
  fullModeFailed?: boolean;
}

export interface PlanBody {
  entries: PlanEntry[];
  unusedSource: string[];
  summary: PlanSummary;
}

const WHY: Record<Exclude<MatchReason, 'structure'>, string> = {
  name: 'exact name',
  prefix: 'same name without module./model. prefix',
  convention: 'same name across framework conventions (kernel → weight, _ → .)',
  suffix: 'unique name suffix with the same shape',
};

interface Pairing { source: TensorInfo; why: string; permutation?: readonly number[]; fold?: FoldSource }

const viewOf = (x: readonly TensorInfo[] | ModelView): ModelView => ('tensors' in x ? x : { format: '', tensors: x });

/**
 * SOURCE and TARGET as tensor lists, or as model views with their graphs (ONNX nodes), which
 * structural matching, BatchNorm folding and classification mode read.
 */
export function makePlan(sourceModel: readonly TensorInfo[] | ModelView, targetModel: readonly TensorInfo[] | ModelView, options: PlanOptions = {}): PlanBody {
  const [sourceView, targetView] = [viewOf(sourceModel), viewOf(targetModel)];
  const [source, target] = [sourceView.tensors, targetView.tensors];
  const mode = options.mode ?? 'auto';
  const init = options.init ?? 'target';
  const exclude = options.exclude ?? [];
  const excludedBy = (t: TensorInfo) => exclude.find((p) => p.test(t.name));
  // Constants take no part in matching unless asked: a source's Reshape shape or anchor priors
  // are never evidence for, nor values of, the target's.
  const matchable = (t: TensorInfo) => !excludedBy(t) && (options.loadConstants || isParameter(t));
  const [sourceMatchable, targetMatchable] = [source.filter(matchable), target.filter(matchable)];
  const alignment = alignTensors(sourceMatchable, targetMatchable);
  const sourceByName = new Map(source.map((s) => [s.name, s]));
  const pairs = new Map<TensorInfo, Pairing>();
  for (const p of alignment.pairs) pairs.set(p.b, { source: p.a, why: WHY[p.reason as keyof typeof WHY], ...(p.permutation ? { permutation: p.permutation } : {}) });
  const ambiguous = new Map<string, string[]>();
  for (const a of alignment.ambiguous) {
    if (a.side === 'b') ambiguous.set(a.name, [...a.candidates]);
    else for (const c of a.candidates) ambiguous.set(c, [a.name]);
  }
  // Layers with exporter-generated names (and with --match-by-order, every layer left) are
  // paired by their place in the computation.
  const structure = matchStructure(
    { ...sourceView, tensors: sourceMatchable },
    { ...targetView, tensors: targetMatchable },
    {
      paired: new Set([...pairs].flatMap(([t, p]) => [t, p.source])),
      accept: (s, t) => options.matchByOrder === true || isGeneratedName(s.weight.name) || isGeneratedName(t.weight.name),
    },
  );
  for (const p of structure.pairs) {
    pairs.set(p.target, { source: p.source, why: p.why, ...(p.fold ? { fold: p.fold } : {}) });
    ambiguous.delete(p.target.name);
  }
  const structurallyAmbiguous = new Set<string>();
  for (const a of structure.ambiguous) {
    if (pairs.has(a.target)) continue;
    ambiguous.set(a.target.name, a.candidates.map((c) => c.name));
    structurallyAmbiguous.add(a.target.name);
  }
  // A generated float name in both graphs that no layer covers (PRelu slopes, LSTM weights):
  // paired by name only where both graphs read it at the same place.
  const [sourcePlaces, targetPlaces] = [consumerPositions(sourceView), consumerPositions(targetView)];
  const claimed = new Set([...pairs.values()].map((p) => p.source));
  for (const t of alignment.generated) {
    const s = sourceByName.get(t.name);
    const place = targetPlaces.get(t);
    if (!s || pairs.has(t) || claimed.has(s) || !place || sourcePlaces.get(s) !== place || !isFloat(t.dtype) || !sameShape(s.shape, t.shape)) continue;
    const [op, input] = place.split(':');
    pairs.set(t, { source: s, why: `graph position: same name, read by ${op} as input ${input} in both graphs` });
  }
  const unfoldable = new Map(structure.unfoldable.map((u) => [u.target, u.detail]));

  const inBackbone = backboneOf(targetView, pairs, mode, options.backbone);

  const inTargetLayout = (s: TensorInfo, t: TensorInfo) => {
    const transpose = pairs.get(t)?.permutation ?? layoutPermutation(s, t) ?? letterPermutation(s, t);
    return transpose ? transpose.map((p) => s.shape[p]!) : s.shape;
  };
  const headCandidates = [...pairs].map(([t, p]) => ({ target: t.name, source: p.source.name, sourceShape: inTargetLayout(p.source, t), targetShape: t.shape }));
  const headOf = headPlanner(headCandidates, { ...options.heads, ...(options.expandClasses ? { expandClasses: options.expandClasses } : {}) }, init);
  const entries = target.map((t): PlanEntry => {
    const base: PlanEntry = {
      target: t.name, targetInFile: t.source, dtype: t.dtype, shape: [...t.shape], parameters: parameterCount(t), ...(t.role ? { role: t.role } : {}), action: 'skip',
    };
    const skip = (reason: SkipReason, detail: string, extra: Partial<NonNullable<PlanEntry['skip']>> = {}): PlanEntry =>
      ({ ...base, action: 'skip', skip: { reason, detail, ...extra } });
    const pattern = excludedBy(t);
    if (pattern) return skip('excluded', `excluded by ${pattern.text}`, { pattern: pattern.text });
    if (!isParameter(t) && !options.loadConstants) return keepConstant(base, t, sourceByName.get(t.name));
    if (mode === 'classification' && !inBackbone(t)) return skip('not-backbone', 'after the backbone (classification mode loads the feature extractor only)');
    const pair = pairs.get(t);
    if (!pair) {
      const others = ambiguous.get(t.name);
      if (others && structurallyAmbiguous.has(t.name)) {
        return skip('ambiguous', `ambiguous graph position (neighbouring layers have equal shapes); candidates: ${others.join(', ')}`, { candidates: others });
      }
      if (others) return skip('ambiguous', `several source tensors fit: ${others.join(', ')}`, { candidates: others });
      const batchNorm = unfoldable.get(t);
      if (batchNorm) return skip('batchnorm', batchNorm);
      if (alignment.generated.has(t)) return skip('generated-name', 'exporter-generated name: not paired by name (the two files number their tensors differently), and no layer at the same graph position in the source');
      return skip('missing', 'no matching tensor in the source');
    }
    const s = pair.source;
    const from = { source: s.name, sourceInFile: s.source, sourceShape: [...s.shape], sourceDtype: s.dtype, why: pair.why };
    const cast = s.dtype !== t.dtype ? { from: s.dtype, to: t.dtype } : undefined;
    if (cast && !(isFloat(s.dtype) && isFloat(t.dtype))) {
      return { ...skip('dtype', `dtype ${s.dtype} cannot become ${t.dtype}`), ...from };
    }
    const permutation = pair.permutation ?? layoutPermutation(s, t);
    if (pair.fold) {
      if (!sameShape(s.shape, t.shape) && !permutation) return { ...skip('shape', `shape ${shapeText(s.shape)} in source, ${shapeText(t.shape)} in target (BatchNorm fold)`), ...from };
      return { ...base, ...from, action: 'fold', fold: foldSpec(pair.fold), ...(permutation ? { transpose: [...permutation] } : {}), ...(cast ? { cast } : {}) };
    }
    const head = headOf({ target: t.name, source: s.name, sourceShape: inTargetLayout(s, t), targetShape: t.shape });
    if (!head && (sameShape(s.shape, t.shape) || permutation)) {
      return { ...base, ...from, action: 'load', ...(permutation ? { transpose: [...permutation], why: `${pair.why}; layout ${s.layout ?? '?'} → ${t.layout ?? '?'}` } : {}), ...(cast ? { cast } : {}) };
    }
    // A head copied row by row, in the target's layout (HWIO source, OIHW target: transpose first).
    const transpose = permutation ?? letterPermutation(s, t);
    if (head && 'expand' in head && mode !== 'detection' && mode !== 'full') {
      return { ...base, ...from, why: `${from.why}; ${head.why}`, action: 'expand', expand: head.expand, ...(transpose ? { transpose: [...transpose] } : {}), ...(cast ? { cast } : {}) };
    }
    const detail = `shape ${shapeText(s.shape)} in source, ${shapeText(t.shape)} in target`;
    if (!head) return { ...skip('shape', detail), ...from };
    return { ...skip('head', 'refuse' in head ? `${head.refuse} (${detail})` : `class-count dependent head: ${detail}`), ...from };
  });

  const used = new Set(entries.flatMap((e) => (e.action === 'skip' || e.action === 'keep' ? [] : [e.source, ...(e.fold ? foldSources(e.fold) : [])])));
  const unusedSource = source.filter((s) => !used.has(s.name)).map((s) => s.name);
  const summary = summarize(entries);
  return { entries, unusedSource, summary: mode === 'full' ? { ...summary, fullModeFailed: summary.loaded + summary.kept !== summary.targetTensors } : summary };
}

function keepConstant(base: PlanEntry, t: TensorInfo, namesake: TensorInfo | undefined): PlanEntry {
  const what = t.roleFrom === 'graph' ? 'graph constant' : 'constant';
  // Whether the values are the same is not known without reading them; the shapes are.
  const source = !namesake
    ? 'not in source'
    : sameShape(namesake.shape, t.shape) && namesake.dtype === t.dtype
      ? `source has one of that name, shape and dtype (values not compared)`
      : `source differs (${namesake.dtype} ${shapeText(namesake.shape)})`;
  return { ...base, action: 'keep', keep: { reason: 'constant', detail: `kept: ${what}; ${source}` } };
}

function foldSpec(f: FoldSource): FoldSpec {
  return {
    part: f.part, weight: f.weight.name, ...(f.bias ? { bias: f.bias.name } : {}),
    scale: f.bn.scale.name, shift: f.bn.shift.name, mean: f.bn.mean.name, variance: f.bn.variance.name,
    epsilon: f.bn.epsilon, epsilonFrom: f.bn.epsilonFrom, axis: f.axis,
  };
}

export const foldSources = (f: FoldSpec): string[] => [f.weight, ...(f.bias ? [f.bias] : []), f.scale, f.shift, f.mean, f.variance];

/**
 * classification mode: the backbone is what precedes the first head layer (a tensor whose
 * shape depends on the class count) in execution order — the graph's, or module order with
 * numeric components as numbers — or what --backbone selects.
 */
function backboneOf(
  target: ModelView, pairs: ReadonlyMap<TensorInfo, Pairing>, mode: PlanMode, backbone: readonly Pattern[] | undefined,
): (t: TensorInfo) => boolean {
  if (backbone?.length) return (t) => backbone.some((p) => p.test(t.name));
  if (mode !== 'classification') return () => true;
  const isHead = (t: TensorInfo) => {
    const pair = pairs.get(t);
    return pair !== undefined && !sameShape(pair.source.shape, t.shape) && !pair.permutation && !layoutPermutation(pair.source, t);
  };
  if (target.graph?.length) {
    // Execution order: a tensor's place is the first node that reads it.
    const firstUse = new Map<string, number>();
    target.graph.forEach((node, index) => node.inputs.forEach((input) => firstUse.has(input) || firstUse.set(input, index)));
    const step = (t: TensorInfo) => firstUse.get(t.source) ?? Infinity;
    const heads = target.tensors.filter(isHead);
    if (!heads.length) return () => true;
    const headStep = Math.min(...heads.map(step));
    return (t) => step(t) < headStep;
  }
  const order = moduleOrder(target.tensors.map((t) => t.name));
  const heads = target.tensors.filter(isHead).sort((a, b) => order.rank.get(a.name)! - order.rank.get(b.name)!);
  const head = heads[0];
  if (!head) return () => true;
  const layer = (name: string) => name.replace(/\.[^.]+$/, '');
  return (t) => !heads.some((h) => layer(h.name) === layer(t.name)) && !order.isAfter(t.name, head.name);
}


function summarize(entries: readonly PlanEntry[]): PlanSummary {
  const count = (action: PlanEntry['action']) => entries.filter((e) => e.action === action).length;
  const batchNorms = new Set(entries.filter((e) => e.fold).map((e) => e.fold!.scale));
  const parameters = entries.filter(isParameter);
  const targetParameters = parameters.reduce((n, e) => n + e.parameters, 0);
  const parametersFromSource = parameters.reduce((n, e) => {
    if (e.action === 'load' || e.action === 'fold') return n + e.parameters;
    if (e.action === 'expand') {
      const copiedRows = e.expand!.rows.filter((r) => r >= 0).length * e.expand!.blocks;
      return n + Math.round((e.parameters / e.expand!.targetSize) * copiedRows);
    }
    return n;
  }, 0);
  const skippedBy: Record<string, number> = {};
  for (const e of entries) {
    if (e.skip) {
      const key = e.skip.reason === 'excluded' ? `excluded by ${e.skip.pattern}` : e.skip.reason;
      skippedBy[key] = (skippedBy[key] ?? 0) + 1;
    }
  }
  return {
    targetTensors: entries.length,
    loaded: count('load') + count('fold'),
    folded: count('fold'),
    foldedBatchNorms: batchNorms.size,
    expanded: count('expand'),
    kept: count('keep'),
    skipped: count('skip'),
    targetParameters,
    parametersFromSource,
    fractionLoaded: targetParameters ? parametersFromSource / targetParameters : 1,
    skippedBy,
  };
}

/** "loaded 243/250 tensors (97.2% of parameters; 40 by folding 20 BatchNorm layers), 2 expanded, 8 kept (constants), 5 skipped (3 excluded by yolo_output, 2 missing)" */
export function planHeadline(summary: PlanSummary): string {
  const skipped = Object.entries(summary.skippedBy).map(([why, n]) => `${n} ${why}`).join(', ');
  const folded = summary.folded ? `; ${summary.folded} by folding ${summary.foldedBatchNorms} BatchNorm layers` : '';
  const kept = summary.kept ? `${summary.kept} kept (constants), ` : '';
  return `loaded ${summary.loaded}/${summary.targetTensors} tensors (${formatPercent(summary.fractionLoaded)} of parameters${folded}), ` +
    `${summary.expanded} expanded, ${kept}${summary.skipped} skipped${skipped ? ` (${skipped})` : ''}`;
}

export function parseExpandClasses(text: string | undefined): { from: number; to: number } | undefined {
  if (text === undefined) return undefined;
  const m = /^(\d+):(\d+)$/.exec(text);
  if (!m || Number(m[2]) <= Number(m[1])) throw usageError(`--expand-classes '${text}': expected OLD:NEW with NEW > OLD, e.g. 90:92`);
  return { from: Number(m[1]), to: Number(m[2]) };
}
