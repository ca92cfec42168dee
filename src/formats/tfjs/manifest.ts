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

/** Layer classes whose kernel layout is known (Keras conventions; layers-model topologies). */
export const KERNEL_LAYOUTS: Readonly<Record<string, string>> = {
  Dense: 'IO', Conv1D: 'WIO', Conv2D: 'HWIO', Conv3D: 'DHWIO', DepthwiseConv2D: 'HWIM',
  Conv2DTranspose: 'HWOI', SeparableConv2D: 'HWIM',
};

interface LayerJson { class_name?: string; config?: { name?: string; layers?: LayerJson[]; layer?: LayerJson } }

/** `layer name → class name` from a layers-model topology, nested models included. */
export function layerClasses(topology: unknown): Map<string, string> {
  const out = new Map<string, string>();
  const visit = (layer: LayerJson | undefined, depth: number) => {
    if (!layer || typeof layer !== 'object' || depth > 32) return;
    if (typeof layer.class_name === 'string' && typeof layer.config?.name === 'string') out.set(layer.config.name, layer.class_name);
    for (const child of layer.config?.layers ?? []) visit(child, depth + 1);
    visit(layer.config?.layer, depth + 1); // wrappers such as TimeDistributed
  };
  const t = topology as { model_config?: LayerJson } & LayerJson;
  visit(t?.model_config ?? t, 0);
  return out;
}
