import * as fs from 'node:fs';
import * as path from 'node:path';
import { usageError } from '../core/errors.js';
import { hiddenTensorCount, type StateDict, type TensorInfo } from '../core/statedict.js';
import type { RewriteOptions, TensorEdit } from './onnx/write.js';
import { rewriteOnnxWithDtype, type DtypeReport } from './onnx/cast.js';
import { numpyWriter } from './numpy/write.js';
import { tfjsWriter } from './tfjs/write.js';
import { kerasWriter } from './keras/write.js';
import { safetensorsWriter } from './safetensors/write.js';
import { pytorchWriter } from './pytorch/write.js';
import { paddleWriter } from './paddle/write.js';
import { applyDtype, type DtypeOptions } from '../ops/cast.js';
import type { QuantizeRule } from './tfjs/quantize.js';
import type { GgufQuantizeRule } from './gguf/quantize.js';
import { ggufWriter } from './gguf/write.js';
import { tfliteWriter } from './tflite/write.js';
import { darknetWriter } from './darknet/write.js';

/** A tensor to write under a given name (the source name, a canonical name, or a renamed one). */
export interface OutputTensor {
  readonly name: string;
  readonly tensor: TensorInfo;
}

export interface WriteReport {
  readonly format: string;
  /** Things the user should know about the output (e.g. removed ONNX weights became inputs). */
  readonly notes: string[];
  /** How many tensors were written: fewer than given when some were left out (see announcingWhatIsLeftOut). */
  readonly written?: number;
  /** ONNX under `--dtype`: which float tensors were cast and which kept, and why. */
  readonly dtypes?: DtypeReport;
  /** GGUF `--quantize`: the tensors written as blocks, and those the rules selected that stayed float, with why. */
  readonly quantization?: QuantizationReport;
}

export interface QuantizationReport {
  readonly quantized: { name: string; type: string }[];
  readonly unquantized: { name: string; reason: string }[];
}

/** How to write, beyond which tensors: options only some writers take (`FormatWriter.takes`). */
export interface WriteOptions {
  /** TF.js: weights to quantize, and how (`--quantize`); `none` drops the input's quantization. */
  quantize?: readonly QuantizeRule[];
  /** GGUF: float weights to quantize to ggml block types (`--quantize q4_0[:PATTERN]`). */
  ggufQuantize?: readonly GgufQuantizeRule[];
  /** safetensors, PyTorch: Hugging Face shards of at most this many bytes, with an index. */
  shardSize?: number;
  /** ONNX: weights in an external data file beside the model, or one file per tensor. */
  externalData?: 'one-file' | 'per-tensor';
  /** ONNX: the largest model written inline; above it external data is used (protobuf's 2 GiB; tests lower it). */
  inlineLimit?: number;
}

const OPTION_FLAGS: Record<keyof WriteOptions, string> = {
  quantize: '--quantize', ggufQuantize: '--quantize', shardSize: '--shard-size', externalData: '--external-data', inlineLimit: 'inlineLimit',
};

export interface FormatWriter {
  readonly format: string;
  /** File extensions that select this writer for an output path. */
  readonly extensions: readonly string[];
  /** Whether string tensors (TF2 object graphs, string metadata) can be written; others leave them out. */
  readonly holdsStrings?: boolean;
  /**
   * Writes `tensors` to `out` atomically, streaming one tensor at a time. `source` is the state
   * dict they come from (the ONNX writer rewrites its file losslessly).
   */
  write(out: string, tensors: readonly OutputTensor[], source: StateDict, options?: WriteOptions & DtypeOptions): Promise<WriteReport>;
  /** The WriteOptions it takes; the others are refused for it. */
  readonly takes?: readonly (keyof WriteOptions)[];
  /** `--dtype` is applied by the writer itself (ONNX: its graph types what each weight feeds), not before it. */
  readonly castsDtypes?: 'itself';
}

/** ONNX output keeps the source model and removes the weights not written (they become inputs). */
const onnxWriter: FormatWriter = {
  format: 'onnx',
  extensions: ['.onnx'],
  holdsStrings: true,
  takes: ['externalData', 'inlineLimit'],
  castsDtypes: 'itself',
  async write(out, tensors, source, options = {}) {
    if (source.format !== 'onnx') {
      throw usageError(`writing ONNX needs an ONNX model to put the weights in; '${source.path}' is ${source.format}`);
    }
    const kept = new Set(tensors.map((t) => t.tensor));
    const renames = new Map(tensors.filter((t) => t.name !== t.tensor.source).map((t) => [t.tensor.source, t.name]));
    const edits = new Map<TensorInfo, TensorEdit>(source.tensors.filter((t) => !kept.has(t)).map((t) => [t, { kind: 'remove' }]));
    const { report, notes, dtypes } = await rewriteOnnxWithDtype(source, [...kept], edits, out, { renames, ...externalDataOptions(options), ...dtypeOptions(options) });
    if (report.newInputs.length) notes.push(`${report.newInputs.length} removed weight(s) became graph inputs so the model stays valid: ${report.newInputs.join(', ')}`);
    return { format: 'onnx', notes, ...(dtypes ? { dtypes } : {}) };
  },
};

