import * as fs from 'node:fs';
import * as path from 'node:path';
import { outputTarget, syncFolder, Temporary, writeAll, yieldToSignals } from '../../core/atomic.js';
import { fromSystemError, ioError } from '../../core/errors.js';
import type { StateDict } from '../../core/statedict.js';
import type { FormatWriter, OutputTensor } from '../writers.js';
import { storedWeight, type QuantizeRule, type StoredWeight } from './quantize.js';
import { modelJsonPath, readModelJson } from './model-json.js';
import { modelPlan, realKerasVersion, toLayersConfig } from '../keras-model.js';
import { unsupportedByTfjs } from '../keras-layers.js';

/** The converter's default shard size: tensors are cut across shard files at this boundary. */
export const SHARD_BYTES = 4 * 1024 * 1024;

/**
 * TF.js output: `model.json` and `groupK-shardNofM.bin` shards in the folder of OUT (OUT may name
 * the folder or its model.json). The input's topology and format are kept when it is a TF.js model.
 * Replacing a model is atomic, so an interrupted write leaves the old model whole: the new shards
 * take names no file in the folder has (the first free `groupK`), are written as hidden
 * temporaries, then renamed into place together with model.json in one synchronous step (signals
 * wait for it); only then are the old model's shards removed. Returns model.json and the shards.
 */
export async function writeTfjs(
  out: string, tensors: readonly OutputTensor[], model: Record<string, unknown> | unknown[], source: StateDict, quantize: readonly QuantizeRule[] = [],
): Promise<{ files: string[]; stored: StoredWeight[] }> {
  const stored = tensors.map((t) => storedWeight(t.name, t.tensor, quantize, source.path));
  const folder = out.toLowerCase().endsWith('.json') ? path.dirname(out) : out;
  const jsonPath = out.toLowerCase().endsWith('.json') ? out : path.join(folder, 'model.json');
  let entries: string[];
  try {
    if (fs.existsSync(folder) && !fs.statSync(folder).isDirectory()) {
      throw ioError(folder, 'output', 'is not a folder; TF.js output is a folder of files (model.json and its shards)');
    }
    fs.mkdirSync(folder, { recursive: true });
    entries = fs.readdirSync(folder);
  } catch (err) {
    throw fromSystemError(folder, 'output folder', err);
  }
  const json = outputTarget(jsonPath);
  if (json.kind === 'stream') throw ioError(jsonPath, 'output', 'is a device or FIFO; TF.js output is a folder of files');
  const oldShards = shardsOf(json.path);
  let group = 1;
  while (entries.some((e) => e.startsWith(`group${group}-`))) group++;
  const total = stored.reduce((n, w) => n + w.storedLength, 0);
  const shardCount = Math.max(1, Math.ceil(total / SHARD_BYTES));
  const names = Array.from({ length: shardCount }, (_, i) => `group${group}-shard${i + 1}of${shardCount}.bin`);
  const manifest = [{ paths: names, weights: stored.map((w) => w.entry) }];

  const shards: Temporary[] = [];
  let jsonTemp: Temporary | undefined;
  try {
    // Tensors are cut across shards at SHARD_BYTES; one tensor's bytes in memory at a time.
    let filled = SHARD_BYTES;
    for (const w of stored) {
      await yieldToSignals();
      const bytes = await w.read();
      if (bytes.length !== w.storedLength) throw new Error(`'${w.entry.name}' read ${bytes.length} bytes, expected ${w.storedLength}`);
      for (let at = 0; at < bytes.length;) {
        if (filled === SHARD_BYTES) {
          shards.at(-1)?.finish();
          shards.push(new Temporary(out, path.join(folder, names[shards.length]!)));
          filled = 0;
        }
        const n = Math.min(SHARD_BYTES - filled, bytes.length - at);
        writeAll(shards.at(-1)!.descriptor, bytes.subarray(at, at + n));
        at += n;
        filled += n;
      }
    }
    if (shards.length === 0) shards.push(new Temporary(out, path.join(folder, names[0]!)));
    shards.at(-1)!.finish();
    // Quantization parameters are known once the weights are written.
    const text = JSON.stringify(Array.isArray(model) ? manifest : { ...model, weightsManifest: manifest });
    jsonTemp = new Temporary(out, json.path);
    writeAll(jsonTemp.descriptor, Buffer.from(text));
    jsonTemp.finish(json.mode);
    shards.forEach((shard, i) => shard.renameTo(path.join(folder, names[i]!)));
    jsonTemp.renameTo(json.path);
    syncFolder(folder);
    syncFolder(path.dirname(json.path));
  } catch (err) {
    for (const temp of [...shards, jsonTemp]) temp?.discard();
    throw fromSystemError(out, 'writing', err);
  }
  for (const name of oldShards.filter((n) => !names.includes(n))) fs.rmSync(path.join(folder, name), { force: true });
  syncFolder(folder);
  return { files: [jsonPath, ...names.map((n) => path.join(folder, n))], stored };
}

