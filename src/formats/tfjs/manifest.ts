import type { DType } from '../../core/dtype.js';
import { numelOf } from '../../core/dtype.js';
import { invalidInput } from '../../core/errors.js';

/** One weight of a manifest, as tfjs-core's `WeightsManifestEntry` describes it. */
export interface ManifestEntry {
  name: string;
  shape: number[];
  dtype: string;
  group?: string;
  quantization?: Quantization;
}

export interface Quantization {
  dtype: 'uint8' | 'uint16' | 'float16';
  min?: number;
  scale?: number;
  original_dtype?: string;
}

/** Shard files whose concatenation holds the group's weights back to back. */
export interface ManifestGroup {
  paths: string[];
  weights: ManifestEntry[];
}

/** The dtypes a manifest may name; ckpt's names are the same. */
export const TFJS_DTYPES: Readonly<Record<string, DType>> = {
  float32: 'float32', int32: 'int32', bool: 'bool', string: 'string', complex64: 'complex64',
};

/** Bytes per stored element (tfjs-core's DTYPE_VALUE_SIZE_MAP): the quantized width when quantized. */
export const STORED_BYTES: Readonly<Record<string, number>> = {
  float32: 4, int32: 4, bool: 1, complex64: 8, uint8: 1, uint16: 2, float16: 2,
};

/** Shard paths are plain relative file paths: no URL scheme (`http:`, `file:`) and no backslash. */
const URL_SCHEME = /^[a-z][a-z0-9+.-]*:/i;

/**
 * Checks the manifest's structure and every entry against what tfjs-core's decodeWeight accepts,
 * so that every later step can trust it. Errors name the group, the entry and the weight.
 */
export function validateManifest(file: string, manifest: unknown): ManifestGroup[] {
  if (!Array.isArray(manifest)) throw invalidInput(file, 'weightsManifest', 'must be an array of {paths, weights} groups');
  const seen = new Map<string, string>();
  return manifest.map((group: unknown, gi) => {
    const where = `weightsManifest[${gi}]`;
    const g = group as Partial<ManifestGroup> | null;
    if (typeof g !== 'object' || g === null || !Array.isArray(g.paths) || !Array.isArray(g.weights)) {
      throw invalidInput(file, where, 'expected {paths: [...], weights: [...]}');
    }
    g.paths.forEach((p: unknown, pi) => {
      if (typeof p !== 'string' || URL_SCHEME.test(p) || p.includes('\\')) {
        throw invalidInput(file, `${where}.paths[${pi}]`, `shard path ${JSON.stringify(p)} must be a plain relative file path`);
      }
    });
    g.weights.forEach((w: unknown, wi) => {
      const at = `${where}.weights[${wi}]`;
      validateEntry(file, at, w);
      const name = (w as ManifestEntry).name;
      const earlier = seen.get(name);
      if (earlier) throw invalidInput(file, `${at} '${name}'`, `weight name also used by ${earlier}; names must be unique`);
      seen.set(name, at);
    });
    return g as ManifestGroup;
  });
}

function validateEntry(file: string, at: string, entry: unknown): void {
  const w = entry as Partial<ManifestEntry> | null;
  if (typeof w !== 'object' || w === null || typeof w.name !== 'string') throw invalidInput(file, at, 'expected a weight with a string name');
  const where = `${at} '${w.name}'`;
  if (!Array.isArray(w.shape) || numelOf(w.shape) === undefined) {
    throw invalidInput(file, where, `shape ${JSON.stringify(w.shape)} must be a list of non-negative integers with a safe product`);
  }
  if (typeof w.dtype !== 'string' || !Object.hasOwn(TFJS_DTYPES, w.dtype)) {
    throw invalidInput(file, where, `unknown dtype ${JSON.stringify(w.dtype)} (expected float32, int32, bool, string or complex64)`);
  }
  if (w.group !== undefined && typeof w.group !== 'string') throw invalidInput(file, where, `group ${JSON.stringify(w.group)} must be a string`);
  const q = w.quantization as Partial<Quantization> | null | undefined;
  if (q === undefined) return;
  if (typeof q !== 'object' || q === null || !['uint8', 'uint16', 'float16'].includes(q.dtype as string)) {
    throw invalidInput(file, where, `quantization dtype ${JSON.stringify(q?.dtype)} is not uint8, uint16 or float16`);
  }
  if (q.dtype === 'float16') {
    if (w.dtype !== 'float32') throw invalidInput(file, where, `float16 quantization of a ${w.dtype} weight; only float32 weights can be`);
    return;
  }
  if (!Number.isFinite(q.min) || !Number.isFinite(q.scale)) {
    throw invalidInput(file, where, `${q.dtype} quantization needs numeric min and scale (got min ${JSON.stringify(q.min)}, scale ${JSON.stringify(q.scale)})`);
  }
  if (w.dtype !== 'float32' && w.dtype !== 'int32') throw invalidInput(file, where, `${q.dtype} quantization of a ${w.dtype} weight; only float32 and int32 weights can be`);
}

/** Bytes a fixed-width weight occupies in its shards (strings are sized by walking them). */
export function storedBytes(entry: ManifestEntry): number {
  return numelOf(entry.shape)! * STORED_BYTES[entry.quantization?.dtype ?? entry.dtype]!;
}

export type ModelKind = 'layers-model' | 'graph-model' | 'weights-manifest';

/**
 * What the JSON is: its `format` when it says so, else from the topology (a GraphDef has `node`,
 * a Keras config has `class_name` or `model_config`), else a bare weights manifest.
 */
export function modelKind(json: unknown): ModelKind {
  if (Array.isArray(json)) return 'weights-manifest';
  const model = json as { format?: unknown; modelTopology?: Record<string, unknown> | null };
  if (model.format === 'layers-model' || model.format === 'graph-model') return model.format;
  const topology = model.modelTopology;
  if (typeof topology !== 'object' || topology === null) return 'weights-manifest';
  return Array.isArray(topology.node) ? 'graph-model' : 'layers-model';
}
