import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CkptError, invalidInput, usageError } from '../core/errors.js';
import type { StateDict, TensorInfo } from '../core/statedict.js';
import { graphNodesOf } from '../formats/onnx/index.js';
import { rewriteOnnx, type TensorEdit } from '../formats/onnx/write.js';
import { parsePatterns } from '../ops/select.js';
import { loadOrt, openSession, type ProviderChoice } from '../runtime/session.js';
import { denseChain, type ModelLayer } from '../train/chain.js';
import { loadDataset, type Dataset } from '../train/data.js';
import { splitSizes, train, type TrainOptions } from '../train/engine.js';
import type { EpochReport } from '../train/report.js';
import { analyzeNetwork, measureShapes, networkTrainable } from '../train/network.js';
import { denseTrainable, type Loss, type Trainable, type TrainSpec } from '../train/graph.js';
import type { OptimizerSpec } from '../train/loop.js';
import { withModel, type ModelInput } from './common.js';

/** What both flows train with: the engine's options, the loss and the optimizer. */
export interface FinetuneOptions {
  /** The model with the trained weights (written atomically). */
  output: string;
  /** Labels for .npy features. */
  labels?: string;
  /** CSV label column (default: label/target/y/class, else the first). */
  labelColumn?: string;
  /** Train the dense layers from the first whose weight matches one of these patterns. */
  train?: readonly string[];
  /** Train the last K dense layers (default 1: a new linear classifier on frozen features). */
  trainLast?: number;
  /** Train every layer. */
  trainAll?: boolean;
  loss?: 'cross-entropy' | 'mse';
  optimizer?: 'adam' | 'sgd';
  /** SGD momentum (default 0.9). */
  momentum?: number;
  /** Default 10. */
  epochs?: number;
  /** Minibatch size (default 32). */
  batch?: number;
  /** Learning rate (default 0.001 for adam, 0.01 for sgd). */
  lr?: number;
  /** L2 weight decay on weights (default 0). */
  weightDecay?: number;
  /** Seed of the split and shuffles (default 0). */
  seed?: number;
  /** Fraction held out for validation (default 0.2). */
  validationSplit?: number;
  /** Labels below this are the pretrained classes: accuracy is reported for old and new apart. */
  oldClasses?: number;
  /** Keep the head's rows of the old classes fixed (needs oldClasses). */
  freezeOldClasses?: boolean;
  /** cpu, cuda or auto (default). */
  provider?: ProviderChoice;
  /** Optimizer steps per onnxruntime call (default 64). */
  stepsPerCall?: number;
  /** Progress: a start event, one per epoch, then the summary. */
  onEvent?: (event: FinetuneEvent) => void;
}

export interface FinetuneStart {
  event: 'start';
  model: string;
  data: string;
  examples: number;
  trainable: string[];
  ep: ProviderChoice;
}

export type FinetuneEpoch = { event: 'epoch' } & EpochReport;

/** The last of `ckpt finetune --json`'s lines, and what finetune() returns. */
export interface FinetuneSummary {
  event: 'summary';
  output: string;
  provider: string;
  trained: string[];
  trainExamples: number;
  validationExamples: number;
  finalTrainLoss: number;
  finalValidationLoss: number | undefined;
  accuracy: number | undefined;
  accuracyOld: number | undefined;
  accuracyNew: number | undefined;
  frozenOldClasses: boolean;
}

/** The JSON lines of `ckpt finetune --json`, one object each. */
export type FinetuneEvent = FinetuneStart | FinetuneEpoch | FinetuneSummary;

type Request = FinetuneOptions & { data: string };

const positiveInt = (v: number) => Number.isInteger(v) && v > 0;

function setting(name: string, value: number | undefined, fallback: number, check: (v: number) => boolean, expected: string): number {
  if (value === undefined) return fallback;
  if (!check(value)) throw usageError(`${name} must be ${expected}, got '${value}'`);
  return value;
}

/**
 * Trains the dense layers that end an ONNX model on features computed once by the frozen rest of
 * it (`trainLast: 1`, the default: a new linear classifier; `trainLast: K` or `train`: the top
 * layers), or every layer (`trainAll`), then writes the model with the trained weights through the
 * lossless ONNX writer. `data`: a .npz with arrays x and y, .npy (with `labels`), or CSV.
 */
