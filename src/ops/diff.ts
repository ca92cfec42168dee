import { LocalFile } from '../core/file.js';
import { hiddenTensorCount, parameterCount, type StateDict, type TensorInfo } from '../core/statedict.js';
import { isParameter } from '../core/roles.js';
import { sameShape, type DType } from '../core/dtype.js';
import { isFloat, isNumeric, toFloat64, transpose } from '../core/decode.js';
import { alignTensors, layoutPermutation, type MatchReason } from './align.js';
import { foldedValues } from './fold.js';
import { isGeneratedName } from '../core/names.js';
import { matchStructure, modelView, type FoldSource, type Layer } from './structure.js';
import { Acc, ACC_LENGTH, accumulate, compareStored, pairBuffers, toFloat64Array, type PairStats, type StoredPair } from './value-stats.js';
import { ComparePool, pairParts, threadsFor } from './compare-pool.js';
import { valueStats as statsOf, type TensorStats } from './stats.js';

export interface DiffOptions {
  /** Compare values too (reads every matched tensor pair, one pair at a time). */
  values?: boolean;
  atol?: number;
  rtol?: number;
  /** Called after each compared pair (progress). */
  onPair?: () => void;
  /**
   * Worker threads comparing stored tensors; by default every core when there is enough to compare.
   * Results are the same either way, but for the order of additions in a tensor of SPLIT_BYTES or
   * more, which is compared in parts.
   */
  threads?: number;
  /**
   * Given, the statistics of every numeric tensor whose values the comparison reads, taken from
   * the same read (diff --html), with the side it is on.
   */
  onStats?: (side: 'a' | 'b', tensor: TensorInfo, stats: TensorStats) => void;
}

/**
 * Tolerance for tensors compared after folding a BatchNorm, unless --atol/--rtol are given:
 * exporters fold in float32, ckpt in float64, so each value may differ by a few float32 ulps
 * (UltraFace RFB-320: at most 4.8e-7, or 1e-5 relative with 1e-8 absolute).
 */
export const FOLD_TOLERANCE = { atol: 1e-6, rtol: 1e-5 } as const;

/** A pair whose side `side` is a conv/linear layer with the BatchNorm after it folded in. */
export interface FoldNote {
  side: 'a' | 'b';
  part: 'weight' | 'bias';
  /** The folded BatchNorm's module or node (its scale tensor's name). */
  batchNorm: string;
  epsilon: number;
  epsilonFrom: string;
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
  /** Paired by graph position: what was compared. */
  why?: string;
  fold?: FoldNote;
  values?: ValueStats;
}

export interface DiffSide {
  path: string;
  format: string;
  tensors: number;
  /** Optimizer state and other non-model tensors left out of the comparison (compared with --all). */
  hiddenTensors: number;
}

export interface DiffReport {
  a: DiffSide;
  b: DiffSide;
  matched: PairReport[];
  onlyInA: { name: string; dtype: string; shape: number[] }[];
  onlyInB: { name: string; dtype: string; shape: number[] }[];
  ambiguous: { name: string; side: 'a' | 'b'; candidates: string[] }[];
  /** Integer tensors on one side only (step counters, graph shape constants): not learned, so no difference on their own. */
  integersOnlyInOne: { name: string; side: 'a' | 'b'; dtype: string; shape: number[] }[];
  /** BatchNorm layers folded to compare one side's conv/linear layers with the other's. */
  foldedBatchNorms: number;
  /** The tolerance folded tensors were compared with. */
  foldTolerance?: { atol: number; rtol: number };
  shapeMismatches: PairReport[];
  dtypeMismatches: PairReport[];
  valueDifferences: PairReport[];
  /**
   * Constants (shapes, indices, anchor priors), aligned apart: an exporter's graph constants are
   * not model tensors, so they are listed but never make the two files different.
   */
  constants: ConstantsReport;
  /** Unpaired tensors (in onlyInA/onlyInB) whose names are exporter-generated, so not matched by name. */
  generatedNames: { a: number; b: number };
  /** Whether values were compared (--values); without it, `equal` says nothing about values. */
  valuesCompared: boolean;
  /** Nothing differs in what was compared: names, shapes, dtypes, and values when `valuesCompared`. */
  equal: boolean;
}

export interface ConstantsReport {
  a: number;
  b: number;
  matched: number;
  onlyInA: { name: string; dtype: string; shape: number[] }[];
  onlyInB: { name: string; dtype: string; shape: number[] }[];
  /** Matched by name with another shape or dtype. */
  differing: { name: string; a: string; b: string }[];
}



interface DiffPair {
  a: TensorInfo;
  b: TensorInfo;
  reason: MatchReason;
  permutation?: readonly number[];
  why?: string;
  fold?: { side: 'a' | 'b'; source: FoldSource };
}

