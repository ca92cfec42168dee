import { invalidInput, usageError } from '../core/errors.js';
import { fromFloat64, halfToNumber, isNumeric, toFloat64 } from '../core/decode.js';
import { numelOf } from '../core/dtype.js';
import { numpyReader } from '../formats/numpy/index.js';
import { loadOrt } from './session.js';
import type * as Ort from 'onnxruntime-node';
import { seededRandom } from '../core/random.js';

/**
 * The inputs of one forward pass, shared by `check` and `compare`: generated from a fixed seed for
 * every input type onnxruntime-node takes, or given by the user (`--input NAME=VALUE|FILE.npy`),
 * with dynamic dims from `--shape` or from symbolic dims that a given input already fixed.
 */
export interface InputReport {
  name: string;
  dtype: string;
  shape: number[];
  /** Where the values come from: generated from the seed, a value on the command line, or a .npy file. */
  from: 'generated' | 'value' | 'file';
}

export interface InputOptions {
  /** `--shape` texts, `images=1x3x320x320`. */
  shape?: readonly string[];
  /** `--input` texts, `sr=16000`, `mask=1,1,0`, `x=batch.npy`. */
  input?: readonly string[];
  /** Seed of the generated values (default 0). */
  seed?: number;
}

type OrtTensor = Ort.Tensor;
type InputMetadata = Ort.InferenceSession.ValueMetadata & { isTensor: true; type: string; shape: readonly (number | string)[] };

/** `--shape images=1x3x320x320` → name → dims. */
export function parseShapes(values: readonly string[] | undefined): Map<string, number[]> {
  const shapes = new Map<string, number[]>();
  for (const text of values ?? []) {
    const m = /^(.+)=(\d+(?:x\d+)*)$/.exec(text);
    if (!m) throw usageError(`--shape '${text}': expected NAME=DIMxDIMx…, e.g. images=1x3x320x320`);
    shapes.set(m[1]!, m[2]!.split('x').map(Number));
  }
  return shapes;
}

/** `--input sr=16000` → name → the text after `=` (a number, a comma list, or a .npy path). */
export function parseInputValues(values: readonly string[] | undefined): Map<string, string> {
  const given = new Map<string, string>();
  for (const text of values ?? []) {
    const at = text.indexOf('=');
    if (at <= 0 || at === text.length - 1) throw usageError(`--input '${text}': expected NAME=VALUE, NAME=V1,V2,… or NAME=FILE.npy`);
    given.set(text.slice(0, at), text.slice(at + 1));
  }
  return given;
}

/** A name given in --shape or --input that the model does not have is a usage error naming the inputs. */
function requireKnownNames(option: string, names: Iterable<string>, inputs: readonly string[]): void {
  for (const name of names) {
    if (!inputs.includes(name)) throw usageError(`${option} ${name}: the model has no input '${name}'; its inputs are ${inputs.join(', ')}`);
  }
}

export interface Feeds {
  feeds: Record<string, OrtTensor>;
  inputs: InputReport[];
}

/**
 * The feeds for `session`: given values first (they may fix symbolic dims such as `batch`), then
 * generated ones. `label` names the model in errors.
 */
