import type { StateDict, TensorInfo } from '../core/statedict.js';
import { sameShape, shapeText } from '../core/dtype.js';
import { isFloat } from '../core/decode.js';
import { isGeneratedName } from '../core/names.js';
import type { GraphNode } from '../formats/onnx/model.js';
import { graphNodesOf } from '../formats/onnx/index.js';
import { layoutPermutation, PARAMETER_NAMES } from './align.js';

/**
 * Structural matching: pairs learned tensors by their place in the computation, for names that
 * say nothing (exporter-generated `onnx::Conv_104`, `487`, Keras auto layer names). A model is
 * read as a sequence of learned layers — from the ONNX graph in execution order, or from a state
 * dict's module order (numeric components as numbers) — and the two sequences are aligned by op
 * family, order and weight shape. A layer that could pair more than one way is reported with its
 * candidates, never guessed. Conv + BatchNormalization on one side against a conv with bias on
 * the other is a fold (W' = W·γ/√(σ²+ε), b' = (b−μ)·γ/√(σ²+ε)+β).
 */
export interface ModelView {
  /** Format name (`onnx`, `pytorch`, `keras`…): picks the framework's BatchNorm ε default. */
  readonly format: string;
  readonly tensors: readonly TensorInfo[];
  /** ONNX main-graph nodes in execution (topological) order, when the file has a graph. */
  readonly graph?: readonly GraphNode[];
}

export function modelView(dict: StateDict): ModelView {
  const graph = graphNodesOf(dict);
  return { format: dict.format, tensors: dict.tensors, ...(graph ? { graph } : {}) };
}

export interface BatchNorm {
  readonly scale: TensorInfo;
  readonly shift: TensorInfo;
  readonly mean: TensorInfo;
  readonly variance: TensorInfo;
  readonly epsilon: number;
  /** Where ε comes from: the graph's attribute or the framework's default. */
  readonly epsilonFrom: string;
}

type Family = 'conv' | 'linear' | 'norm';

export interface Layer {
  readonly op: string;
  readonly family: Family;
  readonly weight: TensorInfo;
  bias?: TensorInfo;
  /** Running statistics of a BatchNormalization layer of its own. */
  stats?: { mean: TensorInfo; variance: TensorInfo };
  /** A BatchNormalization applied to this layer's output, not folded into it. */
  bn?: BatchNorm;
  /** The axis of `weight` that indexes output channels (what BatchNorm scales). */
  readonly outAxis: number;
  /** Node name or module path, for reports. */
  readonly at: string;
}

/** One target tensor's values from the source: a plain copy, or a fold of conv + BatchNorm. */
export interface StructuralPair {
  readonly source: TensorInfo;
  readonly target: TensorInfo;
  /** What was compared, for the plan's "why". */
  readonly why: string;
  readonly fold?: FoldSource;
}

export interface FoldSource {
  readonly part: 'weight' | 'bias';
  readonly weight: TensorInfo;
  readonly bias?: TensorInfo;
  readonly bn: BatchNorm;
  readonly axis: number;
}

export interface StructuralMatch {
  readonly pairs: StructuralPair[];
  readonly ambiguous: { target: TensorInfo; candidates: TensorInfo[] }[];
  /** Target tensors that sit where the source has a BatchNorm that cannot be folded into them. */
  readonly unfoldable: { target: TensorInfo; detail: string }[];
}

/** BatchNorm ε when the file does not store it: the framework's layer default. */
export function defaultEpsilon(format: string): { epsilon: number; from: string } {
  if (['keras', 'tfjs', 'tf-checkpoint'].includes(format)) return { epsilon: 1e-3, from: 'Keras default (not stored in the weights)' };
  if (format === 'paddle') return { epsilon: 1e-5, from: 'Paddle default (not stored in the weights)' };
  return { epsilon: 1e-5, from: 'PyTorch default (not stored in the state dict)' };
}

/** The learned layers of a model in execution order: from its graph, else from module order. */
export function layersOf(view: ModelView): Layer[] {
  return view.graph?.length ? graphLayers(view) : moduleLayers(view);
}

const ONNX_BN_EPSILON = 1e-5;

