import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { RandomAccessFile } from '../../core/file.js';
import { invalidInput } from '../../core/errors.js';
import { byteLengthOf, numelOf } from '../../core/dtype.js';
import { canonicalName, uniqueNames } from '../../core/names.js';
import type { OpenOptions, StateDict, TensorInfo } from '../../core/statedict.js';
import { isSafeMemberName, isZip, readZipDirectory, readZipEntry, zipDataOffset, type ZipEntry } from '../../core/zip.js';
import type { FormatReader, Probe } from '../types.js';
import { CLASS_BY_SNAKE, KERNEL_LAYOUTS, keras3VariableNames, layerClasses, snakeCase } from '../keras-layers.js';
import {
  attribute, closeHdf5, datasetInfo, getObject, isDataset, isGroup, keysOf, nameList, openHdf5, readDataset,
  type H5, type H5Group,
} from './hdf5.js';

const HDF5_SIGNATURE = [0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a];
/** .keras members beyond this are refused (Keras itself guards against zip bombs the same way). */
const MAX_MEMBER = 64 * 1024 * 1024 * 1024;

function hasHdf5Signature(bytes: Uint8Array, at = 0): boolean {
  return HDF5_SIGNATURE.every((b, i) => bytes[at + i] === b);
}

export const kerasReader: FormatReader = {
  name: 'keras',
  match: (probe: Probe) => {
    if (hasHdf5Signature(probe.head)) return true;
    // HDF5 allows the signature after a user block of 512, 1024, 2048… bytes.
    if (probe.file) {
      for (let at = 512; at + 8 <= Math.min(probe.size, 1 << 20); at *= 2) {
        if (hasHdf5Signature(probe.file.read(at, 8, 'HDF5 signature'))) return true;
      }
    }
    if (!probe.file || !isZip(probe.head)) return false;
    try {
      const names = readZipDirectory(probe.file).map((e) => e.name);
      return names.includes('model.weights.h5') && names.includes('config.json');
    } catch {
      return false;
    }
  },
  open: openKeras,
};

/** A weight found in the file, before it becomes a TensorInfo. */
interface Found {
  datasetPath: string;
  name: string;
  group: 'model' | 'optimizer';
  layout?: string;
}

async function openKeras(file: string, options: OpenOptions): Promise<StateDict> {
  const raf = RandomAccessFile.open(file);
  let zipEntries: ZipEntry[] | undefined;
  try {
    if (isZip(raf.read(0, Math.min(4, raf.size), 'header'))) zipEntries = readZipDirectory(raf);
  } finally {
    if (!zipEntries) raf.close();
  }
  let h5File = file;
  let temp: string | undefined;
  let config: unknown;
  let kerasMeta: Record<string, unknown> = {};
  if (zipEntries) {
    try {
      for (const e of zipEntries) if (!isSafeMemberName(e.name)) throw invalidInput(file, `member '${e.name}'`, 'member name is absolute or contains ..');
      const member = (name: string) => zipEntries!.find((e) => e.name === name);
      const weights = member('model.weights.h5');
      if (!weights) throw invalidInput(file, 'zip', 'a .keras file must hold model.weights.h5');
      config = parseJsonMember(raf, member('config.json'), file);
      kerasMeta = (parseJsonMember(raf, member('metadata.json'), file) as Record<string, unknown> | undefined) ?? {};
      // h5wasm reads from a path: the member goes to a private temporary file, removed on close.
      temp = fs.mkdtempSync(path.join(os.tmpdir(), 'ckpt-keras-'));
      h5File = path.join(temp, 'model.weights.h5');
      extractMember(raf, weights, h5File, file);
    } catch (err) {
      if (temp) fs.rmSync(temp, { recursive: true, force: true });
      throw err;
    } finally {
      raf.close();
    }
  }
  const cleanup = () => {
    if (temp) fs.rmSync(temp, { recursive: true, force: true });
  };
  let h5: H5;
  try {
    h5 = await openHdf5(h5File, file);
  } catch (err) {
    cleanup();
    throw err;
  }
  try {
    const listing = listWeights(h5, options, config);
    const infos = listing.found.map((f) => {
      const dataset = getObject(h5, f.datasetPath);
      if (!isDataset(dataset)) throw invalidInput(file, `/${f.datasetPath}`, 'weight names a dataset that is not in the file');
      return datasetInfo(h5, dataset);
    });
    const names = uniqueNames(listing.found.map((f) => ({ name: canonicalName(f.name) })));
    const tensors: TensorInfo[] = listing.found.map((f, i) => {
      const info = infos[i]!;
      const numel = numelOf(info.shape);
      if (numel === undefined) throw invalidInput(file, `/${f.datasetPath}`, `shape [${info.shape.join(',')}] has too many elements`);
      return {
        name: names[i]!,
        source: f.datasetPath,
        dtype: info.dtype,
        shape: info.shape,
        byteLength: byteLengthOf(info.dtype, numel),
        origin: 'dataset',
        ...(f.group === 'optimizer' ? { group: 'optimizer' as const } : {}),
        ...(f.layout && f.layout.length === info.shape.length ? { layout: f.layout } : {}),
        read: async () => readDataset(h5, f.datasetPath, info),
        readStrings: async () => {
          throw invalidInput(file, `/${f.datasetPath}`, `is ${info.dtype}, not strings`);
        },
      };
    });
    const metadata = {
      layout: listing.kind,
      ...(listing.kerasVersion ?? kerasMeta.keras_version ? { kerasVersion: listing.kerasVersion ?? kerasMeta.keras_version } : {}),
      ...(listing.backend ? { backend: listing.backend } : {}),
      ...(listing.modelClass ? { modelClass: listing.modelClass } : {}),
      layerCount: listing.layerCount,
    };
    return {
      format: 'keras', path: file, metadata, tensors,
      close: async () => {
        closeHdf5(h5);
        cleanup();
      },
    };
  } catch (err) {
    closeHdf5(h5);
    cleanup();
    throw err;
  }
}

