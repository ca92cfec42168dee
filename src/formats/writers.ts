import * as path from 'node:path';
import { usageError } from '../core/errors.js';
import { hiddenTensorCount, type StateDict, type TensorInfo } from '../core/statedict.js';
import { rewriteOnnx, type TensorEdit } from './onnx/write.js';
import { numpyWriter } from './numpy/write.js';
import { tfjsWriter } from './tfjs/write.js';
import { kerasWriter } from './keras/write.js';
import { safetensorsWriter } from './safetensors/write.js';
import { pytorchWriter } from './pytorch/write.js';
import { paddleWriter } from './paddle/write.js';
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
}

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
  write(out: string, tensors: readonly OutputTensor[], source: StateDict): Promise<WriteReport>;
}

/** ONNX output keeps the source model and removes the weights not written (they become inputs). */
const onnxWriter: FormatWriter = {
  format: 'onnx',
  extensions: ['.onnx'],
  holdsStrings: true,
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

export const WRITERS: readonly FormatWriter[] = [onnxWriter, numpyWriter, tfjsWriter, kerasWriter, safetensorsWriter, pytorchWriter, paddleWriter, darknetWriter];

/**
 * The writer for an output: `--to` if given, else the output's extension, else (a name without
 * one, such as a TF.js folder) the input's format when `inputFormat` is given. An extension no
 * writer knows is refused rather than written in some other format under that name.
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
    async write(out, tensors, source) {
      const strings = writer.holdsStrings ? [] : tensors.filter((t) => t.tensor.dtype === 'string');
      const written = strings.length ? tensors.filter((t) => t.tensor.dtype !== 'string') : tensors;
      const report = await writer.write(out, written, source);
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
