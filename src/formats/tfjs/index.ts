import * as path from 'node:path';
import { resolveInsideFolder } from '../../core/file.js';
import { invalidInput } from '../../core/errors.js';
import { byteLengthOf, numelOf } from '../../core/dtype.js';
import { canonicalName, uniqueNames } from '../../core/names.js';
import type { KerasModelInfo, Layout, Metadata, OpenOptions, StateDict, TensorInfo } from '../../core/statedict.js';
import type { FormatReader } from '../types.js';
import { KERNEL_LAYOUTS, layerClasses } from '../keras-layers.js';
import { dequantize } from './dequantize.js';
import { encodingOf } from './quantize.js';
import { modelKind, storedBytes, TFJS_DTYPES, validateManifest, type ManifestEntry, type ManifestGroup } from './manifest.js';
import { modelJsonPath, readModelJson } from './model-json.js';
import { tfjsFormat } from './match.js';
import { ShardGroup, shardSize, type Shard } from './shards.js';
import { splitStrings, stringWeightBytes } from './strings.js';
import { prefetchSizes } from '../../core/location.js';
import { graphRole, roleFromName, type GraphUse, type GraphView } from '../../core/roles.js';

export { MAX_MODEL_JSON } from './model-json.js';

export const tfjsReader: FormatReader = { ...tfjsFormat, open: openTfjs };

/** A weight and where its stored bytes lie in its group's concatenated shards. */
interface Located {
  entry: ManifestEntry;
  shards: ShardGroup;
  offset: number;
  storedLength: number;
}

interface ModelJson {
  format?: unknown;
  generatedBy?: unknown;
  convertedBy?: unknown;
  modelTopology?: Record<string, unknown> | null;
  weightsManifest?: unknown;
}

/**
 * Lists a TF.js model (model.json of a layers or graph model, legacy or current) or a bare weights
 * manifest. Shards are resolved inside the model folder and only stat()ed; the one exception is a
 * string weight, whose element lengths must be walked to know where the next weight starts.
 */
async function openTfjs(input: string, options: OpenOptions): Promise<StateDict> {
  const file = modelJsonPath(input);
  const json = readModelJson(file);
  if (typeof json !== 'object' || json === null) throw invalidInput(file, undefined, 'expected a JSON object (model.json) or array (weights manifest)');
  const model: ModelJson = Array.isArray(json) ? {} : json;
  const manifest = Array.isArray(json) ? json : model.weightsManifest;
  if (manifest === undefined) throw invalidInput(file, 'weightsManifest', 'missing; expected an array of {paths, weights} groups');
  const groups = validateManifest(file, manifest);

  const counter = { bytesRead: 0 };
  const located = groups.flatMap((group, gi) => locateGroup(file, group, gi, counter));
  const kind = modelKind(json);
  const classes = kind === 'layers-model' ? layerClasses(model.modelTopology) : new Map<string, string>();
  const listed = located.filter((l) => options.all || (l.entry.group ?? 'model') === 'model');
  const names = uniqueNames(listed.map((l) => ({ name: canonicalName(l.entry.name) })));
  const graph = kind === 'graph-model' ? graphOf(model.modelTopology) : undefined;
  const roleOf = (l: Located, name: string): Pick<TensorInfo, 'role' | 'roleFrom'> => {
    const dtype = TFJS_DTYPES[l.entry.dtype]!;
    const fromGraph = graph && graphRole(l.entry.name, { dtype, shape: l.entry.shape }, graph);
    if (fromGraph) return { role: fromGraph, roleFrom: 'graph' };
    return { role: roleFromName(name, dtype), roleFrom: classes.has(l.entry.name.split('/').slice(-2)[0] ?? '') ? 'config' : 'names' };
  };
  const tensors = listed.map((l, i) => tensorInfo(file, l, names[i]!, layoutOf(l.entry.name, classes), roleOf(l, names[i]!)));
  const kerasModel = kind === 'layers-model' ? kerasModelOf(model) : undefined;
  return {
    format: 'tfjs',
    path: input,
    ...(kerasModel ? { kerasModel } : {}),
    metadata: { ...metadataOf(kind, model, groups, located.length), ...(listed.length < located.length ? { optimizerTensors: located.length - listed.length } : {}) },
    tensors,
    // Shards are opened per read, so nothing stays open.
    close: async () => {},
    bytesRead: () => counter.bytesRead,
  };
}