function graphLayers(view: ModelView): Layer[] {
  const byFileName = new Map(view.tensors.map((t) => [t.source, t]));
  const learned = (name: string | undefined) => {
    const t = name === undefined ? undefined : byFileName.get(name);
    return t && isFloat(t.dtype) ? t : undefined;
  };
  const consumers = new Map<string, GraphNode[]>();
  for (const node of view.graph!) for (const input of node.inputs) consumers.set(input, [...(consumers.get(input) ?? []), node]);
  const layers: Layer[] = [];
  const layerByOutput = new Map<string, Layer>();
  for (const node of view.graph!) {
    const at = node.name || `node → ${node.outputs[0] ?? '?'}`;
    switch (node.opType) {
      case 'Conv': case 'ConvTranspose': case 'Gemm': case 'MatMul': {
        const weight = learned(node.inputs[1]);
        if (!weight) break;
        const linear = node.opType === 'Gemm' || node.opType === 'MatMul';
        const outAxis = node.opType === 'ConvTranspose' || node.opType === 'MatMul' || (node.opType === 'Gemm' && !node.attributes.transB) ? 1 : 0;
        const layer: Layer = { op: node.opType, family: linear ? 'linear' : 'conv', weight, outAxis, at };
        let output = node.outputs[0] ?? '';
        const bias = learned(node.inputs[2]);
        if (bias) layer.bias = bias;
        else if (node.opType === 'MatMul') {
          // MatMul + Add: the Add's other input is the bias.
          const next = consumers.get(output);
          const add = next?.length === 1 && next[0]!.opType === 'Add' ? next[0]! : undefined;
          const other = add && learned(add.inputs.find((i) => i !== output));
          if (add && other && other.shape.length === 1) {
            layer.bias = other;
            output = add.outputs[0] ?? output;
          }
        }
        layers.push(layer);
        layerByOutput.set(output, layer);
        break;
      }
      case 'BatchNormalization': {
        const [scale, shift, mean, variance] = [1, 2, 3, 4].map((i) => learned(node.inputs[i]));
        if (!scale || !shift || !mean || !variance) break;
        const epsilon = typeof node.attributes.epsilon === 'number' ? node.attributes.epsilon : ONNX_BN_EPSILON;
        const epsilonFrom = typeof node.attributes.epsilon === 'number'
          ? `attribute of BatchNormalization ${at}` : 'ONNX default (no epsilon attribute)';
        const producer = layerByOutput.get(node.inputs[0] ?? '');
        if (producer && !producer.bn && consumers.get(node.inputs[0]!)?.length === 1) {
          producer.bn = { scale, shift, mean, variance, epsilon, epsilonFrom };
          layerByOutput.set(node.outputs[0] ?? '', producer);
        } else {
          layers.push({ op: node.opType, family: 'norm', weight: scale, bias: shift, stats: { mean, variance }, outAxis: 0, at });
        }
        break;
      }
      case 'InstanceNormalization': case 'LayerNormalization': {
        const scale = learned(node.inputs[1]);
        if (!scale) break;
        const shift = learned(node.inputs[2]);
        layers.push({ op: node.opType, family: 'norm', weight: scale, ...(shift ? { bias: shift } : {}), outAxis: 0, at });
        break;
      }
      default:
        break;
    }
  }
  return layers;
}

/** Parameter names beyond the Keras ones: Paddle dygraph `_mean`, `_variance` and static-graph names. */
const STAT_NAMES: Record<string, string> = {
  ...PARAMETER_NAMES, _mean: 'running_mean', _variance: 'running_var',
  // Paddle static-graph names: w_0/b_0 weight and bias, a batch_norm's w_1/w_2 its statistics.
  w_0: 'weight', b_0: 'bias', w_1: 'running_mean', w_2: 'running_var',
};

