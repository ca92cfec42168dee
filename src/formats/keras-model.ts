import { canonicalName } from '../core/names.js';
import type { KerasModelInfo, StateDict } from '../core/statedict.js';
import { keras3Segments, keras3VariableNames } from './keras-layers.js';
import type { OutputTensor } from './writers.js';

/**
 * A Keras model config as the writers need it: its layers (nested models flattened), their
 * weights matched to the tensors being written, and the config in the dialect each output
 * speaks (tfjs-layers and Keras 2 HDF5: `batch_input_shape`, node lists; Keras 3: `module`,
 * `batch_shape`, `__keras_tensor__` node arguments).
 */
type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const MODEL_CLASSES = new Set(['Sequential', 'Functional', 'Model']);

/** A layer of the model, nested models' layers included. */
export interface ModelLayer {
  readonly name: string;
  readonly className: string;
  readonly config: Json;
  /** The top-level layer holding it (itself, or the nested model it is in): Keras 2 HDF5 groups. */
  readonly topLevel: string;
  /** Its Keras 3 object path, `layers/dense_1` or `layers/functional/layers/conv2d`. */
  readonly keras3Path: string;
}

export function modelLayers(config: Json): ModelLayer[] {
  const out: ModelLayer[] = [];
  const walk = (layers: unknown, top: string | undefined, path: string, depth: number) => {
    if (!Array.isArray(layers) || depth > 32) return;
    const segment = keras3Segments();
    for (const layer of layers) {
      if (!isObject(layer) || typeof layer.class_name !== 'string' || !isObject(layer.config)) continue;
      const name = typeof layer.config.name === 'string' ? layer.config.name : typeof layer.name === 'string' ? layer.name : undefined;
      if (name === undefined) continue;
      const keras3Path = `${path}layers/${segment(layer.class_name)}`;
      out.push({ name, className: layer.class_name, config: layer.config, topLevel: top ?? name, keras3Path });
      if (MODEL_CLASSES.has(layer.class_name)) walk(layer.config.layers, top ?? name, `${keras3Path}/`, depth + 1);
    }
  };
  walk(isObject(config.config) ? config.config.layers : undefined, undefined, '', 0);
  return out;
}

export interface PlannedLayer {
  readonly layer: ModelLayer;
  /** The layer's weights in the order Keras and tfjs-layers create them, by weight name (`kernel`). */
  readonly weights: { readonly weight: string; readonly tensor: OutputTensor }[];
}

export type WeightPlan = { ok: true; layers: PlannedLayer[] } | { ok: false; problem: string };

/** The name a tensor is matched on: its new name when renamed, else its canonical name. */
const keyOf = (t: OutputTensor) => (t.name === t.tensor.source ? t.tensor.name : canonicalName(t.name));

const list = (names: readonly string[]) => (names.length > 4 ? `${names.slice(0, 4).join(', ')}…` : names.join(', '));

/**
 * Matches the tensors to the model's layers: each tensor to the layer whose name is nearest the
 * end of its name (`conv1.kernel`, `model_weights.dense.sequential.dense.kernel`). The model is
 * whole only when every tensor is a weight of a layer, every weight the source file gives a
 * layer is written, and each layer whose class fixes its variables has exactly those.
 */
export function planWeights(model: KerasModelInfo, tensors: readonly OutputTensor[], source: StateDict): WeightPlan {
  const layers = modelLayers(model.config);
  const byName = new Map(layers.map((l) => [l.name, l]));
  const locate = (key: string) => {
    const parts = key.split('.');
    for (let i = parts.length - 2; i >= 0; i--) {
      const layer = byName.get(parts[i]!);
      if (layer) return { layer, weight: parts.slice(i + 1).join('/') };
    }
    return undefined;
  };
  const found = new Map<ModelLayer, { weight: string; tensor: OutputTensor }[]>();
  const strangers: string[] = [];
  for (const t of tensors) {
    const at = locate(keyOf(t));
    if (!at) strangers.push(t.name);
    else found.set(at.layer, [...(found.get(at.layer) ?? []), { weight: at.weight, tensor: t }]);
  }
  if (strangers.length) return { ok: false, problem: `${strangers.length} tensor(s) are not weights of a layer of the model config (${list(strangers)})` };
  const written = new Set(tensors.map((t) => t.tensor.name));
  const missing = source.tensors.filter((t) => t.group !== 'optimizer' && locate(t.name) && !written.has(t.name)).map((t) => t.name);
  if (missing.length) return { ok: false, problem: `${missing.length} weight(s) of the model are not written (${list(missing)})` };
  const planned: PlannedLayer[] = [];
  for (const layer of layers) {
    const weights = found.get(layer) ?? [];
    const expected = keras3VariableNames(layer.className, layer.config);
    if (expected) {
      const got = new Map(weights.map((w) => [variableKey(w.weight), w]));
      if (expected.length !== weights.length || !expected.every((e) => got.has(e))) {
        return { ok: false, problem: `layer '${layer.name}' (${layer.className}) needs ${expected.join(', ')}; the tensors give it ${weights.map((w) => w.weight).join(', ') || 'nothing'}` };
      }
      planned.push({ layer, weights: expected.map((e) => ({ weight: e, tensor: got.get(e)!.tensor })) });
    } else planned.push({ layer, weights });
  }
  return { ok: true, layers: planned };
}

