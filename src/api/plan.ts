import * as path from 'node:path';
import { open } from '../open.js';
import { CkptError, ExitCode, invalidInput, fromSystemError, usageError } from '../core/errors.js';
import { writeAtomic, writeAll, writeOnlyIf } from '../core/atomic.js';
import { pathSha256, readTextFile } from '../core/file.js';
import { withValues, type StateDict, type StoredBytes, type TensorInfo } from '../core/statedict.js';
import { isLocalPath } from '../core/location.js';
import type { FileIdentity } from '../core/file-sha256.js';
import { checkWriteOptions, chooseWriter, dtypeOptions, externalDataOptions } from '../formats/writers.js';
import { rewriteOnnxWithDtype } from '../formats/onnx/cast.js';
import { parsePatterns } from '../ops/select.js';
import { foldSources, makePlan, parseExpandClasses, planHeadline, PLAN_VERSION, type InitKind, type PlanBody, type PlanEntry, type PlanMode } from '../ops/plan.js';
import { foldedEntryValues, plannedValues } from '../ops/apply.js';
import { modelView } from '../ops/structure.js';
import { classMapOf, graphBlockRows, graphLayers, parseHeadRules, readLabels, type HeadOptions } from '../ops/heads.js';
import type { TensorEdit } from '../formats/onnx/write.js';
import type { ClassMap } from '../runtime/compare.js';
import { presetPatterns } from '../ops/presets.js';
import { withModel, write, type ModelInput, type Warn, type WriteSettings } from './common.js';

/** A file as a plan fingerprints it. */
export interface FileFingerprint {
  path: string;
  sha256: string;
  /** A local file's identity when the hash was taken: while it holds, apply need not hash the file again. */
  identity?: FileIdentity;
}

