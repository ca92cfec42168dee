import * as path from 'node:path';
import { open } from '../open.js';
import { CkptError, ExitCode, invalidInput, usageError, fromSystemError } from '../core/errors.js';
import { pathSha256, readTextFile } from '../core/file.js';
import type { StateDict, TensorInfo } from '../core/statedict.js';
import { writeAtomic, writeAll } from '../core/atomic.js';
import { parsePatterns } from '../ops/select.js';
import { foldSources, makePlan, parseExpandClasses, planHeadline, PLAN_VERSION, type InitKind, type PlanBody, type PlanEntry, type PlanMode } from '../ops/plan.js';
import { foldedEntryValues, plannedValues } from '../ops/apply.js';
import { formatEpsilon, modelView } from '../ops/structure.js';
import { classMapOf, formatRows, graphBlockRows, graphLayers, parseHeadRules, readLabels, type HeadOptions } from '../ops/heads.js';
import { rewriteOnnx, type TensorEdit } from '../formats/onnx/write.js';
import { chooseWriter } from '../formats/writers.js';
import { presetPatterns } from './select.js';
import { isLocalPath } from '../core/location.js';
import { fitLine, formatShape, newTable } from './format.js';

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

export interface PlanCommandOptions {
  output?: string;
  mode?: string;
  exclude?: string[];
  preset?: string;
  backbone?: string[];
  matchByOrder?: boolean;
  expandClasses?: string;
  head?: string[];
  classes?: string[];
  init?: string;
  loadConstants?: boolean;
  json?: boolean;
}

const MODES: readonly PlanMode[] = ['auto', 'full', 'detection', 'classification'];

