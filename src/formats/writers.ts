import * as path from 'node:path';
import { usageError } from '../core/errors.js';
import type { StateDict, TensorInfo } from '../core/statedict.js';
import { rewriteOnnx, type TensorEdit } from './onnx/write.js';
import { numpyWriter } from './numpy/write.js';
import { tfjsWriter } from './tfjs/write.js';
import { kerasWriter } from './keras/write.js';
import { safetensorsWriter } from './safetensors/write.js';
import { pytorchWriter } from './pytorch/write.js';
import { paddleWriter } from './paddle/write.js';

/** A tensor to write under a given name (the source name, a canonical name, or a renamed one). */
export interface OutputTensor {
  readonly name: string;
  readonly tensor: TensorInfo;
}

export interface WriteReport {
  readonly format: string;
  /** Things the user should know about the output (e.g. removed ONNX weights became inputs). */
  readonly notes: string[];
}

export interface FormatWriter {
  readonly format: string;
  /** File extensions that select this writer for an output path. */
  readonly extensions: readonly string[];
  /**
   * Writes `tensors` to `out` atomically, streaming one tensor at a time. `source` is the state
   * dict they come from (the ONNX writer rewrites its file losslessly).
   */
  write(out: string, tensors: readonly OutputTensor[], source: StateDict): Promise<WriteReport>;
}

/** ONNX output keeps the source model and removes the weights not written (they become inputs). */
const onnxWriter: FormatWriter = {
  format: 'onnx',
  extensions: ['.onnx'],
  async write(out, tensors, source) {
    if (source.format !== 'onnx') {
      throw usageError(`writing ONNX needs an ONNX model to put the weights in; '${source.path}' is ${source.format}`);
    }
    const kept = new Set(tensors.map((t) => t.tensor));
    const renames = new Map(tensors.filter((t) => t.name !== t.tensor.source).map((t) => [t.tensor.source, t.name]));
    const edits = new Map<TensorInfo, TensorEdit>(source.tensors.filter((t) => !kept.has(t)).map((t) => [t, { kind: 'remove' }]));
    const report = await rewriteOnnx(source.path, edits, out, { renames });
    const notes = report.newInputs.length
      ? [`${report.newInputs.length} removed weight(s) became graph inputs so the model stays valid: ${report.newInputs.join(', ')}`]
      : [];
    return { format: 'onnx', notes };
  },
};

export const WRITERS: readonly FormatWriter[] = [onnxWriter, numpyWriter, tfjsWriter, kerasWriter, safetensorsWriter, pytorchWriter, paddleWriter];

/** The writer for an output: `--to` if given, else the output's extension, else the input's format. */
export function chooseWriter(out: string, to: string | undefined, inputFormat: string): FormatWriter {
  const known = () => WRITERS.map((w) => w.format).join(', ');
  if (to) {
    const writer = WRITERS.find((w) => w.format === to);
    if (!writer) throw usageError(`--to ${to}: no writer for that format; writers: ${known()}`);
    return writer;
  }
  const ext = path.extname(out).toLowerCase();
  const byExtension = WRITERS.find((w) => w.extensions.includes(ext));
  if (byExtension) return byExtension;
  const byInput = WRITERS.find((w) => w.format === inputFormat);
  if (byInput) return byInput;
  throw usageError(`no writer for ${inputFormat} output yet; choose one with --to (${known()})`);
}