/**
 * Pairs by name (align.ts), then what is left by graph position (structure.ts), folding a
 * BatchNorm where one side has it and the other has it folded into the layer before.
 */
function pairTensors(a: StateDict, b: StateDict): { pairs: DiffPair[]; onlyInA: TensorInfo[]; onlyInB: TensorInfo[]; ambiguous: DiffReport['ambiguous'] } {
  const [tensorsA, tensorsB] = [a.tensors.filter(isParameter), b.tensors.filter(isParameter)];
  const alignment = alignTensors(tensorsA, tensorsB);
  const pairs: DiffPair[] = alignment.pairs.map((p) => ({ ...p }));
  const paired = new Set(pairs.flatMap((p) => [p.a, p.b]));
  const ambiguousNames = new Set(alignment.ambiguous.flatMap((x) => [x.name, ...x.candidates]));
  const [viewA, viewB] = [{ ...modelView(a), tensors: tensorsA }, { ...modelView(b), tensors: tensorsB }];
  // Folding goes from the side with the BatchNorm: A's first, then B's against what is left.
  for (const side of ['a', 'b'] as const) {
    const [from, into] = side === 'a' ? [viewA, viewB] : [viewB, viewA];
    // As in plans, only where a name is exporter-generated: a rename of a named tensor stays a difference.
    const accept = (s: Layer, t: Layer) => isGeneratedName(s.weight.name) || isGeneratedName(t.weight.name);
    const found = matchStructure(from, into, { paired, accept });
    for (const p of found.pairs) {
      const [ta, tb] = side === 'a' ? [p.source, p.target] : [p.target, p.source];
      const permutation = layoutPermutation(ta, tb);
      pairs.push({ a: ta, b: tb, reason: 'structure', why: p.why, ...(permutation ? { permutation } : {}), ...(p.fold ? { fold: { side, source: p.fold } } : {}) });
      for (const t of [p.source, p.target, ...(p.fold ? [p.fold.bn.scale, p.fold.bn.shift, p.fold.bn.mean, p.fold.bn.variance] : [])]) {
        paired.add(t);
        ambiguousNames.delete(t.name);
      }
    }
  }
  const ambiguous = alignment.ambiguous.filter((x) => ambiguousNames.has(x.name)).map((x) => ({ name: x.name, side: x.side, candidates: [...x.candidates] }));
  const unpaired = (list: readonly TensorInfo[]) => list.filter((t) => !paired.has(t) && !ambiguousNames.has(t.name));
  return { pairs, onlyInA: unpaired(tensorsA), onlyInB: unpaired(tensorsB), ambiguous };
}

export async function diffStateDicts(a: StateDict, b: StateDict, options: DiffOptions = {}): Promise<DiffReport> {
  const { pairs, onlyInA, onlyInB, ambiguous } = pairTensors(a, b);
  const userTolerance = options.atol !== undefined || options.rtol !== undefined;
  const foldTolerance = userTolerance ? { atol: options.atol ?? 0, rtol: options.rtol ?? 0 } : FOLD_TOLERANCE;
  const matched: PairReport[] = [];
  const stored = options.values ? storedComparisons(pairs, options) : undefined;
  try {
    for (const pair of pairs) {
      const report: PairReport = {
        a: pair.a.name,
        b: pair.b.name,
        reason: pair.reason,
        shapeA: [...pair.a.shape],
        shapeB: [...pair.b.shape],
        dtypeA: pair.a.dtype,
        dtypeB: pair.b.dtype,
        ...(pair.permutation ? { transpose: [...pair.permutation] } : {}),
        ...(pair.why ? { why: pair.why } : {}),
        ...(pair.fold ? { fold: foldNote(pair.fold.side, pair.fold.source) } : {}),
      };
      const comparable = sameShape(pair.a.shape, pair.b.shape) || pair.permutation;
      if (options.values && comparable) report.values = await (stored?.get(pair) ?? compareValues(pair, pair.fold ? { ...options, ...foldTolerance } : options));
      options.onPair?.();
      matched.push(report);
    }
  } finally {
    await stored?.close();
  }
  // An integer tensor on one side only is a step counter or a graph constant, not a learned weight.
  const integer = (t: TensorInfo) => isNumeric(t.dtype) && !isFloat(t.dtype);
  const integersOnlyInOne = [
    ...onlyInA.filter(integer).map((t) => ({ side: 'a' as const, ...brief(t) })),
    ...onlyInB.filter(integer).map((t) => ({ side: 'b' as const, ...brief(t) })),
  ];
  const [learnedOnlyInA, learnedOnlyInB] = [onlyInA.filter((t) => !integer(t)), onlyInB.filter((t) => !integer(t))];
  const shapeMismatches = matched.filter((p) => !sameShape(p.shapeA, p.shapeB) || p.transpose);
  const dtypeMismatches = matched.filter((p) => p.dtypeA !== p.dtypeB);
  const valueDifferences = matched.filter((p) => p.values && !p.values.withinTolerance);
  const equal =
    learnedOnlyInA.length === 0 && learnedOnlyInB.length === 0 && ambiguous.length === 0 &&
    shapeMismatches.length === 0 && dtypeMismatches.length === 0 && valueDifferences.length === 0;
  const foldedBatchNorms = new Set(matched.filter((p) => p.fold).map((p) => `${p.fold!.side}:${p.fold!.batchNorm}`)).size;
  return {
    a: { path: a.path, format: a.format, tensors: a.tensors.length, hiddenTensors: hiddenTensorCount(a) },
    b: { path: b.path, format: b.format, tensors: b.tensors.length, hiddenTensors: hiddenTensorCount(b) },
    matched,
    onlyInA: learnedOnlyInA.map(brief),
    onlyInB: learnedOnlyInB.map(brief),
    ambiguous,
    integersOnlyInOne,
    foldedBatchNorms,
    ...(foldedBatchNorms && options.values ? { foldTolerance } : {}),
    shapeMismatches,
    dtypeMismatches,
    valueDifferences,
    constants: compareConstants(a.tensors.filter((t) => !isParameter(t)), b.tensors.filter((t) => !isParameter(t))),
    generatedNames: { a: learnedOnlyInA.filter((t) => isGeneratedName(t.name)).length, b: learnedOnlyInB.filter((t) => isGeneratedName(t.name)).length },
    valuesCompared: options.values === true,
    equal,
  };
}

