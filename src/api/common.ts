import { open } from '../open.js';
import type { OpenOptions, StateDict, TensorInfo } from '../core/statedict.js';
import type { WriteOptions, WriteReport } from '../formats/writers.js';
import type { DtypeOptions } from '../ops/cast.js';

/** A model to work on: a path (opened and closed by the call) or a state dict the caller opened (and closes). */
export type ModelInput = string | StateDict;

/** Runs `use` on the model, opening it first when given as a path and closing what was opened here. */
export async function withModel<T>(input: ModelInput, options: OpenOptions, use: (dict: StateDict) => Promise<T>): Promise<T> {
  if (typeof input !== 'string') return use(input);
  const dict = await open(input, options);
  try {
    return await use(dict);
  } finally {
    await dict.close();
  }
}

/** Where a call's warnings go (a pattern that matched nothing…): the CLI writes them to stderr. */
export type Warn = (message: string) => void;

/** Progress of a long step, `done` of `total` (hashing, comparing values). */
export type Progress = (done: number, total: number) => void;

/**
 * Writes `tensors` (by default all of the dict's) to `output` atomically, in `format` (default:
 * from the output's extension, else the dict's own format). In the dict's own format tensors keep
 * their names in the file; in another they are written under their canonical names. `options`:
 * dtypes, quantization, shards, external data — one the writer cannot honour is a usage error.
 */
export async function write(dict: StateDict, output: string, format?: string, tensors: readonly TensorInfo[] = dict.tensors, options: WriteSettings = {}): Promise<WriteReport> {
  // Every writer comes with this module: only the commands that write load it.
  const { chooseWriter, writeWithOptions } = await import('../formats/writers.js');
  const writer = chooseWriter(output, format, dict.format);
  const sameFormat = writer.format === dict.format;
  return writeWithOptions(writer, output, tensors.map((t) => ({ name: sameFormat ? t.source : t.name, tensor: t })), dict, options);
}

/** How outputs are written: `--dtype`/`--keep-dtype`, `--quantize`, `--shard-size`, `--external-data`. */
export type WriteSettings = WriteOptions & DtypeOptions;
