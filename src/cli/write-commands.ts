import { open } from '../open.js';
import { CkptError, ExitCode, invalidInput, usageError } from '../core/errors.js';
import { dtypeBits, sameShape } from '../core/dtype.js';
import { transposeBytes } from '../core/decode.js';
import type { TensorInfo } from '../core/statedict.js';
import { parseRenameRule, renameCounting, type RenameOptions } from '../ops/rename.js';
import { alignTensors } from '../ops/align.js';
import { checkWriteOptions, chooseWriter, externalDataOptions, writeWithOptions } from '../formats/writers.js';
import { writeOptionsFrom, type WriteCommandOptions } from './write-options.js';
import { isStandardOutput } from '../core/atomic.js';
import { rewriteOnnx, type RewriteOptions, type TensorEdit } from '../formats/onnx/write.js';
import { formatInt, newTable } from './format.js';
import { readProgress } from './progress.js';

export interface RenameCommandOptions extends WriteCommandOptions {
  rename?: string[];
  stripPrefix?: string[];
  addPrefix?: string;
  output?: string;
  to?: string;
  strict?: boolean;
  dryRun?: boolean;
  json?: boolean;
}

/**
 * `ckpt rename IN -o OUT`: rules apply to the canonical names, as strip and filter match them.
 * Written in the input's format, a renamed tensor keeps what its file name has around the
 * canonical name (a training checkpoint's `state_dict/module.`); in another format it is written
 * under its new canonical name.
 */