const brief = (t: { name: string; dtype: string; shape: readonly number[] }) => ({ name: t.name, dtype: t.dtype, shape: [...t.shape] });

function compareConstants(as: readonly TensorInfo[], bs: readonly TensorInfo[]): ConstantsReport {
  const alignment = alignTensors(as, bs);
  const describe = (t: TensorInfo) => `${t.dtype} [${t.shape.join(',')}]`;
  // Constants that could pair several ways are simply unpaired here.
  const paired = new Set(alignment.pairs.flatMap((p) => [p.a, p.b]));
  return {
    a: as.length,
    b: bs.length,
    matched: alignment.pairs.length,
    onlyInA: as.filter((t) => !paired.has(t)).map(brief),
    onlyInB: bs.filter((t) => !paired.has(t)).map(brief),
    differing: alignment.pairs
      .filter((p) => describe(p.a) !== describe(p.b))
      .map((p) => ({ name: p.a.name === p.b.name ? p.a.name : `${p.a.name} ↔ ${p.b.name}`, a: describe(p.a), b: describe(p.b) })),
  };
}

function foldNote(side: 'a' | 'b', f: FoldSource): FoldNote {
  return { side, part: f.part, batchNorm: f.bn.scale.name.replace(/\.[^.]+$/, ''), epsilon: f.bn.epsilon, epsilonFrom: f.bn.epsilonFrom };
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

/** A number view of the values: float32/float64 read in place when aligned, others decoded. */
function asNumbers(bytes: Uint8Array, dtype: DType): Float32Array | Float64Array {
  if (dtype === 'float32' && bytes.byteOffset % 4 === 0) return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
  if (dtype === 'float64' && bytes.byteOffset % 8 === 0) return new Float64Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 8);
  return toFloat64(bytes, dtype);
}

/** One side's values as numbers: its tensor, or its layer with the BatchNorm folded in (float64). */
async function sideValues(pair: DiffPair, side: 'a' | 'b', bytes: Uint8Array): Promise<Float32Array | Float64Array> {
  const fold = pair.fold?.side === side ? pair.fold.source : undefined;
  if (!fold) return asNumbers(bytes, pair[side].dtype);
  const { bn } = fold;
  return foldedValues({
    part: fold.part, weight: fold.weight, ...(fold.bias ? { bias: fold.bias } : {}),
    scale: bn.scale, shift: bn.shift, mean: bn.mean, variance: bn.variance, epsilon: bn.epsilon, axis: fold.axis,
  });
}

