import { ExitCode, usageError } from '../core/errors.js';
import { planHeadline, type InitKind, type PlanEntry, type PlanMode } from '../ops/plan.js';
import { formatEpsilon } from '../ops/structure.js';
import { formatRows } from '../ops/heads.js';
import { applyPlan, plan as makePlan, type PlanFile } from '../api/plan.js';
import { fitLine, formatShape, newTable, warnOnStderr } from './format.js';
import type { WriteCommandOptions } from './write-options.js';
import { writeOptionsFrom } from './write-settings.js';
import { writeReport } from '../report/index.js';

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
  html?: string;
}

export async function planCommand(sourcePath: string, targetPath: string, options: PlanCommandOptions): Promise<number> {
  const plan = await makePlan(sourcePath, targetPath, {
    ...options, mode: options.mode as PlanMode | undefined, init: options.init as InitKind | undefined, heads: options.head,
    classes: options.classes as [string, string] | undefined, warn: warnOnStderr,
  });
  if (options.html) await writeReport(options.html, { kind: 'plan', title: `${sourcePath} → ${targetPath}`, data: plan });
  process.stdout.write(options.json ? `${JSON.stringify(plan, null, 2)}\n` : renderPlan(plan));
  if (plan.summary.fullModeFailed) {
    // Kept constants are the target's own by design, not a failure to load.
    const missing = plan.entries.filter((e) => e.action !== 'load' && e.action !== 'fold' && e.action !== 'keep').map((e) => e.target);
    process.stderr.write(`ckpt: --mode full: ${missing.length} target tensor(s) cannot load: ${missing.join(', ')}\n`);
    return ExitCode.differs;
  }
  return ExitCode.ok;
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

export async function applyCommand(planPath: string, options: { output?: string; force?: boolean; json?: boolean } & WriteCommandOptions): Promise<number> {
  if (!options.output) throw usageError('apply needs -o OUT');
  const result = await applyPlan(planPath, options.output, { force: options.force, writeOptions: writeOptionsFrom(options) });
  process.stdout.write(options.json ? `${JSON.stringify(result, null, 2)}\n` : `apply: wrote ${result.output} (${result.format}): ${result.headline}\n${result.notes.map((n) => `note: ${n}\n`).join('')}`);
  return ExitCode.ok;
}
