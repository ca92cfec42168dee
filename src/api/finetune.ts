import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ExitCode, invalidInput, usageError } from '../core/errors.js';
import type { StateDict, TensorInfo } from '../core/statedict.js';
import { formatPercent } from '../core/percent.js';
import { graphNodesOf } from '../formats/onnx/index.js';
import { rewriteOnnx, type TensorEdit } from '../formats/onnx/write.js';
import { parsePatterns } from '../ops/select.js';
import { loadOrt, openSession, type ProviderChoice } from '../runtime/session.js';
import { denseChain, type ModelLayer } from '../train/chain.js';
import { loadDataset, type Dataset } from '../train/data.js';
import { splitSizes, train, type EpochReport, type TrainOptions, type TrainResult } from '../train/engine.js';
import { analyzeNetwork, measureShapes, networkTrainable } from '../train/network.js';
import { denseTrainable, type Loss, type Trainable, type TrainSpec } from '../train/graph.js';
import type { OptimizerSpec } from '../train/loop.js';
import { positiveInt, type FinetuneOptions } from '../cli/finetune.js';

/** What both flows train with: the engine's options, the loss and the optimizer. */
export interface Settings extends TrainOptions {
  loss: Loss;
  optimizer: OptimizerSpec;
}

/** What a flow trains: its graphs, the examples they read, and the tensor in the file behind each parameter. */
export interface Job {
  model: Trainable;
  data: Dataset;
  /** Per-example inputs of the graphs: the data itself, or the features the frozen layers computed from it. */
  x: Float32Array;
  tensors: Map<string, TensorInfo>;
  /** The trained tensors' names, as reported. */
  trained: string[];
  /** The terminal's closing words, after "finetune: wrote OUT — ". */
  describe(result: TrainResult): string;
}

/** Trains a flow's job, reporting every epoch, and writes the model with the trained tensors. */
export async function trainAndWrite(dict: StateDict, options: FinetuneOptions, s: Settings, job: Job): Promise<number> {
  const { data } = job;
  const initial: Record<string, Float32Array> = {};
  for (const [name, t] of job.tensors) initial[name] = await floats(t);
  const tty = process.stderr.isTTY === true && !options.json;
  const emit = (record: object) => process.stdout.write(`${JSON.stringify(record)}\n`);
  if (!tty) emit({ event: 'start', model: dict.path, data: options.data, examples: data.count, trainable: job.trained, ep: s.provider });
  const result = await train(job.model, { x: job.x, count: data.count, ...(data.labels ? { labels: data.labels } : { targets: data.targets! }) }, initial, s,
    (r) => (tty ? process.stderr.write(`${epochLine(r, s.epochs)}\n`) : emit({ event: 'epoch', ...r })));

  const edits = new Map<TensorInfo, TensorEdit>();
  for (const [name, t] of job.tensors) {
    const values = result.parameters[name]!;
    edits.set(t, { kind: 'replace', dtype: t.dtype, shape: t.shape, read: async () => new Uint8Array(values.buffer, values.byteOffset, values.byteLength) });
  }
  await rewriteOnnx(dict.path, edits, options.output!);
  const summary = {
    event: 'summary', output: options.output, provider: result.provider, trained: job.trained,
    trainExamples: result.trainExamples, validationExamples: result.validationExamples,
    finalTrainLoss: result.final.trainLoss, finalValidationLoss: result.final.validationLoss,
    accuracy: result.final.validationAccuracy, accuracyOld: result.final.accuracyOld, accuracyNew: result.final.accuracyNew,
    frozenOldClasses: options.freezeOldClasses === true,
  };
  if (tty) process.stdout.write(`finetune: wrote ${options.output} — ${job.describe(result)}\n`);
  else emit(summary);
  return ExitCode.ok;
}

