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
