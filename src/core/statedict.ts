import type { DType } from './dtype.js';
import type { RandomAccessFile } from './file.js';
import type { TensorEncoding } from './encoding.js';

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

/**
 * Where a tensor's record sits in its file, for writers that rewrite that file in place (the
 * lossless ONNX writer). It travels with the tensor when the tensor is wrapped (`{ ...t, read }`).
 */
export interface TensorLocation {
  /** The file, as the state dict opened it. */
  readonly file: string;
  /** Byte offset of the tensor's record (ONNX: its TensorProto). */
  readonly offset: number;
  /** The subgraph or function holding it; '' for the main graph. */
  readonly scope: string;
  /** The values are in an external data file. */
  readonly external: boolean;
}

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
  /** Set by readers whose writer rewrites the file in place (ONNX). */
  readonly location?: TensorLocation;
  /**
   * How the file stores the values when that is not `dtype` elementwise (GGUF blocks, affine
   * integers): `dtype`, `byteLength` and `read()` are then the dequantized view.
   */
  readonly encoding?: TensorEncoding;
  /**
   * The values as little-endian bytes of `dtype`, row-major, sub-byte types packed low bits first.
   * Reads this one tensor only. Throws for string tensors (use `readStrings`).
   */
  read(): Promise<Uint8Array>;
  /** The elements of a string tensor, as stored bytes. Throws for other dtypes. */
  readStrings(): Promise<Uint8Array[]>;
  /**
   * Where the values lie as `read()` would return them, when the file stores them so (one
   * contiguous little-endian range): lets hashing and comparing stream them in chunks.
   */
  readonly stored?: StoredBytes;
}

/** `byteLength` bytes of a tensor's values at `offset` in `file`, stored exactly as `read()` returns them. */
export interface StoredBytes {
  readonly file: RandomAccessFile;
  readonly offset: number;
}

/**
 * `tensor` with other values (a cast, a transpose, planned weights): what tied it to its bytes in
 * the file (where they are stored, how they are encoded) no longer holds, so streaming readers,
 * hashes and writers cannot take the old bytes instead.
 */
export function withValues(tensor: TensorInfo, changes: Partial<TensorInfo> & Pick<TensorInfo, 'read'>): TensorInfo {
  return { ...tensor, stored: undefined, encoding: undefined, ...changes };
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
  /** The Keras model the file describes (a Keras full model, a TF.js layers model): writers keep it. */
  readonly kerasModel?: KerasModelInfo;
}

/** A Keras model's own description, as its file holds it. */
export interface KerasModelInfo {
  /** `{class_name, config}`: Keras 2 / tfjs-layers style, or Keras 3 style (with `module`). */
  readonly config: Record<string, unknown>;
  readonly trainingConfig?: unknown;
  readonly kerasVersion?: string;
  readonly backend?: string;
}

/** A state dict from open(): `await using dict = await open(path)` closes it when the block ends. */
export type OpenedStateDict = StateDict & AsyncDisposable;

/** Adds `Symbol.asyncDispose` (close) to a reader's state dict. */
export function disposable(dict: StateDict): OpenedStateDict {
  return Object.assign(dict, { [Symbol.asyncDispose]: () => dict.close() });
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
