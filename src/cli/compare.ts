import { ExitCode, usageError } from '../core/errors.js';
import { compare, describeClassMap, parseClassCounts, type ClassMap, type CompareResult, type OutputComparison } from '../runtime/compare.js';
import { parseProvider, setOrtVerbose } from '../runtime/session.js';
import { classMapOfPlan, readPlan } from '../api/plan.js';
import { formatShape, newTable } from './format.js';
import { writeReport } from '../report/index.js';

export interface CompareCommandOptions {
  atol?: string;
  rtol?: string;
  input?: string[];
  shape?: string[];
  seed?: string;
  classMap?: string;
  bisect?: boolean;
  bisectBatch?: string;
  ep?: string;
  verbose?: boolean;
  json?: boolean;
  html?: string;
}

/** `ckpt compare A.onnx B.onnx`: exit 0 when every output is equal within the tolerance, 1 otherwise. */
export async function compareCommand(a: string, b: string, options: CompareCommandOptions): Promise<number> {
  setOrtVerbose(options.verbose === true);
  const result = await compare(a, b, {
    atol: optionalNumber('--atol', options.atol),
    rtol: optionalNumber('--rtol', options.rtol),
    input: options.input,
    shape: options.shape,
    seed: optionalNumber('--seed', options.seed),
    classMap: options.classMap === undefined ? undefined : parseClassMap(options.classMap),
    bisect: options.bisect === true,
    bisectBatch: optionalNumber('--bisect-batch', options.bisectBatch),
    provider: parseProvider(options.ep),
  });
  if (options.html) await writeReport(options.html, { kind: 'compare', title: `${a} vs ${b}`, data: result });
  process.stdout.write(options.json ? `${JSON.stringify(result, null, 2)}\n` : renderComparison(result));
  return result.equal ? ExitCode.ok : ExitCode.differs;
}

export function optionalNumber(option: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const value = Number(text);
  if (text.trim() === '' || !Number.isFinite(value)) throw usageError(`${option} must be a number, got '${text}'`);
  return value;
}

/** `90:92`, or a plan.json whose expansions say which values of a grown head are the old classes. */
export function parseClassMap(text: string): ClassMap {
  if (!text.endsWith('.json')) return parseClassCounts(text);
  return classMapOfPlan(readPlan(text));
}

export function renderComparison(r: CompareResult, title = `compare: ${r.a} vs ${r.b}`): string {
  const differing = r.outputs.filter((o) => !o.equal).length;
  const verdict = r.equal ? 'equal' : `different (${differing} of ${r.outputs.length} outputs)`;
  const lines = [`${title}: ${verdict} — within |A−B| ≤ ${number(r.atol)} + ${number(r.rtol)}·|B|, ran on ${r.provider}`];
  if (r.classMap) lines.push(`class map: ${describeClassMap(r.classMap)}; grown outputs compared on the old classes only`);
  const inputs = r.inputs.map((i) => `${i.name} ${i.dtype} ${formatShape(i.shape)}${i.from === 'generated' ? '' : ` (${i.from === 'file' ? 'from file' : 'given'})`}`);
  lines.push(`inputs: ${inputs.join('; ')}`);
  lines.push(outputTable(r.outputs));
  if (r.bisect) lines.push(renderBisect(r));
  return `${lines.join('\n')}\n`;
}

function outputTable(outputs: readonly OutputComparison[]): string {
  const table = newTable(['output', 'dtype', 'shape A', 'shape B', 'compared', 'max |Δ|', 'mean |Δ|', 'cosine', 'verdict']);
  for (const o of outputs) {
    const numbers = o.problem ? ['', '', '', ''] : [String(o.compared), number(o.maxAbs), number(o.meanAbs), o.cosine.toFixed(6)];
    const verdict = o.problem ?? (o.equal ? 'equal' : `DIFFERENT (${o.outside} outside)`);
    table.push([o.name, o.dtype, formatShape(o.shapeA), formatShape(o.shapeB), ...numbers, verdict]);
  }
  return table.toString();
}

function renderBisect(r: CompareResult): string {
  const b = r.bisect!;
  if (r.equal) return 'bisect: the outputs are equal; nothing to bisect';
  const runs = `${b.runs} run(s) of each model, ${b.batch} intermediate outputs at a time, ${b.nodes} nodes`;
  const first = b.firstDivergent;
  if (!first) return `bisect: no intermediate output diverges (${runs}); only the graph outputs differ`;
  const o = first.output;
  const how = o.problem ?? `max |Δ| ${number(o.maxAbs)}, mean |Δ| ${number(o.meanAbs)}, cosine ${o.cosine.toFixed(6)}`;
  return `bisect: first divergent node: #${first.index} ${first.opType} '${first.name}', output '${o.name}' (${how}) — ${runs}`;
}

/** 0 as 0; tolerances and differences in three significant digits (1e-5, 0.842, 3.20e-7). */
function number(value: number): string {
  if (value === 0) return '0';
  return value < 1e-3 ? value.toExponential(2).replace(/\.?0+e/, 'e') : value.toPrecision(3);
}