async function compareValues(pair: DiffPair, options: DiffOptions): Promise<ValueStats> {
  const { a, b } = pair;
  const atol = options.atol ?? 0;
  const rtol = options.rtol ?? 0;
  if (a.dtype === 'string' || b.dtype === 'string') {
    if (a.dtype !== b.dtype) return { bitIdentical: false, withinTolerance: false };
    const [sa, sb] = [await a.readStrings(), await b.readStrings()];
    const same = sa.length === sb.length && sa.every((x, i) => bytesEqual(x, sb[i]!));
    return { bitIdentical: same, withinTolerance: same };
  }
  const [bytesA, bytesB] = [await a.read(), await b.read()];
  if (options.onStats && isNumeric(a.dtype)) options.onStats('a', a, statsOf(bytesA, a.dtype));
  if (options.onStats && isNumeric(b.dtype)) options.onStats('b', b, statsOf(bytesB, b.dtype));
  const bitIdentical = a.dtype === b.dtype && !pair.permutation && !pair.fold && bytesEqual(bytesA, bytesB);
  if (!isNumeric(a.dtype) || !isNumeric(b.dtype)) return { bitIdentical, withinTolerance: bitIdentical };
  const numbersA = await sideValues(pair, 'a', bytesA);
  const va = pair.permutation ? transpose(toFloat64Array(numbersA), a.shape, pair.permutation) : numbersA;
  const vb = await sideValues(pair, 'b', bytesB);
  const acc = new Float64Array(ACC_LENGTH);
  accumulate(va, vb, atol, rtol, acc);
  return valueStats({ bitIdentical, acc }, va.length);
}

/** The report of a stored pair's comparison; each side's statistics, when taken, go to `onStats`. */
function storedReport(pair: DiffPair, { bitIdentical, acc, stats }: PairStats, options: DiffOptions): ValueStats {
  if (stats) {
    options.onStats?.('a', pair.a, stats[0]);
    options.onStats?.('b', pair.b, stats[1]);
  }
  return valueStats({ bitIdentical, acc }, parameterCount(pair.a));
}

function valueStats({ bitIdentical, acc }: PairStats, elements: number): ValueStats {
  const [normA, normB, dot] = [acc[Acc.NormA]!, acc[Acc.NormB]!, acc[Acc.Dot]!];
  const denominator = Math.sqrt(normA) * Math.sqrt(normB);
  return {
    bitIdentical,
    maxAbsDiff: acc[Acc.MaxAbs]!,
    meanAbsDiff: elements ? acc[Acc.SumAbs]! / elements : 0,
    cosine: denominator > 0 ? dot / denominator : normA === normB ? 1 : 0,
    withinTolerance: acc[Acc.Outside] === 0,
  };
}

/**
 * A pair whose values can be compared straight from the files in chunks (memory bounded by the
 * chunk, whatever the tensors' size), on a worker thread where there are many: same float dtype,
 * stored as-is on both sides, no transpose or fold.
 */
function storedPair(pair: DiffPair, options: DiffOptions): StoredPair | undefined {
  const { a, b } = pair;
  if (pair.permutation || pair.fold || !a.stored || !b.stored || a.dtype !== b.dtype || a.byteLength !== b.byteLength) return undefined;
  if (a.dtype !== 'float32' && a.dtype !== 'float64') return undefined;
  return { a: a.stored, b: b.stored, byteLength: a.byteLength, dtype: a.dtype, atol: options.atol ?? 0, rtol: options.rtol ?? 0 };
}

const pairNames = (pair: DiffPair): [string, string] => [`tensor '${pair.a.source}'`, `tensor '${pair.b.source}'`];

/**
 * Starts comparing every stored pair at once, on `threads` workers when there are enough bytes to
 * pay for them, else one pair at a time on this thread as each is asked for.
 */
function storedComparisons(pairs: readonly DiffPair[], options: DiffOptions): { get(pair: DiffPair): Promise<ValueStats> | undefined; close(): Promise<void> } {
  const stored = new Map<DiffPair, StoredPair>();
  for (const pair of pairs) {
    const s = sameShape(pair.a.shape, pair.b.shape) ? storedPair(pair, options) : undefined;
    if (s) stored.set(pair, s);
  }
  const bytes = [...stored.values()].reduce((n, s) => n + 2 * s.byteLength, 0);
  // Workers open the files again by path: only local files, never a URL or an archive member.
  const local = [...stored.values()].every((s) => s.a.file instanceof LocalFile && s.b.file instanceof LocalFile);
  const threads = local ? threadsFor(bytes, options.threads) : 1;
  const withStats = options.onStats !== undefined;
  if (threads <= 1 || stored.size === 0) {
    const buffers = pairBuffers();
    return {
      get: (pair) => {
        const s = stored.get(pair);
        return s && Promise.resolve(storedReport(pair, compareStored(s, buffers, pairNames(pair), withStats), options));
      },
      close: async () => {},
    };
  }
  const parts = [...stored.values()].reduce((n, s) => n + (withStats ? 1 : pairParts(s.byteLength, threads).length), 0);
  const pool = new ComparePool(Math.min(threads, parts));
  const running = new Map<DiffPair, Promise<ValueStats>>();
  for (const [pair, s] of stored) {
    const result = pool.compare(s, pairNames(pair), withStats).then((stats) => storedReport(pair, stats, options));
    result.catch(() => {}); // awaited in order later; a failure before then must not go unhandled
    running.set(pair, result);
  }
  return { get: (pair) => running.get(pair), close: () => pool.close() };
}
