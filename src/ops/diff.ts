import type { StateDict } from '../core/statedict.js';
import { isNumeric, toFloat64, transpose } from '../core/decode.js';
import { alignTensors, type AlignedPair, type MatchReason } from './align.js';

export interface DiffOptions {
  /** Compare values too (reads every matched tensor pair, one pair at a time). */
  values?: boolean;
  atol?: number;
  rtol?: number;
  /** Called after each compared pair (progress). */
  onPair?: () => void;
}

export interface ValueStats {
  /** Bytes equal, same dtype and shape. */
  bitIdentical: boolean;
  maxAbsDiff?: number;
  meanAbsDiff?: number;
  cosine?: number;
  /** |a − b| ≤ atol + rtol·|b| for every element (numpy.allclose), after any layout transpose. */
  withinTolerance: boolean;
}

export interface PairReport {
  a: string;
  b: string;
  reason: MatchReason;
  shapeA: number[];
  shapeB: number[];
  dtypeA: string;
  dtypeB: string;
  /** B is a layout transpose of A (e.g. Keras [in,out] vs ONNX [out,in]); values compared after it. */
  transpose?: number[];
  values?: ValueStats;
}

export interface DiffReport {
  a: { path: string; format: string; tensors: number };
  b: { path: string; format: string; tensors: number };
  matched: PairReport[];
  onlyInA: { name: string; dtype: string; shape: number[] }[];
  onlyInB: { name: string; dtype: string; shape: number[] }[];
  ambiguous: { name: string; side: 'a' | 'b'; candidates: string[] }[];
  shapeMismatches: PairReport[];
  dtypeMismatches: PairReport[];
  valueDifferences: PairReport[];
  equal: boolean;
}

const sameShape = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((d, i) => d === b[i]);

export async function diffStateDicts(a: StateDict, b: StateDict, options: DiffOptions = {}): Promise<DiffReport> {
  const alignment = alignTensors(a.tensors, b.tensors);
  const matched: PairReport[] = [];
  for (const pair of alignment.pairs) {
    const report: PairReport = {
      a: pair.a.name,
      b: pair.b.name,
      reason: pair.reason,
      shapeA: [...pair.a.shape],
      shapeB: [...pair.b.shape],
      dtypeA: pair.a.dtype,
      dtypeB: pair.b.dtype,
      ...(pair.permutation ? { transpose: [...pair.permutation] } : {}),
    };
    const comparable = sameShape(pair.a.shape, pair.b.shape) || pair.permutation;
    if (options.values && comparable) report.values = await compareValues(pair, options);
    options.onPair?.();
    matched.push(report);
  }
  const brief = (t: { name: string; dtype: string; shape: readonly number[] }) => ({ name: t.name, dtype: t.dtype, shape: [...t.shape] });
  const shapeMismatches = matched.filter((p) => !sameShape(p.shapeA, p.shapeB) || p.transpose);
  const dtypeMismatches = matched.filter((p) => p.dtypeA !== p.dtypeB);
  const valueDifferences = matched.filter((p) => p.values && !p.values.withinTolerance);
  const equal =
    alignment.onlyInA.length === 0 && alignment.onlyInB.length === 0 && alignment.ambiguous.length === 0 &&
    shapeMismatches.length === 0 && dtypeMismatches.length === 0 && valueDifferences.length === 0;
  return {
    a: { path: a.path, format: a.format, tensors: a.tensors.length },
    b: { path: b.path, format: b.format, tensors: b.tensors.length },
    matched,
    onlyInA: alignment.onlyInA.map(brief),
    onlyInB: alignment.onlyInB.map(brief),
    ambiguous: alignment.ambiguous.map((x) => ({ name: x.name, side: x.side, candidates: [...x.candidates] })),
    shapeMismatches,
    dtypeMismatches,
    valueDifferences,
    equal,
  };
}

async function compareValues(pair: AlignedPair, options: DiffOptions): Promise<ValueStats> {
  const { a, b } = pair;
  const atol = options.atol ?? 0;
  const rtol = options.rtol ?? 0;
  if (a.dtype === 'string' || b.dtype === 'string') {
    const [sa, sb] = [await a.readStrings().catch(() => []), await b.readStrings().catch(() => [])];
    const same = sa.length === sb.length && sa.every((x, i) => Buffer.from(x).equals(Buffer.from(sb[i]!)));
    return { bitIdentical: same && a.dtype === b.dtype, withinTolerance: same };
  }
  const [bytesA, bytesB] = [await a.read(), await b.read()];
  const bitIdentical = a.dtype === b.dtype && !pair.permutation && Buffer.from(bytesA.buffer, bytesA.byteOffset, bytesA.byteLength).equals(Buffer.from(bytesB.buffer, bytesB.byteOffset, bytesB.byteLength));
  if (!isNumeric(a.dtype) || !isNumeric(b.dtype)) return { bitIdentical, withinTolerance: bitIdentical };
  let va = toFloat64(bytesA, a.dtype);
  const vb = toFloat64(bytesB, b.dtype);
  if (pair.permutation) va = transpose(va, a.shape, pair.permutation);
  let maxAbs = 0;
  let sumAbs = 0;
  let dot = 0;
  let normA = 0;
  let normB = 0;
  let within = true;
  for (let i = 0; i < va.length; i++) {
    const x = va[i]!;
    const y = vb[i]!;
    const d = Math.abs(x - y);
    const bothNaN = Number.isNaN(x) && Number.isNaN(y);
    if (!bothNaN && !(x === y) && !(d <= atol + rtol * Math.abs(y))) within = false;
    if (!bothNaN && x !== y) {
      if (!(d <= maxAbs)) maxAbs = d;
      sumAbs += d;
    }
    dot += x * y;
    normA += x * x;
    normB += y * y;
  }
  const denominator = Math.sqrt(normA) * Math.sqrt(normB);
  return {
    bitIdentical,
    maxAbsDiff: maxAbs,
    meanAbsDiff: va.length ? sumAbs / va.length : 0,
    cosine: denominator > 0 ? dot / denominator : normA === normB ? 1 : 0,
    withinTolerance: within,
  };
}
