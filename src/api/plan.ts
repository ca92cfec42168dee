import * as path from 'node:path';
import { open } from '../open.js';
import { invalidInput, fromSystemError } from '../core/errors.js';
import { pathSha256, readTextFile } from '../core/file.js';
import type { StateDict, TensorInfo } from '../core/statedict.js';
import { parsePatterns } from '../ops/select.js';
import { foldSources, makePlan, parseExpandClasses, PLAN_VERSION, type InitKind, type PlanBody, type PlanEntry, type PlanMode } from '../ops/plan.js';
import { foldedEntryValues, plannedValues } from '../ops/apply.js';
import { modelView } from '../ops/structure.js';
import { classMapOf, graphBlockRows, graphLayers, parseHeadRules, readLabels, type HeadOptions } from '../ops/heads.js';
import { rewriteOnnx, type TensorEdit } from '../formats/onnx/write.js';
import { chooseWriter } from '../formats/writers.js';
import type { ClassMap } from '../runtime/compare.js';

export interface FileRef {
  path: string;
  format: string;
  sha256: string;
}

/** plan.json: versioned, with the fingerprints of both inputs (schemas/plan.schema.json). */
export interface PlanFile extends PlanBody {
  kind: 'ckpt-plan';
  version: number;
  source: FileRef;
  target: FileRef;
  options: RecordedPlanOptions;
}

/** What `ckpt plan` records in plan.json's options: enough to make the same plan again. */
export interface RecordedPlanOptions {
  mode: PlanMode;
  init: InitKind;
  /** --exclude patterns and the preset's, as given. */
  exclude: string[];
  backbone: string[];
  matchByOrder: boolean;
  loadConstants: boolean;
  expandClasses?: string;
  heads?: string[];
  /** The label files (absolute paths) and the class map read from them. */
  classes?: { source: string; target: string; map?: number[] };
}

/** SOURCE planned into TARGET under recorded options: one path for `plan` and `check`'s re-planning. */
export async function planBody(source: StateDict, target: StateDict, recorded: RecordedPlanOptions): Promise<{ body: PlanBody; heads: HeadOptions }> {
  const heads: HeadOptions = { rules: parseHeadRules(recorded.heads) };
  if (recorded.classes) heads.classMap = classMapOf(readLabels(recorded.classes.source), readLabels(recorded.classes.target));
  heads.sourceBlockRows = await graphBlockRows(source);
  heads.targetBlockRows = await graphBlockRows(target);
  heads.targetLayers = graphLayers(target);
  const body = makePlan(modelView(source), modelView(target), {
    mode: recorded.mode, init: recorded.init, exclude: parsePatterns(recorded.exclude), backbone: parsePatterns(recorded.backbone),
    matchByOrder: recorded.matchByOrder === true, expandClasses: parseExpandClasses(recorded.expandClasses), heads,
    loadConstants: recorded.loadConstants === true,
  });
  return { body, heads };
}

export async function fileRef(dict: StateDict): Promise<FileRef> {
  return { path: path.resolve(dict.path), format: dict.format, sha256: await pathSha256(dict.path) };
}

export function readPlan(file: string): PlanFile {
  let text: string;
  try {
    text = readTextFile(file);
  } catch (err) {
    throw fromSystemError(file, undefined, err);
  }
  let plan: PlanFile;
  try {
    plan = JSON.parse(text) as PlanFile;
  } catch (err) {
    throw invalidInput(file, undefined, `not valid JSON: ${(err as Error).message}`);
  }
  if (plan?.kind !== 'ckpt-plan' || !Array.isArray(plan.entries) || !plan.source || !plan.target || !plan.summary) {
    throw invalidInput(file, undefined, 'not a ckpt plan (expected kind "ckpt-plan" with source, target, entries and summary)');
  }
  if (plan.version !== PLAN_VERSION) throw invalidInput(file, 'version', `plan version ${plan.version}; this ckpt reads version ${PLAN_VERSION}`);
  return plan;
}