function moduleLayers(view: ModelView): Layer[] {
  const order = moduleOrder(view.tensors.map((t) => t.name));
  const modules = new Map<string, Map<string, TensorInfo>>();
  for (const t of [...view.tensors].sort((a, b) => order.rank.get(a.name)! - order.rank.get(b.name)!)) {
    if (!isFloat(t.dtype)) continue;
    const cut = t.name.lastIndexOf('.');
    const module = cut < 0 ? '' : t.name.slice(0, cut);
    const last = t.name.slice(cut + 1);
    const params = modules.get(module) ?? new Map<string, TensorInfo>();
    params.set(STAT_NAMES[last] ?? last, t);
    modules.set(module, params);
  }
  const { epsilon, from } = defaultEpsilon(view.format);
  const layers: Layer[] = [];
  for (const [module, params] of modules) {
    const weight = params.get('weight');
    if (!weight) continue;
    const bias = params.get('bias');
    const [mean, variance] = [params.get('running_mean'), params.get('running_var')];
    if (weight.shape.length === 1) {
      const previous = layers[layers.length - 1];
      if (mean && variance && bias && previous && previous.family !== 'norm' && !previous.bn && previous.weight.shape[previous.outAxis] === weight.shape[0]) {
        previous.bn = { scale: weight, shift: bias, mean, variance, epsilon, epsilonFrom: from };
        continue;
      }
      layers.push({ op: mean ? 'BatchNormalization' : 'Norm', family: 'norm', weight, ...(bias ? { bias } : {}), ...(mean && variance ? { stats: { mean, variance } } : {}), outAxis: 0, at: module });
      continue;
    }
    const outAxis = weight.layout?.includes('O') ? weight.layout.indexOf('O') : 0;
    layers.push({ op: weight.shape.length === 2 ? 'Linear' : 'Conv', family: weight.shape.length === 2 ? 'linear' : 'conv', weight, ...(bias ? { bias } : {}), outAxis, at: module });
  }
  return layers;
}

/**
 * Module order of dotted names: numeric components compare as numbers (`base_net.9` before
 * `base_net.10`), other components in order of first appearance in the file. When the file's
 * names are sorted (safetensors), the order of non-numeric siblings is unknown, and `isAfter`
 * says so rather than trusting the alphabet.
 */
export function moduleOrder(names: readonly string[]): { rank: Map<string, number>; isAfter(name: string, than: string): boolean } {
  interface Node { children: Map<string, Node>; position: number; numeric: boolean }
  const root: Node = { children: new Map(), position: 0, numeric: false };
  for (const name of names) {
    let node = root;
    for (const part of name.split('.')) {
      let child = node.children.get(part);
      if (!child) node.children.set(part, (child = { children: new Map(), position: 0, numeric: /^\d+$/.test(part) }));
      node = child;
    }
  }
  const rank = new Map<string, number>();
  const visit = (node: Node, prefix: string) => {
    const entries = [...node.children];
    const firstNumeric = entries.findIndex(([, c]) => c.numeric);
    // Numeric siblings sit together where the first of them appeared, in numeric order.
    const key = ([part, c]: [string, Node], index: number) => (c.numeric ? [firstNumeric, Number(part)] : [index, 0]);
    const sorted = entries.map((e, i) => [e, key(e, i)] as const).sort((x, y) => x[1][0]! - y[1][0]! || x[1][1]! - y[1][1]!);
    sorted.forEach(([[part, child]], position) => {
      child.position = position;
      const full = prefix ? `${prefix}.${part}` : part;
      if (child.children.size === 0) rank.set(full, rank.size);
      visit(child, full);
    });
  };
  visit(root, '');
  const fileSorted = names.every((n, i) => i === 0 || names[i - 1]! <= n);
  const isAfter = (name: string, than: string) => {
    const [a, b] = [name.split('.'), than.split('.')];
    let node = root;
    for (let i = 0; i < Math.min(a.length, b.length); i++) {
      const [x, y] = [node.children.get(a[i]!), node.children.get(b[i]!)];
      if (!x || !y) return false;
      if (x !== y) return (!fileSorted || (x.numeric && y.numeric)) && x.position > y.position;
      node = x;
    }
    return false;
  };
  return { rank, isAfter };
}

/** ε as people write it: 1e-5, also for the float32 value of an ONNX attribute. */
export const formatEpsilon = (epsilon: number) => Number(epsilon.toPrecision(6)).toExponential();


/** How well two layers fit at the same place: same weight shape (or layout transpose) 4, one axis grown or shrunk 1, else 0. */
function fit(s: Layer, t: Layer): number {
  if (s.family !== t.family) return 0;
  if (sameShape(s.weight.shape, t.weight.shape) || layoutPermutation(s.weight, t.weight)) return 4;
  const differing = s.weight.shape.length === t.weight.shape.length ? s.weight.shape.filter((d, i) => d !== t.weight.shape[i]).length : -1;
  return differing === 1 ? 1 : 0;
}

