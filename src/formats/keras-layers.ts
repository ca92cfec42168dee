/**
 * Keras layer conventions shared by the Keras HDF5 and TF.js (layers-model) readers: the kernel
 * layout of each layer class, and the class of every layer in a model config.
 */
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

/** Keras's `to_snake_case`: the path segment Keras 3 gives a layer of this class (`Conv2D` → `conv2d`). */
export function snakeCase(className: string): string {
  return className.replace(/(.)([A-Z][a-z]+)/g, '$1_$2').replace(/([a-z])([A-Z])/g, '$1_$2').toLowerCase();
}

type LayerConfig = Record<string, unknown>;

/**
 * What a Keras 3 layer's `vars/0, vars/1…` are, in order (trainable then non-trainable), for
 * the classes whose variables are fixed by their config; undefined otherwise.
 */
export function keras3VariableNames(className: string, config: LayerConfig = {}): string[] | undefined {
  const bias = config.use_bias === false ? [] : ['bias'];
  switch (className) {
    case 'Dense': case 'Conv1D': case 'Conv2D': case 'Conv3D': case 'Conv1DTranspose': case 'Conv2DTranspose': case 'Conv3DTranspose':
      return ['kernel', ...bias];
    case 'DepthwiseConv1D': case 'DepthwiseConv2D':
      return ['depthwise_kernel', ...bias];
    case 'SeparableConv1D': case 'SeparableConv2D':
      return ['depthwise_kernel', 'pointwise_kernel', ...bias];
    case 'BatchNormalization':
      return [...(config.scale === false ? [] : ['gamma']), ...(config.center === false ? [] : ['beta']), 'moving_mean', 'moving_variance'];
    case 'LayerNormalization':
      return [...(config.scale === false ? [] : ['gamma']), ...(config.center === false ? [] : ['beta'])];
    case 'Embedding':
      return ['embeddings'];
    default:
      return undefined;
  }
}

/** Classes a Keras 3 path segment may stand for, from its snake-case name (`dense_3` → Dense). */
export const CLASS_BY_SNAKE: Readonly<Record<string, string>> = Object.fromEntries(
  ['Dense', 'Conv1D', 'Conv2D', 'Conv3D', 'Conv2DTranspose', 'DepthwiseConv2D', 'SeparableConv2D', 'BatchNormalization', 'LayerNormalization', 'Embedding']
    .map((c) => [snakeCase(c), c]),
);