function epochLine(r: EpochReport, epochs: number): string {
  const pct = (v: number | undefined) => (v === undefined ? '' : ` ${formatPercent(v)}`);
  return `epoch ${r.epoch}/${epochs}  train loss ${r.trainLoss.toFixed(4)}  val loss ${r.validationLoss?.toFixed(4) ?? '–'}  acc${pct(r.validationAccuracy)}` +
    `${r.accuracyOld !== undefined ? `  old${pct(r.accuracyOld)}` : ''}${r.accuracyNew !== undefined ? `  new${pct(r.accuracyNew)}` : ''}  ${Math.round(r.examplesPerSecond)} ex/s`;
}

async function floats(t: TensorInfo): Promise<Float32Array> {
  const bytes = await t.read();
  return new Float32Array(Uint8Array.from(bytes).buffer);
}

const percent = (v: number | undefined) => (v === undefined ? '–' : formatPercent(v));

/** Scenarios a and b: the dense layers that end the model, on features computed once by the frozen rest of it. */
export async function headJob(dict: StateDict, options: FinetuneOptions, s: Settings): Promise<Job> {
  const layers = trainableLayers(dict, options);
  const head = layers[layers.length - 1]!;
  const data = await loadDataset(options.data!, { labels: options.labels, labelColumn: options.labelColumn, regression: s.loss === 'mse' });
  checkTargets(options.data!, data, head.outFeatures, s.oldClasses);
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
  return {
    model: denseTrainable(spec), data, x: features, tensors, trained,
    describe: ({ provider, final }) => `trained ${trained.join(', ')} on ${provider}; validation accuracy ${percent(final.validationAccuracy)}` +
      `${s.oldClasses !== undefined ? ` (old classes ${percent(final.accuracyOld)}, new ${percent(final.accuracyNew)})` : ''}, loss ${final.validationLoss?.toFixed(4) ?? '–'}`,
  };
}

/** The dense layers to train: the last K of the chain that ends the model, or those --train selects. */
function trainableLayers(dict: StateDict, options: FinetuneOptions): ModelLayer[] {
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

/** Scenario c: every layer trains, through the backward pass network.ts writes for the model's ops. */
export async function wholeNetworkJob(dict: StateDict, options: FinetuneOptions, s: Settings): Promise<Job> {
  const nodes = graphNodesOf(dict) ?? [];
  const net = analyzeNetwork(dict, nodes);
  const data = await loadDataset(options.data!, { labels: options.labels, labelColumn: options.labelColumn, regression: s.loss === 'mse' });
  const perExample = data.x.length / data.count;
  const expected = net.input.shape.reduce((n, d) => n * d, 1);
  if (perExample !== expected) {
    throw invalidInput(data.source, 'features', `${perExample} values per example (shape [${data.featureShape.join(',')}]); the model input '${net.input.name}' expects [${net.input.shape.join(',')}]`);
  }
  // The batch train() will use (it splits the same way): the backward pass is written for its shapes.
  const sizes = splitSizes(data.count, s.validation, s.batch);
  const shapes = await measureShapes(dict, net, sizes.batch);
  const outputs = shapes.get(net.logits)?.[1] ?? 0;
  checkTargets(options.data!, data, outputs, s.oldClasses);
  const chain = denseChain(dict, nodes);
  const last = chain.layers[chain.layers.length - 1];
  if (options.freezeOldClasses && !last) throw usageError('--freeze-old-classes needs a model that ends in a dense layer');
  const model = await networkTrainable(net, shapes, sizes.batch, {
    loss: s.loss,
    optimizer: s.optimizer,
    ...(options.freezeOldClasses && last ? {
      frozenOutputs: s.oldClasses,
      head: { weight: last.weight.source, ...(last.bias ? { bias: last.bias.source } : {}), rowsAxis: last.layout === 'OI' ? 0 : 1 },
    } : {}),
  });
  return {
    model, data, x: data.x, tensors: new Map(net.parameters.map((p, i) => [`P${i}`, p])), trained: net.parameters.map((p) => p.name),
    describe: ({ provider, final }) => `trained every layer (${net.parameters.length} tensors) on ${provider}; validation accuracy ${percent(final.validationAccuracy)}`,
  };
}
