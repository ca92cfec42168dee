import { byteLengthOf, dtypeBits, numelOf, type DType } from '../../core/dtype.js';
import { NUMPY_ALLOWED } from '../numpy/pickled.js';
import { asInt, asInts, PyCall, PyDict, PyGlobal, PyPersistent, PySet, PyTuple, walk, type PyValue } from '../../core/pickle.js';

/**
 * What `torch.save` pickles, interpreted without torch: tensors are `_rebuild_tensor_v2` calls on
 * persistent storages; everything else is plain containers, numbers and strings.
 */

/** `torch.<X>Storage` → element dtype. */
export const STORAGE_DTYPES: Readonly<Record<string, DType>> = {
  DoubleStorage: 'float64', FloatStorage: 'float32', HalfStorage: 'float16', BFloat16Storage: 'bfloat16',
  LongStorage: 'int64', IntStorage: 'int32', ShortStorage: 'int16', CharStorage: 'int8', ByteStorage: 'uint8',
  BoolStorage: 'bool', ComplexFloatStorage: 'complex64', ComplexDoubleStorage: 'complex128',
  // Untyped storages count bytes; the tensor's dtype comes from `_rebuild_tensor_v3`.
  UntypedStorage: 'uint8',
};

/** `torch.<dtype>` globals (`_rebuild_tensor_v3` names the dtype separately from its byte storage). */
export const TORCH_DTYPES: Readonly<Record<string, DType>> = {
  float64: 'float64', double: 'float64', float32: 'float32', float: 'float32', float16: 'float16', half: 'float16', bfloat16: 'bfloat16',
  int64: 'int64', long: 'int64', int32: 'int32', int: 'int32', int16: 'int16', short: 'int16', int8: 'int8',
  uint64: 'uint64', uint32: 'uint32', uint16: 'uint16', uint8: 'uint8', bool: 'bool', complex64: 'complex64', complex128: 'complex128',
  float8_e4m3fn: 'float8e4m3fn', float8_e5m2: 'float8e5m2', float8_e4m3fnuz: 'float8e4m3fnuz', float8_e5m2fnuz: 'float8e5m2fnuz', float8_e8m0fnu: 'float8e8m0',
};

const REBUILD_TENSOR = new Set(['torch._utils._rebuild_tensor', 'torch._utils._rebuild_tensor_v2', 'torch._utils._rebuild_tensor_v3']);
const REBUILD_PARAMETER = new Set(['torch._utils._rebuild_parameter', 'torch._utils._rebuild_parameter_with_state']);
const FROM_TYPE = 'torch._tensor._rebuild_from_type_v2';

/** True for a pickled torch tensor or parameter (a rebuild call on a storage). */
export const isTensorCall = (v: PyValue): boolean =>
  v instanceof PyCall && (REBUILD_TENSOR.has(v.fn.qualified) || REBUILD_PARAMETER.has(v.fn.qualified) || v.fn.qualified === FROM_TYPE);

/**
 * Every global a state dict or training checkpoint needs: torch's tensor rebuilders, storage and
 * dtype types, containers, and numpy arrays and scalars (kept as values, never listed as tensors).
 */
export const TORCH_ALLOWED: ReadonlySet<string> = new Set([
  ...REBUILD_TENSOR, ...REBUILD_PARAMETER, FROM_TYPE,
  'torch.Tensor', 'torch.nn.parameter.Parameter', 'torch.Size', 'torch.device',
  ...Object.keys(STORAGE_DTYPES).flatMap((s) => [`torch.${s}`, `torch.cuda.${s}`]),
  ...Object.keys(TORCH_DTYPES).map((d) => `torch.${d}`),
  'collections.OrderedDict', 'builtins.set', 'builtins.frozenset', 'builtins.tuple', 'builtins.bytes', 'builtins.bytearray', '_codecs.encode',
  ...NUMPY_ALLOWED,
]);

/** torch's own rebuilders for tensors without plain dense values: named, with what to save instead. */
export const TORCH_UNSUPPORTED: ReadonlyMap<string, string> = new Map([
  ['torch._utils._rebuild_sparse_tensor', 'sparse tensors are not supported; save t.to_dense()'],
  ['torch._utils._rebuild_sparse_csr_tensor', 'sparse tensors are not supported; save t.to_dense()'],
  ['torch._utils._rebuild_qtensor', 'quantized tensors are not supported; save t.dequantize()'],
  ['torch._utils._rebuild_meta_tensor_no_storage', 'meta tensors hold no values'],
  ['torch._utils._rebuild_wrapper_subclass', 'tensor subclasses (DTensor and the like) are not supported; save plain tensors'],
  ['torch._utils._rebuild_device_tensor_from_numpy', 'tensors of XLA/TPU devices are not supported; move them to the CPU before saving'],
]);

