import { usageError } from './errors.js';

/**
 * Canonical names: dotted, with storage noise removed, unique within a state dict.
 * The file's own name is always kept as `source`; this is only the name ckpt matches on.
 */
export function canonicalName(source: string): string {
  return source
    .replace(/:\d+$/, '') // TF variable output index, `kernel:0`
    .replace(/\//g, '.')
    .replace(/^\.+/, '')
    .replace(/\.{2,}/g, '.');
}

/**
 * Makes names unique: the first tensor keeps its name, a later one with the same name gets its
 * `scope` prefixed (e.g. the If branch it lives in), and a numeric suffix if that still collides.
 */
export function uniqueNames(items: readonly { name: string; scope?: string }[]): string[] {
  const taken = new Set<string>();
  const out: string[] = [];
  for (const item of items) {
    let name = item.name;
    if (taken.has(name) && item.scope) name = canonicalName(`${item.scope}/${item.name}`);
    if (taken.has(name)) {
      let i = 2;
      while (taken.has(`${name}~${i}`)) i++;
      name = `${name}~${i}`;
    }
    taken.add(name);
    out.push(name);
  }
  return out;
}

/** Names split at `/` into nested containers (PyTorch and Paddle keep training dicts nested). */
export type NameTree<T> = Map<string, NameTree<T> | { leaf: T }>;

export function nestNames<T>(items: readonly T[], nameOf: (item: T) => string): NameTree<T> {
  const root: NameTree<T> = new Map();
  for (const item of items) {
    const name = nameOf(item);
    const parts = name.split('/');
    let node = root;
    for (const part of parts.slice(0, -1)) {
      const child = node.get(part) ?? new Map();
      if (!(child instanceof Map)) throw usageError(`cannot write '${name}': '${part}' is also a tensor`);
      node.set(part, child);
      node = child;
    }
    const leaf = parts[parts.length - 1]!;
    if (node.has(leaf)) throw usageError(`cannot write '${name}' twice, or as both a tensor and a container`);
    node.set(leaf, { leaf: item });
  }
  return root;
}

/** Keras's automatic layer names: the snake-case class name, numbered from the second instance. */
const KERAS_AUTO_LAYER = /^(dense|conv[123]d|conv[123]d_transpose|depthwise_conv[12]d|separable_conv[12]d|batch_normalization|layer_normalization|embedding|lstm|gru|simple_rnn|p_re_lu)(_\d+)?$/;

/**
 * Names an exporter or framework numbers on its own, which say nothing about what a tensor is:
 * the same name in two different models is a coincidence of counting. Matched on the canonical
 * name: numeric (`322`), `onnx::Conv_123`, node-output paths (`/conv1/Conv_output_0`, canonical
 * `conv1.Conv_output_0`), paddle2onnx helpers (`p2o.helper.constant.3`), Paddle's automatic
 * parameter names (`conv2d_107.b_0`, `batch_norm_3.w_1`, `linear_0.w_0`), TF.js converter,
 * torch.export and numpy.savez names (`unknown_135`, `val_20`, `arr_0`), and Keras automatic layer names (`dense_14.kernel`).
 */
export function isGeneratedName(name: string): boolean {
  if (/^\d+$/.test(name) || name.startsWith('onnx::') || name.startsWith('p2o.')) return true;
  if (/(^|\.)[A-Z][A-Za-z]*(_\d+)?_output_\d+$/.test(name)) return true;
  if (/^[a-z][a-z0-9]*(_[a-z0-9]+)*_\d+\.(w|b|tmp)_\d+$/.test(name)) return true;
  if (/^(unknown|val|eager_tmp|arr)(_\d+)?$/.test(name)) return true;
  const parts = name.split('.');
  return parts.length >= 2 && KERAS_AUTO_LAYER.test(parts[parts.length - 2]!);
}
