import type { TensorInfo } from '../core/statedict.js';
import { sameShape } from '../core/dtype.js';
import { isGeneratedName } from '../core/names.js';
import { huggingFaceName } from '../core/gguf-names.js';

/**
 * Aligns the tensors of two state dicts: by canonical name, then ignoring wrapper prefixes
 * (`module.` from DataParallel, `model.`), then by a unique dotted-name suffix with a compatible
 * shape. Anything that could pair more than one way is reported as ambiguous, never guessed.
 *
 * Exporter-generated names (`322`, `onnx::Conv_12`, `conv2d_107.b_0`, `dense_14.kernel`; see
 * `isGeneratedName`) count positions in one export, so they pair by name only when both sides
 * carry the same generated names with the same shapes (the same model, exported or saved twice).
 * Otherwise those tensors stay unpaired and are listed in `generated`, for matching by structure.
 */
export type MatchReason = 'name' | 'prefix' | 'convention' | 'suffix' | 'structure';

export interface AlignedPair {
  readonly a: TensorInfo;
  readonly b: TensorInfo;
  readonly reason: MatchReason;
  /** When B's shape is a layout transpose of A's: B axis k is A axis permutation[k]. */
  readonly permutation?: readonly number[];
}

export interface Ambiguity {
  readonly name: string;
  readonly side: 'a' | 'b';
  readonly candidates: readonly string[];
}

export interface Alignment {
  readonly pairs: AlignedPair[];
  readonly onlyInA: TensorInfo[];
  readonly onlyInB: TensorInfo[];
  readonly ambiguous: Ambiguity[];
  /** Tensors of onlyInA/onlyInB left unpaired because their names are exporter-generated. */
  readonly generated: ReadonlySet<TensorInfo>;
}

const WRAPPER_PREFIXES = /^(?:(?:module|model)\.)+/;

export function withoutWrapperPrefix(name: string): string {
  return name.replace(WRAPPER_PREFIXES, '');
}

/** Keras / TF parameter names and their PyTorch / ONNX counterparts (FORMATS.md §8). */
export const PARAMETER_NAMES: Record<string, string> = {
  kernel: 'weight', gamma: 'weight', beta: 'bias', moving_mean: 'running_mean', moving_variance: 'running_var',
  depthwise_kernel: 'weight', embeddings: 'weight',
};

/**
 * A name under one convention: wrapper prefix dropped, the last part mapped to its PyTorch name,
 * `_` and `.` made the same (`backbone_conv1/kernel` and `backbone.conv1.weight` meet).
 */
export function conventionalName(name: string): string {
  const parts = withoutWrapperPrefix(name).split('.');
  const last = parts.pop()!;
  return [...parts, PARAMETER_NAMES[last] ?? last].join('.').replace(/_/g, '.');
}

function isDottedSuffix(long: string, short: string): boolean {
  return long === short || long.endsWith(`.${short}`);
}


/**
 * The permutation taking A's layout to B's, when the two differ only by layout: from the
 * layout hints when both tensors have one, else from the shapes (2-D swap, HWIO ↔ OIHW).
 */
export function layoutPermutation(a: TensorInfo, b: TensorInfo): number[] | undefined {
  const byLetters = letterPermutation(a, b);
  if (byLetters && sameShape(byLetters.map((p) => a.shape[p]!), b.shape)) return byLetters;
  if (sameShape(a.shape, b.shape)) return undefined;
  const candidates = a.shape.length === 2 ? [[1, 0]] : a.shape.length === 4 ? [[3, 2, 0, 1], [2, 3, 1, 0]] : [];
  return candidates.find((p) => b.shape.length === p.length && sameShape(p.map((i) => a.shape[i]!), b.shape));
}

/** The permutation between two different layout hints with the same letters (sizes aside). */
export function letterPermutation(a: Pick<TensorInfo, 'layout' | 'shape'>, b: Pick<TensorInfo, 'layout' | 'shape'>): number[] | undefined {
  if (!a.layout || !b.layout || a.layout === b.layout || a.layout.length !== a.shape.length || b.layout.length !== b.shape.length) return undefined;
  const letters = [...b.layout];
  if ([...a.layout].sort().join('') !== [...letters].sort().join('')) return undefined;
  return letters.map((l) => a.layout!.indexOf(l));
}

