import * as path from 'node:path';
import { open } from '../open.js';
import { CkptError, ExitCode, usageError } from '../core/errors.js';
import { writeAtomic, writeAll } from '../core/atomic.js';
import { planHeadline, PLAN_VERSION, type InitKind, type PlanEntry, type PlanMode } from '../ops/plan.js';
import { formatEpsilon } from '../ops/structure.js';
import { formatRows } from '../ops/heads.js';
import { presetPatterns } from '../ops/presets.js';
import { applyPlanFile, fileRef, planBody, readPlan, type PlanFile, type RecordedPlanOptions } from '../api/plan.js';
import { fitLine, formatShape, newTable } from './format.js';

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
