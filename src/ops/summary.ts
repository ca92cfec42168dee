import { parameterCount, type StateDict, type TensorInfo } from '../core/statedict.js';
import { learnedParameterCount, roleSplit, type RoleSplit } from '../core/roles.js';
import type { Pattern } from './select.js';
import { storedByteLength } from '../core/encoding.js';

export interface Totals {
  readonly tensors: number;
  /** Elements of weights and buffers: graph constants (shapes, anchor priors) are not parameters. */
  readonly parameters: number;
  readonly bytes: number;
  readonly roles: RoleSplit;
}

export function totals(tensors: readonly TensorInfo[]): Totals {
  return {
    tensors: tensors.length,
    parameters: tensors.reduce((n, t) => n + learnedParameterCount(t), 0),
    bytes: tensors.reduce((n, t) => n + storedByteLength(t), 0),
    roles: roleSplit(tensors),
  };
}

/** Tensors whose canonical name matches any pattern (all tensors when there are none). */
export function filterTensors(dict: StateDict, patterns: readonly Pattern[]): TensorInfo[] {
  if (patterns.length === 0) return [...dict.tensors];
  return dict.tensors.filter((t) => patterns.some((p) => p.test(t.name)));
}

export interface TreeNode {
  readonly name: string;
  readonly parameters: number;
  readonly bytes: number;
  readonly tensors: number;
  readonly children: TreeNode[];
  /** Set on leaves: the tensor itself. */
  readonly tensor?: TensorInfo;
}

/** Groups tensors by dotted name prefix; each group carries its parameter and byte totals. */
export function nameTree(tensors: readonly TensorInfo[]): TreeNode[] {
  interface Mutable { name: string; parameters: number; bytes: number; tensors: number; children: Map<string, Mutable>; tensor?: TensorInfo }
  const root: Mutable = { name: '', parameters: 0, bytes: 0, tensors: 0, children: new Map() };
  for (const t of tensors) {
    const parts = t.name.split('.');
    let node = root;
    const add = (n: Mutable) => {
      n.parameters += learnedParameterCount(t);
      n.bytes += storedByteLength(t);
      n.tensors += 1;
    };
    add(root);
    parts.forEach((part, i) => {
      const leaf = i === parts.length - 1;
      // A leaf and a group may share a name (`fc` and `fc.weight`): key leaves apart.
      const key = leaf ? `\0${part}` : part;
      let child = node.children.get(key);
      if (!child) {
        child = { name: part, parameters: 0, bytes: 0, tensors: 0, children: new Map(), ...(leaf ? { tensor: t } : {}) };
        node.children.set(key, child);
      }
      add(child);
      node = child;
    });
  }
  const freeze = (n: Mutable): TreeNode => ({
    name: n.name, parameters: n.parameters, bytes: n.bytes, tensors: n.tensors,
    children: [...n.children.values()].map(freeze),
    ...(n.tensor ? { tensor: n.tensor } : {}),
  });
  // A group with a single child group reads better merged: `model.backbone` rather than two levels.
  const merge = (n: TreeNode): TreeNode => {
    let node = n;
    while (!node.tensor && node.children.length === 1 && !node.children[0]!.tensor) {
      const only = node.children[0]!;
      node = { ...only, name: `${node.name}.${only.name}` };
    }
    return { ...node, children: node.children.map(merge) };
  };
  return freeze(root).children.map(merge);
}

/**
 * Tensors whose dtype, shape and values equal an earlier tensor's (tied weights, Paddle's LSTM
 * listing its parameters twice, converters' duplicate names): each mapped to the first one's name.
 */
export function sameValues(tensors: readonly TensorInfo[], hashes: ReadonlyMap<TensorInfo, string | undefined>): Map<TensorInfo, string> {
  const first = new Map<string, string>();
  const same = new Map<TensorInfo, string>();
  for (const t of tensors) {
    const hash = hashes.get(t);
    // Equal scalars (step counters, num_batches_tracked) are coincidence, not aliases worth a column.
    if (!hash || parameterCount(t) < 2) continue;
    // Stored bytes are the same values only under the same encoding (TFLite scales, TF.js range, ggml type).
    const key = `${t.dtype}[${t.shape.join(',')}]${hash}${t.encoding ? JSON.stringify([t.encoding.label, t.encoding.affine, t.encoding.range]) : ''}`;
    const earlier = first.get(key);
    if (earlier) same.set(t, earlier);
    else first.set(key, t.name);
  }
  return same;
}
