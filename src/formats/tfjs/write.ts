import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeAll, writeAtomic, yieldToSignals } from '../../core/atomic.js';
import { usageError, fromSystemError } from '../../core/errors.js';
import type { StateDict } from '../../core/statedict.js';
import type { FormatWriter, OutputTensor } from '../writers.js';
import { TFJS_DTYPES } from './manifest.js';
import { modelJsonPath, readModelJson } from './model-json.js';

/** The converter's default shard size: tensors are cut across shard files at this boundary. */
export const SHARD_BYTES = 4 * 1024 * 1024;

/**
 * TF.js output: `model.json` and `group1-shardNofM.bin` shards in the folder of OUT (OUT may name
 * the folder or its model.json). The input's topology and format are kept when it is a TF.js model.
 * Each shard and model.json are written atomically; model.json last, so a reader never sees a
 * manifest whose shards are missing.
 */
export async function writeTfjs(out: string, tensors: readonly OutputTensor[], source: StateDict): Promise<string[]> {
  const bad = tensors.find((t) => !(t.tensor.dtype in TFJS_DTYPES) || t.tensor.dtype === 'string');
  if (bad) throw usageError(`TF.js weights are float32, int32, bool or complex64; '${bad.name}' is ${bad.tensor.dtype} (convert it first)`);
  const folder = out.toLowerCase().endsWith('.json') ? path.dirname(out) : out;
  const jsonPath = out.toLowerCase().endsWith('.json') ? out : path.join(folder, 'model.json');
  try {
    fs.mkdirSync(folder, { recursive: true });
  } catch (err) {
    throw fromSystemError(folder, 'creating the output folder', err);
  }
  const total = tensors.reduce((n, t) => n + t.tensor.byteLength, 0);
  const shardCount = Math.max(1, Math.ceil(total / SHARD_BYTES));
  const names = Array.from({ length: shardCount }, (_, i) => `group1-shard${i + 1}of${shardCount}.bin`);
  // Shards are filled tensor after tensor; a tensor may straddle two shards.
  let shard = 0;
  const writeShard = (bytes: Uint8Array) => writeAtomic(path.join(folder, names[shard++]!), (fd) => writeAll(fd, bytes));
  let pending = Buffer.alloc(0);
  for (const t of tensors) {
    await yieldToSignals();
    pending = Buffer.concat([pending, await t.tensor.read()]);
    while (pending.length >= SHARD_BYTES) {
      await writeShard(pending.subarray(0, SHARD_BYTES));
      pending = pending.subarray(SHARD_BYTES);
    }
  }
  if (pending.length > 0 || shard === 0) await writeShard(pending);
  const manifest = [{ paths: names, weights: tensors.map((t) => ({ name: t.name, shape: [...t.tensor.shape], dtype: t.tensor.dtype })) }];
  const model = source.format === 'tfjs' ? keptModelJson(source) : {};
  const json = Array.isArray(model) ? manifest : { ...model, weightsManifest: manifest };
  const text = JSON.stringify(json);
  await writeAtomic(jsonPath, (fd) => writeAll(fd, Buffer.from(text)));
  return [jsonPath, ...names.map((n) => path.join(folder, n))];
}

/** Everything of the input's model.json except its manifest (a bare manifest stays bare). */
function keptModelJson(source: StateDict): Record<string, unknown> | unknown[] {
  const json = readModelJson(modelJsonPath(source.path)) as Record<string, unknown> | unknown[];
  if (Array.isArray(json)) return [];
  delete json.weightsManifest;
  return json;
}

export const tfjsWriter: FormatWriter = {
  format: 'tfjs',
  extensions: ['.json'],
  async write(out, tensors, source) {
    const files = await writeTfjs(out, tensors, source);
    return { format: 'tfjs', notes: [`wrote ${files.length - 1} shard(s) beside ${path.basename(files[0]!)}`] };
  },
};