/**
 * A weight's name as the variable tables spell it: Keras 2 puts a cell's scope in its names
 * (`lstm_cell/kernel`, `forward_lstm/lstm_cell/kernel`) and other prefixes before the last part.
 */
function variableKey(weight: string): string {
  const parts = weight.split('/').filter((p) => !p.endsWith('_cell'));
  const side = /^(forward|backward)_/.test(parts[0] ?? '') && parts.length > 1 ? [parts[0]!] : [];
  return [...side, parts[parts.length - 1]!].join('/');
}

/**
 * The plan when the source is a Keras model and the tensors are all of its weights; otherwise why
 * not (`problem`) and the note that says the output is weights-only.
 */
export function modelPlan(source: StateDict, tensors: readonly OutputTensor[], output: string): { plan?: PlannedLayer[]; model?: KerasModelInfo; problem?: string; notes: string[] } {
  const model = source.kerasModel;
  if (!model) {
    const problem = `'${source.path}' has no Keras model config`;
    return { problem, notes: source.format === 'keras' ? [`weights-only ${output}: ${problem} (a save_weights file)`] : [] };
  }
  const plan = planWeights(model, tensors, source);
  if (plan.ok) return { plan: plan.layers, model, notes: [] };
  return { model, problem: plan.problem, notes: [`weights-only ${output}, without the model config: ${plan.problem}, so a model built from the config would not load them`] };
}

/** A Keras version the file states, when it is one (tfjs-layers writes `tfjs-layers 4.22.0`). */
export function realKerasVersion(version: string | undefined): string | undefined {
  return version && /^\d+\.\d+/.test(version) ? version : undefined;
}

/** Keras 3 `{module, class_name, config, registered_name}` → `{class_name, config}`, recursively. */
function toKeras2Value(value: unknown, depth = 0): unknown {
  if (depth > 64) return value;
  if (Array.isArray(value)) return value.map((v) => toKeras2Value(v, depth + 1));
  if (!isObject(value)) return value;
  // A dtype policy becomes the dtype it computes in.
  if ((value.class_name === 'DTypePolicy' || value.class_name === 'Policy') && isObject(value.config)) return value.config.name;
  const out: Json = {};
  for (const [key, v] of Object.entries(value)) {
    if (typeof value.class_name === 'string' && ['module', 'registered_name', 'build_config', 'compile_config', 'shared_object_id'].includes(key)) continue;
    if (key === 'inbound_nodes' && Array.isArray(v)) out[key] = v.map(keras2Node);
    else out[key] = toKeras2Value(v, depth + 1);
  }
  if (value.class_name === 'InputLayer' && isObject(out.config) && 'batch_shape' in out.config) {
    const { batch_shape: shape, ...rest } = out.config;
    out.config = { batch_input_shape: shape, ...rest };
  }
  if (isObject(out.config) && Array.isArray(out.config.layers)) {
    for (const key of ['input_layers', 'output_layers']) {
      const v = out.config[key];
      // Keras 3 writes a single input or output as one triple, not a list of them.
      if (Array.isArray(v) && typeof v[0] === 'string') out.config[key] = [v];
    }
  }
  return out;
}

/** A Keras 3 node (`{args: [keras tensors], kwargs}`) as Keras 2's list of `[layer, node, tensor, kwargs]`. */
function keras2Node(node: unknown): unknown {
  if (!isObject(node)) return node;
  const inputs: unknown[] = [];
  const collect = (v: unknown, depth: number) => {
    if (depth > 16) return;
    if (Array.isArray(v)) v.forEach((x) => collect(x, depth + 1));
    else if (isObject(v) && v.class_name === '__keras_tensor__' && isObject(v.config) && Array.isArray(v.config.keras_history)) inputs.push(v.config.keras_history);
  };
  collect(node.args, 0);
  const kwargs = isObject(node.kwargs) ? Object.fromEntries(Object.entries(node.kwargs).filter(([, v]) => !isObject(v) && !Array.isArray(v))) : {};
  return inputs.map((h) => [...(h as unknown[]).slice(0, 3), kwargs]);
}

