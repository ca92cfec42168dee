import { ExitCode, usageError } from '../core/errors.js';
import { formatPercent } from '../core/percent.js';
import { parseProvider } from '../runtime/session.js';
import type { Loss } from '../train/graph.js';
import type { EpochReport } from '../train/engine.js';
import { finetune, type FinetuneSummary } from '../api/finetune.js';
import { optionalNumber } from './compare.js';
import { writeReport } from '../report/index.js';

export interface FinetuneOptions {
  data?: string;
  labels?: string;
  labelColumn?: string;
  output?: string;
  train?: string[];
  trainLast?: string;
  trainAll?: boolean;
  loss?: string;
  optimizer?: string;
  momentum?: string;
  epochs?: string;
  batch?: string;
  lr?: string;
  weightDecay?: string;
  seed?: string;
  valSplit?: string;
  oldClasses?: string;
  freezeOldClasses?: boolean;
  ep?: string;
  stepsPerCall?: string;
  json?: boolean;
  html?: string;
}

/**
 * `ckpt finetune MODEL.onnx --data DATA -o OUT.onnx`: JSON lines (start, one per epoch, then a
 * summary) when stdout is not a terminal or with --json, else a line per epoch and the verdict.
 */
export async function finetuneCommand(modelPath: string, options: FinetuneOptions): Promise<number> {
  if (!options.data) throw usageError('finetune needs --data (a .npz with x and y, .npy with --labels, or CSV)');
  if (!options.output) throw usageError('finetune needs -o OUT.onnx');
  const tty = process.stderr.isTTY === true && !options.json;
  const epochs = optionalNumber('--epochs', options.epochs);
  // The report's data: the JSON lines, gathered.
  const events: { start?: object; epochs: object[] } = { epochs: [] };
  const summary = await finetune(modelPath, options.data, {
    ...options, output: options.output, trainLast: optionalNumber('--train-last', options.trainLast),
    loss: options.loss as Loss | undefined, optimizer: options.optimizer as 'adam' | 'sgd' | undefined,
    momentum: optionalNumber('--momentum', options.momentum), epochs, batch: optionalNumber('--batch', options.batch),
    lr: optionalNumber('--lr', options.lr), weightDecay: optionalNumber('--weight-decay', options.weightDecay), seed: optionalNumber('--seed', options.seed),
    validationSplit: optionalNumber('--val-split', options.valSplit), oldClasses: optionalNumber('--old-classes', options.oldClasses),
    provider: parseProvider(options.ep), stepsPerCall: optionalNumber('--steps-per-call', options.stepsPerCall),
    onEvent: (event) => {
      if (event.event === 'start') events.start = event;
      else if (event.event === 'epoch') events.epochs.push(event);
      if (!tty) process.stdout.write(`${JSON.stringify(event)}\n`);
      else if (event.event === 'epoch') process.stderr.write(`${epochLine(event, epochs ?? 10)}\n`);
    },
  });
  if (options.html) await writeReport(options.html, { kind: 'finetune', title: modelPath, data: { ...events, summary } });
  if (tty) process.stdout.write(`finetune: wrote ${summary.output} — ${closingWords(summary, options.trainAll === true, options.oldClasses !== undefined)}\n`);
  return ExitCode.ok;
}

function epochLine(r: EpochReport, epochs: number): string {
  const pct = (v: number | undefined) => (v === undefined ? '' : ` ${formatPercent(v)}`);
  return `epoch ${r.epoch}/${epochs}  train loss ${r.trainLoss.toFixed(4)}  val loss ${r.validationLoss?.toFixed(4) ?? '–'}  acc${pct(r.validationAccuracy)}` +
    `${r.accuracyOld !== undefined ? `  old${pct(r.accuracyOld)}` : ''}${r.accuracyNew !== undefined ? `  new${pct(r.accuracyNew)}` : ''}  ${Math.round(r.examplesPerSecond)} ex/s`;
}

const percent = (v: number | undefined) => (v === undefined ? '–' : formatPercent(v));

function closingWords(s: FinetuneSummary, trainAll: boolean, oldClasses: boolean): string {
  if (trainAll) return `trained every layer (${s.trained.length} tensors) on ${s.provider}; validation accuracy ${percent(s.accuracy)}`;
  return `trained ${s.trained.join(', ')} on ${s.provider}; validation accuracy ${percent(s.accuracy)}` +
    `${oldClasses ? ` (old classes ${percent(s.accuracyOld)}, new ${percent(s.accuracyNew)})` : ''}, loss ${s.finalValidationLoss?.toFixed(4) ?? '–'}`;
}
