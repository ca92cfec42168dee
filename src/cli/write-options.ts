import { Option, type Command } from 'commander';
import { usageError } from '../core/errors.js';
import { parseDtypeOptions, type DtypeOptions } from '../ops/cast.js';
import { parseQuantizeRules } from '../formats/tfjs/quantize.js';
import { ggufTypeNames, isGgufQuantizeValue, parseGgufQuantizeRules } from '../formats/gguf/quantize.js';
import { parseByteSize } from '../formats/sharded/write.js';
import type { WriteOptions } from '../formats/writers.js';

/** The options every writing command takes (strip, filter, rename, convert, apply), as commander parses them. */
export interface WriteCommandOptions {
  dtype?: string;
  keepDtype?: string[];
  quantize?: string[];
  shardSize?: string;
  externalData?: boolean | string;
}

const collect = (value: string, previous: string[] = []) => [...previous, value];

export function addWriteOptions(command: Command): Command {
  return command
    .option('--dtype <dtype>', 'write floating tensors as float32, float16 or bfloat16 (rounded to nearest even); integers are left as they are; ONNX: learned weights only, each read through an inserted Cast')
    .addOption(new Option('--keep-dtype <pattern>', 'tensors that keep their dtype under --dtype, e.g. norms and heads (repeatable; the selection patterns)').argParser(collect))
    .addOption(new Option('--quantize <dtype[:pattern]>', `TF.js output: quantize float weights to uint8, uint16 or float16 as tensorflowjs_converter does (all, or those PATTERN selects; repeatable); none: write a quantized input as float32. GGUF output: ${ggufTypeNames()} as ggml's reference quantizers do (matrices whose rows fill whole blocks; a PATTERN rule wins over the plain one)`).argParser(collect))
    .option('--shard-size <size>', 'safetensors/PyTorch output: Hugging Face shards of at most SIZE (5GB, 500MB decimal; 4GiB binary) with an index.json')
    .option('--external-data [layout]', 'ONNX output: weights in an external data file beside the model (one-file, the default) or one file per tensor (per-tensor)');
}

export function writeOptionsFrom(options: WriteCommandOptions): WriteOptions & DtypeOptions {
  const externalData = options.externalData === true ? 'one-file' : options.externalData;
  if (externalData !== undefined && externalData !== 'one-file' && externalData !== 'per-tensor') {
    throw usageError(`--external-data ${externalData}: expected one-file or per-tensor`);
  }
  // ggml block types (q4_0, q6_k…) are GGUF's; the rest are TF.js's, each parser naming what it takes.
  const quantize = parseQuantizeRules(options.quantize?.filter((v) => !isGgufQuantizeValue(v)));
  const ggufQuantize = parseGgufQuantizeRules(options.quantize?.filter(isGgufQuantizeValue) ?? []);
  return {
    ...parseDtypeOptions(options.dtype, options.keepDtype),
    ...(quantize.length ? { quantize } : {}),
    ...(ggufQuantize.length ? { ggufQuantize } : {}),
    ...(options.shardSize !== undefined ? { shardSize: parseByteSize(options.shardSize, '--shard-size') } : {}),
    ...(externalData ? { externalData } : {}),
  };
}
