import type * as Ort from 'onnxruntime-node';
import { loadOrt, openSession, type ProviderChoice } from '../runtime/session.js';
import type { Trainable } from './graph.js';
import { seededRandom } from '../core/random.js';
import { usageError } from '../core/errors.js';
import type { EpochReport } from './report.js';

/**
 * Runs generated training graphs with onnxruntime-node: minibatches packed `stepsPerCall` at a
 * time into one Loop call; between calls the parameters and optimizer state come back to JS and
 * go in again (onnxruntime-node has no device-resident tensors to keep them on the GPU).
 */
export interface TrainOptions {
  epochs: number;
  batch: number;
  lr: number;
  seed: number;
  /** Fraction of examples held out for validation. */
  validation: number;
  provider: ProviderChoice;
  stepsPerCall: number;
  /** Labels below this are the pretrained ("old") classes, reported apart from the new ones. */
  oldClasses?: number;
}

export type { EpochReport } from './report.js';

export interface TrainResult {
  provider: 'cpu' | 'cuda';
  parameters: Record<string, Float32Array>;
  epochs: EpochReport[];
  final: EpochReport;
  trainExamples: number;
  validationExamples: number;
}

export interface Examples {
  /** Row-major [count, ...inputShape]. */
  x: Float32Array;
  /** Class indices, or targets [count, outFeatures] for mse. */
  labels?: Int32Array;
  targets?: Float32Array;
  count: number;
}

export { seededRandom } from '../core/random.js';