/** The model config as tfjs-layers (and Keras 2) read it. */
export function toLayersConfig(config: Json): Json {
  const out = toKeras2Value(config) as Json;
  if (out.class_name === 'Model') out.class_name = 'Functional';
  return out;
}

const MODULES: Readonly<Record<string, string>> = { initializer: 'keras.initializers', regularizer: 'keras.regularizers', constraint: 'keras.constraints' };

/** A Keras 2 / tfjs-layers config in the Keras 3 dialect of a `.keras` file's config.json (Keras 3 configs pass unchanged). */
export function toKeras3Config(config: Json): Json {
  if ('module' in config) return config;
  const layersConfig = toLayersConfig(config);
  const inner = { ...(layersConfig.config as Json) };
  const sequential = layersConfig.class_name === 'Sequential';
  let layers = Array.isArray(inner.layers) ? (inner.layers as Json[]).map(keras3Layer) : [];
  if (sequential && layers[0] && layers[0].class_name !== 'InputLayer') {
    // Keras 3 keeps a Sequential's input as an InputLayer, not as the first layer's batch_input_shape.
    const first = layers[0].config as Json;
    const { batch_input_shape: shape, ...rest } = first;
    if (Array.isArray(shape)) {
      layers = [keras3Layer({ class_name: 'InputLayer', config: { batch_shape: shape, dtype: first.dtype ?? 'float32', sparse: false, name: `${first.name as string}_input` } }), { ...layers[0], config: rest }, ...layers.slice(1)];
      inner.build_input_shape = shape;
    }
  }
  inner.layers = layers;
  return sequential
    ? { module: 'keras', class_name: 'Sequential', config: inner, registered_name: null }
    : { module: 'keras.src.models.functional', class_name: 'Functional', config: inner, registered_name: 'Functional' };
}

function keras3Layer(layer: Json): Json {
  if (MODEL_CLASSES.has(layer.class_name as string)) {
    const nested = toKeras3Config(layer);
    return { ...nested, ...('name' in layer ? { name: layer.name } : {}), ...('inbound_nodes' in layer ? { inbound_nodes: keras3Nodes(layer.inbound_nodes) } : {}) };
  }
  const config: Json = {};
  for (const [key, v] of Object.entries(isObject(layer.config) ? layer.config : {})) {
    const kind = /_(initializer|regularizer|constraint)$/.exec(key)?.[1];
    config[key] = kind && isObject(v) ? keras3Object(v, MODULES[kind]!) : v;
  }
  if (layer.class_name === 'InputLayer' && 'batch_input_shape' in config) {
    config.batch_shape = config.batch_input_shape;
    delete config.batch_input_shape;
  }
  return {
    module: 'keras.layers', class_name: layer.class_name, config, registered_name: null,
    ...('name' in layer ? { name: layer.name } : {}),
    ...('inbound_nodes' in layer ? { inbound_nodes: keras3Nodes(layer.inbound_nodes) } : {}),
  };
}

function keras3Object(value: Json, module: string): Json {
  const config = { ...(isObject(value.config) ? value.config : {}) };
  // tfjs-layers writes VarianceScaling's `normal`, which Keras 2 read as `truncated_normal` and Keras 3 refuses.
  if (value.class_name === 'VarianceScaling' && config.distribution === 'normal') config.distribution = 'truncated_normal';
  return { module, class_name: value.class_name, config, registered_name: null };
}

/** Keras 2 node lists as Keras 3 nodes: one keras tensor per input, a list of them for merge layers. */
function keras3Nodes(nodes: unknown): unknown {
  if (!Array.isArray(nodes)) return nodes;
  return nodes.map((node) => {
    if (!Array.isArray(node)) return node;
    const tensors = node.filter(Array.isArray).map((entry) => ({ class_name: '__keras_tensor__', config: { keras_history: (entry as unknown[]).slice(0, 3) } }));
    const kwargs = node.find(Array.isArray)?.[3];
    return { args: tensors.length === 1 ? tensors : [tensors], kwargs: isObject(kwargs) ? kwargs : {} };
  });
}