function compatible(a: TensorInfo, b: TensorInfo): boolean {
  return sameShape(a.shape, b.shape) || layoutPermutation(a, b) !== undefined;
}

/**
 * Whether generated names identify tensors across the two lists: both hold the same set of
 * generated names, each with the same sizes on both sides (in any axis order, as a Keras kernel
 * and its ONNX export differ by layout).
 */
export function shareGeneratedNames(as: readonly TensorInfo[], bs: readonly TensorInfo[]): boolean {
  const sizes = (t: TensorInfo) => [...t.shape].sort((x, y) => x - y).join(',');
  const key = (list: readonly TensorInfo[]) => list.filter((t) => isGeneratedName(t.name)).map((t) => `${t.name}[${sizes(t)}]`).sort().join('\n');
  return key(as) === key(bs);
}

export function alignTensors(as: readonly TensorInfo[], bs: readonly TensorInfo[]): Alignment {
  const pairs: AlignedPair[] = [];
  const ambiguous: Ambiguity[] = [];
  const generated = new Set<TensorInfo>(shareGeneratedNames(as, bs) ? [] : [...as, ...bs].filter((t) => isGeneratedName(t.name)));
  const freeA = new Set(as.filter((t) => !generated.has(t)));
  const freeB = new Set(bs.filter((t) => !generated.has(t)));
  const pair = (a: TensorInfo, b: TensorInfo, reason: MatchReason) => {
    const permutation = layoutPermutation(a, b);
    pairs.push(permutation ? { a, b, reason, permutation } : { a, b, reason });
    freeA.delete(a);
    freeB.delete(b);
  };

  const byName = new Map([...freeB].map((b) => [b.name, b]));
  for (const a of [...freeA]) {
    const b = byName.get(a.name);
    if (b) pair(a, b, 'name');
  }

  // Prefix noise: only names that stay unique once the wrapper prefix is gone.
  const uniquePairs = (key: (name: string) => string, reason: MatchReason) => {
    const byKey = (items: Iterable<TensorInfo>) => {
      const map = new Map<string, TensorInfo[]>();
      for (const t of items) map.set(key(t.name), [...(map.get(key(t.name)) ?? []), t]);
      return map;
    };
    const keyedB = byKey(freeB);
    for (const [k, listA] of byKey(freeA)) {
      const listB = keyedB.get(k);
      if (listA.length === 1 && listB?.length === 1) pair(listA[0]!, listB[0]!, reason);
    }
  };
  uniquePairs(withoutWrapperPrefix, 'prefix');
  // Another framework's conventions: Keras `kernel`/`gamma`, `_` for `.`.
  uniquePairs(conventionalName, 'convention');
  // llama.cpp's GGUF names for the Hugging Face names of llama-family models.
  uniquePairs((name) => conventionalName(huggingFaceName(name)), 'convention');

  // Unique suffix with a compatible shape, in both directions.
  const suffixCandidates = (t: TensorInfo, others: Iterable<TensorInfo>) =>
    [...others].filter((o) => (isDottedSuffix(t.name, o.name) || isDottedSuffix(o.name, t.name)) && compatible(t, o));
  for (const a of [...freeA]) {
    const forA = suffixCandidates(a, freeB);
    if (forA.length === 0) continue;
    const back = forA.length === 1 ? suffixCandidates(forA[0]!, freeA) : [];
    if (forA.length === 1 && back.length === 1) pair(a, forA[0]!, 'suffix');
    else if (forA.length > 1) ambiguous.push({ name: a.name, side: 'a', candidates: forA.map((b) => b.name) });
    else ambiguous.push({ name: forA[0]!.name, side: 'b', candidates: back.map((x) => x.name) });
  }
  const ambiguousNames = new Set(ambiguous.flatMap((x) => [x.name, ...x.candidates]));
  const unpaired = (list: readonly TensorInfo[], free: Set<TensorInfo>) => list.filter((t) => generated.has(t) || (free.has(t) && !ambiguousNames.has(t.name)));
  return {
    pairs,
    onlyInA: unpaired(as, freeA),
    onlyInB: unpaired(bs, freeB),
    ambiguous: dedupe(ambiguous),
    generated,
  };
}

function dedupe(list: Ambiguity[]): Ambiguity[] {
  const seen = new Set<string>();
  return list.filter((x) => {
    const key = `${x.side}:${x.name}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}
