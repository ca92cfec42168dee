import { invalidInput } from '../../core/errors.js';
import type { OpenOptions } from '../../core/statedict.js';
import { CLASS_BY_SNAKE, KERNEL_LAYOUTS, keras3Segments, keras3VariableGroups, layerClasses } from '../keras-layers.js';

/**
 * Where a Keras HDF5 file keeps its weights, in model order, read through `Hdf5Tree`: ckpt's own
 * HDF5 reader, or h5wasm in its worker for files that use what that reader does not support.
 */
export interface Hdf5Tree<Node = unknown> {
  /** The file as the user named it. */
  readonly label: string;
  /** The object at a path ('' or '/' for the root), or undefined. */
  get(path: string): Node | undefined;
  isGroup(node: Node | undefined): node is Node;
  isDataset(node: Node | undefined): boolean;
  keys(group: Node): string[];
  /** Strings, lists of strings, numbers; undefined when absent. */
  attribute(node: Node, name: string): unknown;
  /** Where the object is in the file: the same object reached twice has the same identity. */
  identity(node: Node): string | number;
  /** The object's path, for messages. */
  pathOf(node: Node): string;
}
/** A weight found in the file, before it becomes a TensorInfo. */
export interface Found {
  datasetPath: string;
  name: string;
  group: 'model' | 'optimizer';
  layout?: string;
  /** The weight's layer is in the model config, so its name is the config's and not a guess. */
  configured?: boolean;
}

export interface Listing {
  kind: string;
  found: Found[];
  kerasVersion?: string;
  backend?: string;
  modelClass?: string;
  layerCount: number;
  /** Optimizer weights left out because `--all` was not given. */
  optimizerTensors?: number;
  /** The model config (`model_config`, or a .keras file's config.json) and `training_config`, for writers. */
  modelConfig?: Record<string, unknown>;
  trainingConfig?: unknown;
}

/**
 * A list of names stored in an attribute: a string, strings, or (Keras, for a layer with no
 * weights) an empty float64 array; lists longer than HDF5's 64 KiB header limit are split by
 * Keras into `name0`, `name1`…
 */
function nameList(h5: Hdf5Tree, obj: unknown, name: string): string[] | undefined {
  const one = (value: unknown, where: string): string[] => {
    if (typeof value === 'string') return [value];
    if (Array.isArray(value) && value.every((v) => typeof v === 'string')) return value as string[];
    if (ArrayBuffer.isView(value) && value.byteLength === 0) return [];
    throw invalidInput(h5.label, `${h5.pathOf(obj)} attribute '${where}'`, 'expected a list of names (strings)');
  };
  const direct = h5.attribute(obj, name);
  if (direct !== undefined) return one(direct, name);
  const chunks: string[] = [];
  for (let i = 0; ; i++) {
    const chunk = h5.attribute(obj, `${name}${i}`);
    if (chunk === undefined) return i === 0 ? undefined : chunks;
    chunks.push(...one(chunk, `${name}${i}`));
  }
}

function stringAttribute(h5: Hdf5Tree, group: unknown, name: string): string | undefined {
  const v = h5.attribute(group, name);
  return typeof v === 'string' ? v : undefined;
}

function parseConfig(h5: Hdf5Tree, text: string | undefined, where: string): Record<string, unknown> | undefined {
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text) as Record<string, unknown>;
  } catch {
    throw invalidInput(h5.label, where, 'model_config is not valid JSON');
  }
}

export function listWeights(h5: Hdf5Tree, options: OpenOptions, zipConfig: unknown): Listing {
  const root = h5.get('/');
  if (!h5.isGroup(root)) throw invalidInput(h5.label, '/', 'no root group');
  const rootKeys = h5.keys(root);
  const kerasVersion = stringAttribute(h5, root, 'keras_version');
  const backend = stringAttribute(h5, root, 'backend');
  if (rootKeys.includes('model_weights') || nameList(h5, root, 'layer_names') !== undefined) {
    const full = rootKeys.includes('model_weights');
    const config = parseConfig(h5, stringAttribute(h5, root, 'model_config'), '/ attribute model_config');
    const listing = legacyListing(h5, full ? 'model_weights' : '', options, config, { kind: full ? 'keras-h5-model' : 'keras-h5-weights', kerasVersion, backend });
    if (!config?.class_name || !config.config) return listing;
    // A training config that is not JSON is left behind rather than failing the read.
    let trainingConfig: unknown;
    try {
      trainingConfig = JSON.parse(stringAttribute(h5, root, 'training_config') ?? 'null') ?? undefined;
    } catch {
      trainingConfig = undefined;
    }
    return { ...listing, modelConfig: config, ...(trainingConfig ? { trainingConfig } : {}) };
  }
  if (rootKeys.includes('layers') || rootKeys.includes('vars') || rootKeys.includes('_layer_checkpoint_dependencies')) {
    const config = zipConfig as Record<string, unknown> | undefined;
    const listing = keras3Listing(h5, options, config, { kind: zipConfig ? 'keras3-zip' : 'keras3-weights', kerasVersion, backend });
    return config?.class_name && config.config ? { ...listing, modelConfig: config } : listing;
  }
  throw invalidInput(h5.label, '/', 'an HDF5 file, but not a Keras one: no model_weights group, layer_names attribute or layers group');
}