/**
 * Resolves and sizes a group's shards, then lays its weights out back to back and requires that
 * they fill the shards exactly, as tfjs's loaders assume.
 */
function locateGroup(file: string, group: ManifestGroup, gi: number, counter: { bytesRead: number }): Located[] {
  const folder = path.dirname(file);
  const shardList: Shard[] = [];
  let start = 0;
  prefetchSizes(file, group.paths);
  group.paths.forEach((name, pi) => {
    const holder = fixedWeightAt(group, start);
    const where = `weightsManifest[${gi}].paths[${pi}] (shard '${name}'${holder ? `, holding weight '${holder}'` : ''})`;
    const real = resolveInsideFolder(file, folder, name, where);
    const size = shardSize(real, where);
    shardList.push({ name, path: real, size });
    start += size;
  });
  const shards = new ShardGroup(shardList, counter);

  const out: Located[] = [];
  let offset = 0;
  for (const entry of group.weights) {
    const numel = numelOf(entry.shape)!;
    const bytes = entry.dtype === 'string' ? stringWeightBytes(file, shards, offset, numel, entry.name) : storedBytes(entry);
    if (offset + bytes > shards.size) {
      throw invalidInput(file, `weight '${entry.name}'`, `needs bytes ${offset} to ${offset + bytes} of weightsManifest[${gi}] but its shards ${shards.names || '(none)'} end at byte ${shards.size}`);
    }
    out.push({ entry, shards, offset, storedLength: bytes });
    offset += bytes;
  }
  if (offset !== shards.size) {
    const last = group.weights.at(-1);
    const extra = shardList[shards.shardAt(offset)]!;
    throw invalidInput(file, `weightsManifest[${gi}]`, `its weights end at byte ${offset}${last ? ` (last weight '${last.name}')` : ''} but its shards ${shards.names} hold ${shards.size} bytes; shard '${extra.name}' has ${shards.size - offset} bytes too many`);
  }
  return out;
}

/**
 * The weight whose bytes include `offset` of the group, for naming what a bad shard holds; counted
 * over fixed-width weights only (a string's size needs the shards), undefined past them.
 */
function fixedWeightAt(group: ManifestGroup, offset: number): string | undefined {
  let start = 0;
  for (const entry of group.weights) {
    if (entry.dtype === 'string') return undefined;
    start += storedBytes(entry);
    if (offset < start) return entry.name;
  }
  return undefined;
}

function tensorInfo(file: string, l: Located, name: string, layout: Layout | undefined, role: Pick<TensorInfo, 'role' | 'roleFrom'>): TensorInfo {
  const { entry, shards, offset, storedLength: stored } = l;
  const dtype = TFJS_DTYPES[entry.dtype]!;
  const numel = numelOf(entry.shape)!;
  const what = `weight '${entry.name}'`;
  const readStored = async () => shards.read(offset, stored, what);
  return {
    name,
    source: entry.name,
    dtype,
    shape: [...entry.shape],
    byteLength: dtype === 'string' ? stored - 4 * numel : byteLengthOf(dtype, numel),
    origin: 'weight',
    ...((entry.group ?? 'model') !== 'model' ? { group: 'optimizer' as const } : {}),
    ...(layout ? { layout } : {}),
    ...role,
    ...(entry.quantization ? { encoding: encodingOf(entry.quantization, stored, readStored) } : {}),
    read: async () => {
      if (dtype === 'string') throw invalidInput(file, what, 'is a string tensor; use readStrings()');
      return dequantize(entry, await readStored(), numel);
    },
    readStrings: async () => {
      if (dtype !== 'string') throw invalidInput(file, what, `is ${dtype}, not strings`);
      return splitStrings(file, entry.name, await readStored(), numel);
    },
  };
}