export interface FileRef extends FileFingerprint {
  format: string;
  /** The other local files the model's tensors are stored in (ONNX external data, safetensors shards). */
  companions?: FileFingerprint[];
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

/**
 * A Darknet model says where its YOLO heads are: the convolution before each `[yolo]` section,
 * `anchors × (5 + classes)` filters. Its weights and biases get that layout unless `--head` says
 * otherwise (rules given first win).
 */
function darknetHeads(target: StateDict): string[] {
  const heads = (target.metadata.darknet as { yolo_heads?: { tensor?: unknown; layout?: unknown }[] } | undefined)?.yolo_heads ?? [];
  return heads.flatMap(({ tensor, layout }) => (typeof tensor === 'string' && typeof layout === 'string' && tensor.endsWith('.weights')
    ? [`=${tensor}=${layout}`, `=${tensor.slice(0, -'.weights'.length)}.biases=${layout}`]
    : []));
}

/** SOURCE planned into TARGET under recorded options: one path for `plan` and `check`'s re-planning. */
export async function planBody(source: StateDict, target: StateDict, recorded: RecordedPlanOptions): Promise<{ body: PlanBody; heads: HeadOptions }> {
  const fromCfg = parseHeadRules(darknetHeads(target)).map((rule) => ({ ...rule, from: 'the [yolo] section of the cfg' }));
  const heads: HeadOptions = { rules: [...parseHeadRules(recorded.heads), ...fromCfg] };
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
  if (!isLocalPath(dict.path)) return { path: dict.path, format: dict.format, sha256: await pathSha256(dict.path) };
  const { hashWithIdentity } = await import('../core/file-sha256.js');
  const main = path.resolve(dict.path);
  const [own, ...others] = await Promise.all([main, ...companionFiles(dict, main)].map(async (file) => ({ path: file, ...await hashWithIdentity(file) })));
  return { path: main, format: dict.format, sha256: own!.sha256, ...(own!.identity ? { identity: own!.identity } : {}), ...(others.length ? { companions: others } : {}) };
}

/** Local files other than `main` (and not inside it, when it is a folder) that hold the model's tensors, sorted. */
function companionFiles(dict: StateDict, main: string): string[] {
  const files = new Set<string>();
  for (const t of dict.tensors) {
    const file = t.stored?.file.path;
    if (file === undefined || !isLocalPath(file)) continue;
    const resolved = path.resolve(file);
    if (resolved !== main && !resolved.startsWith(main + path.sep)) files.add(resolved);
  }
  return [...files].sort();
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

/**
 * Applies a plan: refuses a stale plan, then writes TARGET with the planned weights to `out`.
 * `planPath` names the plan in errors; the plan is read from it unless given.
 */
export async function applyPlanFile(planPath: string, out: string, plan = readPlan(planPath), writeOptions: WriteSettings = {}): Promise<{ written: number; format: string; notes: string[] }> {
  // The files are hashed on other threads while the output is written; it is put in place only
  // once all match the plan.
  const hashing = new AbortController();
  const unchanged = checkUnchanged(planPath, plan, hashing.signal);
  unchanged.catch(() => {}); // awaited below unless the hashing is stopped
  try {
    return await writeOnlyIf(unchanged, () => writePlanned(planPath, out, plan, writeOptions));
  } catch (err) {
    // A file that changed explains any failure to read it: that is the error to report. A usage
    // error is the user's to fix either way: reported at once, the hashing stopped.
    if (err instanceof CkptError && err.exitCode === ExitCode.usage) hashing.abort();
    else await unchanged;
    throw err;
  }
}

/**
 * Rejects, naming the plan's side, when SOURCE or TARGET is not the file the plan was made from:
 * its identity as recorded vouches for a local file, otherwise its hash is compared.
 */
async function checkUnchanged(planPath: string, plan: PlanFile, signal: AbortSignal): Promise<void> {
  const sides = ['source', 'target'] as const;
  const { fileIdentity, sameIdentity } = await import('../core/file-sha256.js');
  const unchanged = (ref: FileFingerprint) => {
    const now = ref.identity && isLocalPath(ref.path) ? fileIdentity(ref.path) : undefined;
    return now !== undefined && sameIdentity(now, ref.identity!);
  };
  // Each side's file, then its companions, in order: the first that changed is the one reported.
  const checks = sides.flatMap((side) => [plan[side], ...(plan[side].companions ?? [])].map((ref) => ({ side, ref })));
  const hashes = await Promise.allSettled(checks.map(async ({ ref }) => unchanged(ref) ? ref.sha256 : pathSha256(ref.path, signal)));
  checks.forEach(({ side, ref }, i) => {
    const hash = hashes[i]!;
    if (hash.status === 'rejected') throw hash.reason;
    if (hash.value !== ref.sha256) throw invalidInput(planPath, side, `${ref.path} changed since the plan was made (SHA-256 differs); make the plan again`);
  });
}

async function writePlanned(planPath: string, out: string, plan: PlanFile, writeOptions: WriteSettings): Promise<{ written: number; format: string; notes: string[] }> {
  const source = await open(plan.source.path);
  try {
    const target = await open(plan.target.path);
    try {
      const bySource = new Map(source.tensors.map((t) => [t.name, t]));
      const byTarget = new Map(target.tensors.map((t) => [t.name, t]));
      const planned = new Map<TensorInfo, () => Promise<Uint8Array>>();
      // Plain loads whose source stores the bytes exactly as they go out: streamed from there in chunks, as convert's are.
      const loadedAsStored = new Map<TensorInfo, StoredBytes>();
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
        } else {
          planned.set(t, () => plannedValues(entry, s, t));
          const asStored = entry.action === 'load' && !entry.transpose && !entry.cast && s.stored && !s.encoding && s.dtype === t.dtype && s.byteLength === t.byteLength;
          if (asStored) loadedAsStored.set(t, s.stored!);
        }
      }
      if (target.format === 'onnx') {
        const edits = new Map<TensorInfo, TensorEdit>([...planned].map(([t, read]) => {
          const stored = loadedAsStored.get(t);
          return [t, { kind: 'replace', dtype: t.dtype, shape: t.shape, read, ...(stored ? { stored } : {}) }];
        }));
        checkWriteOptions(chooseWriter(out, 'onnx', undefined), writeOptions);
        const { notes } = await rewriteOnnxWithDtype(target, target.tensors, edits, out, { ...externalDataOptions(writeOptions), ...dtypeOptions(writeOptions) });
        return { written: planned.size, format: 'onnx', notes };
      }
      const tensors = target.tensors.map((t) => {
        const read = planned.get(t);
        if (!read) return t;
        const stored = loadedAsStored.get(t);
        return withValues(t, { read, ...(stored ? { stored } : {}) });
      });
      const report = await write(target, out, undefined, tensors, writeOptions);
      return { written: planned.size, format: report.format, notes: report.notes };
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

export interface PlanOptions {
  /** auto (default): load, expand or skip; full: everything must load; detection: all but class-count dependent heads; classification: the backbone only. */
  mode?: PlanMode;
  /** Never load these target tensors (patterns, see parsePattern). */
  exclude?: readonly string[];
  /** Exclude a preset's heads (PRESETS). */
  preset?: string;
  /** Classification mode: the tensors of the feature extractor. */
  backbone?: readonly string[];
  /** Pair every tensor not paired by name by its graph position. */
  matchByOrder?: boolean;
  /** Class counts of a grown head when they cannot be inferred, e.g. '90:92'. */
  expandClasses?: string;
  /** 'NAME=LAYOUT' rules for class-dependent tensors. */
  heads?: readonly string[];
  /** Label files of SOURCE and TARGET: shared classes are copied to their new index by name. */
  classes?: readonly [string, string];
  /** Values of the new positions of an expanded head: target (default), zeros or normal. */
  init?: InitKind;
  /** Also load graph constants from SOURCE. */
  loadConstants?: boolean;
  /** Write the plan here (atomically) as well. */
  output?: string;
  warn?: Warn;
}

const MODES: readonly PlanMode[] = ['auto', 'full', 'detection', 'classification'];

/**
 * Plans a partial load: for every tensor of TARGET (the model to train), load it from SOURCE
 * (pretrained), expand it (a bigger head), or skip it, and why. The result is plan.json as
 * `ckpt plan --json` prints it; `summary.fullModeFailed` says a full-mode plan does not load.
 */
export async function plan(source: ModelInput, target: ModelInput, options: PlanOptions = {}): Promise<PlanFile> {
  const mode = options.mode ?? 'auto';
  if (!MODES.includes(mode)) throw usageError(`--mode must be one of ${MODES.join(', ')}, got '${mode}'`);
  const init = options.init ?? 'target';
  if (!['target', 'zeros', 'normal'].includes(init)) throw usageError(`--init must be target, zeros or normal, got '${init}'`);
  if (options.backbone?.length && mode !== 'classification') throw usageError('--backbone applies to --mode classification');
  if (options.classes) {
    if (options.classes.length !== 2) throw usageError(`--classes takes two files, SOURCE_LABELS TARGET_LABELS (got ${options.classes.length}); put it after SOURCE and TARGET`);
    if (options.expandClasses) throw usageError('--classes gives the class counts; leave out --expand-classes');
  }
  const recorded: RecordedPlanOptions = {
    mode, init, exclude: [...(options.exclude ?? []), ...presetPatterns(options.preset)], backbone: [...(options.backbone ?? [])],
    matchByOrder: options.matchByOrder === true, loadConstants: options.loadConstants === true,
    ...(options.expandClasses ? { expandClasses: options.expandClasses } : {}),
    ...(options.heads?.length ? { heads: [...options.heads] } : {}),
    ...(options.classes ? { classes: { source: path.resolve(options.classes[0]), target: path.resolve(options.classes[1]) } } : {}),
  };
  return withModel(source, {}, (sourceDict) => withModel(target, {}, async (targetDict) => {
    const { body, heads } = await planBody(sourceDict, targetDict, recorded);
    for (const rule of heads.rules!.filter((r) => !targetDict.tensors.some((t) => r.pattern.test(t.name)))) {
      options.warn?.(`--head ${rule.text}: no target tensor matches`);
    }
    const classMap = heads.classMap;
    if (classMap && !body.entries.some((e) => e.expand || e.skip?.reason === 'head') && classMap.map.some((from, j) => from !== j)) {
      throw usageError(`--classes: ${classMap.source.length} → ${classMap.target.length} classes, but no class-dependent tensor was found to remap; name the heads with --head NAME=LAYOUT`);
    }
    // Hashed side by side: large files on their own threads.
    const [sourceRef, targetRef] = await Promise.all([fileRef(sourceDict), fileRef(targetDict)]);
    const made: PlanFile = {
      kind: 'ckpt-plan',
      version: PLAN_VERSION,
      source: sourceRef,
      target: targetRef,
      options: { ...recorded, ...(recorded.classes && classMap ? { classes: { ...recorded.classes, map: classMap.map } } : {}) },
      ...body,
    };
    if (options.output) await savePlan(made, options.output);
    return made;
  }));
}

/** Writes plan.json atomically. */
export async function savePlan(plan: PlanFile, file: string): Promise<void> {
  const text = `${JSON.stringify(plan, null, 2)}\n`;
  await writeAtomic(file, (fd) => writeAll(fd, Buffer.from(text)));
}

export interface ApplyOptions {
  /** Apply a full-mode plan even though some tensors do not load (refused otherwise). */
  force?: boolean;
  /** Dtypes, quantization, shards, external data of the output. */
  writeOptions?: WriteSettings;
}

/** What `ckpt apply --json` prints. */
export interface ApplyResult {
  /** The plan file, when the plan was given as one. */
  plan: string | null;
  output: string;
  format: string;
  tensorsWritten: number;
  headline: string;
  notes: string[];
}

/** Writes the plan's TARGET with the planned weights in place to `output`; refuses a stale plan. */
export async function applyPlan(plan: PlanFile | string, output: string, options: ApplyOptions = {}): Promise<ApplyResult> {
  const planPath = typeof plan === 'string' ? plan : undefined;
  const planned = typeof plan === 'string' ? readPlan(plan) : plan;
  const label = planPath ?? 'plan';
  if (planned.summary.fullModeFailed && !options.force) {
    const notLoaded = planned.summary.targetTensors - planned.summary.loaded;
    throw new CkptError(ExitCode.differs, label, 'summary', `made with --mode full, but ${notLoaded} target tensor(s) do not load as they are (${planHeadline(planned.summary)}); --force applies it anyway`);
  }
  const result = await applyPlanFile(label, output, planned, options.writeOptions);
  return { plan: planPath ?? null, output, format: result.format, tensorsWritten: result.written, headline: planHeadline(planned.summary), notes: result.notes };
}