export async function planCommand(sourcePath: string, targetPath: string, options: PlanCommandOptions): Promise<number> {
  const mode = (options.mode ?? 'auto') as PlanMode;
  if (!MODES.includes(mode)) throw usageError(`--mode must be one of ${MODES.join(', ')}, got '${options.mode}'`);
  const init = (options.init ?? 'target') as InitKind;
  if (!['target', 'zeros', 'normal'].includes(init)) throw usageError(`--init must be target, zeros or normal, got '${options.init}'`);
  if (options.backbone?.length && mode !== 'classification') throw usageError('--backbone applies to --mode classification');
  if (options.classes) {
    if (options.classes.length !== 2) throw usageError(`--classes takes two files, SOURCE_LABELS TARGET_LABELS (got ${options.classes.length}); put it after SOURCE and TARGET`);
    if (options.expandClasses) throw usageError('--classes gives the class counts; leave out --expand-classes');
  }
  const recorded: RecordedPlanOptions = {
    mode, init, exclude: [...(options.exclude ?? []), ...presetPatterns(options.preset)], backbone: options.backbone ?? [],
    matchByOrder: options.matchByOrder === true, loadConstants: options.loadConstants === true,
    ...(options.expandClasses ? { expandClasses: options.expandClasses } : {}),
    ...(options.head?.length ? { heads: options.head } : {}),
    ...(options.classes ? { classes: { source: path.resolve(options.classes[0]!), target: path.resolve(options.classes[1]!) } } : {}),
  };
  const source = await open(sourcePath);
  try {
    const target = await open(targetPath);
    try {
      const { body, heads } = await planBody(source, target, recorded);
      for (const rule of heads.rules!.filter((r) => !target.tensors.some((t) => r.pattern.test(t.name)))) {
        process.stderr.write(`ckpt: warning: --head ${rule.text}: no target tensor matches\n`);
      }
      const classMap = heads.classMap;
      if (classMap && !body.entries.some((e) => e.expand || e.skip?.reason === 'head') && classMap.map.some((from, j) => from !== j)) {
        throw usageError(`--classes: ${classMap.source.length} → ${classMap.target.length} classes, but no class-dependent tensor was found to remap; name the heads with --head NAME=LAYOUT`);
      }
      const plan: PlanFile = {
        kind: 'ckpt-plan',
        version: PLAN_VERSION,
        source: await fileRef(source),
        target: await fileRef(target),
        options: { ...recorded, ...(recorded.classes && classMap ? { classes: { ...recorded.classes, map: classMap.map } } : {}) },
        ...body,
      };
      if (options.output) {
        const text = `${JSON.stringify(plan, null, 2)}\n`;
        await writeAtomic(options.output, (fd) => writeAll(fd, Buffer.from(text)));
      }
      process.stdout.write(options.json ? `${JSON.stringify(plan, null, 2)}\n` : renderPlan(plan));
      if (body.summary.fullModeFailed) {
        // Kept constants are the target's own by design, not a failure to load.
        const missing = body.entries.filter((e) => e.action !== 'load' && e.action !== 'fold' && e.action !== 'keep').map((e) => e.target);
        process.stderr.write(`ckpt: --mode full: ${missing.length} target tensor(s) cannot load: ${missing.join(', ')}\n`);
        return ExitCode.differs;
      }
      return ExitCode.ok;
    } finally {
      await target.close();
    }
  } finally {
    await source.close();
  }
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

async function fileRef(dict: StateDict): Promise<FileRef> {
  return { path: isLocalPath(dict.path) ? path.resolve(dict.path) : dict.path, format: dict.format, sha256: await pathSha256(dict.path) };
}

function renderPlan(plan: PlanFile): string {
  const lines = [planHeadline(plan.summary), `source: ${plan.source.path} (${plan.source.format})`, `target: ${plan.target.path} (${plan.target.format})`];
  const table = newTable(['target tensor', 'action', 'from source', 'why / transform'], ['elide', 'keep', 'elide', 'wrap']);
  for (const e of plan.entries) table.push([e.target, e.action, e.source ?? '', describe(e)]);
  lines.push(table.toString());
  if (plan.unusedSource.length) lines.push(fitLine(`unused source tensors (${plan.unusedSource.length}): ${plan.unusedSource.join(', ')}`, ', '));
  if (plan.summary.kept) lines.push(`${plan.summary.kept} target constants kept as they are (--load-constants loads them from the source)`);
  return `${lines.join('\n')}\n`;
}

function describe(e: PlanEntry): string {
  if (e.action === 'skip') return e.skip!.detail;
  if (e.action === 'keep') return e.keep!.detail;
  const parts = [e.why ?? ''];
  if (e.fold) parts.push(`fold ${e.fold.part} with BatchNorm ${e.fold.scale.replace(/\.[^.]+$/, '')} (ε ${formatEpsilon(e.fold.epsilon)}, ${e.fold.epsilonFrom})`);
  if (e.transpose) parts.push(`transpose(${e.transpose.join(',')})`);
  if (e.cast) parts.push(`cast ${e.cast.from} → ${e.cast.to}`);
  if (e.expand) {
    const x = e.expand;
    const blocks = x.blocks > 1 ? ` in ${x.blocks} blocks of ${x.sourceSize / x.blocks} → ${x.targetSize / x.blocks}` : '';
    parts.push(`axis ${x.axis}: ${x.sourceSize} → ${x.targetSize}${blocks}; rows${x.blocks > 1 ? ' per block' : ''} ${formatRows(x.rows)}${x.rows.includes(-1) ? ` (new: ${x.init})` : ''}`);
    parts.push(`${formatShape(e.sourceShape ?? [])} → ${formatShape(e.shape)}`);
  }
  return parts.filter(Boolean).join('; ');
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

export async function applyCommand(planPath: string, options: { output?: string; force?: boolean; json?: boolean }): Promise<number> {
  if (!options.output) throw usageError('apply needs -o OUT');
  const plan = readPlan(planPath);
  if (plan.summary.fullModeFailed && !options.force) {
    const notLoaded = plan.summary.targetTensors - plan.summary.loaded;
    throw new CkptError(ExitCode.differs, planPath, 'summary', `made with --mode full, but ${notLoaded} target tensor(s) do not load as they are (${planHeadline(plan.summary)}); --force applies it anyway`);
  }
  const result = await applyPlanFile(planPath, options.output);
  const summary = { plan: planPath, output: options.output, format: result.format, tensorsWritten: result.written, headline: planHeadline(plan.summary) };
  process.stdout.write(options.json ? `${JSON.stringify(summary, null, 2)}\n` : `apply: wrote ${options.output} (${result.format}): ${planHeadline(plan.summary)}\n`);
  return ExitCode.ok;
}
