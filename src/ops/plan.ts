import type { DType } from '../core/dtype.js';
import { isFloat } from '../core/decode.js';
import { parameterCount, type TensorInfo } from '../core/statedict.js';
import { usageError } from '../core/errors.js';
import { alignTensors, layoutPermutation, letterPermutation, type MatchReason } from './align.js';
import type { Pattern } from './select.js';
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

export type SkipReason = 'excluded' | 'missing' | 'shape' | 'dtype' | 'ambiguous' | 'head' | 'not-backbone';

export interface PlanEntry {
  /** Canonical name in TARGET. */
  target: string;
  /** The name as in the TARGET file. */
  targetInFile: string;
  dtype: DType;
  shape: number[];
  parameters: number;
  action: 'load' | 'expand' | 'skip';
  /** Canonical name in SOURCE. */
  source?: string;
  /** The name as in the SOURCE file. */
  sourceInFile?: string;
  sourceShape?: number[];
  sourceDtype?: DType;
  /** Why this source tensor: exact name, wrapper prefix, unique suffix + shape, order, layout. */
  why?: string;
  transpose?: number[];
  cast?: { from: DType; to: DType };
  expand?: ExpandSpec;
  skip?: { reason: SkipReason; detail: string; pattern?: string; candidates?: string[] };
}

export interface PlanOptions {
  mode?: PlanMode;
  exclude?: readonly Pattern[];
  /** classification mode: tensors matching these are the backbone. */
  backbone?: readonly Pattern[];
  matchByOrder?: boolean;
  expandClasses?: { from: number; to: number };
  init?: InitKind;
  /** Head layouts stated (--head), a class map (--classes), block counts from the graphs. */
  heads?: HeadOptions;
}

export interface PlanSummary {
  targetTensors: number;
  loaded: number;
  expanded: number;
  skipped: number;
  targetParameters: number;
  /** Parameters whose values come from SOURCE: loaded tensors plus the copied part of expanded ones. */
  parametersFromSource: number;
  fractionLoaded: number;
  skippedBy: Record<string, number>;
}

export interface PlanBody {
  entries: PlanEntry[];
  unusedSource: string[];
  summary: PlanSummary;
}

const WHY: Record<MatchReason | 'order', string> = {
  name: 'exact name',
  prefix: 'same name without module./model. prefix',
  convention: 'same name across framework conventions (kernel → weight, _ → .)',
  suffix: 'unique name suffix with the same shape',
  order: 'same shape, in order (--match-by-order)',
};

