import { open } from '../open.js';
import { ExitCode, invalidInput, usageError } from '../core/errors.js';
import { dtypeBits } from '../core/dtype.js';
import { transposeBytes } from '../core/decode.js';
import type { TensorInfo } from '../core/statedict.js';
import { renameAll } from '../ops/rename.js';
import { alignTensors } from '../ops/align.js';
import { chooseWriter } from '../formats/writers.js';
import { rewriteOnnx, type TensorEdit } from '../formats/onnx/write.js';
import { formatInt, newTable } from './format.js';

export interface RenameCommandOptions {
  rename?: string[];
  stripPrefix?: string[];
  addPrefix?: string;
  output?: string;
  to?: string;
  dryRun?: boolean;
  json?: boolean;
}

/**
 * `ckpt rename IN -o OUT`: rules apply to the names as they will be written — the file's own
 * names when the output format is the input's, canonical names when converting.
 */
export async function renameCommand(input: string, options: RenameCommandOptions): Promise<number> {
  if (!options.rename?.length && !options.stripPrefix?.length && !options.addPrefix) {
    throw usageError('rename needs --rename FROM=>TO, --strip-prefix or --add-prefix');
  }
  if (!options.dryRun && !options.output) throw usageError('rename needs -o OUT (or --dry-run)');
  const dict = await open(input);
  try {
    const writer = options.dryRun && !options.output ? undefined : chooseWriter(options.output!, options.to, dict.format);
    const sameFormat = !writer || writer.format === dict.format;
    const written = dict.tensors.map((t) => (sameFormat ? t.source : t.name));
    const renamings = renameAll(written, { rules: options.rename, stripPrefixes: options.stripPrefix, addPrefix: options.addPrefix });
    let notes: string[] = [];
    if (writer && !options.dryRun) {
      notes = (await writer.write(options.output!, dict.tensors.map((t, i) => ({ name: renamings[i]!.to, tensor: t })), dict)).notes;
    }
    const changed = renamings.filter((r) => r.from !== r.to);
    if (options.json) {
      process.stdout.write(`${JSON.stringify({ input, output: options.dryRun ? null : options.output, renamed: changed, unchanged: renamings.length - changed.length, notes }, null, 2)}\n`);
    } else {
      const lines = [`rename: ${input}: ${options.dryRun ? 'would rename' : `wrote ${options.output}:`} ${formatInt(changed.length)} of ${formatInt(renamings.length)} tensors renamed`];
      if (changed.length) {
        const table = newTable(['old name', 'new name']);
        table.push(...changed.map((r) => [r.from, r.to]));
        lines.push(table.toString());
      }
      lines.push(...notes.map((n) => `note: ${n}`));
      process.stdout.write(`${lines.join('\n')}\n`);
    }
    return ExitCode.ok;
  } finally {
    await dict.close();
  }
}

export interface ConvertCommandOptions {
  to?: string;
  graph?: string;
  json?: boolean;
}

/** `ckpt convert IN OUT`: into another format, or into an existing ONNX model's weights (--graph). */
export async function convertCommand(input: string, output: string, options: ConvertCommandOptions): Promise<number> {
  const dict = await open(input);
  try {
    if (options.graph) return await convertIntoOnnx(dict.path, options.graph, output, options.json === true);
    const writer = chooseWriter(output, options.to, undefined);
    if (writer.format === 'onnx' && dict.format !== 'onnx') {
      throw usageError('converting to ONNX needs --graph MODEL.onnx: the model whose weights are replaced');
    }
    const sameFormat = writer.format === dict.format;
    const report = await writer.write(output, dict.tensors.map((t) => ({ name: sameFormat ? t.source : t.name, tensor: t })), dict);
    const written = report.written ?? dict.tensors.length;
    const summary = { input, output, from: dict.format, to: report.format, tensors: written, notes: report.notes };
    process.stdout.write(options.json ? `${JSON.stringify(summary, null, 2)}\n` : `convert: ${input} (${dict.format}) → ${output} (${report.format}): ${formatInt(written)} tensors\n${report.notes.map((n) => `note: ${n}\n`).join('')}`);
    return ExitCode.ok;
  } finally {
    await dict.close();
  }
}

/**
 * Puts the weights of `input` into the ONNX model `graph`, writing `output`: tensors are aligned
 * as `diff` aligns them, layout transposes (Keras [in,out] → ONNX [out,in], HWIO → OIHW) are
 * applied, and graph weights with no counterpart keep their values. Dtypes must agree.
 */
async function convertIntoOnnx(input: string, graph: string, output: string, json: boolean): Promise<number> {
  const source = await open(input);
  const target = await open(graph);
  try {
    if (target.format !== 'onnx') throw usageError(`--graph ${graph}: expected an ONNX model, found ${target.format}`);
    const alignment = alignTensors(source.tensors, target.tensors);
    const edits = new Map<TensorInfo, TensorEdit>();
    const rows: { target: string; source: string; note: string }[] = [];
    for (const pair of alignment.pairs) {
      const { a, b, permutation } = pair;
      const sameShape = a.shape.length === b.shape.length && a.shape.every((d, i) => d === b.shape[i]);
      if (!sameShape && !permutation) continue;
      if (a.dtype !== b.dtype) throw invalidInput(input, a.source, `dtype ${a.dtype} does not match ${b.dtype} of '${b.source}' in ${graph}`);
      const width = dtypeBits(a.dtype) / 8;
      edits.set(b, {
        kind: 'replace', dtype: b.dtype, shape: b.shape,
        read: async () => (permutation ? transposeBytes(await a.read(), a.shape, permutation, width) : a.read()),
      });
      rows.push({ target: b.name, source: a.name, note: permutation ? `transposed (${permutation.join(',')})` : '' });
    }
    if (edits.size === 0) throw invalidInput(input, undefined, `no tensor matches a weight of ${graph}`);
    await rewriteOnnx(target.path, edits, output);
    const kept = target.tensors.filter((t) => !edits.has(t)).map((t) => t.name);
    const unused = source.tensors.filter((t) => !rows.some((r) => r.source === t.name)).map((t) => t.name);
    if (json) process.stdout.write(`${JSON.stringify({ input, graph, output, replaced: rows, keptFromGraph: kept, unusedFromInput: unused, ambiguous: alignment.ambiguous }, null, 2)}\n`);
    else {
      const table = newTable(['ONNX weight', 'from', 'note']);
      table.push(...rows.map((r) => [r.target, r.source, r.note]));
      const lines = [`convert: ${input} → ${output} (weights of ${graph}): replaced ${rows.length} of ${target.tensors.length}`, table.toString()];
      if (kept.length) lines.push(`kept from the graph (no match): ${kept.join(', ')}`);
      if (unused.length) lines.push(`unused from the input: ${unused.join(', ')}`);
      process.stdout.write(`${lines.join('\n')}\n`);
    }
    return ExitCode.ok;
  } finally {
    await source.close();
    await target.close();
  }
}