export async function finetune(model: ModelInput, data: string, options: FinetuneOptions): Promise<FinetuneSummary> {
  if (!options.output) throw usageError('finetune needs -o OUT.onnx');
  const loss = options.loss ?? 'cross-entropy';
  if (!['cross-entropy', 'mse'].includes(loss)) throw usageError(`--loss must be cross-entropy or mse, got '${options.loss}'`);
  const optimizer = options.optimizer ?? 'adam';
  if (!['sgd', 'adam'].includes(optimizer)) throw usageError(`--optimizer must be sgd or adam, got '${optimizer}'`);
  const epochs = setting('--epochs', options.epochs, 10, positiveInt, 'a positive whole number');
  const batch = setting('--batch', options.batch, 32, positiveInt, 'a positive whole number');
  const lr = setting('--lr', options.lr, optimizer === 'adam' ? 0.001 : 0.01, (v) => v > 0 && Number.isFinite(v), 'a positive number');
  const weightDecay = setting('--weight-decay', options.weightDecay, 0, (v) => v >= 0 && Number.isFinite(v), 'a number ≥ 0');
  const momentum = setting('--momentum', options.momentum, 0.9, (v) => v >= 0 && v < 1, 'in [0, 1)');
  const seed = setting('--seed', options.seed, 0, Number.isInteger, 'a whole number');
  const validation = setting('--val-split', options.validationSplit, 0.2, (v) => v >= 0 && v < 1, 'in [0, 1)');
  const stepsPerCall = setting('--steps-per-call', options.stepsPerCall, 64, positiveInt, 'a positive whole number');
  const oldClasses = options.oldClasses === undefined ? undefined : setting('--old-classes', options.oldClasses, 0, positiveInt, 'a positive whole number');
  if (options.freezeOldClasses && oldClasses === undefined) throw usageError('--freeze-old-classes needs --old-classes N (the pretrained class count)');
  const settings: Settings = {
    loss, optimizer: { kind: optimizer, momentum, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay },
    epochs, batch, lr, seed, validation, provider: options.provider ?? 'auto', stepsPerCall, oldClasses,
  };
  const request: Request = { ...options, data };
  return withModel(model, {}, async (dict) => {
    if (dict.format !== 'onnx') throw usageError(`finetune trains ONNX models; ${dict.path} is ${dict.format}`);
    const job = options.trainAll ? await wholeNetworkJob(dict, request, settings) : await headJob(dict, request, settings);
    return trainAndWrite(dict, request, settings, job);
  });
}

/** finetune() as an async iterator of its events: start, one per epoch, then the summary. */
export async function* finetuneEvents(model: ModelInput, data: string, options: Omit<FinetuneOptions, 'onEvent'>): AsyncGenerator<FinetuneEvent, FinetuneSummary> {
  const queue: FinetuneEvent[] = [];
  let wake: (() => void) | undefined;
  let finished = false;
  const run = finetune(model, data, { ...options, onEvent: (event) => { queue.push(event); wake?.(); } })
    .finally(() => { finished = true; wake?.(); });
  run.catch(() => {}); // rethrown below, after the events that came before the failure
  while (true) {
    while (queue.length) yield queue.shift()!;
    if (finished) return await run;
    await new Promise<void>((resolve) => (wake = resolve));
    wake = undefined;
  }
}

interface Settings extends TrainOptions {
  loss: Loss;
  optimizer: OptimizerSpec;
}

/** What a flow trains: its graphs, the examples they read, and the tensor in the file behind each parameter. */
interface Job {
  model: Trainable;
  data: Dataset;
  /** Per-example inputs of the graphs: the data itself, or the features the frozen layers computed from it. */
  x: Float32Array;
  tensors: Map<string, TensorInfo>;
  /** The trained tensors' names, as reported. */
  trained: string[];
}

/** Trains a flow's job, reporting every epoch, and writes the model with the trained tensors. */
async function trainAndWrite(dict: StateDict, options: Request, s: Settings, job: Job): Promise<FinetuneSummary> {
  const { data } = job;
  const initial: Record<string, Float32Array> = {};
  for (const [name, t] of job.tensors) initial[name] = await floats(t);
  options.onEvent?.({ event: 'start', model: dict.path, data: options.data, examples: data.count, trainable: job.trained, ep: s.provider });
  const result = await train(job.model, { x: job.x, count: data.count, ...(data.labels ? { labels: data.labels } : { targets: data.targets! }) }, initial, s,
    (r) => options.onEvent?.({ event: 'epoch', ...r }));

  const edits = new Map<TensorInfo, TensorEdit>();
  for (const [name, t] of job.tensors) {
    const values = result.parameters[name]!;
    edits.set(t, { kind: 'replace', dtype: t.dtype, shape: t.shape, read: async () => new Uint8Array(values.buffer, values.byteOffset, values.byteLength) });
  }
  await rewriteOnnx(dict.path, edits, options.output);
  const summary: FinetuneSummary = {
    event: 'summary', output: options.output, provider: result.provider, trained: job.trained,
    trainExamples: result.trainExamples, validationExamples: result.validationExamples,
    finalTrainLoss: result.final.trainLoss, finalValidationLoss: result.final.validationLoss,
    accuracy: result.final.validationAccuracy, accuracyOld: result.final.accuracyOld, accuracyNew: result.final.accuracyNew,
    frozenOldClasses: options.freezeOldClasses === true,
  };
  options.onEvent?.(summary);
  return summary;
}