export function makePlan(source: readonly TensorInfo[], target: readonly TensorInfo[], options: PlanOptions = {}): PlanBody {
  const mode = options.mode ?? 'auto';
  const init = options.init ?? 'target';
  const exclude = options.exclude ?? [];
  const excludedBy = (t: TensorInfo) => exclude.find((p) => p.test(t.name));
  const candidates = target.filter((t) => !excludedBy(t));
  const alignment = alignTensors(source.filter((s) => !excludedBy(s)), candidates);

  const pairs = new Map<TensorInfo, { source: TensorInfo; why: string; permutation?: readonly number[] }>();
  for (const p of alignment.pairs) pairs.set(p.b, { source: p.a, why: WHY[p.reason], ...(p.permutation ? { permutation: p.permutation } : {}) });
  if (options.matchByOrder) {
    const freeSource = alignment.onlyInA.slice();
    for (const t of alignment.onlyInB) {
      const at = freeSource.findIndex((s) => s.shape.length === t.shape.length && s.shape.every((d, i) => d === t.shape[i]));
      if (at >= 0) pairs.set(t, { source: freeSource.splice(at, 1)[0]!, why: WHY.order });
    }
  }
  const ambiguous = new Map<string, string[]>();
  for (const a of alignment.ambiguous) {
    if (a.side === 'b') ambiguous.set(a.name, [...a.candidates]);
    else for (const c of a.candidates) ambiguous.set(c, [a.name]);
  }

  // classification mode: the backbone is what precedes the first head layer (a tensor whose
  // shape depends on the class count), or what --backbone selects.
  let backboneEnd = target.length;
  if (mode === 'classification' && !options.backbone?.length) {
    const firstHead = target.findIndex((t) => {
      const pair = pairs.get(t);
      return pair && !sameShape(pair.source.shape, t.shape) && !pair.permutation;
    });
    if (firstHead >= 0) backboneEnd = firstLayerStart(target, firstHead);
  }
  const inBackbone = (t: TensorInfo, index: number) =>
    options.backbone?.length ? options.backbone.some((p) => p.test(t.name)) : index < backboneEnd;

  const inTargetLayout = (s: TensorInfo, t: TensorInfo) => {
    const transpose = pairs.get(t)?.permutation ?? layoutPermutation(s, t) ?? letterPermutation(s, t);
    return transpose ? transpose.map((p) => s.shape[p]!) : s.shape;
  };
  const headCandidates = [...pairs].map(([t, p]) => ({ target: t.name, source: p.source.name, sourceShape: inTargetLayout(p.source, t), targetShape: t.shape }));
  const headOf = headPlanner(headCandidates, { ...options.heads, ...(options.expandClasses ? { expandClasses: options.expandClasses } : {}) }, init);
  const entries = target.map((t, index): PlanEntry => {
    const base: PlanEntry = { target: t.name, targetInFile: t.source, dtype: t.dtype, shape: [...t.shape], parameters: parameterCount(t), action: 'skip' };
    const skip = (reason: SkipReason, detail: string, extra: Partial<NonNullable<PlanEntry['skip']>> = {}): PlanEntry =>
      ({ ...base, action: 'skip', skip: { reason, detail, ...extra } });
    const pattern = excludedBy(t);
    if (pattern) return skip('excluded', `excluded by ${pattern.text}`, { pattern: pattern.text });
    if (mode === 'classification' && !inBackbone(t, index)) return skip('not-backbone', 'after the backbone (classification mode loads the feature extractor only)');
    const pair = pairs.get(t);
    if (!pair) {
      const others = ambiguous.get(t.name);
      if (others) return skip('ambiguous', `several source tensors fit: ${others.join(', ')}`, { candidates: others });
      return skip('missing', 'no matching tensor in the source');
    }
    const s = pair.source;
    const from = { source: s.name, sourceInFile: s.source, sourceShape: [...s.shape], sourceDtype: s.dtype, why: pair.why };
    const cast = s.dtype !== t.dtype ? { from: s.dtype, to: t.dtype } : undefined;
    if (cast && !(isFloat(s.dtype) && isFloat(t.dtype))) {
      return { ...skip('dtype', `dtype ${s.dtype} cannot become ${t.dtype}`), ...from };
    }
    const permutation = pair.permutation ?? layoutPermutation(s, t);
    const head = headOf({ target: t.name, source: s.name, sourceShape: inTargetLayout(s, t), targetShape: t.shape });
    if (!head && (sameShape(s.shape, t.shape) || permutation)) {
      return { ...base, ...from, action: 'load', ...(permutation ? { transpose: [...permutation], why: `${pair.why}; layout ${s.layout ?? '?'} → ${t.layout ?? '?'}` } : {}), ...(cast ? { cast } : {}) };
    }
    // A head copied row by row, in the target's layout (HWIO source, OIHW target: transpose first).
    const transpose = permutation ?? letterPermutation(s, t);
    if (head && 'expand' in head && mode !== 'detection' && mode !== 'full') {
      return { ...base, ...from, why: `${from.why}; ${head.why}`, action: 'expand', expand: head.expand, ...(transpose ? { transpose: [...transpose] } : {}), ...(cast ? { cast } : {}) };
    }
    const detail = `shape ${fmt(s.shape)} in source, ${fmt(t.shape)} in target`;
    if (!head) return { ...skip('shape', detail), ...from };
    return { ...skip('head', 'refuse' in head ? `${head.refuse} (${detail})` : `class-count dependent head: ${detail}`), ...from };
  });

  const used = new Set(entries.filter((e) => e.action !== 'skip').map((e) => e.source));
  const unusedSource = source.filter((s) => !used.has(s.name)).map((s) => s.name);
  return { entries, unusedSource, summary: summarize(entries) };
}

/** Tensors of one layer sit together: back up to the first tensor of the head's layer prefix. */
function firstLayerStart(target: readonly TensorInfo[], index: number): number {
  const layer = (name: string) => name.replace(/\.[^.]+$/, '');
  const prefix = layer(target[index]!.name);
  let start = index;
  while (start > 0 && layer(target[start - 1]!.name) === prefix) start--;
  return start;
}

const sameShape = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((d, i) => d === b[i]);
const fmt = (shape: readonly number[]) => `[${shape.join(',')}]`;

function summarize(entries: readonly PlanEntry[]): PlanSummary {
  const count = (action: PlanEntry['action']) => entries.filter((e) => e.action === action).length;
  const targetParameters = entries.reduce((n, e) => n + e.parameters, 0);
  const parametersFromSource = entries.reduce((n, e) => {
    if (e.action === 'load') return n + e.parameters;
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
    loaded: count('load'),
    expanded: count('expand'),
    skipped: count('skip'),
    targetParameters,
    parametersFromSource,
    fractionLoaded: targetParameters ? parametersFromSource / targetParameters : 1,
    skippedBy,
  };
}

/** "loaded 243/250 tensors (97.2% of parameters), 2 expanded, 5 skipped (3 excluded by yolo_output, 2 missing)" */
export function planHeadline(summary: PlanSummary): string {
  const skipped = Object.entries(summary.skippedBy).map(([why, n]) => `${n} ${why}`).join(', ');
  return `loaded ${summary.loaded}/${summary.targetTensors} tensors (${(100 * summary.fractionLoaded).toFixed(1)}% of parameters), ` +
    `${summary.expanded} expanded, ${summary.skipped} skipped${skipped ? ` (${skipped})` : ''}`;
}

export function parseExpandClasses(text: string | undefined): { from: number; to: number } | undefined {
  if (text === undefined) return undefined;
  const m = /^(\d+):(\d+)$/.exec(text);
  if (!m || Number(m[2]) <= Number(m[1])) throw usageError(`--expand-classes '${text}': expected OLD:NEW with NEW > OLD, e.g. 90:92`);
  return { from: Number(m[1]), to: Number(m[2]) };
}
