import type { DType } from './dtype.js';

/** Where a tensor lives in its file. */
export type TensorOrigin =
  | 'initializer'
  | 'sparse_initializer'
  | 'constant'
  | 'dataset'
  | 'weight';

/**
 * How a weight's axes are laid out, when the file says so (e.g. the consuming ONNX node). Letters:
 * O = output channels/features, I = input, H/W/D = spatial, M = depthwise multiplier.
 * `OI` is a PyTorch Linear / Gemm(transB=1) weight, `IO` a Keras Dense kernel or MatMul B.
 */
export type Layout = string;

/**
 * What a tensor is to the model: `weight` (learned), `buffer` (running statistics, step counters)
 * or `constant` (a structural argument: shapes, axes, indices, anchor priors). Only weights and
 * buffers count as parameters.
 */
export type TensorRole = 'weight' | 'buffer' | 'constant';

/** Where a role was read from: the model's graph, its config, or naming conventions alone. */
export type RoleEvidence = 'graph' | 'config' | 'names';

export interface TensorInfo {
  /** Canonical name: dotted, framework noise such as `:0` removed, unique in its state dict. */
  readonly name: string;
  /** The name exactly as in the file. */
  readonly source: string;
  readonly dtype: DType;
  readonly shape: readonly number[];
  /** Bytes of the values as `read()` returns them (sum of string lengths for strings). */
  readonly byteLength: number;
  readonly origin: TensorOrigin;
  /** `model` by default; optimizer slots and the like are only listed when asked for. */
  readonly group?: 'model' | 'optimizer';
  readonly layout?: Layout;
  readonly role?: TensorRole;
  readonly roleFrom?: RoleEvidence;
  /**
   * The values as little-endian bytes of `dtype`, row-major, sub-byte types packed low bits first.
   * Reads this one tensor only. Throws for string tensors (use `readStrings`).
   */
  read(): Promise<Uint8Array>;
  /** The elements of a string tensor, as stored bytes. Throws for other dtypes. */
  readStrings(): Promise<Uint8Array[]>;
}

export type Metadata = Record<string, unknown>;

export interface StateDict {
  /** Format name: `onnx`, `keras`, `tfjs`… */
  readonly format: string;
  readonly path: string;
  readonly metadata: Metadata;
  readonly tensors: readonly TensorInfo[];
  /** Releases file handles. Safe to call twice. */
  close(): Promise<void>;
  /** Bytes read from disk so far, where the reader counts them (benchmarks, listing tests). */
  bytesRead?(): number;
}

export interface OpenOptions {
  /** Also list optimizer state and other non-model tensors. */
  all?: boolean;
  /**
   * Pickle-based formats: refuse every global outside the reader's allowlist, as `torch.load(
   * weights_only=True)` does. By default such globals (hyper-parameters as an argparse Namespace, a
   * whole pickled module) become inert opaque values listed in `metadata.opaqueGlobals`.
   */
  strictPickle?: boolean;
  /** Where warnings about what was opened go (opaque pickle globals); stderr when not given. */
  onWarning?: (message: string) => void;
}

export function parameterCount(t: Pick<TensorInfo, 'shape'>): number {
  return t.shape.reduce((n, d) => n * d, 1);
}

/**
 * How many optimizer-state and other non-model tensors the reader left out; they are listed with
 * `--all`. Readers record the count as `metadata.optimizerTensors`.
 */
export function hiddenTensorCount(dict: Pick<StateDict, 'metadata'>): number {
  const count = dict.metadata.optimizerTensors;
  return typeof count === 'number' ? count : 0;
}
