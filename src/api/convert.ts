import { invalidInput, usageError } from '../core/errors.js';
import { dtypeBits, sameShape } from '../core/dtype.js';
import { transposeBytes } from '../core/decode.js';
import type { StateDict, TensorInfo } from '../core/statedict.js';
import { alignTensors, type Alignment } from '../ops/align.js';
import { checkWriteOptions, chooseWriter, dtypeOptions, externalDataOptions, type QuantizationReport } from '../formats/writers.js';
import type { RewriteOptions, TensorEdit } from '../formats/onnx/write.js';
import { rewriteOnnxWithDtype, type DtypeReport } from '../formats/onnx/cast.js';
import type { DtypeOptions } from '../ops/cast.js';
import { withModel, write, type ModelInput, type WriteSettings } from './common.js';

export interface ConvertOptions {
  /** Output format (default: from the output's extension). */
  format?: string;
  /** An ONNX model whose initializers are replaced by the matching input tensors (layout transposes applied). */
  graph?: string;
  /** Dtypes, quantization, shards, external data of the output. */
  writeOptions?: WriteSettings;
  /**
   * Called with the opened input just before it is written out (to watch its `bytesRead`, as the
   * CLI's progress bar does); the function it returns is called when the write ends.
   */
  onRead?: (dict: StateDict) => () => void;
}

/** What `ckpt convert --json` prints for a conversion into another format. */
export interface ConvertResult {
  input: string;
  output: string;
  from: string;
  to: string;
  tensors: number;
  notes: string[];
  /** ONNX output under `--dtype`: the float tensors cast and those kept, with why. */
  dtypes?: DtypeReport;
  /** GGUF `--quantize`: which tensors became which block type, and which selected ones stayed float and why. */
  quantization?: QuantizationReport;
}

/** What `ckpt convert --graph --json` prints: the weights put into an existing ONNX model. */
export interface GraphConvertResult {
  input: string;
  graph: string;
  output: string;
  replaced: { target: string; source: string; note: string }[];
  keptFromGraph: string[];
  unusedFromInput: string[];
  ambiguous: Alignment['ambiguous'];
  notes: string[];
  dtypes?: DtypeReport;
}

/** Writes the checkpoint in another format, or (with `graph`) puts its weights into an existing ONNX model. */
export async function convert(model: ModelInput, output: string, options: ConvertOptions & { graph: string }): Promise<GraphConvertResult>;
export async function convert(model: ModelInput, output: string, options?: ConvertOptions): Promise<ConvertResult>;
export async function convert(model: ModelInput, output: string, options: ConvertOptions = {}): Promise<ConvertResult | GraphConvertResult> {
  const input = typeof model === 'string' ? model : model.path;
  const writeOptions = options.writeOptions ?? {};
  if (options.graph) {
    checkWriteOptions(chooseWriter(output, 'onnx', undefined), writeOptions);
    return convertIntoOnnx(model, options.graph, output, { ...externalDataOptions(writeOptions), ...dtypeOptions(writeOptions) });
  }
  return withModel(model, {}, async (dict) => {
    const writer = chooseWriter(output, options.format, undefined);
    if (writer.format === 'onnx' && dict.format !== 'onnx') {
      throw usageError('converting to ONNX needs --graph MODEL.onnx: the model whose weights are replaced');
    }
    const done = options.onRead?.(dict);
    const report = await write(dict, output, writer.format, dict.tensors, writeOptions).finally(() => done?.());
    return {
      input, output, from: dict.format, to: report.format, tensors: report.written ?? dict.tensors.length, notes: report.notes,
      ...(report.dtypes ? { dtypes: report.dtypes } : {}),
      ...(report.quantization ? { quantization: report.quantization } : {}),
    };
  });
}

/**
 * Puts the weights of `model` into the ONNX model `graph`, writing `output`: tensors are aligned
 * as `diff` aligns them, layout transposes (Keras [in,out] → ONNX [out,in], HWIO → OIHW) are
 * applied, and graph weights with no counterpart keep their values. Dtypes must agree; `--dtype`
 * then applies to the result as to any ONNX output.
 */
export async function convertIntoOnnx(model: ModelInput, graph: string, output: string, rewriteOptions: RewriteOptions & DtypeOptions = {}): Promise<GraphConvertResult> {
  const input = typeof model === 'string' ? model : model.path;
  return withModel(model, {}, (source) => withModel(graph, {}, async (target) => {
    if (target.format !== 'onnx') throw usageError(`--graph ${graph}: expected an ONNX model, found ${target.format}`);
    const alignment = alignTensors(source.tensors, target.tensors);
    const edits = new Map<TensorInfo, TensorEdit>();
    const rows: { target: string; source: string; note: string }[] = [];
    for (const pair of alignment.pairs) {
      const { a, b, permutation } = pair;
      if (!sameShape(a.shape, b.shape) && !permutation) continue;
      if (a.dtype !== b.dtype) throw invalidInput(input, a.source, `dtype ${a.dtype} does not match ${b.dtype} of '${b.source}' in ${graph}`);
      const width = dtypeBits(a.dtype) / 8;
      edits.set(b, {
        kind: 'replace', dtype: b.dtype, shape: b.shape,
        read: async () => (permutation ? transposeBytes(await a.read(), a.shape, permutation, width) : a.read()),
      });
      rows.push({ target: b.name, source: a.name, note: permutation ? `transposed (${permutation.join(',')})` : '' });
    }
    if (edits.size === 0) throw invalidInput(input, undefined, `no tensor matches a weight of ${graph}`);
    const kept = target.tensors.filter((t) => !edits.has(t)).map((t) => t.name);
    const { notes, dtypes } = await rewriteOnnxWithDtype(target, target.tensors, edits, output, rewriteOptions);
    const unused = source.tensors.filter((t) => !rows.some((r) => r.source === t.name)).map((t) => t.name);
    return { input, graph, output, replaced: rows, keptFromGraph: kept, unusedFromInput: unused, ambiguous: alignment.ambiguous, notes, ...(dtypes ? { dtypes } : {}) };
  }));
}
