import { castFloats, castsToInt32, float32BitsToHalf, integersToInt32, isCastableFloat } from '../../core/cast.js';
import { numelOf } from '../../core/dtype.js';
import { CkptError, ExitCode, usageError } from '../../core/errors.js';
import type { TensorEncoding } from '../../core/encoding.js';
import type { TensorInfo } from '../../core/statedict.js';
import { parsePattern, type Pattern } from '../../ops/select.js';
import type { ManifestEntry, Quantization } from './manifest.js';

/**
 * TF.js weights as tensorflowjs_converter stores them: float32, int32, bool and complex64, with
 * float32 weights optionally quantized (`quantization` in the manifest) to uint8/uint16 (affine:
 * value = q·scale + min) or float16. Other dtypes are converted on the way: floats to float32
 * (float16 as float16 quantization, so nothing is lost), integers to int32 where every value fits.
 */
export type QuantizeDType = Quantization['dtype'];

/** `--quantize DTYPE[:PATTERN]`: quantize the float weights PATTERN selects (all without one); `none` drops the input's. */
export interface QuantizeRule {
  readonly dtype: QuantizeDType | 'none';
  readonly pattern?: Pattern;
}

const QUANTIZE_DTYPES: readonly string[] = ['uint8', 'uint16', 'float16'];

export function parseQuantizeRules(values: readonly string[] | undefined): QuantizeRule[] {
  return (values ?? []).map((value) => {
    const colon = value.indexOf(':');
    const dtype = colon === -1 ? value : value.slice(0, colon);
    const pattern = colon === -1 ? undefined : value.slice(colon + 1);
    if (dtype === 'none') {
      if (pattern !== undefined) throw usageError(`--quantize ${value}: 'none' takes no pattern`);
      return { dtype };
    }
    if (!QUANTIZE_DTYPES.includes(dtype)) throw usageError(`--quantize ${value}: expected uint8, uint16 or float16 (optionally :PATTERN), or none`);
    // `uint8:*` is tensorflowjs_converter's "every weight"; otherwise a ckpt pattern on canonical names.
    return pattern === undefined || pattern === '*' ? { dtype: dtype as QuantizeDType } : { dtype: dtype as QuantizeDType, pattern: parsePattern(pattern) };
  });
}

/** The quantization the rules give a weight; two rules of different dtypes selecting one weight is an error, as in tensorflowjs_converter. */
export function ruleFor(name: string, rules: readonly QuantizeRule[]): QuantizeRule['dtype'] | undefined {
  const dtypes = new Set(rules.filter((r) => !r.pattern || r.pattern.test(name)).map((r) => r.dtype));
  if (dtypes.size > 1) throw usageError(`--quantize: ${[...dtypes].join(' and ')} both select '${name}'; a weight takes one quantization`);
  return [...dtypes][0];
}

/**
 * A manifest's quantization as the tensor's storage encoding: `uint8 affine` (value = q·scale + min)
 * or `float16`, with the parameters as the manifest states them, so that a rewrite can keep it.
 */
export function encodingOf(q: Quantization, byteLength: number, readStored: () => Promise<Uint8Array>): TensorEncoding {
  const range = q.dtype === 'float16' ? undefined : { min: q.min!, scale: q.scale! };
  return {
    stored: q.dtype,
    label: range ? `${q.dtype} affine` : q.dtype,
    byteLength,
    ...(range ? { range } : {}),
    ...(typeof q.original_dtype === 'string' ? { originalDtype: q.original_dtype } : {}),
    readStored,
  };
}

/** The TF.js quantization an encoding is, when it is one TF.js can store (not TFLite's zero points, not ggml blocks). */
function quantizationOf(e: TensorEncoding): Quantization | undefined {
  const kept = (dtype: QuantizeDType): Quantization => ({
    dtype,
    ...(e.range ? { min: e.range.min, scale: e.range.scale } : {}),
    ...(e.originalDtype !== undefined ? { original_dtype: e.originalDtype } : {}),
  });
  if ((e.stored === 'uint8' || e.stored === 'uint16') && e.range && !e.affine) return kept(e.stored);
  if (e.stored === 'float16' && !e.range && !e.affine) return kept('float16');
  return undefined;
}

/** A weight as it goes into the shards: its manifest entry (quantization filled in by `read`) and its stored bytes. */
export interface StoredWeight {
  readonly entry: ManifestEntry;
  readonly storedLength: number;
  /** What was done to it, for the write's notes: `int64 → int32`, `quantized uint8`… */
  readonly change?: string;
  read(): Promise<Uint8Array>;
}

/**
 * How one tensor is stored: kept as read (a quantized input stays quantized unless a rule says
 * otherwise), quantized by the rules, or converted to a TF.js dtype.
 */
