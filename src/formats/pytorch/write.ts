import { writeAll, writeAtomic, yieldToSignals } from '../../core/atomic.js';
import type { DType } from '../../core/dtype.js';
import { usageError } from '../../core/errors.js';
import { PickleWriter, type PickleValue } from '../../core/pickle-write.js';
import { parameterCount } from '../../core/statedict.js';
import { ZipWriter } from '../../core/zip.js';
import { nestNames, type NameTree } from '../../core/names.js';
import type { FormatWriter, OutputTensor } from '../writers.js';
import { STORAGE_DTYPES } from './tensors.js';
import { writeSharded } from '../sharded/write.js';

/** The typed `torch.<X>Storage` class of each dtype torch can hold (the reader's table, inverted). */
const STORAGE: Partial<Record<DType, string>> = Object.fromEntries(
  Object.entries(STORAGE_DTYPES).filter(([name]) => name !== 'UntypedStorage').map(([name, dtype]) => [dtype, name]),
);

/** Row-major strides as torch computes them: a zero-sized dim counts as 1. */
function contiguousStrides(shape: readonly number[]): number[] {
  const strides = new Array<number>(shape.length);
  let step = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    strides[i] = step;
    step *= Math.max(shape[i]!, 1);
  }
  return strides;
}

/**
 * A tensor as torch.save pickles it: `_rebuild_tensor_v2(('storage', torch.<X>Storage, key, 'cpu',
 * numel), 0, size, stride, False, OrderedDict())`, its bytes in member `data/<key>`.
 */
export function pickleTensor(p: PickleWriter, key: number, tensor: { readonly dtype: DType; readonly shape: readonly number[] }): void {
  p.global('torch._utils', '_rebuild_tensor_v2');
  p.tuple(6, () => {
    p.tuple(5, () => {
      p.unicode('storage');
      p.global('torch', STORAGE[tensor.dtype]!);
      p.values(String(key), 'cpu', parameterCount(tensor));
    });
    p.persistentId();
    p.values(0, tensor.shape, contiguousStrides(tensor.shape), false);
    p.global('collections', 'OrderedDict');
    p.value([]);
    p.reduce();
  });
  p.reduce();
}

/**
 * `data.pkl`: OrderedDicts of name → tensor, storages numbered in order.
 * `values` (a training checkpoint's `epoch`, `arch`…) go first in the top-level dict.
 */
function encodeDataPkl(tensors: readonly OutputTensor[], values: Readonly<Record<string, PickleValue>>): Uint8Array {
  const parts: Uint8Array[] = [];
  const p = new PickleWriter((bytes) => parts.push(bytes));
  const dict = (tree: NameTree<number>, plain: [string, PickleValue][]) => {
    p.global('collections', 'OrderedDict');
    p.value([]);
    p.reduce();
    if (tree.size + plain.length === 0) return;
    const next = p.items(tree.size + plain.length);
    for (const [k, v] of plain) {
      p.values(k, v);
      next();
    }
    for (const [name, node] of tree) {
      p.unicode(name);
      if (node instanceof Map) dict(node, []);
      else pickleTensor(p, node.leaf, tensors[node.leaf]!.tensor);
      next();
    }
  };
  p.proto(2);
  // Names with `/` go back into nested dicts: `state_dict/conv.weight` → {state_dict: {conv.weight}}.
  dict(nestNames(tensors.map((_, i) => i), (i) => tensors[i]!.name), Object.entries(values));
  p.stop();
  return Buffer.concat(parts);
}

/**
 * `torch.save`'s zip format (torch ≥ 1.6), loadable with `torch.load(path, weights_only=True)`:
 * stored members under `archive/`, `data.pkl` first, then one 64-byte aligned storage per tensor,
 * read and written one at a time.
 */
export async function writePytorch(out: string, tensors: readonly OutputTensor[], values: Readonly<Record<string, PickleValue>> = {}): Promise<void> {
  await writeAtomic(out, pytorchWriterFor(tensors, values));
}

/** The function that writes `tensors` as one torch.save file to a descriptor (a shard, or the whole file). */
export function pytorchWriterFor(tensors: readonly OutputTensor[], values: Readonly<Record<string, PickleValue>> = {}): (fd: number) => Promise<void> {
  const bad = tensors.find((t) => !STORAGE[t.tensor.dtype]);
  if (bad) throw usageError(`PyTorch cannot store '${bad.name}' (${bad.tensor.dtype}); torch has no such storage type`);
  const pkl = encodeDataPkl(tensors, values);
  return async (fd) => {
    const zip = new ZipWriter((bytes) => writeAll(fd, bytes), 64);
    zip.add('archive/data.pkl', [pkl]);
    zip.add('archive/byteorder', [Buffer.from('little')]);
    for (const [key, t] of tensors.entries()) {
      await yieldToSignals();
      const bytes = await t.tensor.read();
      if (bytes.length !== t.tensor.byteLength) throw new Error(`'${t.name}' read ${bytes.length} bytes, expected ${t.tensor.byteLength}`);
      zip.add(`archive/data/${key}`, [bytes]);
    }
    zip.add('archive/version', [Buffer.from('3\n')]);
    zip.finish();
  };
}

export const pytorchWriter: FormatWriter = {
  format: 'pytorch',
  extensions: ['.pt', '.pth', '.bin'],
  takes: ['shardSize'],
  async write(out, tensors, source, options = {}) {
    // From a torch file, its plain values come along and its nesting is kept (names joined by /).
    const fromTorch = source.format === 'pytorch';
    const values = fromTorch ? ((source.metadata.values ?? {}) as Record<string, PickleValue>) : {};
    if (options.shardSize !== undefined) {
      // Hugging Face shards are flat state dicts: plain values have no place in them.
      const left = Object.keys(values);
      const notes = await writeSharded(out, tensors, options.shardSize, (shard) => pytorchWriterFor(shard));
      return { format: 'pytorch', notes: [...notes, ...(left.length ? [`plain values not written (shards hold tensors only): ${left.join(', ')}`] : [])] };
    }
    await writePytorch(out, tensors, values);
    return { format: 'pytorch', notes: [] };
  },
};