/**
 * Keras 1/2 and the Keras 3 legacy writer: `layer_names` orders the layers, each layer's
 * `weight_names` orders its weights, each a dataset path relative to the layer's group.
 */
function legacyListing(
  h5: Hdf5Tree, base: string, options: OpenOptions, config: Record<string, unknown> | undefined,
  info: { kind: string; kerasVersion?: string; backend?: string },
): Listing {
  const join = (...parts: string[]) => parts.filter(Boolean).join('/');
  const baseGroup = h5.get(base || '/');
  if (!h5.isGroup(baseGroup)) throw invalidInput(h5.label, `/${base}`, 'expected a group');
  const layers = nameList(h5, baseGroup, 'layer_names');
  if (!layers) throw invalidInput(h5.label, `/${base}`, "no 'layer_names' attribute");
  const classes = layerClasses(config ?? {});
  const modelName = (config?.config as { name?: string } | undefined)?.name;
  const found: Found[] = [];
  for (const layer of layers) {
    const group = h5.get(join(base, layer));
    if (!h5.isGroup(group)) throw invalidInput(h5.label, `/${join(base, layer)}`, `layer '${layer}' of layer_names has no group`);
    const weights = nameList(h5, group, 'weight_names') ?? [];
    for (const weight of weights) {
      const datasetPath = join(base, layer, weight);
      if (!h5.isDataset(h5.get(datasetPath))) {
        throw invalidInput(h5.label, `/${datasetPath}`, `weight '${weight}' of layer '${layer}' has no dataset`);
      }
      // `dense_1/kernel:0` names itself; Keras 3.1's bare `kernel` needs its layer; 3.5+ prefixes the model.
      let name = weight.includes('/') ? weight : `${layer}/${weight}`;
      if (modelName && name.startsWith(`${modelName}/`)) name = name.slice(modelName.length + 1);
      const owner = name.split('/').slice(-2)[0] ?? layer;
      const kernel = /(^|\/)(kernel|depthwise_kernel)(:\d+)?$/.test(name);
      const className = classes.get(owner) ?? classes.get(layer);
      const layout = kernel ? KERNEL_LAYOUTS[className ?? ''] : undefined;
      found.push({ datasetPath, name, group: 'model', ...(layout ? { layout } : {}), ...(className ? { configured: true } : {}) });
    }
  }
  let optimizerTensors = 0;
  if (h5.get('optimizer_weights')) {
    const optimizer = h5.get('optimizer_weights')!;
    const names = nameList(h5, optimizer, 'weight_names') ?? listDatasets(h5, 'optimizer_weights');
    if (!options.all) optimizerTensors = names.length;
    else for (const weight of names) {
      const datasetPath = join('optimizer_weights', weight);
      if (!h5.isDataset(h5.get(datasetPath))) throw invalidInput(h5.label, `/${datasetPath}`, `optimizer weight '${weight}' has no dataset`);
      found.push({ datasetPath, name: `optimizer/${weight}`, group: 'optimizer' });
    }
  }
  return { ...info, found, layerCount: layers.length, ...(typeof config?.class_name === 'string' ? { modelClass: config.class_name } : {}), ...(optimizerTensors ? { optimizerTensors } : {}) };
}

/** Every dataset under a group, depth first in name order. */
function listDatasets(h5: Hdf5Tree, base: string, depth = 0, seen = new Set<string | number>()): string[] {
  if (depth > 64) throw invalidInput(h5.label, `/${base}`, 'groups nested deeper than 64 levels');
  const group = h5.get(base);
  if (!h5.isGroup(group)) return [];
  visitOnce(h5, group, seen);
  return h5.keys(group).flatMap((key) => {
    const child = `${base}/${key}`;
    const obj = h5.get(child);
    if (h5.isDataset(obj)) return [child.slice(base.length + 1)];
    return listDatasets(h5, child, depth + 1, seen).map((p) => `${key}/${p}`);
  });
}

/** Object paths under a Keras 3 layer that hold `vars` of a sublayer (not its own, not nested model layers). */
function sublayerPaths(h5: Hdf5Tree, layerPath: string, seen = new Set<string | number>()): string[] {
  const group = h5.get(layerPath);
  if (!h5.isGroup(group)) return [];
  visitOnce(h5, group, seen);
  return h5.keys(group).filter((k) => k !== 'vars' && k !== 'layers' && h5.isGroup(h5.get(`${layerPath}/${k}`))).flatMap((k) => {
    const inner = sublayerPaths(h5, `${layerPath}/${k}`, seen).map((p) => `${k}/${p}`);
    return h5.isGroup(h5.get(`${layerPath}/${k}/vars`)) ? [k, ...inner] : inner;
  });
}

/**
 * A group linked from two places (or from inside itself) would be walked again and again: the
 * walks refuse it, so that a cyclic file ends in an error rather than in an exponential listing.
 */
