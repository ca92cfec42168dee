import { open } from '../open.js';
import { usageError } from '../core/errors.js';
import { parseProvider, type ProviderChoice } from '../runtime/session.js';
import type { Loss } from '../train/graph.js';
import { headJob, trainAndWrite, wholeNetworkJob, type Settings } from '../api/finetune.js';

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
}

function numberOption(name: string, text: string | undefined, fallback: number, check: (v: number) => boolean, expected: string): number {
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!check(value)) throw usageError(`${name} must be ${expected}, got '${text}'`);
  return value;
}

export const positiveInt = (v: number) => Number.isInteger(v) && v > 0;

/**
 * `ckpt finetune MODEL.onnx --data DATA -o OUT.onnx`: trains the dense layers that end the model
 * on features computed once by the frozen rest of it (scenario a: `--train-last 1`, a new linear
 * classifier; b: `--train-last K` or `--train PATTERN`, the top layers), or every layer
 * (scenario c: `--train-all`), then writes the model with the trained weights through the
 * lossless ONNX writer.
 */
export async function finetuneCommand(modelPath: string, options: FinetuneOptions): Promise<number> {
  if (!options.data) throw usageError('finetune needs --data (a .npz with x and y, .npy with --labels, or CSV)');
  if (!options.output) throw usageError('finetune needs -o OUT.onnx');
  const loss = (options.loss ?? 'cross-entropy') as Loss;
  if (!['cross-entropy', 'mse'].includes(loss)) throw usageError(`--loss must be cross-entropy or mse, got '${options.loss}'`);
  const optimizer = options.optimizer ?? 'adam';
  if (!['sgd', 'adam'].includes(optimizer)) throw usageError(`--optimizer must be sgd or adam, got '${optimizer}'`);
  const epochs = numberOption('--epochs', options.epochs, 10, positiveInt, 'a positive whole number');
  const batch = numberOption('--batch', options.batch, 32, positiveInt, 'a positive whole number');
  const lr = numberOption('--lr', options.lr, optimizer === 'adam' ? 0.001 : 0.01, (v) => v > 0 && Number.isFinite(v), 'a positive number');
  const weightDecay = numberOption('--weight-decay', options.weightDecay, 0, (v) => v >= 0 && Number.isFinite(v), 'a number ≥ 0');
  const momentum = numberOption('--momentum', options.momentum, 0.9, (v) => v >= 0 && v < 1, 'in [0, 1)');
  const seed = numberOption('--seed', options.seed, 0, Number.isInteger, 'a whole number');
  const validation = numberOption('--val-split', options.valSplit, 0.2, (v) => v >= 0 && v < 1, 'in [0, 1)');
  const stepsPerCall = numberOption('--steps-per-call', options.stepsPerCall, 64, positiveInt, 'a positive whole number');
  const oldClasses = options.oldClasses === undefined ? undefined : numberOption('--old-classes', options.oldClasses, 0, positiveInt, 'a positive whole number');
  if (options.freezeOldClasses && oldClasses === undefined) throw usageError('--freeze-old-classes needs --old-classes N (the pretrained class count)');
  const provider: ProviderChoice = parseProvider(options.ep);
  const settings: Settings = {
    loss, optimizer: { kind: optimizer as 'sgd' | 'adam', momentum, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay },
    epochs, batch, lr, seed, validation, provider, stepsPerCall, oldClasses,
  };

  const dict = await open(modelPath);
  try {
    if (dict.format !== 'onnx') throw usageError(`finetune trains ONNX models; ${modelPath} is ${dict.format}`);
    const job = options.trainAll ? await wholeNetworkJob(dict, options, settings) : await headJob(dict, options, settings);
    return await trainAndWrite(dict, options, settings, job);
  } finally {
    await dict.close();
  }
}