async function floats(t: TensorInfo): Promise<Float32Array> {
  const bytes = await t.read();
  return new Float32Array(Uint8Array.from(bytes).buffer);
}

/** Scenarios a and b: the dense layers that end the model, on features computed once by the frozen rest of it. */
async function headJob(dict: StateDict, options: Request, s: Settings): Promise<Job> {
  const layers = trainableLayers(dict, options);
  const head = layers[layers.length - 1]!;
  const data = await loadDataset(options.data, { labels: options.labels, labelColumn: options.labelColumn, regression: s.loss === 'mse' });
  checkTargets(options.data, data, head.outFeatures, s.oldClasses);
  const features = await computeFeatures(dict, layers[0]!, data, s.provider);
  const spec: TrainSpec = {
    layers: layers.map(({ layout, inFeatures, outFeatures, hasBias, relu }) => ({ layout, inFeatures, outFeatures, hasBias, relu })),
    loss: s.loss,
    optimizer: s.optimizer,
    ...(options.freezeOldClasses ? { frozenOutputs: s.oldClasses } : {}),
  };
  const tensors = new Map<string, TensorInfo>();
  layers.forEach((layer, i) => {
    tensors.set(`W${i}`, layer.weight);
    if (layer.bias) tensors.set(`b${i}`, layer.bias);
  });
  const trained = layers.map((l) => l.weight.name);
  return { model: denseTrainable(spec), data, x: features, tensors, trained };
}

/** The dense layers to train: the last K of the chain that ends the model, or those --train selects. */
function trainableLayers(dict: StateDict, options: Request): ModelLayer[] {
  const nodes = graphNodesOf(dict) ?? [];
  const chain = denseChain(dict, nodes);
  if (chain.layers.length === 0) {
    throw invalidInput(dict.path, 'graph', 'the model does not end in dense layers (Gemm, or MatMul + Add, with optional Relu): nothing here can be trained as a head');
  }
  if (options.train?.length) {
    const patterns = parsePatterns(options.train);
    const start = chain.layers.findIndex((l) => patterns.some((p) => p.test(l.weight.name)));
    if (start < 0) throw usageError(`--train ${options.train.join(',')}: matches none of the dense layers at the end of the model (${chain.layers.map((l) => l.weight.name).join(', ')})`);
    const selected = chain.layers.slice(start);
    const unmatched = selected.filter((l) => !patterns.some((p) => p.test(l.weight.name)));
    if (unmatched.length) throw usageError(`--train must select the last layers without gaps; also train ${unmatched.map((l) => l.weight.name).join(', ')}`);
    return selected;
  }
  const k = options.trainLast === undefined ? 1 : Number(options.trainLast);
  if (!positiveInt(k)) throw usageError(`--train-last must be a positive whole number, got '${options.trainLast}'`);
  if (k > chain.layers.length) throw usageError(`--train-last ${k}: the model ends in ${chain.layers.length} dense layer(s) (${chain.layers.map((l) => l.weight.name).join(', ')})`);
  return chain.layers.slice(-k);
}

/**
 * Features for the first trainable layer: the data itself when that layer reads a model input,
 * else the frozen part of the model run once over the data (the tensor exposed as an extra output).
 */
