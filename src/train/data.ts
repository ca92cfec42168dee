import * as fs from 'node:fs';
import * as zlib from 'node:zlib';
import { invalidInput, usageError, fromSystemError } from '../core/errors.js';
import { isNumeric, toFloat64 } from '../core/decode.js';
import { open } from '../open.js';
import type { TensorInfo } from '../core/statedict.js';

/** Examples for training: features row-major [count, ...featureShape] and integer labels or targets. */
export interface Dataset {
  readonly source: string;
  readonly count: number;
  readonly featureShape: number[];
  readonly x: Float32Array;
  /** Class indices (cross-entropy). */
  readonly labels?: Int32Array;
  /** Regression targets [count, outputs] (mse). */
  readonly targets?: Float32Array;
  readonly targetWidth?: number;
}

export interface DataOptions {
  /** A second file with the labels (.npy pairs). */
  labels?: string;
  /** CSV: the label column, by name or 0-based index (default: `label`, `target`, `y`, else the first). */
  labelColumn?: string;
  /** mse: labels are real-valued targets, not classes. */
  regression?: boolean;
}

/**
 * Loads `.npz` (arrays `x` and `y`), `.npy` pairs (`--labels y.npy`) — through ckpt's own
 * readers — or CSV (a label column plus feature columns; `.csv.gz` too). Values are checked
 * here, before any training: no NaN or infinity, labels whole numbers.
 */
export async function loadDataset(file: string, options: DataOptions = {}): Promise<Dataset> {
  const head = readHead(file);
  const gz = head[0] === 0x1f && head[1] === 0x8b;
  const text = gz || looksLikeText(head);
  const data = text ? loadCsv(file, gz, options) : await loadArrays(file, options);
  for (let i = 0; i < data.x.length; i++) {
    if (!Number.isFinite(data.x[i]!)) {
      const row = Math.floor(i / (data.x.length / data.count));
      throw invalidInput(file, `example ${row}`, `feature value ${data.x[i]} is not finite`);
    }
  }
  return data;
}

function readHead(file: string): Uint8Array {
  try {
    const fd = fs.openSync(file, 'r');
    const head = Buffer.alloc(512);
    const n = fs.readSync(fd, head, 0, 512, 0);
    fs.closeSync(fd);
    return head.subarray(0, n);
  } catch (err) {
    throw fromSystemError(file, undefined, err);
  }
}

function looksLikeText(head: Uint8Array): boolean {
  return head.length > 0 && head.every((b) => b === 9 || b === 10 || b === 13 || (b >= 32 && b < 127));
}

function loadCsv(file: string, gz: boolean, options: DataOptions): Dataset {
  let text: string;
  try {
    const raw = fs.readFileSync(file);
    text = (gz ? zlib.gunzipSync(raw) : raw).toString('utf8');
  } catch (err) {
    throw invalidInput(file, undefined, `cannot read as ${gz ? 'gzipped ' : ''}CSV: ${(err as Error).message}`);
  }
  const lines = text.split(/\r?\n/).filter((l) => l.trim() !== '');
  if (lines.length === 0) throw invalidInput(file, undefined, 'CSV has no rows');
  const split = (l: string) => l.split(',').map((c) => c.trim());
  const first = split(lines[0]!);
  const header = first.some((c) => c !== '' && Number.isNaN(Number(c))) ? first : undefined;
  const rows = (header ? lines.slice(1) : lines).map(split);
  const width = (header ?? first).length;
  let labelColumn = 0;
  if (options.labelColumn !== undefined) {
    const byName = header?.indexOf(options.labelColumn) ?? -1;
    labelColumn = byName >= 0 ? byName : Number(options.labelColumn);
    if (!Number.isInteger(labelColumn) || labelColumn < 0 || labelColumn >= width) {
      throw usageError(`--label-column ${options.labelColumn}: no such column in ${file} (${width} columns${header ? `: ${header.join(', ')}` : ''})`);
    }
  } else if (header) {
    const named = header.findIndex((h) => ['label', 'target', 'y', 'class'].includes(h.toLowerCase()));
    if (named >= 0) labelColumn = named;
  }
  const features = width - 1;
  const x = new Float32Array(rows.length * features);
  const y = new Float64Array(rows.length);
  rows.forEach((cells, r) => {
    const line = r + (header ? 2 : 1);
    if (cells.length !== width) throw invalidInput(file, `line ${line}`, `${cells.length} columns, expected ${width}`);
    let k = 0;
    cells.forEach((cell, c) => {
      const value = Number(cell);
      if (cell === '' || Number.isNaN(value)) throw invalidInput(file, `line ${line}, column ${c + 1}`, `'${cell}' is not a number`);
      if (c === labelColumn) y[r] = value;
      else x[r * features + k++] = value;
    });
  });
  return withLabels(file, { source: file, count: rows.length, featureShape: [features], x }, y, 1, options);
}

async function loadArrays(file: string, options: DataOptions): Promise<Dataset> {
  const dict = await open(file);
  try {
    const find = (names: string[]) => dict.tensors.find((t) => names.includes(t.name));
    const xs = options.labels ? dict.tensors[0] : find(['x', 'X', 'features', 'data']);
    if (!xs) throw invalidInput(file, undefined, `no array named x (found: ${dict.tensors.map((t) => t.name).join(', ')})`);
    let ys: TensorInfo | undefined;
    let labelsDict;
    if (options.labels) {
      labelsDict = await open(options.labels);
      ys = labelsDict.tensors[0];
      if (!ys) throw invalidInput(options.labels, undefined, 'holds no array');
    } else {
      ys = find(['y', 'Y', 'labels', 'targets']);
      if (!ys) throw invalidInput(file, undefined, `no array named y (found: ${dict.tensors.map((t) => t.name).join(', ')}); give labels with --labels`);
    }
    try {
      for (const t of [xs, ys]) if (!isNumeric(t.dtype)) throw invalidInput(file, t.name, `dtype ${t.dtype} is not numeric`);
      const count = xs.shape[0] ?? 0;
      if (xs.shape.length < 2 || count === 0) throw invalidInput(file, xs.name, `features must have shape [examples, ...], got [${xs.shape.join(',')}]`);
      if ((ys.shape[0] ?? -1) !== count) throw invalidInput(options.labels ?? file, ys.name, `${ys.shape[0]} labels for ${count} examples`);
      const x = Float32Array.from(toFloat64(await xs.read(), xs.dtype));
      const y = toFloat64(await ys.read(), ys.dtype);
      const width = ys.shape.slice(1).reduce((n, d) => n * d, 1);
      return withLabels(options.labels ?? file, { source: file, count, featureShape: xs.shape.slice(1), x }, y, width, options);
    } finally {
      await labelsDict?.close();
    }
  } finally {
    await dict.close();
  }
}

function withLabels(file: string, base: Omit<Dataset, 'labels' | 'targets'>, y: Float64Array, width: number, options: DataOptions): Dataset {
  for (let i = 0; i < y.length; i++) {
    if (!Number.isFinite(y[i]!)) throw invalidInput(file, `label ${Math.floor(i / width)}`, `${y[i]} is not finite`);
  }
  if (options.regression) return { ...base, targets: Float32Array.from(y), targetWidth: width };
  if (width !== 1) throw invalidInput(file, 'labels', `expected one class index per example, got ${width} values each (use --loss mse for targets)`);
  const labels = new Int32Array(y.length);
  y.forEach((v, i) => {
    if (!Number.isInteger(v) || v < 0) throw invalidInput(file, `label ${i}`, `${v} is not a class index (a whole number ≥ 0)`);
    labels[i] = v;
  });
  return { ...base, labels };
}
