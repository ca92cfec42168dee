import * as fs from 'node:fs';
import { toFloat64 } from '../core/decode.js';
import { shapeText } from '../core/dtype.js';
import { fromSystemError, invalidInput, usageError } from '../core/errors.js';
import type { StateDict } from '../core/statedict.js';
import { graphNodesOf } from '../formats/onnx/index.js';
import { parsePattern, type Pattern } from './select.js';
import type { ExpandSpec, InitKind } from './plan.js';

/**
 * Class-count dependent tensors ("heads") and how their rows are laid out along the grown axis.
 * A layout is A blocks (anchors), each of P prefix rows (YOLO: x, y, w, h, objectness), then one
 * slot of R rows per class (R = 4 for per-class box regressors), with an optional background /
 * no-object slot first or last. Copying a head row by row through its layout puts every old
 * class where it belongs in the new head; a packed head copied as one block would not.
 *
 * Layout names (--head NAME=LAYOUT):
 *   classes                      one row per class (a classifier)
 *   background-first             background row 0, then the classes (TF OD API, SSD, torchvision)
 *   background-last              the classes, then background / no-object (Detectron2 cls_score, DETR)
 *   anchors:A                    A blocks of C rows (SSD/UltraFace heads packed per anchor)
 *   yolo:A                       A blocks of 5 + C rows
 *   box-per-class                4 rows per class, class-major (Detectron2 / torchvision bbox_pred)
 *   anchors:A+background-first   and the other combinations with +background-first/-last
 */
export interface HeadLayout {
  blocks: number;
  /** Rows before the class slots in every block (YOLO: 5). */
  prefix: number;
  /** Rows per class slot (per-class box regressors: 4). */
  rowsPerClass: number;
  background?: 'first' | 'last';
}

export function layoutName(layout: HeadLayout): string {
  const base = layout.prefix === 5 ? `yolo:${layout.blocks}`
    : layout.rowsPerClass === 4 ? 'box-per-class'
    : layout.blocks > 1 ? `anchors:${layout.blocks}` : 'classes';
  if (!layout.background) return base;
  const background = `background-${layout.background}`;
  return base === 'classes' ? background : `${base}+${background}`;
}

export function parseLayout(text: string): HeadLayout {
  const fail = () => usageError(`head layout '${text}': expected classes, background-first, background-last, anchors:A, yolo:A or box-per-class, optionally +background-first/+background-last (e.g. anchors:3+background-first)`);
  const [base, extra, ...rest] = text.split('+');
  if (rest.length) throw fail();
  const layout: HeadLayout = { blocks: 1, prefix: 0, rowsPerClass: 1 };
  const background = (part: string | undefined) => (part === 'background-first' ? 'first' : part === 'background-last' ? 'last' : undefined);
  const packed = /^(anchors|yolo):([1-9]\d*)$/.exec(base ?? '');
  if (packed) {
    layout.blocks = Number(packed[2]);
    if (packed[1] === 'yolo') layout.prefix = 5;
  } else if (base === 'box-per-class') layout.rowsPerClass = 4;
  else if (background(base) && extra === undefined) return { ...layout, background: background(base) };
  else if (base !== 'classes') throw fail();
  if (extra !== undefined) {
    const b = background(extra);
    if (!b || layout.prefix) throw fail();
    layout.background = b;
  }
  return layout;
}

/** Rows one layout takes for `classes` classes. */
export const rowsOf = (layout: HeadLayout, classes: number) =>
  layout.blocks * (layout.prefix + layout.rowsPerClass * (classes + (layout.background ? 1 : 0)));

/** The class count a layout gives `rows` rows, when it fits exactly. */
export function classesOf(layout: HeadLayout, rows: number): number | undefined {
  if (rows % layout.blocks) return undefined;
  const slots = (rows / layout.blocks - layout.prefix) / layout.rowsPerClass - (layout.background ? 1 : 0);
  return Number.isInteger(slots) && slots >= 1 ? slots : undefined;
}