async function computeFeatures(dict: StateDict, first: ModelLayer, data: Dataset, provider: ProviderChoice): Promise<Float32Array> {
  const inputs = dict.metadata.inputs as { name: string; shape?: (number | string | null)[] }[];
  const perExample = data.x.length / data.count;
  if (inputs.some((i) => i.name === first.input)) {
    if (perExample !== first.inFeatures) throw invalidInput(data.source, 'features', `${perExample} values per example; the model's input '${first.input}' takes ${first.inFeatures}`);
    return data.x;
  }
  const input = inputs[0];
  if (!input || inputs.length !== 1) throw invalidInput(dict.path, 'inputs', `feature extraction needs a model with one input, found ${inputs.length}`);
  const dims = (input.shape ?? []).slice(1);
  const expected = dims.every((d) => typeof d === 'number') ? (dims as number[]).reduce((n, d) => n * d, 1) : undefined;
  if (expected !== undefined && expected !== perExample) {
    throw invalidInput(data.source, 'features', `${perExample} values per example (shape [${data.featureShape.join(',')}]); the model input '${input.name}' expects [${dims.join(',')}]`);
  }
  const shape = expected !== undefined ? (dims as number[]) : data.featureShape;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ckpt-features-'));
  try {
    const featureModel = path.join(dir, 'features.onnx');
    await rewriteOnnx(dict.path, new Map(), featureModel, { extraOutputs: [first.input] });
    const ort = await loadOrt();
    const { session } = await openSession(featureModel, provider, dict.path);
    try {
      const out = new Float32Array(data.count * first.inFeatures);
      const chunk = 256;
      for (let start = 0; start < data.count; start += chunk) {
        const n = Math.min(chunk, data.count - start);
        const x = data.x.subarray(start * perExample, (start + n) * perExample);
        const result = await session.run({ [input.name]: new ort.Tensor('float32', x, [n, ...shape]) }, [first.input]);
        const values = result[first.input]!.data as Float32Array;
        if (values.length !== n * first.inFeatures) {
          throw invalidInput(dict.path, first.input, `feature tensor has ${values.length / n} values per example, the layer expects ${first.inFeatures}`);
        }
        out.set(values, start * first.inFeatures);
      }
      return out;
    } finally {
      await session.release();
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** Labels within the model's outputs, regression targets as wide as them, old classes fewer. */
function checkTargets(file: string, data: Dataset, outputs: number, oldClasses: number | undefined): void {
  if (data.labels) {
    const maxLabel = data.labels.reduce((m, v) => Math.max(m, v), 0);
    if (maxLabel >= outputs) throw invalidInput(file, 'labels', `label ${maxLabel} is out of range: the model's head has ${outputs} outputs`);
  } else if (data.targetWidth !== outputs) {
    throw invalidInput(file, 'targets', `${data.targetWidth} values per example, the model's head has ${outputs} outputs`);
  }
  if (oldClasses !== undefined && oldClasses >= outputs) throw usageError(`--old-classes ${oldClasses}: the head has only ${outputs} outputs`);
}

/** The backward pass is written for the ops it knows: any other is the model's limit, said as invalid input. */
async function asInvalidModel<T>(model: string, build: () => Promise<T>): Promise<T> {
  try {
    return await build();
  } catch (err) {
    if (err instanceof CkptError) throw err;
    throw invalidInput(model, 'graph', `--train-all: ${(err as Error).message}`);
  }
}

/** Scenario c: every layer trains, through the backward pass network.ts writes for the model's ops. */
async function wholeNetworkJob(dict: StateDict, options: Request, s: Settings): Promise<Job> {
  const nodes = graphNodesOf(dict) ?? [];
  const net = analyzeNetwork(dict, nodes);
  const data = await loadDataset(options.data, { labels: options.labels, labelColumn: options.labelColumn, regression: s.loss === 'mse' });
  const perExample = data.x.length / data.count;
  const expected = net.input.shape.reduce((n, d) => n * d, 1);
  if (perExample !== expected) {
    throw invalidInput(data.source, 'features', `${perExample} values per example (shape [${data.featureShape.join(',')}]); the model input '${net.input.name}' expects [${net.input.shape.join(',')}]`);
  }
  // The batch train() will use (it splits the same way): the backward pass is written for its shapes.
  const sizes = splitSizes(data.count, s.validation, s.batch);
  const shapes = await measureShapes(dict, net, sizes.batch);
  const outputs = shapes.get(net.logits)?.[1] ?? 0;
  checkTargets(options.data, data, outputs, s.oldClasses);
  const chain = denseChain(dict, nodes);
  const last = chain.layers[chain.layers.length - 1];
  if (options.freezeOldClasses && !last) throw usageError('--freeze-old-classes needs a model that ends in a dense layer');
  const model = await asInvalidModel(dict.path, () => networkTrainable(net, shapes, sizes.batch, {
    loss: s.loss,
    optimizer: s.optimizer,
    ...(options.freezeOldClasses && last ? {
      frozenOutputs: s.oldClasses,
      head: { weight: last.weight.source, ...(last.bias ? { bias: last.bias.source } : {}), rowsAxis: last.layout === 'OI' ? 0 : 1 },
    } : {}),
  }));
  return {
    model, data, x: data.x, tensors: new Map(net.parameters.map((p, i) => [`P${i}`, p])), trained: net.parameters.map((p) => p.name),
  };
}