function shuffled(indices: number[], random: () => number): number[] {
  const out = indices.slice();
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

/** How many examples train and how many are held out, and the batch size that fits. */
export function splitSizes(count: number, validation: number, batch: number): { training: number; validation: number; batch: number } {
  const held = validation > 0 ? Math.max(1, Math.round(count * validation)) : 0;
  return { training: count - held, validation: held, batch: Math.min(batch, count - held) };
}

export async function train(
  model: Trainable, data: Examples, initial: Record<string, Float32Array>, options: TrainOptions, onEpoch?: (r: EpochReport) => void,
): Promise<TrainResult> {
  const ort = await loadOrt();
  const inFeatures = model.inputShape.reduce((n, d) => n * d, 1);
  const outFeatures = model.outputs;
  const random = seededRandom(options.seed);
  const order = shuffled([...Array(data.count).keys()], random);
  const sizes = splitSizes(data.count, options.validation, options.batch);
  const validation = order.slice(0, sizes.validation);
  const training = order.slice(sizes.validation);
  const batch = sizes.batch;
  if (batch <= 0) throw usageError(`no training examples: ${data.count} example(s), ${sizes.validation} held out for validation (--val-split)`);

  const { session: trainer, provider } = await openSession(model.trainingModel(batch), options.provider, 'training graph');
  const { session: evaluator } = await openSession(model.forwardModel(), provider, 'forward graph');
  const names = model.parameters;
  const params: Record<string, Float32Array> = Object.fromEntries(names.map((p) => [p, initial[p]!.slice()]));
  const states: Record<string, Float32Array> = Object.fromEntries(model.states.map((s) => [s, new Float32Array(params[s.replace(/_[mv]$/, '')]!.length)]));
  const tensor = (data: Float32Array, dims: number[]) => new ort.Tensor('float32', data, dims);
  let stepsTaken = 0;
  const reports: EpochReport[] = [];
  try {
    for (let epoch = 1; epoch <= options.epochs; epoch++) {
      const started = performance.now();
      const batches = Math.floor(training.length / batch);
      const epochOrder = shuffled(training, random);
      let lossSum = 0;
      for (let first = 0; first < batches; first += options.stepsPerCall) {
        const steps = Math.min(options.stepsPerCall, batches - first);
        const xs = new Float32Array(steps * batch * inFeatures);
        const ys = new Float32Array(steps * batch * outFeatures);
        for (let s = 0; s < steps; s++) {
          for (let k = 0; k < batch; k++) {
            const example = epochOrder[(first + s) * batch + k]!;
            const row = s * batch + k;
            xs.set(data.x.subarray(example * inFeatures, (example + 1) * inFeatures), row * inFeatures);
            if (data.labels) ys[row * outFeatures + data.labels[example]!] = 1;
            else ys.set(data.targets!.subarray(example * outFeatures, (example + 1) * outFeatures), row * outFeatures);
          }
        }
        const feeds: Record<string, Ort.Tensor> = {
          xs: tensor(xs, [steps, batch, ...model.inputShape]), ys: tensor(ys, [steps, batch, outFeatures]),
          t: tensor(new Float32Array([stepsTaken]), []), lr: tensor(new Float32Array([options.lr]), []),
        };
        for (const p of names) feeds[p] = tensor(params[p]!, model.shapeOf(p));
        for (const s of Object.keys(states)) feeds[s] = tensor(states[s]!, model.shapeOf(s.replace(/_[mv]$/, '')));
        const out = await trainer.run(feeds);
        for (const p of names) params[p] = (out[`${p}_out`]!.data as Float32Array).slice();
        for (const s of Object.keys(states)) states[s] = (out[`${s}_out`]!.data as Float32Array).slice();
        for (const l of out.losses!.data as Float32Array) lossSum += l;
        stepsTaken += steps;
      }
      const seconds = (performance.now() - started) / 1000;
      const report: EpochReport = { epoch, trainLoss: lossSum / Math.max(1, batches), examplesPerSecond: (batches * batch) / seconds };
      if (validation.length) Object.assign(report, await evaluate(ort, evaluator, model, params, data, validation, options.oldClasses));
      reports.push(report);
      onEpoch?.(report);
    }
  } finally {
    await trainer.release();
    await evaluator.release();
  }
  return {
    provider, parameters: params, epochs: reports, final: reports[reports.length - 1]!,
    trainExamples: training.length, validationExamples: validation.length,
  };
}

async function evaluate(
  ort: typeof Ort, session: Ort.InferenceSession, model: Trainable, params: Record<string, Float32Array>, data: Examples,
  indices: number[], oldClasses: number | undefined,
): Promise<Partial<EpochReport>> {
  const inFeatures = model.inputShape.reduce((n, d) => n * d, 1);
  const outFeatures = model.outputs;
  const x = new Float32Array(indices.length * inFeatures);
  indices.forEach((e, row) => x.set(data.x.subarray(e * inFeatures, (e + 1) * inFeatures), row * inFeatures));
  const feeds: Record<string, Ort.Tensor> = { x: new ort.Tensor('float32', x, [indices.length, ...model.inputShape]) };
  for (const p of model.parameters) feeds[p] = new ort.Tensor('float32', params[p]!, model.shapeOf(p));
  const logits = (await session.run(feeds)).logits!.data as Float32Array;
  let loss = 0;
  if (!data.labels) {
    indices.forEach((e, row) => {
      for (let c = 0; c < outFeatures; c++) loss += (logits[row * outFeatures + c]! - data.targets![e * outFeatures + c]!) ** 2;
    });
    return { validationLoss: loss / (indices.length * outFeatures) };
  }
  const hits = { all: 0, old: 0, oldTotal: 0, new: 0, newTotal: 0 };
  indices.forEach((e, row) => {
    const z = logits.subarray(row * outFeatures, (row + 1) * outFeatures);
    let best = 0;
    let max = -Infinity;
    for (let c = 0; c < outFeatures; c++) if (z[c]! > max) [max, best] = [z[c]!, c];
    let sum = 0;
    for (let c = 0; c < outFeatures; c++) sum += Math.exp(z[c]! - max);
    const label = data.labels![e]!;
    loss += -(z[label]! - max - Math.log(sum));
    const hit = best === label ? 1 : 0;
    hits.all += hit;
    if (oldClasses !== undefined && label < oldClasses) [hits.old, hits.oldTotal] = [hits.old + hit, hits.oldTotal + 1];
    else if (oldClasses !== undefined) [hits.new, hits.newTotal] = [hits.new + hit, hits.newTotal + 1];
  });
  return {
    validationLoss: loss / indices.length,
    validationAccuracy: hits.all / indices.length,
    ...(oldClasses !== undefined && hits.oldTotal ? { accuracyOld: hits.old / hits.oldTotal } : {}),
    ...(oldClasses !== undefined && hits.newTotal ? { accuracyNew: hits.new / hits.newTotal } : {}),
  };
}