/** Beyond this many layer pairs (n·m), only sequences that fit position by position are aligned. */
const MAX_ALIGNMENT_CELLS = 9_000_000;

/**
 * Aligns two layer sequences (longest common subsequence weighted by `fit`) and keeps the pairs
 * every optimal alignment agrees on; a layer with several optimal partners is ambiguous.
 */
export function alignLayers(source: readonly Layer[], target: readonly Layer[]): { pairs: [Layer, Layer][]; ambiguous: [Layer, Layer[]][] } {
  const [n, m] = [source.length, target.length];
  if (n * m > MAX_ALIGNMENT_CELLS) {
    const diagonal = n === m && source.every((s, i) => fit(s, target[i]!) > 0);
    return { pairs: diagonal ? source.map((s, i) => [s, target[i]!]) : [], ambiguous: [] };
  }
  const w = m + 1;
  const fits = new Uint8Array(n * m);
  for (let i = 0; i < n; i++) for (let j = 0; j < m; j++) fits[i * m + j] = fit(source[i]!, target[j]!);
  const forward = new Int32Array((n + 1) * w);
  const backward = new Int32Array((n + 1) * w);
  for (let i = 1; i <= n; i++) {
    for (let j = 1; j <= m; j++) {
      const f = fits[(i - 1) * m + j - 1]!;
      forward[i * w + j] = Math.max(forward[(i - 1) * w + j]!, forward[i * w + j - 1]!, f > 0 ? forward[(i - 1) * w + j - 1]! + f : 0);
    }
  }
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) {
      const f = fits[i * m + j]!;
      backward[i * w + j] = Math.max(backward[(i + 1) * w + j]!, backward[i * w + j + 1]!, f > 0 ? backward[(i + 1) * w + j + 1]! + f : 0);
    }
  }
  const best = forward[n * w + m]!;
  const partnersOfSource = new Map<number, number[]>();
  const partnersOfTarget = new Map<number, number[]>();
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < m; j++) {
      const f = fits[i * m + j]!;
      if (f > 0 && forward[i * w + j]! + f + backward[(i + 1) * w + j + 1]! === best) {
        partnersOfSource.set(i, [...(partnersOfSource.get(i) ?? []), j]);
        partnersOfTarget.set(j, [...(partnersOfTarget.get(j) ?? []), i]);
      }
    }
  }
  const pairs: [Layer, Layer][] = [];
  const ambiguous: [Layer, Layer[]][] = [];
  for (const [j, sources] of partnersOfTarget) {
    if (sources.length === 1 && partnersOfSource.get(sources[0]!)!.length === 1) pairs.push([source[sources[0]!]!, target[j]!]);
    else ambiguous.push([target[j]!, sources.map((i) => source[i]!)]);
  }
  return { pairs, ambiguous };
}

/**
 * Where the graph first reads each tensor: `op#k:i` (the k-th node of that op type, input i).
 * Two tensors with one key in two graphs sit at the same place, whatever their names.
 */
export function consumerPositions(view: ModelView): Map<TensorInfo, string> {
  const byFileName = new Map(view.tensors.map((t) => [t.source, t]));
  const seen = new Map<string, number>();
  const out = new Map<TensorInfo, string>();
  for (const node of view.graph ?? []) {
    const k = seen.get(node.opType) ?? 0;
    seen.set(node.opType, k + 1);
    node.inputs.forEach((input, i) => {
      const t = byFileName.get(input);
      if (t && !out.has(t)) out.set(t, `${node.opType}#${k + 1}:${i}`);
    });
  }
  return out;
}

export interface StructureOptions {
  /** Tensors already paired (by name): their layers stay out of the alignment. */
  readonly paired: ReadonlySet<TensorInfo>;
  /** Whether a layer pair may be used (e.g. only where a name is exporter-generated). */
  readonly accept: (source: Layer, target: Layer) => boolean;
}