function parseJsonMember(raf: RandomAccessFile, entry: ZipEntry | undefined, file: string): unknown {
  if (!entry) return undefined;
  const bytes = readZipEntry(raf, entry, 64 * 1024 * 1024);
  try {
    return JSON.parse(new TextDecoder().decode(bytes));
  } catch (err) {
    throw invalidInput(file, `member '${entry.name}'`, `not valid JSON (${(err as Error).message})`);
  }
}

function extractMember(raf: RandomAccessFile, entry: ZipEntry, out: string, file: string): void {
  if (entry.size > MAX_MEMBER) throw invalidInput(file, `member '${entry.name}'`, `declares ${entry.size} bytes, more than allowed`);
  const fd = fs.openSync(out, 'wx', 0o600);
  try {
    if (entry.method === 0) {
      const start = zipDataOffset(raf, entry);
      for (let at = 0; at < entry.size; at += 16 << 20) fs.writeSync(fd, raf.read(start + at, Math.min(16 << 20, entry.size - at), `member '${entry.name}'`));
    } else {
      fs.writeSync(fd, readZipEntry(raf, entry, MAX_MEMBER));
    }
  } finally {
    fs.closeSync(fd);
  }
}

interface Listing {
  kind: string;
  found: Found[];
  kerasVersion?: string;
  backend?: string;
  modelClass?: string;
  layerCount: number;
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

function listWeights(h5: H5, options: OpenOptions, zipConfig: unknown): Listing {
  const root = getObject(h5, '/');
  if (!isGroup(root)) throw invalidInput(h5.label, '/', 'no root group');
  const rootKeys = keysOf(h5, root);
  const kerasVersion = stringAttribute(h5, root, 'keras_version');
  const backend = stringAttribute(h5, root, 'backend');
  if (rootKeys.includes('model_weights') || nameList(h5, root, 'layer_names') !== undefined) {
    const full = rootKeys.includes('model_weights');
    const config = parseConfig(h5, stringAttribute(h5, root, 'model_config'), '/ attribute model_config');
    return legacyListing(h5, full ? 'model_weights' : '', options, config, { kind: full ? 'keras-h5-model' : 'keras-h5-weights', kerasVersion, backend });
  }
  if (rootKeys.includes('layers') || rootKeys.includes('vars') || rootKeys.includes('_layer_checkpoint_dependencies')) {
    return keras3Listing(h5, options, zipConfig as Record<string, unknown> | undefined, { kind: zipConfig ? 'keras3-zip' : 'keras3-weights', kerasVersion, backend });
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
      const layout = kernel ? KERNEL_LAYOUTS[classes.get(owner) ?? classes.get(layer) ?? ''] : undefined;
      found.push({ datasetPath, name, group: 'model', ...(layout ? { layout } : {}) });
    }
  }
  if (options.all && getObject(h5, 'optimizer_weights')) {
    const optimizer = getObject(h5, 'optimizer_weights') as H5Group;
    const names = nameList(h5, optimizer, 'weight_names') ?? listDatasets(h5, 'optimizer_weights');
    for (const weight of names) {
      const datasetPath = join('optimizer_weights', weight);
      if (!isDataset(getObject(h5, datasetPath))) throw invalidInput(h5.label, `/${datasetPath}`, `optimizer weight '${weight}' has no dataset`);
      found.push({ datasetPath, name: `optimizer/${weight}`, group: 'optimizer' });
    }
  }
  return { ...info, found, layerCount: layers.length, ...(typeof config?.class_name === 'string' ? { modelClass: config.class_name } : {}) };
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
      if (isGroup(varsGroup)) {
        const indices = keysOf(h5, varsGroup).map((k) => {
          if (!/^\d+$/.test(k)) throw invalidInput(h5.label, `/${layerPath}/vars/${k}`, 'Keras 3 variables are named 0, 1, 2…');
          return Number(k);
        }).sort((a, b) => a - b);
        const names = className ? keras3VariableNames(className, layer?.config) : undefined;
        const named = names && names.length === indices.length ? names : undefined;
        for (const i of indices) {
          const variable = named?.[i] ?? String(i);
          const layout = variable === 'kernel' || variable === 'depthwise_kernel' ? KERNEL_LAYOUTS[className ?? ''] : undefined;
          found.push({ datasetPath: `${layerPath}/vars/${i}`, name: [...prefix, displayName, variable].join('/'), group: 'model', ...(layout ? { layout } : {}) });
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
  if (options.all && isGroup(getObject(h5, 'optimizer/vars'))) {
    for (const k of keysOf(h5, getObject(h5, 'optimizer/vars') as H5Group).sort((a, b) => Number(a) - Number(b))) {
      found.push({ datasetPath: `optimizer/vars/${k}`, name: `optimizer/${k}`, group: 'optimizer' });
    }
  }
  return { ...info, found, layerCount, ...(typeof config?.class_name === 'string' ? { modelClass: config.class_name } : {}) };
}