export async function renameCommand(input: string, options: RenameCommandOptions): Promise<number> {
  if (!options.rename?.length && !options.stripPrefix?.length && !options.addPrefix) {
    throw usageError('rename needs --rename FROM=>TO, --strip-prefix or --add-prefix');
  }
  if (!options.dryRun && !options.output) throw usageError('rename needs -o OUT (or --dry-run)');
  const writeOptions = writeOptionsFrom(options);
  const dict = await open(input);
  try {
    const writer = options.dryRun && !options.output ? undefined : chooseWriter(options.output!, options.to, dict.format);
    const sameFormat = !writer || writer.format === dict.format;
    const ruleOptions = { rules: options.rename, stripPrefixes: options.stripPrefix, addPrefix: options.addPrefix };
    const { renamings, rules } = renameCounting(dict.tensors.map((t) => t.name), ruleOptions);
    const unmatched = rules.filter((r) => r.matched === 0);
    if (unmatched.length) {
      // A rule written for the file's own names (`module.` under `state_dict/`) is told why it matched nothing.
      const inFile = rulesOnFileNames(dict.tensors.map((t) => t.source), ruleOptions);
      for (const r of unmatched) {
        const why = inFile.get(r.rule) ? `: it matches ${inFile.get(r.rule)} of the file's own names, in a part the canonical names leave out` : '';
        process.stderr.write(`ckpt: warning: ${r.rule} matched no name in ${input}; rules apply to the canonical names \`ckpt inspect\` shows${why}\n`);
      }
    }
    if (unmatched.length && options.strict) {
      throw new CkptError(ExitCode.differs, input, undefined, `--strict: ${unmatched.length} rule(s) matched nothing: ${unmatched.map((r) => r.rule).join(', ')}`);
    }
    const written = dict.tensors.map((t, i) => (sameFormat ? inFileSpelling(t, renamings[i]!.to) : renamings[i]!.to));
    let notes: string[] = [];
    if (writer && !options.dryRun) {
      notes = (await writeWithOptions(writer, options.output!, dict.tensors.map((t, i) => ({ name: written[i]!, tensor: t })), dict, writeOptions)).notes;
    }
    const changed = renamings.map((r, i) => ({ ...r, written: written[i]! })).filter((r) => r.from !== r.to);
    if (options.json) {
      process.stdout.write(`${JSON.stringify({ input, output: options.dryRun ? null : options.output, rules, renamed: changed, unchanged: renamings.length - changed.length, notes }, null, 2)}\n`);
    } else {
      const lines = [`rename: ${input}: ${options.dryRun ? 'would rename' : `wrote ${options.output}:`} ${formatInt(changed.length)} of ${formatInt(renamings.length)} tensors renamed`];
      if (changed.length) {
        const showWritten = changed.some((r) => r.written !== r.to);
        const table = newTable(['old name', 'new name', ...(showWritten ? ['in the file'] : [])]);
        table.push(...changed.map((r) => [r.from, r.to, ...(showWritten ? [r.written] : [])]));
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

/** How many file names hold what each rule looks for (a prefix anywhere, a pattern's match). */
function rulesOnFileNames(sources: readonly string[], options: RenameOptions): Map<string, number> {
  const hits = new Map<string, number>();
  for (const prefix of options.stripPrefixes ?? []) hits.set(`--strip-prefix ${prefix}`, sources.filter((s) => s.includes(prefix)).length);
  for (const rule of options.rules ?? []) {
    const { pattern } = parseRenameRule(rule);
    hits.set(`--rename ${rule}`, sources.filter((s) => pattern.test(s)).length);
  }
  return hits;
}

/**
 * The file name for a tensor's new canonical name, in its own format: unchanged when the rules
 * left it alone; else what surrounds the canonical name in the file name is kept
 * (`state_dict/module.` + new name); a file name spelled otherwise gets the canonical one.
 */
function inFileSpelling(t: TensorInfo, renamed: string): string {
  if (renamed === t.name) return t.source;
  return t.source.endsWith(t.name) ? t.source.slice(0, t.source.length - t.name.length) + renamed : renamed;
}

export interface ConvertCommandOptions extends WriteCommandOptions {
  to?: string;
  graph?: string;
  json?: boolean;
}

/** `ckpt convert IN OUT`: into another format, or into an existing ONNX model's weights (--graph). */
export async function convertCommand(input: string, output: string, options: ConvertCommandOptions): Promise<number> {
  const writeOptions = writeOptionsFrom(options);
  const dict = await open(input);
  try {
    if (options.graph) {
      checkWriteOptions(chooseWriter(output, 'onnx', undefined), writeOptions);
      return await convertIntoOnnx(dict.path, options.graph, output, options.json === true, externalDataOptions(writeOptions));
    }
    const writer = chooseWriter(output, options.to, undefined);
    if (writer.format === 'onnx' && dict.format !== 'onnx') {
      throw usageError('converting to ONNX needs --graph MODEL.onnx: the model whose weights are replaced');
    }
    const sameFormat = writer.format === dict.format;
    const bar = readProgress('converting', dict);
    const report = await writeWithOptions(writer, output, dict.tensors.map((t) => ({ name: sameFormat ? t.source : t.name, tensor: t })), dict, writeOptions).finally(() => bar.done());
    const written = report.written ?? dict.tensors.length;
    const summary = { input, output, from: dict.format, to: report.format, tensors: written, notes: report.notes };
    // Written to standard output (`/dev/stdout`), the model keeps it to itself: the report goes to stderr.
    const reportTo = isStandardOutput(output) ? process.stderr : process.stdout;
    reportTo.write(options.json ? `${JSON.stringify(summary, null, 2)}\n` : `convert: ${input} (${dict.format}) → ${output} (${report.format}): ${formatInt(written)} tensors\n${report.notes.map((n) => `note: ${n}\n`).join('')}`);
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
async function convertIntoOnnx(input: string, graph: string, output: string, json: boolean, writeOptions: RewriteOptions): Promise<number> {
  const source = await open(input);
  const target = await open(graph);
  try {
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
    const report = await rewriteOnnx(target.path, edits, output, writeOptions);
    const kept = target.tensors.filter((t) => !edits.has(t)).map((t) => t.name);
    const unused = source.tensors.filter((t) => !rows.some((r) => r.source === t.name)).map((t) => t.name);
    const notes = report.externalData ? [report.externalData] : [];
    if (json) process.stdout.write(`${JSON.stringify({ input, graph, output, replaced: rows, keptFromGraph: kept, unusedFromInput: unused, ambiguous: alignment.ambiguous, notes }, null, 2)}\n`);
    else {
      const table = newTable(['ONNX weight', 'from', 'note']);
      table.push(...rows.map((r) => [r.target, r.source, r.note]));
      const lines = [`convert: ${input} → ${output} (weights of ${graph}): replaced ${rows.length} of ${target.tensors.length}`, table.toString()];
      if (kept.length) lines.push(`kept from the graph (no match): ${kept.join(', ')}`);
      if (unused.length) lines.push(`unused from the input: ${unused.join(', ')}`);
      lines.push(...notes.map((n) => `note: ${n}`));
      process.stdout.write(`${lines.join('\n')}\n`);
    }
    return ExitCode.ok;
  } finally {
    await source.close();
    await target.close();
  }
}

