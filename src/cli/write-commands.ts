import { open } from '../open.js';
import { CkptError, ExitCode, usageError } from '../core/errors.js';
import { renameCounting } from '../ops/rename.js';
import { chooseWriter } from '../formats/writers.js';
import { isStandardOutput } from '../core/atomic.js';
import { inFileSpelling, rulesOnFileNames } from '../api/rename.js';
import { convertIntoOnnx } from '../api/convert.js';
import { formatInt, newTable } from './format.js';

export interface RenameCommandOptions {
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
      notes = (await writer.write(options.output!, dict.tensors.map((t, i) => ({ name: written[i]!, tensor: t })), dict)).notes;
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
    // Written to standard output (`/dev/stdout`), the model keeps it to itself: the report goes to stderr.
    const reportTo = isStandardOutput(output) ? process.stderr : process.stdout;
    reportTo.write(options.json ? `${JSON.stringify(summary, null, 2)}\n` : `convert: ${input} (${dict.format}) → ${output} (${report.format}): ${formatInt(written)} tensors\n${report.notes.map((n) => `note: ${n}\n`).join('')}`);
    return ExitCode.ok;
  } finally {
    await dict.close();
  }
}

