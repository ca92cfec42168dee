import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { usageError } from '../../core/errors.js';
import { writeAll, writeAtomic } from '../../core/atomic.js';
import type { KerasModelInfo, StateDict } from '../../core/statedict.js';
import { ZipWriter } from '../../core/zip.js';
import { modelPlan, realKerasVersion, toKeras3Config, type PlannedLayer } from '../keras-model.js';
import { keras3VariableGroups } from '../keras-layers.js';
import type { FormatWriter, OutputTensor } from '../writers.js';
import { Hdf5Group, hdf5Stores, writeHdf5 } from '../hdf5/write.js';
import { castTensor } from '../../ops/cast.js';

/**
 * Where a tensor goes in a Keras 2 weights file: its layer and weight name (`dense_1`,
 * `dense_1/kernel:0`). Keras dataset paths keep theirs; dotted names split at the last dot.
 */
export function kerasLocation(name: string): { layer: string; weight: string } {
  const slashed = name.replace(/^model_weights\//, '');
  if (slashed.includes('/')) {
    const [layer, ...rest] = slashed.split('/');
    const weight = rest.length > 1 || /:\d+$/.test(rest[0]!) ? rest.join('/') : `${layer}/${rest[0]}:0`;
    return { layer: layer!, weight };
  }
  const dot = name.lastIndexOf('.');
  if (dot <= 0) return { layer: name, weight: `${name}/${name}:0` };
  const layer = name.slice(0, dot);
  return { layer, weight: `${layer}/${name.slice(dot + 1)}:0` };
}

/** Where each tensor goes in a Keras 2 layout file: layer groups in order, each with its weight names. */
type LegacyLayers = Map<string, { weight: string; tensor: OutputTensor }[]>;

/**
 * Keras output in the layout of its name: `.keras` a Keras 3 zip (config.json, metadata.json,
 * model.weights.h5), `.weights.h5` Keras 3's `layers/<path>/vars/<i>`, other names the HDF5
 * layout Keras 2 and Keras 3's legacy loader read — a full model (`model_config`,
 * `training_config`, `keras_version`, `backend` of the input, layers in config order) when the
 * input is a Keras or TF.js layers model and the tensors are all of its weights, else a
 * `save_weights` file. Written atomically.
 */
export async function writeKeras(out: string, given: readonly OutputTensor[], source: StateDict): Promise<string[]> {
  const widened: string[] = [];
  const tensors = widenBfloat16(given, widened);
  const bad = tensors.find((t) => !hdf5Stores(t.tensor.dtype));
  if (bad) throw usageError(`Keras HDF5 output cannot store '${bad.name}' (${bad.tensor.dtype})`);
  const orderLayouts = new Set(tensors.map((t) => t.tensor.layout).filter((l) => l && /^O/.test(l)));
  const layoutNotes = [
    ...widened,
    ...(orderLayouts.size ? [`weights keep their layout (${[...orderLayouts].join(', ')}); Keras expects HWIO kernels and [in,out] Dense kernels — transpose with \`ckpt plan\` into a Keras-layout target`] : []),
  ];
  const lower = out.toLowerCase();
  if (lower.endsWith('.keras')) {
    const { plan, model, problem } = modelPlan(source, tensors, '.keras');
    if (!plan || !model) throw usageError(`${out}: a .keras file is a whole model, but ${problem}; write .weights.h5 or .h5 for the weights alone`);
    await writeKerasZip(out, plan, model);
    return layoutNotes;
  }
  if (lower.endsWith('.weights.h5')) {
    const { plan, notes } = modelPlan(source, tensors, 'Keras 3 weights');
    await writeHdf5(out, keras3Weights(plan ? keras3FromPlan(plan) : keras3FromNames(tensors, notes)));
    return [...notes, ...layoutNotes];
  }
  const { plan, model, notes } = modelPlan(source, tensors, 'Keras HDF5');
  await writeHdf5(out, legacyFile(plan ? legacyFromPlan(plan, source) : legacyFromNames(tensors), plan ? model : undefined, source));
  if (!model && source.format === 'tfjs') notes.push(`weights-only Keras HDF5: ${source.metadata.format === 'graph-model' ? 'a TF.js graph model has no Keras model config' : 'the TF.js input has no model topology'}`);
  return [...notes, ...layoutNotes];
}

/**
 * bfloat16 tensors are written as float32 (every value exact, twice the bytes): Keras 2 has no
 * bfloat16 in its HDF5 files, and Keras casts to the layer's dtype policy on load.
 */
function widenBfloat16(tensors: readonly OutputTensor[], notes: string[]): OutputTensor[] {
  const count = tensors.filter((t) => t.tensor.dtype === 'bfloat16').length;
  if (count) notes.push(`${count} bfloat16 tensor(s) written as float32, every value exact (Keras HDF5 files have no bfloat16 type)`);
  return tensors.map((t) => (t.tensor.dtype === 'bfloat16' ? { ...t, tensor: castTensor(t.tensor, 'float32') } : t));
}

/** Keras 2 layer groups from the tensors' names, in the order they come. */
function legacyFromNames(tensors: readonly OutputTensor[]): LegacyLayers {
  const layers: LegacyLayers = new Map();
  for (const t of tensors) {
    // Keras 3 paths (`layers/dense/vars/0`) carry no Keras 2 names: use the canonical name.
    const { layer, weight } = kerasLocation(/\/vars\/\d+$/.test(t.name) ? t.tensor.name : t.name);
    layers.set(layer, [...(layers.get(layer) ?? []), { weight, tensor: t }]);
  }
  return layers;
}

/**
 * Keras 2 layer groups from the model: every top-level layer in config order (weightless ones
 * with an empty list, as Keras writes them); a Keras HDF5 input keeps its weight names.
 */
function legacyFromPlan(plan: readonly PlannedLayer[], source: StateDict): LegacyLayers {
  const layers: LegacyLayers = new Map();
  const sequential = source.kerasModel?.config.class_name === 'Sequential';
  for (const { layer, weights } of plan) {
    // A Sequential's InputLayer is not one of its layers (Keras leaves it out of layer_names).
    if (sequential && layer.className === 'InputLayer' && layer.topLevel === layer.name) continue;
    const group = layers.get(layer.topLevel) ?? [];
    layers.set(layer.topLevel, group);
    for (const w of weights) {
      const kept = source.format === 'keras' && w.tensor.name === w.tensor.tensor.source && !/\/vars\/\d+$/.test(w.tensor.name);
      group.push({ weight: kept ? kerasLocation(w.tensor.name).weight : `${layer.name}/${w.weight}:0`, tensor: w.tensor });
    }
  }
  return layers;
}

const KERAS_BACKENDS = new Set(['tensorflow', 'theano', 'cntk', 'jax', 'torch', 'numpy']);

/** A layer without weights stores an empty list: Keras writes an empty float64 array. */
const NO_WEIGHT_NAMES = { dtype: 'float64', shape: [0], bytes: new Uint8Array(0) } as const;

/** Names per attribute: each is a 16-byte global heap reference, and a header message holds 64 KiB. */
const NAMES_PER_ATTRIBUTE = 4000;

/** A list of names as one attribute or, past what one holds, as Keras splits them: `name0`, `name1`… */
function setNames(group: Hdf5Group, name: string, names: readonly string[]): void {
  if (names.length <= NAMES_PER_ATTRIBUTE) return void group.attributes.set(name, names);
  for (let i = 0; i * NAMES_PER_ATTRIBUTE < names.length; i++) group.attributes.set(`${name}${i}`, names.slice(i * NAMES_PER_ATTRIBUTE, (i + 1) * NAMES_PER_ATTRIBUTE));
}

function legacyFile(layers: LegacyLayers, model: KerasModelInfo | undefined, source: StateDict): Hdf5Group {
  const file = new Hdf5Group();
  const kerasVersion = realKerasVersion(source.kerasModel?.kerasVersion ?? (source.format === 'keras' ? String(source.metadata.kerasVersion ?? '') : undefined)) ?? '2.15.0';
  const backend = source.kerasModel?.backend ?? (source.format === 'keras' ? source.metadata.backend : undefined);
  const stamp = (g: Hdf5Group) => {
    g.attributes.set('backend', typeof backend === 'string' && KERAS_BACKENDS.has(backend) ? backend : 'tensorflow');
    g.attributes.set('keras_version', kerasVersion);
  };
  const base = model ? file.group('model_weights') : file;
  setNames(base, 'layer_names', [...layers.keys()]);
  stamp(base);
  if (model) {
    file.attributes.set('model_config', JSON.stringify(model.config));
    // A TF.js training config is tfjs's own (camelCase optimizer settings): only Keras's is kept.
    if (model.trainingConfig && source.format === 'keras') file.attributes.set('training_config', JSON.stringify(model.trainingConfig));
    stamp(file);
  }
  for (const [layer, weights] of layers) {
    const group = base.group(layer);
    if (weights.length) setNames(group, 'weight_names', weights.map((w) => w.weight));
    else group.attributes.set('weight_names', NO_WEIGHT_NAMES);
    for (const w of weights) group.dataset(w.weight, w.tensor.tensor);
  }
  return file;
}

/** Keras 3 object paths (`layers/dense/vars`) and each one's variables in order. */
type Keras3Layers = Map<string, OutputTensor[]>;

function keras3FromPlan(plan: readonly PlannedLayer[]): Keras3Layers {
  const layers: Keras3Layers = new Map();
  // A Sequential's InputLayer is not one of its layers in Keras 3, and has no variables anyway.
  for (const p of plan.filter((p) => p.layer.className !== 'InputLayer')) {
    const groups = keras3VariableGroups(p.layer.className, p.layer.config)?.filter((g) => g.path !== '');
    if (!groups?.length) {
      layers.set(p.layer.keras3Path, p.weights.map((w) => w.tensor));
      continue;
    }
    // Every object on the way (the layer, a Bidirectional's forward_layer) keeps an empty `vars` of its own, as Keras saves it.
    const byName = new Map(p.weights.map((w) => [w.weight, w.tensor]));
    for (const g of groups) {
      const parts = g.path.split('/');
      for (let n = 0; n < parts.length; n++) {
        const on = [p.layer.keras3Path, ...parts.slice(0, n)].join('/');
        if (!layers.has(on)) layers.set(on, []);
      }
      layers.set(`${p.layer.keras3Path}/${g.path}`, g.names.map((n) => byName.get(n)!));
    }
  }
  return layers;
}

/** Without a model config: Keras 3 paths kept, other names grouped by layer, with a note. */
function keras3FromNames(tensors: readonly OutputTensor[], notes: string[]): Keras3Layers {
  const layers: Keras3Layers = new Map();
  let guessed = false;
  for (const t of tensors) {
    const kept = /^(.*)\/vars\/\d+$/.exec(t.name);
    const path = kept ? kept[1]! : `layers/${kerasLocation(t.name).layer}`;
    guessed ||= !kept;
    layers.set(path, [...(layers.get(path) ?? []), t]);
  }
  if (guessed) notes.push("Keras 3 weights without a model config: each layer's path is its layer name; Keras 3 loads them only where that is the path it derives from the layer's class (dense, dense_1…)");
  return layers;
}

function keras3Weights(layers: Keras3Layers): Hdf5Group {
  const file = new Hdf5Group();
  file.group('vars');
  for (const [path, tensors] of layers) {
    const vars = file.group(`${path}/vars`);
    for (const [i, t] of tensors.entries()) vars.dataset(String(i), t.tensor);
  }
  return file;
}

/** A `.keras` zip as Keras 3 saves one: metadata.json, config.json, model.weights.h5 (built in a private temporary folder). */
async function writeKerasZip(out: string, plan: readonly PlannedLayer[], model: KerasModelInfo): Promise<void> {
  const folder = fs.mkdtempSync(path.join(os.tmpdir(), 'ckpt-keras-'));
  try {
    const weights = path.join(folder, 'model.weights.h5');
    await writeHdf5(weights, keras3Weights(keras3FromPlan(plan)));
    const version = model.kerasVersion?.startsWith('3.') ? model.kerasVersion : KERAS3_VERSION;
    const saved = new Date().toISOString().replace('T', '@').slice(0, 19);
    await writeAtomic(out, (fd) => {
      const zip = new ZipWriter((bytes) => writeAll(fd, bytes));
      zip.add('metadata.json', [Buffer.from(JSON.stringify({ keras_version: version, date_saved: saved }))]);
      zip.add('config.json', [Buffer.from(JSON.stringify(toKeras3Config(model.config)))]);
      zip.addFile('model.weights.h5', weights);
      zip.finish();
    });
  } finally {
    fs.rmSync(folder, { recursive: true, force: true });
  }
}

/** The Keras version a `.keras` file made from a Keras 2 or TF.js model states: the first whose format it follows. */
const KERAS3_VERSION = '3.0.0';

export const kerasWriter: FormatWriter = {
  format: 'keras',
  extensions: ['.h5', '.hdf5', '.keras'],
  async write(out, tensors, source) {
    const notes = await writeKeras(out, tensors, source);
    return { format: 'keras', notes };
  },
};