/** Applies a plan file: refuses a stale plan, then writes TARGET with the planned weights to `out`. */
export async function applyPlanFile(planPath: string, out: string): Promise<{ written: number; format: string }> {
  const plan = readPlan(planPath);
  for (const side of ['source', 'target'] as const) {
    const ref = plan[side];
    const now = await pathSha256(ref.path);
    if (now !== ref.sha256) throw invalidInput(planPath, side, `${ref.path} changed since the plan was made (SHA-256 differs); make the plan again`);
  }
  const source = await open(plan.source.path);
  try {
    const target = await open(plan.target.path);
    try {
      const bySource = new Map(source.tensors.map((t) => [t.name, t]));
      const byTarget = new Map(target.tensors.map((t) => [t.name, t]));
      const planned = new Map<TensorInfo, () => Promise<Uint8Array>>();
      const sourceTensor = (entry: PlanEntry, name: string) => {
        const s = bySource.get(name);
        if (!s) throw invalidInput(planPath, `entry '${entry.target}'`, `tensor '${name}' is not in the source file`);
        return s;
      };
      for (const entry of plan.entries) {
        if (entry.action === 'skip' || entry.action === 'keep') continue;
        const s = sourceTensor(entry, entry.source!);
        const t = byTarget.get(entry.target);
        if (!t) throw invalidInput(planPath, `entry '${entry.target}'`, `tensor '${entry.target}' is not in the target file`);
        if (entry.expand) checkRowMap(planPath, entry);
        if (entry.fold) {
          const fold = entry.fold;
          const lookup = Object.fromEntries(foldSources(fold).map((name) => [name, sourceTensor(entry, name)]));
          planned.set(t, () => foldedEntryValues(entry, (name) => lookup[name]!, t));
        } else planned.set(t, () => plannedValues(entry, s, t));
      }
      if (target.format === 'onnx') {
        const edits = new Map<TensorInfo, TensorEdit>([...planned].map(([t, read]) => [t, { kind: 'replace', dtype: t.dtype, shape: t.shape, read }]));
        await rewriteOnnx(target.path, edits, out);
        return { written: planned.size, format: 'onnx' };
      }
      const writer = chooseWriter(out, undefined, target.format);
      const tensors = target.tensors.map((t) => {
        const read = planned.get(t);
        return { name: writer.format === target.format ? t.source : t.name, tensor: read ? { ...t, read } : t };
      });
      const report = await writer.write(out, tensors, target);
      return { written: planned.size, format: report.format };
    } finally {
      await target.close();
    }
  } finally {
    await source.close();
  }
}

/** A row map apply can carry out: one entry per target row of a block, each a source row of a block or -1. */
function checkRowMap(planPath: string, entry: PlanEntry): void {
  const x = entry.expand!;
  const sourceBlock = x.sourceSize / x.blocks;
  const fits = Number.isInteger(sourceBlock) && Array.isArray(x.rows) && x.rows.length * x.blocks === x.targetSize &&
    x.rows.every((r) => Number.isInteger(r) && r >= -1 && r < sourceBlock) && x.axis < entry.shape.length && entry.shape[x.axis] === x.targetSize;
  if (!fits) throw invalidInput(planPath, `entry '${entry.target}'`, `expand.rows does not fit ${x.blocks} block(s) of ${x.sourceSize} → ${x.targetSize} rows; make the plan again`);
}

/** The distinct expansions of a plan's entries. */
export function classMapOfPlan(plan: { entries: readonly PlanEntry[] }): ClassMap {
  // A weight and its bias grow alike: one expansion each, once.
  const distinct = new Map(plan.entries.filter((e) => e.action === 'expand').map((e) => {
    const { sourceSize, targetSize, blocks, rows } = e.expand!;
    return [`${sourceSize}:${targetSize}:${blocks}:${rows}`, { sourceSize, targetSize, blocks, rows }];
  }));
  return { expansions: [...distinct.values()] };
}