/**
 * For every row of a target block, the row of the source block it copies, -1 = initialized.
 * `classMap[j]` is the source class of target class j (-1: new); prefix and background rows map
 * to themselves.
 */
export function blockRows(layout: HeadLayout, sourceClasses: number, classMap: readonly number[]): number[] {
  const first = layout.background === 'first' ? 1 : 0;
  const sourceSlot = (classIndex: number) => layout.prefix + layout.rowsPerClass * (classIndex + first);
  const rows: number[] = [];
  for (let p = 0; p < layout.prefix; p++) rows.push(p);
  const targetSlots = classMap.map((from) => (from < 0 ? -1 : sourceSlot(from)));
  if (layout.background === 'first') targetSlots.unshift(layout.prefix);
  if (layout.background === 'last') targetSlots.push(layout.prefix + layout.rowsPerClass * sourceClasses);
  for (const from of targetSlots) for (let r = 0; r < layout.rowsPerClass; r++) rows.push(from < 0 ? -1 : from + r);
  return rows;
}

/** The identity class map for a grown head: old classes keep their index, new ones are initialized. */
export const growingMap = (from: number, to: number) => Array.from({ length: to }, (_, j) => (j < from ? j : -1));

/** "0..89,new×2", "2,0,new,1": a row map as short as it reads. */
export function formatRows(rows: readonly number[]): string {
  const parts: string[] = [];
  for (let i = 0; i < rows.length;) {
    let j = i;
    if (rows[i]! < 0) {
      while (j + 1 < rows.length && rows[j + 1]! < 0) j++;
      parts.push(j > i ? `new×${j - i + 1}` : 'new');
    } else {
      while (j + 1 < rows.length && rows[j + 1] === rows[j]! + 1) j++;
      parts.push(j > i ? `${rows[i]}..${rows[j]}` : `${rows[i]}`);
    }
    i = j + 1;
  }
  return parts.join(',');
}

export interface HeadRule {
  pattern: Pattern;
  layout: HeadLayout;
  text: string;
  /** Where a rule not given with --head comes from (a Darknet cfg's [yolo] section). */
  from?: string;
}

/** `--head NAME=LAYOUT`; NAME is a selection pattern, split at the last `=` (so `=exact.name=classes` works). */
export function parseHeadRules(values: readonly string[] | undefined): HeadRule[] {
  return (values ?? []).map((text) => {
    const at = text.lastIndexOf('=');
    if (at <= 0) throw usageError(`--head '${text}': expected NAME=LAYOUT, e.g. classification_headers=anchors:3`);
    return { pattern: parsePattern(text.slice(0, at)), layout: parseLayout(text.slice(at + 1)), text };
  });
}