function visitOnce(h5: Hdf5Tree, group: unknown, seen: Set<string | number>): void {
  const id = h5.identity(group);
  if (seen.has(id)) throw invalidInput(h5.label, h5.pathOf(group), 'this group is reached twice while listing (the file\'s groups form a cycle)');
  seen.add(id);
}

interface ConfigLayer { class_name?: string; config?: Record<string, unknown> & { name?: string; layers?: ConfigLayer[] } }

/**
 * Keras 3 `.weights.h5` / `.keras`: the object tree `layers/<segment>/vars/<i>`, segments being
 * the snake-case class names made unique per container. With the config, each segment maps to
 * its layer (real name, class, variable names); without it, the segment's class is guessed from
 * its name and `vars/<i>` named when the class fixes its variables.
 */
function keras3Listing(
  h5: Hdf5Tree, options: OpenOptions, config: Record<string, unknown> | undefined,
  info: { kind: string; kerasVersion?: string; backend?: string },
): Listing {
  const found: Found[] = [];
  let layerCount = 0;
  const seen = new Set<string | number>();
  const walk = (base: string, layers: ConfigLayer[] | undefined, prefix: string[], depth: number) => {
    if (depth > 32) throw invalidInput(h5.label, `/${base}`, 'layers nested deeper than 32 levels');
    const group = h5.get(`${base}/layers`.replace(/^\//, ''));
    if (!h5.isGroup(group)) return;
    visitOnce(h5, group, seen);
    // Keras names each layer's path segment from its class, made unique in order.
    const bySegment = new Map<string, ConfigLayer>();
    const segment = keras3Segments();
    for (const layer of layers ?? []) if (layer.class_name) bySegment.set(segment(layer.class_name), layer);
    for (const segment of h5.keys(group)) {
      const layerPath = `${base}/layers/${segment}`.replace(/^\//, '');
      const layer = bySegment.get(segment);
      const className = layer?.class_name ?? CLASS_BY_SNAKE[segment.replace(/_\d+$/, '')];
      const varsGroup = h5.get(`${layerPath}/vars`);
      const displayName = layer?.config?.name ?? (h5.isGroup(varsGroup) ? (h5.attribute(varsGroup, 'name') as string | undefined) : undefined) ?? segment;
      layerCount++;
      // Variables in sublayers (an RNN's `cell/vars`, an attention's `query_dense/vars`) are named
      // where the class fixes them, else numbered under the sublayer's path.
      const fixed = className ? keras3VariableGroups(className, layer?.config) : undefined;
      const own = { path: '', names: fixed?.find((g) => g.path === '')?.names };
      const sublayers = fixed ? fixed.filter((g) => g.path !== '') : sublayerPaths(h5, layerPath).map((sub) => ({ path: sub, names: undefined }));
      for (const { path: sub, names } of [own, ...sublayers]) {
        const varsPath = sub ? `${layerPath}/${sub}/vars` : `${layerPath}/vars`;
        const vars = h5.get(varsPath);
        if (!h5.isGroup(vars)) continue;
        const indices = h5.keys(vars).map((k) => {
          if (!/^\d+$/.test(k)) throw invalidInput(h5.label, `/${varsPath}/${k}`, 'Keras 3 variables are named 0, 1, 2…');
          return Number(k);
        }).sort((a, b) => a - b);
        const named = names && names.length === indices.length ? names : undefined;
        for (const i of indices) {
          const variable = named?.[i] ?? (sub ? `${sub}/${i}` : String(i));
          const layout = variable === 'kernel' || variable === 'depthwise_kernel' ? KERNEL_LAYOUTS[className ?? ''] : undefined;
          found.push({
            datasetPath: `${varsPath}/${i}`, name: [...prefix, displayName, variable].join('/'), group: 'model',
            ...(layout ? { layout } : {}), ...(layer && named ? { configured: true } : {}),
          });
        }
      }
      walk(layerPath, layer?.config?.layers, [...prefix, displayName], depth + 1);
    }
  };
  const modelConfig = (config?.config ?? {}) as { layers?: ConfigLayer[] };
  walk('', modelConfig.layers, [], 0);
  const rootVars = h5.get('vars');
  if (h5.isGroup(rootVars)) {
    for (const k of h5.keys(rootVars)) found.push({ datasetPath: `vars/${k}`, name: `vars/${k}`, group: 'model' });
  }
  const optimizerVars = h5.isGroup(h5.get('optimizer/vars')) ? h5.keys(h5.get('optimizer/vars')!) : [];
  if (options.all) {
    for (const k of optimizerVars.sort((a, b) => Number(a) - Number(b))) {
      found.push({ datasetPath: `optimizer/vars/${k}`, name: `optimizer/${k}`, group: 'optimizer' });
    }
  }
  const optimizerTensors = options.all ? 0 : optimizerVars.length;
  return { ...info, found, layerCount, ...(typeof config?.class_name === 'string' ? { modelClass: config.class_name } : {}), ...(optimizerTensors ? { optimizerTensors } : {}) };
}
