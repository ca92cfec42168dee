import { CkptError, ExitCode, usageError } from '../core/errors.js';
import type { TensorInfo } from '../core/statedict.js';
import { parseRenameRule, renameCounting, type RenameOptions as RuleOptions } from '../ops/rename.js';
import { chooseWriter, writeWithOptions } from '../formats/writers.js';
import { withModel, type ModelInput, type Warn, type WriteSettings } from './common.js';

export interface RenameOptions {
  /** 'FROM=>TO' rules: FROM a regular expression, TO may use $1 groups; applied in order. */
  rules?: readonly string[];
  /** Prefixes removed where present (e.g. `module.`). */
  stripPrefixes?: readonly string[];
  /** Prepended to every name. */
  addPrefix?: string;
  /** Output file (written atomically); needed unless dryRun. */
  output?: string;
  /** Output format (default: from the output's extension, else the input's). */
  format?: string;
  /** A rule that renames nothing is an error, not a warning. */
  strict?: boolean;
  dryRun?: boolean;
  /** Dtypes, quantization, shards, external data of the output. */
  writeOptions?: WriteSettings;
  warn?: Warn;
}

/** What `ckpt rename --json` prints. */
export interface RenameResult {
  input: string;
  output: string | null;
  rules: { rule: string; matched: number }[];
  /** Renamed tensors: canonical names before and after, and the name written in the file. */
  renamed: { from: string; to: string; written: string }[];
  unchanged: number;
  notes: string[];
}

/**
 * Renames tensors: rules apply to the canonical names, as strip and filter match them. Written in
 * the input's format, a renamed tensor keeps what its file name has around the canonical name (a
 * training checkpoint's `state_dict/module.`); in another format it is written under its new
 * canonical name. Two tensors ending with one name is an error.
 */
export async function rename(model: ModelInput, options: RenameOptions): Promise<RenameResult> {
  if (!options.rules?.length && !options.stripPrefixes?.length && !options.addPrefix) {
    throw usageError('rename needs --rename FROM=>TO, --strip-prefix or --add-prefix');
  }
  if (!options.dryRun && !options.output) throw usageError('rename needs -o OUT (or --dry-run)');
  const input = typeof model === 'string' ? model : model.path;
  return withModel(model, {}, async (dict) => {
    const writer = options.dryRun && !options.output ? undefined : chooseWriter(options.output!, options.format, dict.format);
    const sameFormat = !writer || writer.format === dict.format;
    const ruleOptions: RuleOptions = { rules: options.rules, stripPrefixes: options.stripPrefixes, addPrefix: options.addPrefix };
    const { renamings, rules } = renameCounting(dict.tensors.map((t) => t.name), ruleOptions);
    const unmatched = rules.filter((r) => r.matched === 0);
    if (unmatched.length) {
      // A rule written for the file's own names (`module.` under `state_dict/`) is told why it matched nothing.
      const inFile = rulesOnFileNames(dict.tensors.map((t) => t.source), ruleOptions);
      for (const r of unmatched) {
        const why = inFile.get(r.rule) ? `: it matches ${inFile.get(r.rule)} of the file's own names, in a part the canonical names leave out` : '';
        options.warn?.(`${r.rule} matched no name in ${input}; rules apply to the canonical names \`ckpt inspect\` shows${why}`);
      }
    }
    if (unmatched.length && options.strict) {
      throw new CkptError(ExitCode.differs, input, undefined, `--strict: ${unmatched.length} rule(s) matched nothing: ${unmatched.map((r) => r.rule).join(', ')}`);
    }
    const written = dict.tensors.map((t, i) => (sameFormat ? inFileSpelling(t, renamings[i]!.to) : renamings[i]!.to));
    let notes: string[] = [];
    if (writer && !options.dryRun) {
      notes = (await writeWithOptions(writer, options.output!, dict.tensors.map((t, i) => ({ name: written[i]!, tensor: t })), dict, options.writeOptions)).notes;
    }
    const renamed = renamings.map((r, i) => ({ ...r, written: written[i]! })).filter((r) => r.from !== r.to);
    return { input, output: options.dryRun ? null : options.output!, rules, renamed, unchanged: renamings.length - renamed.length, notes };
  });
}

/** How many file names hold what each rule looks for (a prefix anywhere, a pattern's match). */
export function rulesOnFileNames(sources: readonly string[], options: RuleOptions): Map<string, number> {
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
export function inFileSpelling(t: TensorInfo, renamed: string): string {
  if (renamed === t.name) return t.source;
  return t.source.endsWith(t.name) ? t.source.slice(0, t.source.length - t.name.length) + renamed : renamed;
}