/** Where a tensor's bytes are: a storage, and for legacy views the part of a larger one. */
export interface StorageRef {
  readonly key: string;
  readonly dtype: DType;
  readonly numel: number;
  /** Legacy files: the storage is elements [viewOffset, viewOffset + numel) of storage `key`. */
  readonly viewOffset: number;
}

export interface TensorRecord {
  /** Container keys from the root, e.g. ['state_dict', 'conv1.weight']. */
  readonly path: readonly string[];
  readonly storage: StorageRef;
  readonly dtype: DType;
  /** In elements of `dtype`, from the start of the storage. */
  readonly offset: number;
  readonly shape: readonly number[];
  readonly stride: readonly number[];
}

export interface Interpreted {
  readonly tensors: TensorRecord[];
  /** Plain values at the top level (`epoch`, `arch`, `best_acc1`…), for metadata. */
  readonly values: Record<string, string | number | boolean | null>;
}

/**
 * Finds every tensor in the saved object. `storageOf` turns a persistent id into a storage (the
 * zip and legacy containers spell them differently); `fail` makes an error at a given path.
 */
export function interpret(root: PyValue, storageOf: (id: PyValue, where: string) => StorageRef, fail: (where: string, detail: string) => Error): Interpreted {
  const tensors: TensorRecord[] = [];
  const notInStateDict = new Set<string>();
  const where = (path: readonly string[]) => (path.length ? `'${path.join('/')}'` : 'the saved object');
  walk(
    root,
    (path, value) => {
      if (notInStateDict.has(path.join('\0'))) return true;
      if (!(value instanceof PyCall)) return false;
      if (value.fn.opaque) {
        // An inert object whose attributes may hold tensors: a pickled nn.Module keeps them in
        // `_parameters` / `_buffers`, less the buffers registered with persistent=False.
        for (const name of nonPersistentBuffers(value)) notInStateDict.add([...path, '_buffers', name].join('\0'));
        return false;
      }
      tensors.push(...tensorOf(value, path));
      return true;
    },
    (detail) => fail('pickle', detail),
  );

  function tensorOf(call: PyCall, path: readonly string[]): TensorRecord[] {
    const name = call.fn.qualified;
    const a = call.args;
    if (REBUILD_PARAMETER.has(name)) return a[0] instanceof PyCall ? tensorOf(a[0], path) : bad(path, `${name} of something that is not a tensor`);
    if (name === FROM_TYPE) {
      const [fn, , args] = a;
      if (!(fn instanceof PyGlobal) || !(args instanceof PyTuple)) return bad(path, `${FROM_TYPE} with unexpected arguments`);
      return tensorOf(new PyCall(fn, args.items), path);
    }
    if (!REBUILD_TENSOR.has(name)) return []; // numpy arrays and scalars, torch.device: values, not tensors
    const [storageId, offsetValue, sizeValue, strideValue] = a;
    if (!(storageId instanceof PyPersistent)) return bad(path, `${name}: the storage is not a persistent id`);
    const storage = storageOf(storageId.id, `tensor ${where(path)}`);
    const offset = asInt(offsetValue);
    const shape = asInts(sizeValue);
    const stride = asInts(strideValue);
    if (offset === undefined || offset < 0) return bad(path, `storage offset ${String(offsetValue)} is not a non-negative integer`);
    if (!shape || shape.some((d) => d < 0)) return bad(path, 'size is not a tuple of non-negative integers');
    if (!stride || stride.length !== shape.length) return bad(path, `stride does not match the ${shape.length} dims of the size`);
    if (stride.some((s) => s < 0)) return bad(path, `negative stride (${stride.join(', ')}) is not supported`);
    let dtype = storage.dtype;
    if (name.endsWith('_v3')) {
      const dtypeGlobal = a[4];
      const named = dtypeGlobal instanceof PyGlobal && dtypeGlobal.module === 'torch' ? TORCH_DTYPES[dtypeGlobal.name] : undefined;
      if (!named) return bad(path, '_rebuild_tensor_v3 without a known torch dtype');
      dtype = named;
    }
    const numel = numelOf(shape);
    if (numel === undefined) return bad(path, `size (${shape.join(', ')}) has too many elements`);
    const width = dtypeBits(dtype) / 8;
    const storageBytes = byteLengthOf(storage.dtype, storage.numel);
    if (numel > 0) {
      const last = offset + shape.reduce((n, d, i) => n + (d - 1) * stride[i]!, 0);
      if ((last + 1) * width > storageBytes) {
        return bad(path, `view [offset ${offset}, size (${shape.join(', ')}), stride (${stride.join(', ')})] reaches element ${last}, outside its storage '${storage.key}' of ${storageBytes / width} elements`);
      }
    }
    return [{ path, storage, dtype, offset, shape, stride }];
  }

  function bad(path: readonly string[], detail: string): never {
    throw fail(`tensor ${where(path)}`, detail);
  }

  const values: Record<string, string | number | boolean | null> = {};
  if (root instanceof PyDict) {
    for (const [k, v] of root.entries) {
      if (typeof k === 'string' && (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean' || v === null)) values[k] = v;
    }
  }
  return { tensors, values };
}

/** The names in a pickled module's `_non_persistent_buffers_set`: buffers `state_dict()` leaves out. */
function nonPersistentBuffers(object: PyCall): string[] {
  const state = object.state instanceof PyDict ? object.state.entries.get('_non_persistent_buffers_set') : undefined;
  return state instanceof PySet ? state.items.filter((n): n is string => typeof n === 'string') : [];
}

/** Reads a `('storage', torch.XStorage, key, location, numel[, view])` persistent id. */
export function storageId(id: PyValue): { type: DType; key: string; numel: number; view: PyValue } | string {
  if (!(id instanceof PyTuple) || id.items[0] !== 'storage') return "the persistent id is not a ('storage', …) tuple";
  const [, type, key, , numel, view] = id.items;
  const dtype = type instanceof PyGlobal && (type.module === 'torch' || type.module === 'torch.cuda') ? STORAGE_DTYPES[type.name] : undefined;
  if (!dtype) return `unknown storage type ${type instanceof PyGlobal ? type.qualified : String(type)}`;
  if (typeof key !== 'string') return 'the storage key is not a string';
  const n = asInt(numel);
  if (n === undefined || n < 0) return `storage '${key}' has an invalid element count`;
  return { type: dtype, key, numel: n, view: view ?? null };
}

/** Keys under which training checkpoints keep the model's weights. */
const MODEL_KEYS = ['state_dict', 'model_state_dict', 'model', 'net', 'network', 'module'];
/** Top-level keys of optimizer and training state: listed only with --all. */
const OPTIMIZER_KEY = /^(optimizer|optim|optimizers|optimizer_state_dict|optimizer_states|lr_scheduler|scheduler|scaler|amp|grad_scaler)$/;

/** The attributes of a pickled `nn.Module` that hold its submodules and tensors. */
const MODULE_SLOTS = new Set(['_modules', '_parameters', '_buffers']);

export interface Named {
  readonly source: string;
  readonly name: string;
  readonly group: 'model' | 'optimizer';
}

/**
 * Source names join the container keys with `/`. Canonical names drop the wrapper key of a
 * training checkpoint (`state_dict/…`), the `module.` prefix DataParallel adds and the
 * `_orig_mod.` one torch.compile adds.
 */
export function nameTensors(records: readonly TensorRecord[]): Named[] {
  const firstKeys = new Set(records.filter((r) => r.path.length > 1).map((r) => r.path[0]!));
  const wrapper = MODEL_KEYS.find((k) => firstKeys.has(k));
  return records.map((r) => {
    const source = r.path.join('/') || 'tensor';
    const group = r.path.length > 1 && OPTIMIZER_KEY.test(r.path[0]!) ? 'optimizer' : 'model';
    const parts = wrapper && r.path[0] === wrapper ? r.path.slice(1) : [...r.path];
    // A pickled nn.Module: `_modules/conv1/_parameters/weight` is what state_dict() calls `conv1.weight`.
    const inModule = parts.some((p) => p === '_parameters' || p === '_buffers');
    const joined = inModule ? parts.filter((p) => !MODULE_SLOTS.has(p)).join('.') : parts.join('/');
    const name = joined.replace(/^((module|_orig_mod)\.)+/, '');
    return { source, name: name || source, group };
  });
}