/** The shard files an existing model.json names in its own folder; none when it is absent or unreadable. */
function shardsOf(jsonPath: string): string[] {
  let manifest: unknown;
  try {
    const json = JSON.parse(fs.readFileSync(jsonPath, 'utf8')) as unknown;
    manifest = Array.isArray(json) ? json : (json as { weightsManifest?: unknown })?.weightsManifest;
  } catch {
    return [];
  }
  if (!Array.isArray(manifest)) return [];
  const paths = manifest.flatMap((g) => (Array.isArray((g as { paths?: unknown })?.paths) ? (g as { paths: unknown[] }).paths : []));
  return paths.filter((p): p is string => typeof p === 'string' && p === path.basename(p) && p !== '.' && p !== '..' && p !== '');
}

/** Everything of the input's model.json except its manifest (a bare manifest stays bare). */
function keptModelJson(source: StateDict): Record<string, unknown> | unknown[] {
  const json = readModelJson(modelJsonPath(source.path)) as Record<string, unknown> | unknown[];
  if (Array.isArray(json)) return [];
  delete json.weightsManifest;
  return json;
}

/**
 * What model.json says besides the manifest, and the tensors in manifest order: a Keras model
 * (a Keras file with its config, a TF.js layers model) becomes a layers model whose weights are
 * named `layer/weight` as tfjs-layers looks them up; when the tensors are not the whole model
 * (a strip, a filter), the topology is left out and a note says so. Graph models are kept as they are.
 */
export function tfjsModel(tensors: readonly OutputTensor[], source: StateDict): { json: Record<string, unknown> | unknown[]; tensors: readonly OutputTensor[]; notes: string[] } {
  const kept = source.format === 'tfjs' ? keptModelJson(source) : {};
  const { plan, model, notes } = modelPlan(source, tensors, 'TF.js weights');
  const lacking = plan && model && source.format !== 'tfjs' ? unsupportedByTfjs(model.config) : [];
  if (lacking.length) notes.push(`weights-only TF.js weights, without the model config: tfjs-layers does not support ${lacking.join(', ')}, so tf.loadLayersModel could not build the model`);
  if (plan && model && !lacking.length) {
    if (source.format === 'tfjs') return { json: kept, tensors, notes };
    const topology = {
      ...(realKerasVersion(model.kerasVersion) ? { keras_version: model.kerasVersion } : {}),
      backend: 'tensorflow',
      model_config: toLayersConfig(model.config),
      ...(model.trainingConfig ? { training_config: model.trainingConfig } : {}),
    };
    const named = plan.flatMap((p) => p.weights.map((w) => ({ name: `${p.layer.name}/${w.weight}`, tensor: w.tensor.tensor })));
    return { json: { format: 'layers-model', generatedBy: `keras v${model.kerasVersion ?? 'unknown'}`, convertedBy: 'ckpt', modelTopology: topology }, tensors: named, notes };
  }
  // Keras weights keep their Keras names (`conv1/kernel`), as tensorflowjs_converter writes them.
  const named = source.format === 'keras' ? tensors.map((t) => ({ ...t, name: t.name.replace(/\./g, '/') })) : tensors;
  if (!model || Array.isArray(kept)) return { json: kept, tensors: named, notes };
  // Weights-only: no topology and no layers-model format, so tfjs cannot mistake it for the model.
  const { modelTopology: _topology, format: _format, ...rest } = kept;
  return { json: rest, tensors: named, notes };
}

export const tfjsWriter: FormatWriter = {
  format: 'tfjs',
  extensions: ['.json'],
  takes: ['quantize'],
  async write(out, tensors, source, options = {}) {
    const model = tfjsModel(tensors, source);
    const { files, stored } = await writeTfjs(out, model.tensors, model.json, source, options.quantize);
    return { format: 'tfjs', notes: [...model.notes, `wrote ${files.length - 1} shard(s) beside ${path.basename(files[0]!)}`, ...storageNotes(stored)] };
  },
};

/** What was converted or quantized on the way into TF.js, grouped: `3 weight(s) int64 → int32: a, b, c`. */
function storageNotes(stored: readonly StoredWeight[]): string[] {
  const byChange = new Map<string, string[]>();
  for (const w of stored) if (w.change) byChange.set(w.change, [...(byChange.get(w.change) ?? []), w.entry.name]);
  const kept = stored.filter((w) => w.entry.quantization && !w.change).length;
  return [
    ...[...byChange].map(([change, names]) => `${names.length} weight(s) ${change}${change.includes('→') ? ' (TF.js has no other type for them)' : ''}: ${names.slice(0, 8).join(', ')}${names.length > 8 ? ', …' : ''}`),
    ...(kept ? [`${kept} weight(s) keep the input's quantization (--quantize none writes them as float32)`] : []),
  ];
}