/** Class names from labels.txt (one per line), a JSON list of names, or COCO JSON `categories` (ordered by id). */
export function readLabels(file: string): string[] {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw fromSystemError(file, undefined, err);
  }
  let names: string[];
  if (/^\s*[[{]/.test(text)) {
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (err) {
      throw invalidInput(file, undefined, `not valid JSON: ${(err as Error).message}`);
    }
    names = namesFromJson(file, json);
  } else {
    names = text.replace(/\r/g, '').replace(/\n+$/, '').split('\n').map((line) => line.trim());
    const empty = names.indexOf('');
    if (empty >= 0) throw invalidInput(file, `line ${empty + 1}`, 'empty label (one class name per line)');
  }
  if (!names.length) throw invalidInput(file, undefined, 'no class names');
  const seen = new Map<string, number>();
  names.forEach((name, i) => {
    if (seen.has(name)) throw invalidInput(file, `class ${i}`, `duplicate label '${name}' (also class ${seen.get(name)})`);
    seen.set(name, i);
  });
  return names;
}

function namesFromJson(file: string, json: unknown): string[] {
  if (Array.isArray(json) && json.every((n) => typeof n === 'string')) return json as string[];
  const categories = (json as { categories?: unknown })?.categories;
  if (!Array.isArray(categories)) throw invalidInput(file, undefined, 'expected a JSON list of class names or COCO JSON with "categories": [{id, name}]');
  const valid = categories.every((c) => typeof c?.name === 'string' && Number.isInteger(c?.id));
  if (!valid) throw invalidInput(file, 'categories', 'every category needs an integer id and a string name');
  const ids = new Set<number>();
  for (const c of categories as { id: number; name: string }[]) {
    if (ids.has(c.id)) throw invalidInput(file, 'categories', `duplicate category id ${c.id}`);
    ids.add(c.id);
  }
  return [...(categories as { id: number; name: string }[])].sort((a, b) => a.id - b.id).map((c) => c.name);
}

export interface ClassMap {
  source: string[];
  target: string[];
  /** For each target class, its index in source, or -1 for a new class. */
  map: number[];
}

export function classMapOf(sourceLabels: readonly string[], targetLabels: readonly string[]): ClassMap {
  const index = new Map(sourceLabels.map((name, i) => [name, i]));
  return { source: [...sourceLabels], target: [...targetLabels], map: targetLabels.map((name) => index.get(name) ?? -1) };
}

/**
 * Rows per anchor block read from an ONNX graph: a head Conv/Gemm whose output reaches a Reshape
 * (through Transpose/Identity/Add) with a constant shape: [.., A, k, ..] whose A·k is the head's
 * row count, else the last dim k (SSD: NHWC, then [N, -1, k]). Canonical tensor name → k.
 */
export async function graphBlockRows(dict: StateDict): Promise<Map<string, number>> {
  const nodes = graphNodesOf(dict);
  const hints = new Map<string, number>();
  if (!nodes) return hints;
  const byFileName = new Map(dict.tensors.map((t) => [t.source, t]));
  const producer = new Map<string, (typeof nodes)[number]>();
  for (const n of nodes) for (const o of n.outputs) producer.set(o, n);
  for (const reshape of nodes.filter((n) => n.opType === 'Reshape')) {
    const shapeTensor = byFileName.get(reshape.inputs[1] ?? '');
    if (!shapeTensor || shapeTensor.dtype !== 'int64' || shapeTensor.shape.length !== 1) continue;
    const dims = Array.from(toFloat64(await shapeTensor.read(), 'int64'));
    let node = producer.get(reshape.inputs[0] ?? '');
    const weights: string[] = [];
    while (node && ['Transpose', 'Identity', 'Add'].includes(node.opType)) {
      if (node.opType === 'Add') weights.push(...node.inputs.filter((i) => byFileName.has(i)));
      node = producer.get(node.inputs.find((i) => !byFileName.has(i)) ?? '');
    }
    if (!node || !['Conv', 'Gemm', 'MatMul'].includes(node.opType)) continue;
    weights.push(...node.inputs.slice(1).filter((i) => byFileName.has(i)));
    const bias = weights.map((w) => byFileName.get(w)!).find((t) => t.shape.length === 1);
    const rows = bias?.shape[0];
    if (rows === undefined) continue;
    const adjacent = dims.findIndex((d, i) => i + 1 < dims.length && d > 1 && d * dims[i + 1]! === rows);
    const k = adjacent >= 0 ? dims[adjacent + 1]! : dims[dims.length - 1]!;
    if (!(k > 0 && rows % k === 0 && rows > k)) continue;
    for (const w of weights) hints.set(byFileName.get(w)!.name, k);
  }
  return hints;
}

/** The node each Conv/ConvTranspose/Gemm weight and bias feeds, by canonical name: the tensors of one layer. */
export function graphLayers(dict: StateDict): Map<string, string> {
  const byFileName = new Map(dict.tensors.map((t) => [t.source, t.name]));
  const layers = new Map<string, string>();
  for (const node of graphNodesOf(dict) ?? []) {
    if (!['Conv', 'ConvTranspose', 'Gemm'].includes(node.opType)) continue;
    for (const input of node.inputs.slice(1)) {
      const name = byFileName.get(input);
      if (name !== undefined) layers.set(name, `${node.opType} ${node.name || node.outputs[0]}`);
    }
  }
  return layers;
}

export interface HeadOptions {
  /** --head NAME=LAYOUT, first match wins. */
  rules?: readonly HeadRule[];
  expandClasses?: { from: number; to: number };
  classMap?: ClassMap;
  /** Rows per anchor block from the graphs (graphBlockRows), by canonical name. */
  targetBlockRows?: ReadonlyMap<string, number>;
  sourceBlockRows?: ReadonlyMap<string, number>;
  /** The target graph's layer of each weight (graphLayers): a numerically named bias follows its weight. */
  targetLayers?: ReadonlyMap<string, string>;
}

/** A paired target tensor, with the source shape already in the target's layout. */
export interface HeadCandidate {
  target: string;
  source: string;
  sourceShape: readonly number[];
  targetShape: readonly number[];
}

/** Copy it row by row (`expand`, with why), refuse it (`refuse`: the reason and the flag that fixes it), or not a head (undefined). */
export type HeadDecision = { expand: ExpandSpec; why: string } | { refuse: string } | undefined;

/**
 * Decides the layout of every class-count dependent tensor of a plan. In order:
 *  1. --head NAME=LAYOUT: stated (the first matching rule whose layout fits).
 *  2. class counts known (--classes, --expand-classes, or several grown heads agreeing on one
 *     OLD → NEW; with the graph's block count where there is one): the layouts that fit both row
 *     counts; exactly one, or a refusal naming the candidates.
 *  3. counts unknown: the graph's Reshape gives anchors:A; a YOLO-named head of 3 × (5 + C) rows
 *     is yolo:3; a head that cannot be packed (no block count > 1 divides both row counts) or a
 *     dense (2-D) layer's head is one block of classes; anything else is refused, never grown as
 *     one block.
 * Equal shapes are heads only with --classes, and only where --head states them.
 */
export function headPlanner(candidates: readonly HeadCandidate[], options: HeadOptions, init: InitKind): (c: HeadCandidate) => HeadDecision {
  const grown = candidates.filter((c) => grownAxis(c.sourceShape, c.targetShape) !== undefined);
  const layer = (name: string) => options.targetLayers?.get(name) ?? layerOf(name);
  const counts: Counts | undefined = options.classMap ? { from: options.classMap.source.length, to: options.classMap.target.length, why: `fits the ${options.classMap.source.length} → ${options.classMap.target.length} classes of --classes` }
    : options.expandClasses ? { ...options.expandClasses, why: `fits --expand-classes ${options.expandClasses.from}:${options.expandClasses.to}` }
    : agreedCounts(grown, layer);
  const denseLayers = new Set(grown.filter((c) => c.targetShape.length === 2).map((c) => layer(c.target)));

  return (c) => {
    // Of the --head rules whose NAME matches, the first whose layout fits (so one pattern per anchor count works).
    const matching = options.rules?.filter((r) => r.pattern.test(c.target)) ?? [];
    const rule = matching.find((r) => ruleFits(c, r.layout, options.classMap && counts)) ?? matching[0];
    const axes = axesToDecide(c, options.classMap && counts, rule?.layout);
    if (axes.length === 0) return undefined;
    if (axes.length > 1) return { refuse: `several axes of ${shapeText(c.targetShape)} fit the class counts; state the layout with --head` };
    const axis = axes[0]!;
    const [s, t] = [c.sourceShape[axis]!, c.targetShape[axis]!];
    const fromGraph = graphBlocks(c, axis, options);
    const copy = (layout: HeadLayout, from: number, to: number, why: string): HeadDecision => {
      const rows = blockRows(layout, from, options.classMap?.map ?? growingMap(from, to));
      const expand: ExpandSpec = { axis, sourceSize: s, targetSize: t, blocks: layout.blocks, init, layout: layoutName(layout), sourceClasses: from, targetClasses: to, rows };
      return { expand, why: `layout ${layoutName(layout)} ${why}` };
    };
    const flagFor = (layout: string) => `--head '${layerOf(c.target)}=${layout}'`;

    if (rule) {
      const [from, to] = [classesOf(rule.layout, s), classesOf(rule.layout, t)];
      const stated = `(${rule.from ?? `--head ${rule.text}`})`;
      if (from === undefined || to === undefined) return { refuse: `layout ${layoutName(rule.layout)} ${stated} does not fit ${s} → ${t} rows` };
      if (options.classMap && (from !== counts!.from || to !== counts!.to)) {
        return { refuse: `layout ${layoutName(rule.layout)} ${stated} gives ${from} → ${to} classes; --classes lists ${counts!.from} → ${counts!.to}` };
      }
      return copy(rule.layout, from, to, stated);
    }
    if (counts) {
      const fits = layoutsFitting(s, t, counts.from, counts.to).filter((l) => !fromGraph || l.blocks === fromGraph.blocks);
      if (fits.length === 1) return copy(fits[0]!, counts.from, counts.to, fromGraph ? `${counts.why}; ${fromGraph.why}` : counts.why);
      if (fits.length > 1) {
        return { refuse: `${s} → ${t} rows fit several layouts for ${counts.from} → ${counts.to} classes; state it with ${fits.map((l) => flagFor(layoutName(l))).join(' or ')}` };
      }
      if (!counts.agreed) return { refuse: `${s} → ${t} rows fit no head layout for ${counts.from} → ${counts.to} classes; state it with --head NAME=LAYOUT` };
    }
    if (t <= s) return undefined;
    if (fromGraph && s % fromGraph.blocks === 0) {
      const A = fromGraph.blocks;
      return copy({ blocks: A, prefix: 0, rowsPerClass: 1 }, s / A, t / A, fromGraph.why);
    }
    if (/yolo/i.test(c.target) && s % 3 === 0 && t % 3 === 0 && s / 3 > 5) {
      return copy({ blocks: 3, prefix: 5, rowsPerClass: 1 }, s / 3 - 5, t / 3 - 5, 'inferred from the name and shape (3 anchors × (5 + classes))');
    }
    const packings = divisors(gcd(gcd(t - s, s), t)).filter((a) => a > 1);
    const plain = { blocks: 1, prefix: 0, rowsPerClass: 1 };
    if (packings.length === 0) return copy(plain, s, t, `(one block: no anchor count divides both ${s} and ${t} rows)`);
    if (denseLayers.has(layer(c.target))) return copy(plain, s, t, '(a dense layer: one row per class)');
    const suggestions = packings.slice(0, 3).map((a) => `${flagFor(`anchors:${a}`)} (${a} × ${s / a} → ${t / a})`);
    return {
      refuse: `packed class head of unknown layout: ${s} → ${t} rows could be one block or several anchors; not grown as one block. ` +
        `State it with ${suggestions.join(' or ')}, or --expand-classes OLD:NEW`,
    };
  };
}

/** The one axis along which two shapes of one rank differ. */
function grownAxis(source: readonly number[], target: readonly number[]): number | undefined {
  if (source.length !== target.length) return undefined;
  const axes = source.map((_, i) => i).filter((i) => source[i] !== target[i]);
  return axes.length === 1 ? axes[0] : undefined;
}

interface Counts {
  from: number;
  to: number;
  why: string;
  /** Inferred from grown heads agreeing, not given: a tensor that does not fit them may still be a plain head. */
  agreed?: boolean;
}

/**
 * The axis to copy by rows: the one that differs; for equal shapes (--classes with as many
 * classes on both sides), those a stated layout fits. Not the graph's block count alone: a box
 * regressor of 4 rows per anchor looks like a head of 4 classes.
 */
function axesToDecide(c: HeadCandidate, counts: Counts | undefined, layout: HeadLayout | undefined): number[] {
  const axis = grownAxis(c.sourceShape, c.targetShape);
  if (axis !== undefined) return [axis];
  const same = c.sourceShape.length === c.targetShape.length && c.sourceShape.every((d, i) => d === c.targetShape[i]);
  if (!counts || !layout || !same) return [];
  return c.targetShape.map((_, i) => i).filter((i) => classesOf(layout, c.targetShape[i]!) === counts.from);
}

function ruleFits(c: HeadCandidate, layout: HeadLayout, counts: Counts | undefined): boolean {
  const axes = axesToDecide(c, counts, layout);
  if (axes.length !== 1) return false;
  const [from, to] = [classesOf(layout, c.sourceShape[axes[0]!]!), classesOf(layout, c.targetShape[axes[0]!]!)];
  return from !== undefined && to !== undefined && (!counts || (from === counts.from && to === counts.to));
}

/** Every layout with A·(P + R·(C + background)) rows = s for `from` classes and t for `to`. */
export function layoutsFitting(s: number, t: number, from: number, to: number): HeadLayout[] {
  const out: HeadLayout[] = [];
  for (const background of [undefined, 'first', 'last'] as const) {
    for (const [prefix, rowsPerClass] of [[0, 1], [5, 1], [0, 4]] as const) {
      if (prefix && background) continue;
      const perBlock = prefix + rowsPerClass * (from + (background ? 1 : 0));
      if (s % perBlock) continue;
      const layout: HeadLayout = { blocks: s / perBlock, prefix, rowsPerClass, ...(background ? { background } : {}) };
      if (rowsPerClass === 4 && layout.blocks !== 1) continue;
      if (rowsOf(layout, to) === t) out.push(layout);
    }
  }
  return out;
}

/**
 * Class counts of heads packed per anchor (SSD, UltraFace: anchors × classes), when several grown
 * heads of different sizes agree: 6 → 9 and 4 → 6 are 3 and 2 anchors of 2 → 3 classes. A single
 * head, or heads that disagree, infer nothing.
 */
export function inferClassCounts(shapes: readonly (readonly [readonly number[], readonly number[]])[]): { from: number; to: number } | undefined {
  const grown = new Map<number, number>();
  for (const [s, t] of shapes) {
    const axis = grownAxis(s, t);
    if (axis !== undefined && t[axis]! > s[axis]!) grown.set(s[axis]!, t[axis]!);
  }
  if (grown.size < 2) return undefined;
  const ratios = new Set([...grown].map(([s, t]) => `${s / gcd(s, t)}:${t / gcd(s, t)}`));
  if (ratios.size !== 1) return undefined;
  const [from, to] = [...ratios][0]!.split(':').map(Number) as [number, number];
  return [...grown.keys()].every((s) => s >= 2 * from) ? { from, to } : undefined;
}

function agreedCounts(grown: readonly HeadCandidate[], layer: (name: string) => string): Counts | undefined {
  const counts = inferClassCounts(grown.map((c) => [c.sourceShape, c.targetShape]));
  if (!counts) return undefined;
  const heads = new Set(grown.map((c) => layer(c.target))).size;
  return { ...counts, why: `inferred from ${heads} grown heads agreeing on ${counts.from} → ${counts.to} classes`, agreed: true };
}

/** Anchor blocks along `axis` from the target's graph, else the source's. */
function graphBlocks(c: HeadCandidate, axis: number, options: HeadOptions): { blocks: number; why: string } | undefined {
  for (const [k, rows, side] of [
    [options.targetBlockRows?.get(c.target), c.targetShape[axis], 'target'],
    [options.sourceBlockRows?.get(c.source), c.sourceShape[axis], 'source'],
  ] as const) {
    if (k !== undefined && rows !== undefined && rows % k === 0 && rows > k) {
      return { blocks: rows / k, why: `inferred from the ${side} graph (Reshape to [..., ${k}] after the head)` };
    }
  }
  return undefined;
}

/** Tensors of one layer share the name up to the last dot. */
const layerOf = (name: string) => name.replace(/\.[^.]+$/, '');
const gcd = (a: number, b: number): number => (b ? gcd(b, a % b) : a);
const divisors = (n: number) => Array.from({ length: n }, (_, i) => i + 1).filter((d) => n % d === 0);