interface GraphDefNode { name?: unknown; op?: unknown; input?: unknown }

/**
 * A graph model's GraphDef as a role graph: node inputs are `name`, `name:1` (an output index)
 * or `^name` (a control dependency, not a data input).
 */
function graphOf(topology: Record<string, unknown> | null | undefined): GraphView {
  const uses = new Map<string, GraphUse[]>();
  const producers = new Map<string, { opType: string; inputs: string[] }>();
  const nodes = Array.isArray(topology?.node) ? (topology.node as GraphDefNode[]) : [];
  for (const node of nodes) {
    if (typeof node?.name !== 'string' || typeof node.op !== 'string') continue;
    const inputs = (Array.isArray(node.input) ? node.input : [])
      .filter((i): i is string => typeof i === 'string' && !i.startsWith('^'))
      .map((i) => i.replace(/:\d+$/, ''));
    producers.set(node.name, { opType: node.op, inputs });
    inputs.forEach((input, inputIndex) => {
      const use = { opType: node.op as string, inputIndex, inputs, outputs: [node.name as string] };
      uses.set(input, [...(uses.get(input) ?? []), use]);
    });
  }
  return { usesOf: (name) => uses.get(name) ?? [], producerOf: (name) => producers.get(name) };
}

/** Keras kernel layouts from the layers-model topology: `<layer>/kernel` gets its layer class's layout. */
function layoutOf(source: string, classes: ReadonlyMap<string, string>): Layout | undefined {
  const [layer, weight] = source.split('/').slice(-2);
  const className = layer === undefined ? undefined : classes.get(layer);
  if (className === undefined) return undefined;
  if (weight === 'kernel' || weight === 'depthwise_kernel') return KERNEL_LAYOUTS[className];
  // A separable convolution's second kernel is a 1×1 convolution.
  if (weight === 'pointwise_kernel' && className === 'SeparableConv2D') return 'HWIO';
  return undefined;
}

/** A layers model's Keras config (`modelTopology.model_config`, or the topology itself in old files). */
function kerasModelOf(model: ModelJson & { trainingConfig?: unknown }): KerasModelInfo | undefined {
  const topology = model.modelTopology ?? {};
  const config = (topology.model_config ?? topology) as Record<string, unknown>;
  if (typeof config?.class_name !== 'string' || typeof config.config !== 'object' || config.config === null) return undefined;
  const trainingConfig = topology.training_config ?? model.trainingConfig;
  return {
    config,
    ...(trainingConfig ? { trainingConfig } : {}),
    ...(typeof topology.keras_version === 'string' ? { kerasVersion: topology.keras_version } : {}),
    ...(typeof topology.backend === 'string' ? { backend: topology.backend } : {}),
  };
}

function metadataOf(kind: string, model: ModelJson, groups: readonly ManifestGroup[], weights: number): Metadata {
  const topology = model.modelTopology ?? {};
  const text = (key: string, value: unknown) => (typeof value === 'string' ? { [key]: value } : {});
  const versions = topology.versions as { producer?: unknown } | undefined;
  const kerasVersion = topology.keras_version;
  return {
    format: kind,
    ...text('generatedBy', model.generatedBy),
    ...text('convertedBy', model.convertedBy),
    ...text('kerasVersion', kerasVersion),
    // tfjs-layers writes its own version as the Keras version: `tfjs-layers 4.22.0`.
    ...(typeof kerasVersion === 'string' && kerasVersion.startsWith('tfjs-layers ') ? { tfjsVersion: kerasVersion.slice('tfjs-layers '.length) } : {}),
    ...text('backend', topology.backend),
    ...(typeof versions?.producer === 'number' ? { graphDefProducer: versions.producer } : {}),
    shards: groups.reduce((n, g) => n + g.paths.length, 0),
    weights,
  };
}
