import { usageError } from '../core/errors.js';
import { parseDtypeOptions, type DtypeOptions } from '../ops/cast.js';
import { parseQuantizeRules } from '../formats/tfjs/quantize.js';
import { isGgufQuantizeValue, parseGgufQuantizeRules } from '../formats/gguf/quantize.js';
import { parseByteSize } from '../formats/sharded/write.js';
import type { WriteOptions } from '../formats/writers.js';
import type { WriteCommandOptions } from './write-options.js';

/** The write options as the API takes them, checked. */
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