/** Keras 3 files of one script: the layer path (`layers/dense/vars/0`) is the structure. */
function kerasPathPairs(source: ModelView, target: ModelView, options: StructureOptions): StructuralPair[] {
  if (source.format !== 'keras' || target.format !== 'keras') return [];
  const bySource = new Map(source.tensors.filter((t) => t.source.startsWith('layers/') && !options.paired.has(t)).map((t) => [t.source, t]));
  const pairs: StructuralPair[] = [];
  for (const t of target.tensors) {
    const s = bySource.get(t.source);
    if (!s || options.paired.has(t) || !(sameShape(s.shape, t.shape) || fitsOneAxis(s, t))) continue;
    if (!isGeneratedName(s.name) && !isGeneratedName(t.name)) continue;
    pairs.push({ source: s, target: t, why: `graph position: same Keras layer path ${t.source}` });
  }
  return pairs;
}

const fitsOneAxis = (s: TensorInfo, t: TensorInfo) => s.shape.length === t.shape.length && s.shape.filter((d, i) => d !== t.shape[i]).length === 1;

export function matchStructure(source: ModelView, target: ModelView, options: StructureOptions): StructuralMatch {
  const keras = kerasPathPairs(source, target, options);
  const paired = new Set([...options.paired, ...keras.flatMap((p) => [p.source, p.target])]);
  const free = (layer: Layer) => !paired.has(layer.weight);
  const [sourceLayers, targetLayers] = [layersOf(source).filter(free), layersOf(target).filter(free)];
  const aligned = alignLayers(sourceLayers, targetLayers);
  const pairs: StructuralPair[] = [...keras];
  const unfoldable: StructuralMatch['unfoldable'] = [];
  const position = (layers: readonly Layer[], l: Layer, where: string) =>
    `${l.op}${l.bn ? ' + BatchNorm' : ''} ${l.at} (${where} ${layers.indexOf(l) + 1}/${layers.length})`;
  for (const [s, t] of aligned.pairs) {
    if (!options.accept(s, t)) continue;
    const why = `graph position: ${position(sourceLayers, s, source.graph?.length ? 'graph layer' : 'module')} ↔ ${position(targetLayers, t, target.graph?.length ? 'graph layer' : 'module')}; compared op, order, weight shape ${shapeText(t.weight.shape)}`;
    const add = (a: TensorInfo | undefined, b: TensorInfo | undefined) => {
      if (a && b && !paired.has(a) && !paired.has(b)) pairs.push({ source: a, target: b, why });
    };
    if (s.bn && !t.bn) {
      if (!t.bias) {
        unfoldable.push({ target: t.weight, detail: `the source has BatchNormalization after ${s.at}; the target's ${t.op} has no bias to fold its shift into` });
        continue;
      }
      const fold = { weight: s.weight, ...(s.bias ? { bias: s.bias } : {}), bn: s.bn, axis: s.outAxis };
      pairs.push({ source: s.weight, target: t.weight, why, fold: { part: 'weight', ...fold } });
      pairs.push({ source: s.bias ?? s.bn.shift, target: t.bias, why, fold: { part: 'bias', ...fold } });
      continue;
    }
    if (t.bn && !s.bn) {
      for (const x of [t.weight, t.bias, t.bn.scale, t.bn.shift, t.bn.mean, t.bn.variance]) {
        if (x) unfoldable.push({ target: x, detail: `the source's ${s.op} ${s.at} has BatchNorm folded in; the target keeps BatchNormalization (unfolding is not supported)` });
      }
      continue;
    }
    add(s.weight, t.weight);
    add(s.bias, t.bias);
    add(s.stats?.mean, t.stats?.mean);
    add(s.stats?.variance, t.stats?.variance);
    if (s.bn && t.bn) {
      add(s.bn.scale, t.bn.scale);
      add(s.bn.shift, t.bn.shift);
      add(s.bn.mean, t.bn.mean);
      add(s.bn.variance, t.bn.variance);
    }
  }
  // Every tensor of an ambiguous layer is ambiguous, with the same-role tensors of the candidates.
  const ambiguous = aligned.ambiguous.filter(([t, candidates]) => candidates.some((c) => options.accept(c, t))).flatMap(([t, candidates]) => [
    { target: t.weight, candidates: candidates.map((c) => c.weight) },
    ...(t.bias ? [{ target: t.bias, candidates: candidates.flatMap((c) => (c.bias ? [c.bias] : [])) }] : []),
  ]);
  return { pairs, ambiguous, unfoldable };
}
