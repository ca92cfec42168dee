import { usageError } from '../core/errors.js';
import { parseDtypeOptions, type DtypeOptions } from '../ops/cast.js';
import { parseQuantizeRules } from '../formats/tfjs/quantize.js';
import { parseByteSize } from '../formats/sharded/write.js';
import type { WriteOptions } from '../formats/writers.js';
import type { WriteCommandOptions } from './write-options.js';

/** The write options as the API takes them, checked. */
export function writeOptionsFrom(options: WriteCommandOptions): WriteOptions & DtypeOptions {
  const externalData = options.externalData === true ? 'one-file' : options.externalData;
  if (externalData !== undefined && externalData !== 'one-file' && externalData !== 'per-tensor') {
    throw usageError(`--external-data ${externalData}: expected one-file or per-tensor`);
  }
  const quantize = parseQuantizeRules(options.quantize);
  return {
    ...parseDtypeOptions(options.dtype, options.keepDtype),
    ...(quantize.length ? { quantize } : {}),
    ...(options.shardSize !== undefined ? { shardSize: parseByteSize(options.shardSize, '--shard-size') } : {}),
    ...(externalData ? { externalData } : {}),
  };
}
