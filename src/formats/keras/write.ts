import * as fs from 'node:fs';
import * as path from 'node:path';
import h5wasm from 'h5wasm/node';
import { CkptError, ioError, usageError } from '../../core/errors.js';
import { writeAtomicByName, yieldToSignals } from '../../core/atomic.js';
import type { DType } from '../../core/dtype.js';
import type { StateDict } from '../../core/statedict.js';
import type { FormatWriter, OutputTensor } from '../writers.js';
import { hdf5Reason } from './hdf5.js';

type TypedArrayOf = { new (buffer: ArrayBufferLike, byteOffset: number, length: number): ArrayBufferView; readonly BYTES_PER_ELEMENT: number };

/** The bytes as the typed array h5wasm writes, copied only when their offset is not aligned for it. */
const typed = (of: TypedArrayOf) => (b: Uint8Array) => {
  const bytes = b.byteOffset % of.BYTES_PER_ELEMENT === 0 ? b : b.slice();
  return new of(bytes.buffer, bytes.byteOffset, bytes.byteLength / of.BYTES_PER_ELEMENT);
};

/** How each dtype is stored: the typed array h5wasm writes and its HDF5 type string. */
const STORAGE: Partial<Record<DType, { array: (b: Uint8Array) => ArrayBufferView; dtype: string }>> = {
  float32: { array: typed(Float32Array), dtype: '<f' },
  float64: { array: typed(Float64Array), dtype: '<d' },
  float16: { array: typed(Uint16Array), dtype: '<e' },
  int8: { array: typed(Int8Array), dtype: '<b' },
  int16: { array: typed(Int16Array), dtype: '<h' },
  int32: { array: typed(Int32Array), dtype: '<i' },
  int64: { array: typed(BigInt64Array), dtype: '<q' },
  uint8: { array: typed(Uint8Array), dtype: '<B' },
  uint16: { array: typed(Uint16Array), dtype: '<H' },
  uint32: { array: typed(Uint32Array), dtype: '<I' },
  uint64: { array: typed(BigUint64Array), dtype: '<Q' },
};

/**
 * Where a tensor goes in a Keras 2 weights file: its layer and weight name (`dense_1`,
 * `dense_1/kernel:0`). Keras dataset paths keep theirs; dotted names split at the last dot.
 */
export function kerasLocation(name: string): { layer: string; weight: string } {
  const slashed = name.replace(/^model_weights\//, '');
  if (slashed.includes('/')) {
    const [layer, ...rest] = slashed.split('/');
    const weight = rest.length > 1 || /:\d+$/.test(rest[0]!) ? rest.join('/') : `${layer}/${rest[0]}:0`;
    return { layer: layer!, weight };
  }
  const dot = name.lastIndexOf('.');
  if (dot <= 0) return { layer: name, weight: `${name}/${name}:0` };
  const layer = name.slice(0, dot);
  return { layer, weight: `${layer}/${name.slice(dot + 1)}:0` };
}

/**
 * A Keras HDF5 file in the layout Keras 2's `load_weights` reads: `layer_names` in the order the
 * tensors come, each layer's `weight_names`, datasets at `<layer>/<weight>`. When the input carries
 * a Keras topology (a Keras or TF.js layers model), it is kept as `model_config` in the full-model
 * layout (`model_weights/…`), which `load_weights` reads too. Written atomically (`writeAtomicByName`).
 */
export async function writeKeras(out: string, tensors: readonly OutputTensor[], source: StateDict): Promise<string[]> {
  const bad = tensors.find((t) => !STORAGE[t.tensor.dtype]);
  if (bad) throw usageError(`Keras HDF5 output cannot store '${bad.name}' (${bad.tensor.dtype})`);
  const notes: string[] = [];
  const modelConfig = topologyOf(source);
  const layers = new Map<string, { weight: string; tensor: OutputTensor }[]>();
  for (const t of tensors) {
    // Keras 3 paths (`layers/dense/vars/0`) carry no Keras 2 names: use the canonical name.
    const { layer, weight } = kerasLocation(/\/vars\/\d+$/.test(t.name) ? t.tensor.name : t.name);
    layers.set(layer, [...(layers.get(layer) ?? []), { weight, tensor: t }]);
  }
  const orderLayouts = new Set(tensors.map((t) => t.tensor.layout).filter((l) => l && /^O/.test(l)));
  if (orderLayouts.size) notes.push(`weights keep their layout (${[...orderLayouts].join(', ')}); Keras expects HWIO kernels and [in,out] Dense kernels — transpose with \`ckpt plan\` into a Keras-layout target`);

  await h5wasm.ready;
  await writeAtomicByName(out, async (temp) => {
    const file = new h5wasm.File(temp, 'w');
    try {
      const base = modelConfig ? file.create_group('model_weights') : file;
      const stamp = (g: typeof base) => {
        g.create_attribute('layer_names', [...layers.keys()]);
        g.create_attribute('backend', 'tensorflow');
        g.create_attribute('keras_version', '2.15.0');
      };
      stamp(base);
      if (modelConfig) {
        file.create_attribute('model_config', JSON.stringify(modelConfig));
        file.create_attribute('backend', 'tensorflow');
        file.create_attribute('keras_version', '2.15.0');
      }
      for (const [layer, weights] of layers) {
        const group = base.create_group(layer);
        // A layer without weights stores an empty list; Keras writes an empty float64 array.
        group.create_attribute('weight_names', weights.map((w) => w.weight));
        for (const w of weights) {
          await yieldToSignals();
          const bytes = await w.tensor.tensor.read();
          const storage = STORAGE[w.tensor.tensor.dtype]!;
          const parts = w.weight.split('/');
          let parent = group;
          for (const part of parts.slice(0, -1)) parent = (parent.get(part) as typeof group | null) ?? parent.create_group(part);
          parent.create_dataset({ name: parts[parts.length - 1]!, data: storage.array(bytes) as never, shape: [...w.tensor.tensor.shape], dtype: storage.dtype });
        }
      }
    } catch (err) {
      try {
        file.close();
      } catch {
        // already failing: the temporary file is removed by writeAtomicByName
      }
      if ((err as NodeJS.ErrnoException).code || err instanceof CkptError) throw err;
      throw ioError(out, 'HDF5', hdf5Reason(err));
    }
    file.close();
  });
  return notes;
}

/** A Keras model config to keep: a Keras file's, or a TF.js layers model's topology. */
function topologyOf(source: StateDict): Record<string, unknown> | undefined {
  try {
    if (source.format === 'tfjs') {
      const file = fs.statSync(source.path).isDirectory() ? path.join(source.path, 'model.json') : source.path;
      const json = JSON.parse(fs.readFileSync(file, 'utf8'));
      const topology = json?.modelTopology;
      const config = topology?.model_config ?? topology;
      return config?.class_name && config?.config ? config : undefined;
    }
  } catch {
    return undefined;
  }
  return undefined;
}

export const kerasWriter: FormatWriter = {
  format: 'keras',
  extensions: ['.h5', '.hdf5'],
  async write(out, tensors, source) {
    const notes = await writeKeras(out, tensors, source);
    return { format: 'keras', notes };
  },
};
