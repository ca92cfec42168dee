import * as path from 'node:path';
import { readTextFile, resolveInsideFolder } from '../../core/file.js';
import { fromSystemError, invalidInput } from '../../core/errors.js';
import { locationIsFolder, locationSize } from '../../core/location.js';
import { hiddenTensorCount, type OpenOptions, type StateDict, type TensorInfo } from '../../core/statedict.js';
import type { FormatReader } from '../types.js';
import { indexInFolder, shardedFormat } from './match.js';
import { safetensorsReader } from '../safetensors/index.js';
import { pytorchReader } from '../pytorch/index.js';
import { withProbe } from '../probe.js';

/**
 * Hugging Face sharded checkpoints: `model.safetensors.index.json` or `pytorch_model.bin.index.json`
 * (`{"metadata": {"total_size": …}, "weight_map": {tensor: shard file}}`) beside its shards, opened
 * by the index or by its folder. The shards are opened in file order and read as one state dict.
 */
const MAX_INDEX = 64 << 20;
/** Shard formats Hugging Face writes; each shard is detected by its content. */
const SHARD_READERS = [safetensorsReader, pytorchReader];

export const shardedReader: FormatReader = { ...shardedFormat, open: openSharded };

async function openSharded(input: string, options: OpenOptions): Promise<StateDict> {
  const index = locationIsFolder(input) ? indexInFolder(input)! : input;
  const fail = (where: string | undefined, detail: string) => invalidInput(index, where, detail);
  const weightMap = readWeightMap(index, fail);
  const folder = path.dirname(index);
  const shardNames = [...new Set(Object.values(weightMap))].sort();
  const shards: StateDict[] = [];
  try {
    for (const name of shardNames) {
      const file = resolveInsideFolder(index, folder, name, `weight_map shard '${name}'`);
      shards.push(await openShard(file, options, fail, name));
    }
    const formats = [...new Set(shards.map((s) => s.format))];
    if (formats.length > 1) throw fail('weight_map', `shards are of different formats (${formats.join(', ')})`);
    const tensors: TensorInfo[] = [];
    const shardOf = new Map<string, string>();
    shards.forEach((shard, i) => {
      for (const t of shard.tensors) {
        const first = shardOf.get(t.source);
        if (first) throw fail(`shard '${shardNames[i]}'`, `tensor '${t.source}' is also in shard '${first}'`);
        shardOf.set(t.source, shardNames[i]!);
        tensors.push(t);
      }
    });
    for (const [tensor, shard] of Object.entries(weightMap)) {
      const found = shardOf.get(tensor);
      if (found !== shard) throw fail(`weight_map '${tensor}'`, found ? `is in shard '${found}', not '${shard}'` : `is not in shard '${shard}'`);
    }
    const unmapped = tensors.filter((t) => !(t.source in weightMap)).length;
    const optimizerTensors = shards.reduce((n, s) => n + hiddenTensorCount(s), 0);
    const metadata = {
      index: path.basename(index),
      shards: shards.map((s, i) => ({ file: shardNames[i], tensors: s.tensors.length })),
      ...(unmapped ? { unmappedTensors: unmapped } : {}),
      ...(optimizerTensors ? { optimizerTensors } : {}),
      ...(shards[0] ? { shardMetadata: shards[0].metadata } : {}),
    };
    return {
      format: formats[0] ?? 'safetensors', path: input, metadata, tensors,
      close: async () => {
        for (const s of shards) await s.close();
      },
      bytesRead: () => shards.reduce((n, s) => n + (s.bytesRead?.() ?? 0), 0),
    };
  } catch (err) {
    for (const s of shards) await s.close();
    throw err;
  }
}

function readWeightMap(index: string, fail: (where: string | undefined, detail: string) => Error): Record<string, string> {
  let text: string;
  try {
    const size = locationSize(index);
    if (size > MAX_INDEX) throw fail(undefined, `${size} bytes is more than the ${MAX_INDEX} bytes ckpt parses as a shard index`);
    text = readTextFile(index);
  } catch (err) {
    throw fromSystemError(index, undefined, err);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw fail(undefined, `not valid JSON (${(err as Error).message})`);
  }
  const map = (json as { weight_map?: unknown } | null)?.weight_map;
  if (typeof map !== 'object' || map === null || Array.isArray(map)) throw fail('weight_map', 'expected an object of tensor name → shard file');
  for (const [tensor, shard] of Object.entries(map)) {
    if (typeof shard !== 'string') throw fail(`weight_map '${tensor}'`, 'the shard must be a file name');
  }
  return map as Record<string, string>;
}

async function openShard(file: string, options: OpenOptions, fail: (where: string, detail: string) => Error, name: string): Promise<StateDict> {
  const reader = withProbe(file, (probe) => SHARD_READERS.find((r) => r.match(probe)));
  if (!reader) throw fail(`shard '${name}'`, 'is neither safetensors nor a PyTorch checkpoint');
  return reader.open(file, options);
}
