import { alignedView, castFloats, isCastableFloat } from '../../core/cast.js';
import { dtypeBits } from '../../core/dtype.js';
import { invalidInput, usageError } from '../../core/errors.js';
import { ggmlBlockTypes, type GgmlType } from '../../core/ggml.js';
import { firstNonFinite, firstOverflowingBlock, quantizableTypes, quantizeBlocks } from '../../core/ggml-quantize.js';
import type { TensorInfo } from '../../core/statedict.js';
import { parsePattern, type Pattern } from '../../ops/select.js';

/**
 * `--quantize TYPE[:PATTERN]` for GGUF output: float weights become ggml blocks of TYPE (q8_0,
 * q4_0…, q6_k…), made by ggml's reference quantizers. A rule with a pattern wins over the one
 * without (`--quantize q4_0 --quantize q8_0:lm_head.weight`); two patterned rules of different
 * types selecting one tensor is an error.
 */
export interface GgufQuantizeRule {
  readonly type: string;
  readonly pattern?: Pattern;
}

/**
 * Whether a `--quantize` value names a ggml block type (GGUF's; any, so that one ckpt does not
 * write is refused as such) rather than a TF.js dtype.
 */
export function isGgufQuantizeValue(value: string): boolean {
  const type = value.split(':', 1)[0]!.toLowerCase();
  return ggmlBlockTypes().some((t) => t.name === type);
}

export function ggufTypeNames(): string {
  return quantizableTypes().map((t) => t.name).join(', ');
}

export function parseGgufQuantizeRules(values: readonly string[]): GgufQuantizeRule[] {
  return values.map((value) => {
    const colon = value.indexOf(':');
    const type = (colon === -1 ? value : value.slice(0, colon)).toLowerCase();
    if (!quantizableTypes().some((t) => t.name === type)) throw usageError(`--quantize ${value}: ckpt quantizes GGUF to ${ggufTypeNames()} (the types it matches ggml's reference quantizers on byte for byte)`);
    const pattern = colon === -1 ? undefined : value.slice(colon + 1);
    return pattern === undefined || pattern === '*' ? { type } : { type, pattern: parsePattern(pattern) };
  });
}

/** The block type the rules give a tensor (by canonical name), if any. */
export function ggufRuleFor(name: string, rules: readonly GgufQuantizeRule[]): GgmlType | undefined {
  const patterned = new Set(rules.filter((r) => r.pattern?.test(name)).map((r) => r.type));
  if (patterned.size > 1) throw usageError(`--quantize: ${[...patterned].join(' and ')} both select '${name}'; a tensor takes one type`);
  const type = [...patterned][0] ?? rules.find((r) => !r.pattern)?.type;
  return type === undefined ? undefined : quantizableTypes().find((t) => t.name === type);
}

/**
 * Why a tensor a rule selects stays float, by llama.cpp's rule (llama-quantize quantizes only
 * matrices, never norms, and a row must fill whole blocks), or undefined when it can be quantized.
 */
export function keptFloatReason(tensor: Pick<TensorInfo, 'name' | 'dtype' | 'shape'>, type: GgmlType): string | undefined {
  if (!isCastableFloat(tensor.dtype)) return `${tensor.dtype}, not floating`;
  if (tensor.shape.length < 2) return `${tensor.shape.length}-D`;
  if (/(^|[._/])[a-z0-9_]*norm[a-z0-9_]*[./](weight|bias)$/i.test(tensor.name)) return 'a norm';
  const row = tensor.shape.at(-1)!;
  if (row % type.blockSize !== 0) return `rows of ${row}, not a multiple of ${type.blockSize}`;
  return undefined;
}

/** Elements converted to float32 and quantized at a time: bounds the float32 copy of a tensor stored as f16/bf16/f64. */
const CHUNK_ELEMENTS = 1 << 20;

/**
 * The tensor's blocks of `type`, quantized chunk by chunk from its values (read once); NaN,
 * infinities and blocks whose float16 scale overflows are refused, naming the tensor and element.
 */
export async function quantizeTensor(tensor: TensorInfo, type: GgmlType, file: string): Promise<Uint8Array> {
  const bytes = await tensor.read();
  const width = dtypeBits(tensor.dtype) / 8;
  const count = bytes.byteLength / width;
  const out = new Uint8Array((count / type.blockSize) * type.typeSize);
  const chunk = CHUNK_ELEMENTS - (CHUNK_ELEMENTS % type.blockSize);
  for (let start = 0; start < count; start += chunk) {
    const end = Math.min(count, start + chunk);
    const values = alignedView(castFloats(bytes.subarray(start * width, end * width), tensor.dtype, 'float32'), Float32Array);
    const bad = firstNonFinite(values);
    if (bad !== -1) {
      throw invalidInput(file, `tensor '${tensor.name}'`, `element ${start + bad} is ${values[bad]}: ggml's ${type.name} blocks take finite values (leave the tensor out of --quantize to keep it float)`);
    }
    const outAt = (start / type.blockSize) * type.typeSize;
    quantizeBlocks(type, values, out, outAt);
    const overflow = firstOverflowingBlock(type, out.subarray(outAt, (end / type.blockSize) * type.typeSize));
    if (overflow !== -1) {
      const first = start + overflow * type.blockSize;
      throw invalidInput(file, `tensor '${tensor.name}'`, `elements ${first}–${first + type.blockSize - 1} need a ${type.name} scale beyond float16's 65504 (leave the tensor out of --quantize to keep it float)`);
    }
  }
  return out;
}
