import { invalidInput } from '../../core/errors.js';
import type { OpenOptions } from '../../core/statedict.js';
import { CLASS_BY_SNAKE, KERNEL_LAYOUTS, keras3VariableGroups, layerClasses, snakeCase } from '../keras-layers.js';
import { attribute, getObject, isDataset, isGroup, keysOf, nameList, type H5, type H5Group } from './hdf5.js';

/**
 * Where a Keras HDF5 file keeps its weights, in model order: runs inside the HDF5 worker (see
 * worker.ts), since a corrupt file can make the HDF5 library loop.
 */
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

function stringAttribute(h5: H5, group: H5Group, name: string): string | undefined {
  const v = attribute(h5, group, name);
  return typeof v === 'string' ? v : undefined;
}

function parseConfig(h5: H5, text: string | undefined, where: string): Record<string, unknown> | undefined {
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text) as Record<string, unknown>;
  } catch {
    throw invalidInput(h5.label, where, 'model_config is not valid JSON');
  }
}

export function listWeights(h5: H5, options: OpenOptions, zipConfig: unknown): Listing {
  const root = getObject(h5, '/');
  if (!isGroup(root)) throw invalidInput(h5.label, '/', 'no root group');
  const rootKeys = keysOf(h5, root);
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
  h5: H5, base: string, options: OpenOptions, config: Record<string, unknown> | undefined,
  info: { kind: string; kerasVersion?: string; backend?: string },
): Listing {
  const join = (...parts: string[]) => parts.filter(Boolean).join('/');
  const baseGroup = getObject(h5, base || '/');
  if (!isGroup(baseGroup)) throw invalidInput(h5.label, `/${base}`, 'expected a group');
  const layers = nameList(h5, baseGroup, 'layer_names');
  if (!layers) throw invalidInput(h5.label, `/${base}`, "no 'layer_names' attribute");
  const classes = layerClasses(config ?? {});
  const modelName = (config?.config as { name?: string } | undefined)?.name;
  const found: Found[] = [];
  for (const layer of layers) {
    const group = getObject(h5, join(base, layer));
    if (!isGroup(group)) throw invalidInput(h5.label, `/${join(base, layer)}`, `layer '${layer}' of layer_names has no group`);
    const weights = nameList(h5, group, 'weight_names') ?? [];
    for (const weight of weights) {
      const datasetPath = join(base, layer, weight);
      if (!isDataset(getObject(h5, datasetPath))) {
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
  if (getObject(h5, 'optimizer_weights')) {
    const optimizer = getObject(h5, 'optimizer_weights') as H5Group;
    const names = nameList(h5, optimizer, 'weight_names') ?? listDatasets(h5, 'optimizer_weights');
    if (!options.all) optimizerTensors = names.length;
    else for (const weight of names) {
      const datasetPath = join('optimizer_weights', weight);
      if (!isDataset(getObject(h5, datasetPath))) throw invalidInput(h5.label, `/${datasetPath}`, `optimizer weight '${weight}' has no dataset`);
      found.push({ datasetPath, name: `optimizer/${weight}`, group: 'optimizer' });
    }
  }
  return { ...info, found, layerCount: layers.length, ...(typeof config?.class_name === 'string' ? { modelClass: config.class_name } : {}), ...(optimizerTensors ? { optimizerTensors } : {}) };
}

/** Every dataset under a group, depth first in name order. */
function listDatasets(h5: H5, base: string, depth = 0): string[] {
  if (depth > 64) throw invalidInput(h5.label, `/${base}`, 'groups nested deeper than 64 levels');
  const group = getObject(h5, base);
  if (!isGroup(group)) return [];
  return keysOf(h5, group).flatMap((key) => {
    const child = `${base}/${key}`;
    const obj = getObject(h5, child);
    if (isDataset(obj)) return [child.slice(base.length + 1)];
    return listDatasets(h5, child, depth + 1).map((p) => `${key}/${p}`);
  });
}

/** Object paths under a Keras 3 layer that hold `vars` of a sublayer (not its own, not nested model layers). */
function sublayerPaths(h5: H5, layerPath: string, depth = 0): string[] {
  const group = getObject(h5, layerPath);
  if (!isGroup(group) || depth > 8) return [];
  return keysOf(h5, group).filter((k) => k !== 'vars' && k !== 'layers' && isGroup(getObject(h5, `${layerPath}/${k}`))).flatMap((k) => {
    const inner = sublayerPaths(h5, `${layerPath}/${k}`, depth + 1).map((p) => `${k}/${p}`);
    return isGroup(getObject(h5, `${layerPath}/${k}/vars`)) ? [k, ...inner] : inner;
  });
}

interface ConfigLayer { class_name?: string; config?: Record<string, unknown> & { name?: string; layers?: ConfigLayer[] } }

/**
 * Keras 3 `.weights.h5` / `.keras`: the object tree `layers/<segment>/vars/<i>`, segments being
 * the snake-case class names made unique per container. With the config, each segment maps to
 * its layer (real name, class, variable names); without it, the segment's class is guessed from
 * its name and `vars/<i>` named when the class fixes its variables.
 */
function keras3Listing(
  h5: H5, options: OpenOptions, config: Record<string, unknown> | undefined,
  info: { kind: string; kerasVersion?: string; backend?: string },
): Listing {
  const found: Found[] = [];
  let layerCount = 0;
  const walk = (base: string, layers: ConfigLayer[] | undefined, prefix: string[], depth: number) => {
    if (depth > 32) throw invalidInput(h5.label, `/${base}`, 'layers nested deeper than 32 levels');
    const group = getObject(h5, `${base}/layers`.replace(/^\//, ''));
    if (!isGroup(group)) return;
    // Keras names each layer's path segment from its class, made unique in order.
    const bySegment = new Map<string, ConfigLayer>();
    const used = new Map<string, number>();
    for (const layer of layers ?? []) {
      if (!layer.class_name) continue;
      const snake = snakeCase(layer.class_name);
      const n = used.get(snake) ?? 0;
      used.set(snake, n + 1);
      bySegment.set(n === 0 ? snake : `${snake}_${n}`, layer);
    }
    for (const segment of keysOf(h5, group)) {
      const layerPath = `${base}/layers/${segment}`.replace(/^\//, '');
      const layer = bySegment.get(segment);
      const className = layer?.class_name ?? CLASS_BY_SNAKE[segment.replace(/_\d+$/, '')];
      const varsGroup = getObject(h5, `${layerPath}/vars`);
      const displayName = layer?.config?.name ?? (isGroup(varsGroup) ? (attribute(h5, varsGroup, 'name') as string | undefined) : undefined) ?? segment;
      layerCount++;
      // Variables in sublayers (an RNN's `cell/vars`, an attention's `query_dense/vars`) are named
      // where the class fixes them, else numbered under the sublayer's path.
      const fixed = className ? keras3VariableGroups(className, layer?.config) : undefined;
      const own = { path: '', names: fixed?.find((g) => g.path === '')?.names };
      const sublayers = fixed ? fixed.filter((g) => g.path !== '') : sublayerPaths(h5, layerPath).map((sub) => ({ path: sub, names: undefined }));
      for (const { path: sub, names } of [own, ...sublayers]) {
        const varsPath = sub ? `${layerPath}/${sub}/vars` : `${layerPath}/vars`;
        const vars = getObject(h5, varsPath);
        if (!isGroup(vars)) continue;
        const indices = keysOf(h5, vars).map((k) => {
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
  const rootVars = getObject(h5, 'vars');
  if (isGroup(rootVars)) {
    for (const k of keysOf(h5, rootVars)) found.push({ datasetPath: `vars/${k}`, name: `vars/${k}`, group: 'model' });
  }
  const optimizerVars = isGroup(getObject(h5, 'optimizer/vars')) ? keysOf(h5, getObject(h5, 'optimizer/vars') as H5Group) : [];
  if (options.all) {
    for (const k of optimizerVars.sort((a, b) => Number(a) - Number(b))) {
      found.push({ datasetPath: `optimizer/vars/${k}`, name: `optimizer/${k}`, group: 'optimizer' });
    }
  }
  const optimizerTensors = options.all ? 0 : optimizerVars.length;
  return { ...info, found, layerCount, ...(typeof config?.class_name === 'string' ? { modelClass: config.class_name } : {}), ...(optimizerTensors ? { optimizerTensors } : {}) };
}