export async function makeFeeds(session: Ort.InferenceSession, options: InputOptions, label: string): Promise<Feeds> {
  const ort = await loadOrt();
  const metas = session.inputMetadata.map((meta) => {
    if (!meta.isTensor) throw invalidInput(label, `input '${meta.name}'`, 'only tensor inputs can be fed');
    return meta as InputMetadata;
  });
  const names = metas.map((m) => m.name);
  const shapes = parseShapes(options.shape);
  const values = parseInputValues(options.input);
  requireKnownNames('--shape', shapes.keys(), names);
  requireKnownNames('--input', values.keys(), names);
  const symbols = new Map<string, number>();
  const bind = (meta: InputMetadata, dims: readonly number[]) => {
    meta.shape.forEach((d, i) => {
      if (typeof d === 'string' && !symbols.has(d)) symbols.set(d, dims[i]!);
    });
  };
  for (const meta of metas) {
    const given = shapes.get(meta.name);
    if (!given) continue;
    if (given.length !== meta.shape.length) throw usageError(`--shape ${meta.name}: ${given.length} dims given, the model's input has ${meta.shape.length}`);
    meta.shape.forEach((d, i) => {
      if (typeof d === 'number' && d >= 0 && d !== given[i]) throw usageError(`--shape ${meta.name}: dim ${i} is fixed to ${d} in the model, ${given[i]} given`);
    });
    bind(meta, given);
  }
  const feeds: Record<string, OrtTensor> = {};
  const inputs: InputReport[] = [];
  // Given values first: a .npy's shape fixes symbolic dims that other inputs share.
  for (const meta of metas) {
    const text = values.get(meta.name);
    if (text === undefined) continue;
    const { tensor, from } = await givenTensor(ort, meta, text, label, shapes.get(meta.name) ?? resolvedShape(meta, symbols));
    bind(meta, tensor.dims);
    feeds[meta.name] = tensor;
    inputs.push({ name: meta.name, dtype: meta.type, shape: [...tensor.dims], from });
  }
  const seed = options.seed ?? 0;
  metas.forEach((meta, index) => {
    if (feeds[meta.name]) return;
    const shape = shapes.get(meta.name) ?? resolvedShape(meta, symbols);
    const unresolved = meta.shape.some((d) => (typeof d !== 'number' || d < 0) && !(typeof d === 'string' && symbols.has(d)));
    if (unresolved && !shapes.has(meta.name) && shape.length > 2) {
      process.stderr.write(`ckpt: warning: input '${meta.name}' has dynamic dims [${meta.shape.join(', ')}]; using [${shape.join(', ')}] (set them with --shape ${meta.name}=${shape.join('x')})\n`);
    }
    feeds[meta.name] = generatedTensor(ort, meta.type, shape, seed + index, label, meta.name);
    inputs.push({ name: meta.name, dtype: meta.type, shape, from: 'generated' });
  });
  return { feeds, inputs: metas.map((m) => inputs.find((i) => i.name === m.name)!) };
}

/** Fixed dims as they are; symbolic ones as bound by another input, else 1. */
function resolvedShape(meta: InputMetadata, symbols: ReadonlyMap<string, number>): number[] {
  return meta.shape.map((d) => (typeof d === 'number' && d >= 0 ? d : typeof d === 'string' ? symbols.get(d) ?? 1 : 1));
}

/**
 * Generated values: floats uniform in [0, 1); integers 0 or 1 (an index valid for any axis of
 * length ≥ 2, and a mask either way); booleans true or false — all from the seed.
 */
export function generatedTensor(ort: typeof Ort, type: string, shape: number[], seed: number, label: string, name: string): OrtTensor {
  const count = numelOf(shape);
  if (count === undefined) throw usageError(`input '${name}': shape [${shape.join(', ')}] is too large`);
  const next = seededRandom(seed);
  const floats = () => Float64Array.from({ length: count }, next);
  const bits = () => Array.from({ length: count }, () => (next() < 0.5 ? 0 : 1));
  if (type === 'float16' || type === 'float32' || type === 'float64') return tensorOf(ort, type, fromFloat64(floats(), type), shape);
  if (type === 'bool') return new ort.Tensor('bool', Uint8Array.from(bits()), shape);
  if (INTEGER_ARRAYS[type]) return integerTensor(ort, type, bits(), shape);
  throw unsupportedType(label, name, type);
}

function unsupportedType(label: string, name: string, type: string) {
  return invalidInput(label, `input '${name}'`, `cannot feed a ${type} input: ckpt generates and converts float, integer and bool inputs${type === 'bfloat16' ? ' (onnxruntime-node takes no bfloat16 tensors)' : ''}`);
}

const INTEGER_ARRAYS: Record<string, new (n: number) => ArrayLike<number | bigint> & { [i: number]: number | bigint }> = {
  int8: Int8Array, int16: Int16Array, int32: Int32Array, int64: BigInt64Array,
  uint8: Uint8Array, uint16: Uint16Array, uint32: Uint32Array, uint64: BigUint64Array,
};

function integerTensor(ort: typeof Ort, type: string, values: readonly number[], shape: readonly number[]): OrtTensor {
  const array = new INTEGER_ARRAYS[type]!(values.length);
  const big = type === 'int64' || type === 'uint64';
  values.forEach((v, i) => {
    array[i] = big ? BigInt(v) : v;
  });
  return new ort.Tensor(type as 'int32', array as Int32Array, shape);
}

