import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ExitCode, invalidInput, usageError } from '../core/errors.js';
import { formatPercent } from '../core/percent.js';
import { firstLine, loadOrt, openSession, parseProvider } from '../runtime/session.js';
import { applyPlanFile, readPlan } from './plan.js';
import { newTable } from './format.js';

export interface CheckOptions {
  ep?: string;
  shape?: string[];
  minLoaded?: string;
  json?: boolean;
}

interface InputReport { name: string; dtype: string; shape: number[] }
interface OutputReport { name: string; dtype: string; shape: number[]; finite: boolean; nonFinite: number }

export interface CheckReport {
  model: string;
  provider: 'cpu' | 'cuda';
  inputs: InputReport[];
  outputs: OutputReport[];
  milliseconds: number;
  ok: boolean;
  plan?: { path: string; fractionLoaded: number; minLoaded: number; enough: boolean };
}

/** `--shape images=1x3x320x320` → name → dims. */
export function parseShapes(values: readonly string[] | undefined): Map<string, number[]> {
  const shapes = new Map<string, number[]>();
  for (const text of values ?? []) {
    const m = /^(.+)=(\d+(?:x\d+)*)$/.exec(text);
    if (!m) throw usageError(`--shape '${text}': expected NAME=DIMxDIMx…, e.g. images=1x3x320x320`);
    shapes.set(m[1]!, m[2]!.split('x').map(Number));
  }
  return shapes;
}

/**
 * The pre-flight: load the model in onnxruntime-node, run one forward pass on generated inputs,
 * report output shapes and whether every value is finite. Exit 0 when it runs with finite
 * outputs (and, for a plan, enough parameters loaded), 1 otherwise, 3 when it does not load/run.
 */
export async function checkCommand(target: string, options: CheckOptions): Promise<number> {
  const choice = parseProvider(options.ep);
  const shapes = parseShapes(options.shape);
  let model = target;
  let planInfo: CheckReport['plan'];
  let temp: string | undefined;
  if (isPlanFile(target)) {
    const plan = readPlan(target);
    const minLoaded = options.minLoaded === undefined ? 0.9 : Number(options.minLoaded);
    if (!(minLoaded >= 0 && minLoaded <= 1)) throw usageError(`--min-loaded must be between 0 and 1, got '${options.minLoaded}'`);
    planInfo = { path: target, fractionLoaded: plan.summary.fractionLoaded, minLoaded, enough: plan.summary.fractionLoaded >= minLoaded };
    if (plan.target.format !== 'onnx') throw usageError(`check runs ONNX models; the plan's target ${plan.target.path} is ${plan.target.format}`);
    temp = fs.mkdtempSync(path.join(os.tmpdir(), 'ckpt-check-'));
    model = path.join(temp, 'applied.onnx');
    await applyPlanFile(target, model);
  } else if (options.minLoaded !== undefined) {
    throw usageError('--min-loaded applies to a plan (ckpt check plan.json)');
  }
  try {
    const report = await runCheck(model, choice, shapes, target);
    if (planInfo) report.plan = planInfo;
    report.ok = report.ok && (planInfo?.enough ?? true);
    process.stdout.write(options.json ? `${JSON.stringify(report, null, 2)}\n` : renderCheck(report));
    return report.ok ? ExitCode.ok : ExitCode.differs;
  } finally {
    if (temp) fs.rmSync(temp, { recursive: true, force: true });
  }
}

function isPlanFile(file: string): boolean {
  if (!file.endsWith('.json')) return false;
  try {
    const head = fs.readFileSync(file, 'utf8').slice(0, 200);
    return head.includes('"ckpt-plan"');
  } catch {
    return false;
  }
}

