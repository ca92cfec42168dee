import { ExitCode } from '../core/errors.js';
import { isStandardOutput } from '../core/atomic.js';
import { rename, type RenameResult } from '../api/rename.js';
import { convert, type ConvertResult, type GraphConvertResult } from '../api/convert.js';
import { formatInt, newTable, warnOnStderr } from './format.js';
import { readProgress } from './progress.js';
import type { WriteCommandOptions } from './write-options.js';
import { writeOptionsFrom } from './write-settings.js';

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

/** `ckpt rename IN -o OUT`: rules apply to the canonical names, as strip and filter match them. */
export async function renameCommand(input: string, options: RenameCommandOptions): Promise<number> {
  const result = await rename(input, {
    ...options, rules: options.rename, stripPrefixes: options.stripPrefix, format: options.to, writeOptions: writeOptionsFrom(options),
    warn: warnOnStderr,
  });
  process.stdout.write(options.json ? `${JSON.stringify(result, null, 2)}\n` : renderRename(result));
  return ExitCode.ok;
}

function renderRename(r: RenameResult): string {
  const lines = [`rename: ${r.input}: ${r.output === null ? 'would rename' : `wrote ${r.output}:`} ${formatInt(r.renamed.length)} of ${formatInt(r.renamed.length + r.unchanged)} tensors renamed`];
  if (r.renamed.length) {
    const showWritten = r.renamed.some((x) => x.written !== x.to);
    const table = newTable(['old name', 'new name', ...(showWritten ? ['in the file'] : [])]);
    table.push(...r.renamed.map((x) => [x.from, x.to, ...(showWritten ? [x.written] : [])]));
    lines.push(table.toString());
  }
  lines.push(...r.notes.map((n) => `note: ${n}`));
  return `${lines.join('\n')}\n`;
}

export interface ConvertCommandOptions extends WriteCommandOptions {
  to?: string;
  graph?: string;
  json?: boolean;
}

/** `ckpt convert IN OUT`: into another format, or into an existing ONNX model's weights (--graph). */
export async function convertCommand(input: string, output: string, options: ConvertCommandOptions): Promise<number> {
  const writeOptions = writeOptionsFrom(options);
  if (options.graph) {
    const result = await convert(input, output, { graph: options.graph, writeOptions });
    process.stdout.write(options.json ? `${JSON.stringify(result, null, 2)}\n` : renderGraphConvert(result));
    return ExitCode.ok;
  }
  const result = await convert(input, output, {
    format: options.to, writeOptions,
    onRead: (dict) => {
      const bar = readProgress('converting', dict);
      return () => bar.done();
    },
  });
  // Written to standard output (`/dev/stdout`), the model keeps it to itself: the report goes to stderr.
  const reportTo = isStandardOutput(output) ? process.stderr : process.stdout;
  reportTo.write(options.json ? `${JSON.stringify(result, null, 2)}\n` : renderConvert(result));
  return ExitCode.ok;
}

function renderConvert(r: ConvertResult): string {
  return `convert: ${r.input} (${r.from}) → ${r.output} (${r.to}): ${formatInt(r.tensors)} tensors\n${r.notes.map((n) => `note: ${n}\n`).join('')}`;
}

function renderGraphConvert(r: GraphConvertResult): string {
  const table = newTable(['ONNX weight', 'from', 'note']);
  table.push(...r.replaced.map((x) => [x.target, x.source, x.note]));
  const lines = [`convert: ${r.input} → ${r.output} (weights of ${r.graph}): replaced ${r.replaced.length} of ${r.replaced.length + r.keptFromGraph.length}`, table.toString()];
  if (r.keptFromGraph.length) lines.push(`kept from the graph (no match): ${r.keptFromGraph.join(', ')}`);
  if (r.unusedFromInput.length) lines.push(`unused from the input: ${r.unusedFromInput.join(', ')}`);
  lines.push(...r.notes.map((n) => `note: ${n}`));
  return `${lines.join('\n')}\n`;
}