export function storedWeight(name: string, tensor: TensorInfo, rules: readonly QuantizeRule[], input: string): StoredWeight {
  const shape = [...tensor.shape];
  const numel = numelOf(shape)!;
  const rule = ruleFor(tensor.name, rules);
  const encoding = tensor.encoding;
  const kept = encoding && quantizationOf(encoding);
  // float16 storage holds float32 weights only; uint8/uint16 also int32 ones.
  if (encoding && kept && (rule === undefined || rule === kept.dtype) && (tensor.dtype === 'float32' || (tensor.dtype === 'int32' && kept.dtype !== 'float16'))) {
    return { entry: { name, shape, dtype: tensor.dtype, quantization: kept }, storedLength: encoding.byteLength, read: () => encoding.readStored() };
  }
  if (isCastableFloat(tensor.dtype)) {
    // A float16 tensor is stored as float16 quantization unless told otherwise: nothing is lost.
    const quantize = rule === 'none' ? undefined : rule ?? (tensor.dtype === 'float16' ? 'float16' : undefined);
    const change = tensor.dtype === 'float32' ? undefined : `${tensor.dtype} → float32`;
    const float32 = async () => new Float32Array((castFloats(await tensor.read(), tensor.dtype, 'float32').slice()).buffer);
    if (!quantize) {
      return { entry: { name, shape, dtype: 'float32' }, storedLength: numel * 4, ...(change ? { change } : {}), read: async () => castFloats(await tensor.read(), tensor.dtype, 'float32') };
    }
    const entry: ManifestEntry = { name, shape, dtype: 'float32' };
    return {
      entry,
      storedLength: numel * QUANTIZED_BYTES[quantize],
      change: tensor.dtype === 'float16' && quantize === 'float16' ? 'float16 (as float16 quantization)' : `quantized ${quantize}`,
      read: async () => {
        const values = await float32();
        const { bytes, quantization } = quantizeValues(values, quantize, tensor.name, input);
        entry.quantization = quantization;
        return bytes;
      },
    };
  }
  if (tensor.dtype === 'int32' || tensor.dtype === 'bool' || tensor.dtype === 'complex64') {
    return { entry: { name, shape, dtype: tensor.dtype }, storedLength: tensor.byteLength, read: () => tensor.read() };
  }
  if (castsToInt32(tensor.dtype)) {
    return {
      entry: { name, shape, dtype: 'int32' },
      storedLength: numel * 4,
      change: `${tensor.dtype} → int32`,
      read: async () => {
        const out = integersToInt32(await tensor.read(), tensor.dtype);
        if (out instanceof Uint8Array) return out;
        throw new CkptError(ExitCode.invalidInput, input, `tensor '${tensor.name}'`,
          `${tensor.dtype} value ${out.value} (element ${out.index}) does not fit int32, and TF.js has no ${tensor.dtype} type; the TF.js output was not written`);
      },
    };
  }
  throw new CkptError(ExitCode.invalidInput, input, `tensor '${tensor.name}'`, `TF.js cannot store ${tensor.dtype} (its weights are float32, int32, bool or complex64)`);
}

const QUANTIZED_BYTES: Record<QuantizeDType, number> = { uint8: 1, uint16: 2, float16: 2 };

/** Round half to even, as numpy's `np.round`. */
function roundHalfEven(x: number): number {
  const floor = Math.floor(x);
  const rest = x - floor;
  return rest > 0.5 || (rest === 0.5 && floor % 2 !== 0) ? floor + 1 : floor;
}

/**
 * tensorflowjs_converter's quantization: float16 by rounding to nearest even; uint8/uint16 affine
 * over [min, max] with the range nudged so that 0 is exactly representable when it is inside it
 * (TF Lite's scheme), q = round((clip(x) − min) / scale). A constant tensor is all zeros with
 * scale 1 and min its value.
 */
export function quantizeValues(values: Float32Array, dtype: QuantizeDType, name: string, input: string): { bytes: Uint8Array; quantization: Quantization } {
  if (dtype === 'float16') {
    const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
    const out = new Uint16Array(values.length);
    for (let i = 0; i < bits.length; i++) out[i] = float32BitsToHalf(bits[i]!);
    return { bytes: new Uint8Array(out.buffer), quantization: { dtype: 'float16', original_dtype: 'float32' } };
  }
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of values) {
    if (!Number.isFinite(v)) {
      throw new CkptError(ExitCode.invalidInput, input, `tensor '${name}'`, `holds ${v}; ${dtype} quantization maps a finite range [min, max] (leave it out with a pattern)`);
    }
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  const quantMax = dtype === 'uint8' ? 255 : 65535;
  const out = dtype === 'uint8' ? new Uint8Array(values.length) : new Uint16Array(values.length);
  if (values.length === 0 || lo === hi) {
    return { bytes: new Uint8Array(out.buffer), quantization: { dtype, min: values.length ? lo : 0, scale: 1, original_dtype: 'float32' } };
  }
  const scale = (hi - lo) / quantMax;
  let min = lo;
  let max = hi;
  if (lo <= 0 && 0 <= hi) {
    min = -roundHalfEven(-lo / scale) * scale;
    max = quantMax * scale + min;
  }
  for (let i = 0; i < values.length; i++) {
    const clipped = Math.min(Math.max(values[i]!, min), max);
    out[i] = Math.min(quantMax, Math.max(0, roundHalfEven((clipped - min) / scale)));
  }
  return { bytes: new Uint8Array(out.buffer), quantization: { dtype, min, scale, original_dtype: 'float32' } };
}
