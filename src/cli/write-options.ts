import { Option, type Command } from 'commander';

/**
 * The options every writing command takes (strip, filter, rename, convert, apply), as commander
 * parses them; their parsers are in write-settings.ts, loaded by the commands that write.
 */
export interface WriteCommandOptions {
  dtype?: string;
  keepDtype?: string[];
  quantize?: string[];
  shardSize?: string;
  externalData?: boolean | string;
}

const collect = (value: string, previous: string[] = []) => [...previous, value];

/** The ggml types ckpt quantizes to (core/ggml-quantize.ts has a quantizer for each; a test keeps them equal), spelled out so help loads no quantizer. */
const GGUF_QUANTIZE_TYPES = 'q4_0, q4_1, q5_0, q5_1, q8_0, q4_k, q5_k, q6_k, q8_k';

export function addWriteOptions(command: Command): Command {
  return command
    .option('--dtype <dtype>', 'write floating tensors as float32, float16 or bfloat16 (rounded to nearest even); integers are left as they are; ONNX: learned weights only, each read through an inserted Cast')
    .addOption(new Option('--keep-dtype <pattern>', 'tensors that keep their dtype under --dtype, e.g. norms and heads (repeatable; the selection patterns)').argParser(collect))
    .addOption(new Option('--quantize <dtype[:pattern]>', `TF.js output: quantize float weights to uint8, uint16 or float16 as tensorflowjs_converter does (all, or those PATTERN selects; repeatable); none: write a quantized input as float32. GGUF output: ${GGUF_QUANTIZE_TYPES} as ggml's reference quantizers do (matrices whose rows fill whole blocks; a PATTERN rule wins over the plain one)`).argParser(collect))
    .option('--shard-size <size>', 'safetensors/PyTorch output: Hugging Face shards of at most SIZE (5GB, 500MB decimal; 4GiB binary) with an index.json')
    .option('--external-data [layout]', 'ONNX output: weights in an external data file beside the model (one-file, the default) or one file per tensor (per-tensor)');
}