export async function runCheck(model: string, choice: 'cpu' | 'cuda' | 'auto', shapes: Map<string, number[]>, label = model): Promise<CheckReport> {
  const ort = await loadOrt();
  const { session, provider } = await openSession(model, choice, label);
  try {
    const feeds: Record<string, InstanceType<typeof ort.Tensor>> = {};
    const inputs: InputReport[] = [];
    for (const meta of session.inputMetadata) {
      if (!meta.isTensor) throw invalidInput(label, `input '${meta.name}'`, 'only tensor inputs can be generated');
      const given = shapes.get(meta.name);
      const shape = given ?? meta.shape.map((d) => (typeof d === 'number' && d >= 0 ? d : 1));
      const unknown = meta.shape.some((d) => typeof d !== 'number' || d < 0);
      if (given && given.length !== meta.shape.length) {
        throw usageError(`--shape ${meta.name}: ${given.length} dims given, the model's input has ${meta.shape.length}`);
      }
      if (unknown && !given && shape.length > 2) {
        process.stderr.write(`ckpt: warning: input '${meta.name}' has dynamic dims [${meta.shape.join(', ')}]; using [${shape.join(', ')}] (set them with --shape ${meta.name}=${shape.join('x')})\n`);
      }
      feeds[meta.name] = generatedInput(ort, meta.type, shape);
      inputs.push({ name: meta.name, dtype: meta.type, shape });
    }
    const start = performance.now();
    let results: Record<string, InstanceType<typeof ort.Tensor>>;
    try {
      results = await session.run(feeds);
    } catch (err) {
      throw invalidInput(label, 'forward pass', `${firstLine(err)}${shapes.size ? '' : ' (dynamic dims? set input shapes with --shape NAME=1x3x320x320)'}`);
    }
    const milliseconds = performance.now() - start;
    const outputs = Object.entries(results).map(([name, tensor]): OutputReport => {
      const data = tensor.data;
      let nonFinite = 0;
      if (data instanceof Float32Array || data instanceof Float64Array) for (const v of data) if (!Number.isFinite(v)) nonFinite++;
      return { name, dtype: tensor.type, shape: [...tensor.dims], finite: nonFinite === 0, nonFinite };
    });
    return { model: label, provider, inputs, outputs, milliseconds, ok: outputs.every((o) => o.finite) };
  } finally {
    await session.release();
  }
}

/** Deterministic inputs: floats in [0, 1), integers 0, booleans false. */
function generatedInput(ort: Awaited<ReturnType<typeof loadOrt>>, type: string, shape: number[]) {
  const count = shape.reduce((n, d) => n * d, 1);
  switch (type) {
    case 'float32': return new ort.Tensor('float32', Float32Array.from({ length: count }, (_, i) => ((i * 2654435761) % 1000) / 1000), shape);
    case 'float64': return new ort.Tensor('float64', Float64Array.from({ length: count }, (_, i) => ((i * 2654435761) % 1000) / 1000), shape);
    case 'int64': return new ort.Tensor('int64', new BigInt64Array(count), shape);
    case 'int32': return new ort.Tensor('int32', new Int32Array(count), shape);
    case 'bool': return new ort.Tensor('bool', new Uint8Array(count), shape);
    case 'uint8': return new ort.Tensor('uint8', new Uint8Array(count), shape);
    case 'int8': return new ort.Tensor('int8', new Int8Array(count), shape);
    default: throw usageError(`cannot generate an input of type ${type}`);
  }
}

function renderCheck(r: CheckReport): string {
  const lines = [`check: ${r.model}: ${r.ok ? 'OK' : 'FAILED'} — ran on ${r.provider} in ${r.milliseconds.toFixed(1)} ms`];
  const inputs = newTable(['input', 'dtype', 'shape']);
  inputs.push(...r.inputs.map((i) => [i.name, i.dtype, `[${i.shape.join(', ')}]`]));
  const outputs = newTable(['output', 'dtype', 'shape', 'finite']);
  outputs.push(...r.outputs.map((o) => [o.name, o.dtype, `[${o.shape.join(', ')}]`, o.finite ? 'yes' : `NO (${o.nonFinite} non-finite)`]));
  lines.push(inputs.toString(), outputs.toString());
  if (r.plan) {
    lines.push(`plan ${r.plan.path}: ${formatPercent(r.plan.fractionLoaded)} of parameters loaded (minimum ${formatPercent(r.plan.minLoaded)})${r.plan.enough ? '' : ' — BELOW THE MINIMUM'}`);
  }
  return `${lines.join('\n')}\n`;
}
