import type { DType } from '../../core/dtype.js';

/** The parts of model.json ckpt reads, as tfjs-core's io types describe them. */
export interface ManifestEntry {
  name: string;
  shape: number[];
  dtype: string;
  group?: string;
  quantization?: { dtype: string; min?: number; scale?: number; original_dtype?: string };
}

export interface ManifestGroup {
  paths: string[];
  weights: ManifestEntry[];
}

export const TFJS_DTYPES: Readonly<Record<string, DType>> = {
  float32: 'float32', int32: 'int32', bool: 'bool', string: 'string', complex64: 'complex64',
};

/** Bytes per stored element: the quantized width when quantized. */
export const STORED_BYTES: Readonly<Record<string, number>> = {
  float32: 4, int32: 4, bool: 1, complex64: 8, uint8: 1, uint16: 2, float16: 2,
};