export const WRITERS: readonly FormatWriter[] = [onnxWriter, numpyWriter, tfjsWriter, kerasWriter, safetensorsWriter, pytorchWriter, paddleWriter, ggufWriter, tfliteWriter, darknetWriter];

function isFolder(file: string): boolean {
  try {
    return fs.statSync(file).isDirectory();
  } catch {
    return false;
  }
}

/**
 * The writer for an output: `--to` if given, else the output's extension, else TF.js for a folder
 * (an existing one, or a name ending in `/`), else the input's format when `inputFormat` is
 * given. An extension no writer knows is refused rather than written in some other format under
 * that name.
 */
export function chooseWriter(out: string, to: string | undefined, inputFormat: string | undefined): FormatWriter {
  const known = `formats: ${WRITERS.map((w) => w.format).join(', ')}; extensions: ${WRITERS.flatMap((w) => w.extensions).join(' ')}`;
  let writer: FormatWriter | undefined;
  if (to) {
    writer = WRITERS.find((w) => w.format === to);
    if (!writer) throw usageError(`--to ${to}: no writer for that format (${known})`);
  } else {
    const ext = path.extname(out).toLowerCase();
    if (ext) {
      writer = WRITERS.find((w) => w.extensions.includes(ext));
      if (!writer) throw usageError(`${out}: no writer for '${ext}' files; name the output with a known extension or choose --to (${known})`);
    } else if (out.endsWith('/') || isFolder(out)) {
      // A folder holds a TF.js model (model.json and its shards); no other writer writes one.
      writer = WRITERS.find((w) => w.format === 'tfjs')!;
    } else {
      if (inputFormat === undefined) throw usageError(`${out}: no extension to choose the output format from; choose --to (${known})`);
      writer = WRITERS.find((w) => w.format === inputFormat);
      if (!writer) throw usageError(`no writer for ${inputFormat} output yet; choose one with --to (${known})`);
    }
  }
  return announcingWhatIsLeftOut(writer);
}

/**
 * The writer, with what it cannot or does not write said in its notes: the optimizer state the
 * reader hid (never written; `--all` lists it), and string entries (a TF2 object graph, string
 * metadata) in formats that have no string type, which are left out rather than failing.
 */
function announcingWhatIsLeftOut(writer: FormatWriter): FormatWriter {
  return {
    ...writer,
    async write(out, tensors, source, options) {
      const strings = writer.holdsStrings ? [] : tensors.filter((t) => t.tensor.dtype === 'string');
      const written = strings.length ? tensors.filter((t) => t.tensor.dtype !== 'string') : tensors;
      const report = await writer.write(out, written, source, options);
      const hidden = hiddenTensorCount(source);
      return {
        ...report,
        written: written.length,
        notes: [
          ...report.notes,
          ...(strings.length ? [`${strings.length} string entr${strings.length === 1 ? 'y' : 'ies'} left out (${writer.format} has no string type): ${strings.map((t) => t.name).join(', ')}`] : []),
          ...(hidden ? [`${hidden} optimizer tensor(s) of the input were not written: ckpt writes model state only (inspect --all lists them)`] : []),
        ],
      };
    },
  };
}

export function externalDataOptions(options: WriteOptions): Pick<RewriteOptions, 'externalData' | 'inlineLimit'> {
  return {
    ...(options.externalData ? { externalData: options.externalData } : {}),
    ...(options.inlineLimit !== undefined ? { inlineLimit: options.inlineLimit } : {}),
  };
}

export function dtypeOptions(options: DtypeOptions): DtypeOptions {
  return { ...(options.dtype ? { dtype: options.dtype } : {}), ...(options.keepDtype ? { keepDtype: options.keepDtype } : {}) };
}

/** Refuses options the writer cannot honour (never silently ignored). */
export function checkWriteOptions(writer: Pick<FormatWriter, 'format' | 'takes'>, options: WriteOptions & DtypeOptions): void {
  const { dtype: _dtype, keepDtype: _keep, ...writeOptions } = options;
  for (const key of Object.keys(writeOptions) as (keyof WriteOptions)[]) {
    if (writeOptions[key] !== undefined && !writer.takes?.includes(key)) throw usageError(`${OPTION_FLAGS[key]} does not apply to ${writer.format} output`);
  }
}

/**
 * Writes `tensors` with `--dtype` applied and the write options checked against what the writer
 * takes (an option it cannot honour is a usage error, never silently ignored); the cast's notes
 * come first.
 */
export async function writeWithOptions(
  writer: FormatWriter, out: string, tensors: readonly OutputTensor[], source: StateDict, options: WriteOptions & DtypeOptions = {},
): Promise<WriteReport> {
  const { dtype: _dtype, keepDtype: _keep, ...writeOptions } = options;
  checkWriteOptions(writer, options);
  if (writer.castsDtypes === 'itself') return writer.write(out, tensors, source, { ...writeOptions, ...dtypeOptions(options) });
  const cast = applyDtype(tensors, dtypeOptions(options));
  const report = await writer.write(out, cast.tensors, source, writeOptions);
  return { ...report, notes: [...cast.notes, ...report.notes] };
}
