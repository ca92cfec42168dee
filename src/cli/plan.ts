import * as path from 'node:path';
import { open } from '../open.js';
import { ExitCode, invalidInput, usageError, fromSystemError } from '../core/errors.js';
import { pathSha256, readTextFile } from '../core/file.js';
import type { StateDict, TensorInfo } from '../core/statedict.js';
import { writeAtomic, writeAll } from '../core/atomic.js';
import { parsePatterns } from '../ops/select.js';
import { makePlan, parseExpandClasses, planHeadline, PLAN_VERSION, type InitKind, type PlanBody, type PlanEntry, type PlanMode } from '../ops/plan.js';
import { plannedValues } from '../ops/apply.js';
import { rewriteOnnx, type TensorEdit } from '../formats/onnx/write.js';
import { chooseWriter } from '../formats/writers.js';
import { presetPatterns } from './select.js';
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
  options: Record<string, unknown>;
}

export interface PlanCommandOptions {
  output?: string;
  mode?: string;
  exclude?: string[];
  preset?: string;
  backbone?: string[];
  matchByOrder?: boolean;
  expandClasses?: string;
  init?: string;
  json?: boolean;
}

const MODES: readonly PlanMode[] = ['auto', 'full', 'detection', 'classification'];

export async function planCommand(sourcePath: string, targetPath: string, options: PlanCommandOptions): Promise<number> {
  const mode = (options.mode ?? 'auto') as PlanMode;
  if (!MODES.includes(mode)) throw usageError(`--mode must be one of ${MODES.join(', ')}, got '${options.mode}'`);
  const init = (options.init ?? 'target') as InitKind;
  if (!['target', 'zeros', 'normal'].includes(init)) throw usageError(`--init must be target, zeros or normal, got '${options.init}'`);
  if (options.backbone?.length && mode !== 'classification') throw usageError('--backbone applies to --mode classification');
  const excludeTexts = [...(options.exclude ?? []), ...presetPatterns(options.preset)];
  const source = await open(sourcePath);
  try {
    const target = await open(targetPath);
    try {
      const body = makePlan(source.tensors, target.tensors, {
        mode, init, exclude: parsePatterns(excludeTexts), backbone: parsePatterns(options.backbone),
        matchByOrder: options.matchByOrder === true, expandClasses: parseExpandClasses(options.expandClasses),
      });
      const plan: PlanFile = {
        kind: 'ckpt-plan',
        version: PLAN_VERSION,
        source: await fileRef(source),
        target: await fileRef(target),
        options: {
          mode, init, exclude: excludeTexts, backbone: options.backbone ?? [], matchByOrder: options.matchByOrder === true,
          ...(options.expandClasses ? { expandClasses: options.expandClasses } : {}),
        },
        ...body,
      };
      if (options.output) {
        const text = `${JSON.stringify(plan, null, 2)}\n`;
        await writeAtomic(options.output, (fd) => writeAll(fd, Buffer.from(text)));
      }
      process.stdout.write(options.json ? `${JSON.stringify(plan, null, 2)}\n` : renderPlan(plan));
      if (mode === 'full' && body.summary.loaded !== body.summary.targetTensors) {
        const missing = body.entries.filter((e) => e.action !== 'load').map((e) => e.target);
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

async function fileRef(dict: StateDict): Promise<FileRef> {
  return { path: path.resolve(dict.path), format: dict.format, sha256: await pathSha256(dict.path) };
}

function renderPlan(plan: PlanFile): string {
  const lines = [planHeadline(plan.summary), `source: ${plan.source.path} (${plan.source.format})`, `target: ${plan.target.path} (${plan.target.format})`];
  const table = newTable(['target tensor', 'action', 'from source', 'why / transform'], ['elide', 'keep', 'elide', 'wrap']);
  for (const e of plan.entries) table.push([e.target, e.action, e.source ?? '', describe(e)]);
  lines.push(table.toString());
  if (plan.unusedSource.length) lines.push(fitLine(`unused source tensors (${plan.unusedSource.length}): ${plan.unusedSource.join(', ')}`, ', '));
  return `${lines.join('\n')}\n`;
}

function describe(e: PlanEntry): string {
  if (e.action === 'skip') return e.skip!.detail;
  const parts = [e.why ?? ''];
  if (e.transpose) parts.push(`transpose(${e.transpose.join(',')})`);
  if (e.cast) parts.push(`cast ${e.cast.from} → ${e.cast.to}`);
  if (e.expand) {
    const x = e.expand;
    parts.push(`expand axis ${x.axis}: ${x.sourceSize} → ${x.targetSize}${x.blocks > 1 ? ` in ${x.blocks} blocks of ${x.sourceSize / x.blocks} → ${x.targetSize / x.blocks}` : ''}; new values: ${x.init}`);
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
      for (const entry of plan.entries) {
        if (entry.action === 'skip') continue;
        const s = bySource.get(entry.source!);
        const t = byTarget.get(entry.target);
        if (!s || !t) throw invalidInput(planPath, `entry '${entry.target}'`, `tensor '${s ? entry.target : entry.source}' is not in the file`);
        planned.set(t, () => plannedValues(entry, s, t));
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

export async function applyCommand(planPath: string, options: { output?: string; json?: boolean }): Promise<number> {
  if (!options.output) throw usageError('apply needs -o OUT');
  const plan = readPlan(planPath);
  const result = await applyPlanFile(planPath, options.output);
  const summary = { plan: planPath, output: options.output, format: result.format, tensorsWritten: result.written, headline: planHeadline(plan.summary) };
  process.stdout.write(options.json ? `${JSON.stringify(summary, null, 2)}\n` : `apply: wrote ${options.output} (${result.format}): ${planHeadline(plan.summary)}\n`);
  return ExitCode.ok;
}