/** A float tensor from little-endian bytes of its dtype (float16 as its 16-bit patterns). */
function tensorOf(ort: typeof Ort, type: 'float16' | 'float32' | 'float64', bytes: Uint8Array, shape: readonly number[]): OrtTensor {
  const buffer = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
  if (type === 'float16') return new ort.Tensor('float16', new Uint16Array(buffer), shape);
  if (type === 'float32') return new ort.Tensor('float32', new Float32Array(buffer), shape);
  return new ort.Tensor('float64', new Float64Array(buffer), shape);
}

/** An input from `--input`: a .npy file (its shape), or a scalar / comma list filling the input's shape. */
async function givenTensor(ort: typeof Ort, meta: InputMetadata, text: string, label: string, shape: number[]): Promise<{ tensor: OrtTensor; from: 'value' | 'file' }> {
  if (/\.npy$/i.test(text)) {
    const dict = await numpyReader.open(text, {});
    try {
      const array = dict.tensors[0]!;
      checkGivenShape(meta, array.shape, `--input ${meta.name}=${text}`);
      if (!isNumeric(array.dtype)) throw invalidInput(text, undefined, `a ${array.dtype} array; an input needs numbers or booleans`);
      const values = toFloat64(await array.read(), array.dtype);
      return { tensor: numericTensor(ort, meta, values, array.shape, label), from: 'file' };
    } finally {
      await dict.close();
    }
  }
  const parts = text.split(',').map((part) => part.trim());
  const values = parts.map((part) => {
    const value = part === 'true' ? 1 : part === 'false' ? 0 : /^[+-]?inf$/i.test(part) ? Number(`${part.replace(/inf/i, '')}1`) * Infinity : part === '' ? NaN : Number(part);
    if (Number.isNaN(value) && !/^nan$/i.test(part)) throw usageError(`--input ${meta.name}=${text}: '${part}' is not a number`);
    return value;
  });
  const count = numelOf(shape) ?? 0;
  // One value fills the input; a list is its values in order (a 1-D list for a 1-D input of dynamic length).
  const dims = values.length === 1 ? shape : meta.shape.length === 1 ? [values.length] : shape;
  if (values.length !== 1 && values.length !== count && meta.shape.length !== 1) {
    throw usageError(`--input ${meta.name}: ${values.length} values given, the input [${shape.join(', ')}] holds ${count} (give one value to fill it, or a .npy)`);
  }
  checkGivenShape(meta, dims, `--input ${meta.name}`);
  const filled = values.length === 1 ? new Float64Array(numelOf(dims) ?? 0).fill(values[0]!) : Float64Array.from(values);
  return { tensor: numericTensor(ort, meta, filled, dims, label), from: 'value' };
}

function checkGivenShape(meta: InputMetadata, dims: readonly number[], what: string): void {
  const fits = dims.length === meta.shape.length && meta.shape.every((d, i) => typeof d !== 'number' || d < 0 || d === dims[i]);
  if (!fits) throw usageError(`${what}: shape [${dims.join(', ')}] does not fit the model's input [${meta.shape.join(', ')}]`);
}

/** Values converted to the input's dtype (integers rounded toward zero, as numpy's astype does). */
function numericTensor(ort: typeof Ort, meta: InputMetadata, values: Float64Array, shape: readonly number[], label: string): OrtTensor {
  const type = meta.type;
  if (type === 'float16' || type === 'float32' || type === 'float64') return tensorOf(ort, type, fromFloat64(values, type), shape);
  if (type === 'bool') return new ort.Tensor('bool', Uint8Array.from(values, (v) => (v ? 1 : 0)), shape);
  if (INTEGER_ARRAYS[type]) return integerTensor(ort, type, Array.from(values, Math.trunc), shape);
  throw unsupportedType(label, meta.name, type);
}

/** An output's values as float64 for comparisons (float16 decoded, 64-bit integers beyond 2^53 rounded). */
export function valuesOf(tensor: OrtTensor): Float64Array {
  const data = tensor.data;
  if (tensor.type === 'float16') return Float64Array.from(data as Uint16Array, halfToNumber);
  if (data instanceof BigInt64Array || data instanceof BigUint64Array) return Float64Array.from(data, Number);
  if (Array.isArray(data)) throw new Error(`${tensor.type} values are not numbers`);
  return Float64Array.from(data as ArrayLike<number>);
}
