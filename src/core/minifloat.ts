/**
 * The element types of the OCP Microscaling spec (MX v1.0): a sign, `exponentBits`, `mantissaBits`,
 * no infinities and no NaN; a zero exponent is subnormal. ml_dtypes' `float4_e2m1fn` is E2M1 with
 * bias 1.
 */
export interface Minifloat {
  readonly exponentBits: number;
  readonly mantissaBits: number;
  readonly bias: number;
}

export const FLOAT4_E2M1: Minifloat = { exponentBits: 2, mantissaBits: 1, bias: 1 };

/** The value of one code: its low 1 + exponentBits + mantissaBits bits, `0bS E… M…`. */
export function minifloatValue(code: number, format: Minifloat): number {
  const { exponentBits, mantissaBits, bias } = format;
  const mantissa = code & ((1 << mantissaBits) - 1);
  const exponent = (code >> mantissaBits) & ((1 << exponentBits) - 1);
  const sign = (code >> (mantissaBits + exponentBits)) & 1 ? -1 : 1;
  const fraction = mantissa / (1 << mantissaBits);
  return sign * (exponent === 0 ? fraction * 2 ** (1 - bias) : (1 + fraction) * 2 ** (exponent - bias));
}

const FLOAT4_E2M1_VALUES = Float32Array.from({ length: 16 }, (_, code) => minifloatValue(code, FLOAT4_E2M1));

/**
 * Packed E2M1 codes, two a byte with the first element in the low nibble (as torch's
 * `float4_e2m1fn_x2` and ONNX's FLOAT4E2M1 pack them), as float32 values (every one exact).
 */
export function float4e2m1ToFloat32(bytes: Uint8Array, numel: number): Float32Array {
  const out = new Float32Array(numel);
  for (let i = 0; i < numel; i++) out[i] = FLOAT4_E2M1_VALUES[(bytes[i >> 1]! >> ((i & 1) * 4)) & 0xf]!;
  return out;
}
