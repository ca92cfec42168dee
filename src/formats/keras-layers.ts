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

/**
 * Keras 3's path segments for one container's layers, in order: each class in snake case, numbered
 * from the second of its kind (`dense`, `dense_1`…).
 */
export function keras3Segments(): (className: string) => string {
  const used = new Map<string, number>();
  return (className) => {
    const snake = snakeCase(className);
    const n = used.get(snake) ?? 0;
    used.set(snake, n + 1);
    return n === 0 ? snake : `${snake}_${n}`;
  };
}

type LayerConfig = Record<string, unknown>;

/**
 * The names of a Keras 3 layer's variables in the order its `build()` creates them (trainable then
 * non-trainable), its sublayers' included, for the classes whose variables are fixed by their
 * config; undefined otherwise.
 */
export function keras3VariableNames(className: string, config: LayerConfig = {}): string[] | undefined {
  return keras3VariableGroups(className, config)?.flatMap((g) => g.names);
}

/** A layer's own `vars/0, vars/1…`, where it creates them itself. */
function keras3OwnVariables(className: string, config: LayerConfig): string[] | undefined {
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
    case 'PReLU':
      return ['alpha'];
    default:
      return undefined;
  }
}

/** Variables a Keras 3 layer keeps in a sublayer: the sublayer's object path under the layer, and their names. */
export interface VariableGroup {
  /** `cell` (an RNN's cell), `forward_layer/cell` (Bidirectional), `layer` (TimeDistributed); '' the layer's own `vars`. */
  readonly path: string;
  readonly names: readonly string[];
}

/** Recurrent layers: the RNN layer owns no variables, its `cell` creates kernel, recurrent_kernel, bias. */
const RECURRENT = new Set(['LSTM', 'GRU', 'SimpleRNN', 'ConvLSTM1D', 'ConvLSTM2D', 'ConvLSTM3D']);

/**
 * Where a Keras 3 layer's variables are, by object path (Keras 3 saves a sublayer under the
 * attribute holding it), for the classes whose variables are fixed by their config: its own
 * `vars` for plain layers, its cell's for recurrent ones, and the wrapped layers' for
 * Bidirectional (`forward_<name>/…`, `backward_<name>/…`, as tfjs-layers names them) and
 * TimeDistributed (the inner layer's names). Undefined when the config does not fix them.
 */
export function keras3VariableGroups(className: string, config: LayerConfig = {}): VariableGroup[] | undefined {
  if (RECURRENT.has(className)) return [{ path: 'cell', names: ['kernel', 'recurrent_kernel', ...(config.use_bias === false ? [] : ['bias'])] }];
  const inner = config.layer as { class_name?: unknown; config?: LayerConfig } | undefined;
  const innerGroups = () => (typeof inner?.class_name === 'string' ? keras3VariableGroups(inner.class_name, inner.config ?? {}) : undefined);
  if (className === 'TimeDistributed') return innerGroups()?.map((g) => ({ path: g.path ? `layer/${g.path}` : 'layer', names: g.names }));
  if (className === 'Bidirectional') {
    const groups = innerGroups();
    const name = inner?.config?.name;
    if (!groups || typeof name !== 'string') return undefined;
    return ['forward', 'backward'].flatMap((side) => groups.map((g) => ({
      path: g.path ? `${side}_layer/${g.path}` : `${side}_layer`, names: g.names.map((n) => `${side}_${name}/${n}`),
    })));
  }
  const own = keras3OwnVariables(className, config);
  return own && [{ path: '', names: own }];
}

/** Classes a Keras 3 path segment may stand for, from its snake-case name (`dense_3` → Dense). */
export const CLASS_BY_SNAKE: Readonly<Record<string, string>> = Object.fromEntries(
  ['Dense', 'Conv1D', 'Conv2D', 'Conv3D', 'Conv2DTranspose', 'DepthwiseConv2D', 'SeparableConv2D', 'BatchNormalization', 'LayerNormalization', 'Embedding', 'PReLU', 'LSTM', 'GRU', 'SimpleRNN']
    .map((c) => [snakeCase(c), c]),
);

/**
 * The layer classes tfjs-layers 4.x registers (`tf.serialization` class names): a layers model
 * with any other class does not load in `tf.loadLayersModel` ("Unknown layer").
 */
export const TFJS_LAYER_CLASSES: ReadonlySet<string> = new Set([
  'Activation', 'Add', 'AlphaDropout', 'Average', 'AveragePooling1D', 'AveragePooling2D', 'AveragePooling3D', 'BatchNormalization',
  'Bidirectional', 'CategoryEncoding', 'CenterCrop', 'Concatenate', 'Conv1D', 'Conv2D', 'Conv2DTranspose', 'Conv3D', 'Conv3DTranspose',
  'ConvLSTM2D', 'Cropping2D', 'Dense', 'DepthwiseConv2D', 'Dot', 'Dropout', 'ELU', 'Embedding', 'Flatten', 'Functional', 'GRU',
  'GaussianDropout', 'GaussianNoise', 'GlobalAveragePooling1D', 'GlobalAveragePooling2D', 'GlobalMaxPooling1D', 'GlobalMaxPooling2D',
  'InputLayer', 'LSTM', 'LayerNormalization', 'LeakyReLU', 'Masking', 'MaxPooling1D', 'MaxPooling2D', 'MaxPooling3D', 'Maximum',
  'Minimum', 'Model', 'Multiply', 'PReLU', 'Permute', 'RNN', 'RandomWidth', 'ReLU', 'RepeatVector', 'Rescaling', 'Reshape', 'Resizing',
  'SeparableConv2D', 'Sequential', 'SimpleRNN', 'Softmax', 'SpatialDropout1D', 'ThresholdedReLU', 'TimeDistributed', 'UpSampling2D',
  'ZeroPadding2D',
]);

/**
 * What of a layers config tfjs-layers cannot build, wrapped layers included, in config order:
 * classes it does not have, and GRUs with `reset_after` (Keras 3's default), which it refuses.
 */
export function unsupportedByTfjs(topology: unknown): string[] {
  const lacking = new Set<string>();
  const visit = (layer: { class_name?: unknown; config?: { layers?: unknown; layer?: unknown; reset_after?: unknown } } | undefined, depth: number) => {
    if (!layer || typeof layer !== 'object' || depth > 32) return;
    if (typeof layer.class_name === 'string' && !TFJS_LAYER_CLASSES.has(layer.class_name)) lacking.add(`${layer.class_name} layers`);
    if (layer.class_name === 'GRU' && layer.config?.reset_after === true) lacking.add("GRUs with reset_after=true (Keras 3's default)");
    if (Array.isArray(layer.config?.layers)) for (const child of layer.config.layers) visit(child, depth + 1);
    visit(layer.config?.layer as typeof layer, depth + 1);
  };
  visit(topology as Parameters<typeof visit>[0], 0);
  return [...lacking];
}
