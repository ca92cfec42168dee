import { halfToNumber } from './decode.js';
import type { DType } from './dtype.js';

/**
 * ggml's tensor types (the numbers GGUF stores), with their block geometry: `blockSize` elements
 * take `typeSize` bytes. Plain types map to a dtype; block types dequantize to float32 here, as
 * ggml's reference `dequantize_row_*` does (float32 arithmetic, element order of ggml-quants.c).
 */
export interface GgmlType {
  readonly id: number;
  /** Lowercase ggml name: `f32`, `q4_k`. */
  readonly name: string;
  readonly blockSize: number;
  readonly typeSize: number;
  /** Set for elementwise types. */
  readonly dtype?: DType;
  /** Block types ckpt can dequantize. */
  readonly dequantize?: (block: DataView, at: number, out: Float32Array, outAt: number) => void;
}

const QK_K = 256;
const f = Math.fround;
const half = (v: DataView, at: number) => halfToNumber(v.getUint16(at, true));

/** Q4_0: d, 16 bytes of nibbles; element j is the low nibble of byte j, element j+16 the high one, minus 8. */
function q4_0(v: DataView, at: number, y: Float32Array, o: number): void {
  const d = half(v, at);
  for (let j = 0; j < 16; j++) {
    const b = v.getUint8(at + 2 + j);
    y[o + j] = f(((b & 0xf) - 8) * d);
    y[o + j + 16] = f(((b >> 4) - 8) * d);
  }
}

function q4_1(v: DataView, at: number, y: Float32Array, o: number): void {
  const d = half(v, at);
  const m = half(v, at + 2);
  for (let j = 0; j < 16; j++) {
    const b = v.getUint8(at + 4 + j);
    y[o + j] = f(f((b & 0xf) * d) + m);
    y[o + j + 16] = f(f((b >> 4) * d) + m);
  }
}

/** Q5_0: d, 32 high bits (one per element), 16 bytes of low nibbles; minus 16. */
function q5_0(v: DataView, at: number, y: Float32Array, o: number): void {
  const d = half(v, at);
  const qh = v.getUint32(at + 2, true);
  for (let j = 0; j < 16; j++) {
    const b = v.getUint8(at + 6 + j);
    const h0 = ((qh >>> j) << 4) & 0x10;
    const h1 = (qh >>> (j + 12)) & 0x10;
    y[o + j] = f((((b & 0xf) | h0) - 16) * d);
    y[o + j + 16] = f((((b >> 4) | h1) - 16) * d);
  }
}

function q5_1(v: DataView, at: number, y: Float32Array, o: number): void {
  const d = half(v, at);
  const m = half(v, at + 2);
  const qh = v.getUint32(at + 4, true);
  for (let j = 0; j < 16; j++) {
    const b = v.getUint8(at + 8 + j);
    const h0 = ((qh >>> j) << 4) & 0x10;
    const h1 = (qh >>> (j + 12)) & 0x10;
    y[o + j] = f(f(((b & 0xf) | h0) * d) + m);
    y[o + j + 16] = f(f(((b >> 4) | h1) * d) + m);
  }
}

function q8_0(v: DataView, at: number, y: Float32Array, o: number): void {
  const d = half(v, at);
  for (let j = 0; j < 32; j++) y[o + j] = f(v.getInt8(at + 2 + j) * d);
}

/** Q8_1: as Q8_0 with the block sum `s` after d (not needed to dequantize). */
function q8_1(v: DataView, at: number, y: Float32Array, o: number): void {
  const d = half(v, at);
  for (let j = 0; j < 32; j++) y[o + j] = f(v.getInt8(at + 4 + j) * d);
}

/** Q2_K: scales[16] (low nibble scale, high nibble min), qs[64] of 2-bit values, d, dmin. */
function q2_k(v: DataView, at: number, y: Float32Array, o: number): void {
  const d = half(v, at + 80);
  const min = half(v, at + 82);
  let is = 0;
  for (let n = 0; n < QK_K; n += 128) {
    const q = at + 16 + n / 4;
    for (let shift = 0; shift < 8; shift += 2) {
      for (const half16 of [0, 16]) {
        const sc = v.getUint8(at + is++);
        const dl = f(d * (sc & 0xf));
        const ml = f(min * (sc >> 4));
        for (let l = 0; l < 16; l++) y[o++] = f(f(dl * ((v.getUint8(q + l + half16) >> shift) & 3)) - ml);
      }
    }
  }
}

/** The 16 six-bit signed scales of Q3_K, unpacked from 12 bytes as ggml's kmask shuffle does. */
function q3kScales(v: DataView, at: number): Int8Array {
  const aux = new Uint32Array([v.getUint32(at, true), v.getUint32(at + 4, true), v.getUint32(at + 8, true), 0]);
  const tmp = aux[2]!;
  const k1 = 0x03030303;
  const k2 = 0x0f0f0f0f;
  aux[2] = ((aux[0]! >>> 4) & k2) | (((tmp >>> 4) & k1) << 4);
  aux[3] = ((aux[1]! >>> 4) & k2) | (((tmp >>> 6) & k1) << 4);
  aux[0] = (aux[0]! & k2) | (((tmp >>> 0) & k1) << 4);
  aux[1] = (aux[1]! & k2) | (((tmp >>> 2) & k1) << 4);
  return new Int8Array(aux.buffer);
}

/** Q3_K: hmask[32] (the third bit, set = no offset), qs[64] of 2-bit values, scales[12], d. */
function q3_k(v: DataView, at: number, y: Float32Array, o: number): void {
  const d = half(v, at + 108);
  const scales = q3kScales(v, at + 96);
  let is = 0;
  let m = 1;
  for (let n = 0; n < QK_K; n += 128) {
    const q = at + 32 + n / 4;
    for (let shift = 0; shift < 8; shift += 2) {
      for (const half16 of [0, 16]) {
        const dl = f(d * (scales[is++]! - 32));
        for (let l = 0; l < 16; l++) {
          const low = (v.getUint8(q + l + half16) >> shift) & 3;
          const high = v.getUint8(at + l + half16) & m ? 0 : 4;
          y[o++] = f(dl * (low - high));
        }
      }
      m <<= 1;
    }
  }
}

/** Scale and min j (0..7) of Q4_K/Q5_K: six bits each, packed in 12 bytes (get_scale_min_k4). */
export function scaleMinK4(v: DataView, at: number, j: number): [number, number] {
  const q = (i: number) => v.getUint8(at + i);
  if (j < 4) return [q(j) & 63, q(j + 4) & 63];
  return [(q(j + 4) & 0xf) | ((q(j - 4) >> 6) << 4), (q(j + 4) >> 4) | ((q(j) >> 6) << 4)];
}

/** Q4_K: d, dmin, scales[12], qs[128]; each 64 elements use two (scale, min) pairs. */
function q4_k(v: DataView, at: number, y: Float32Array, o: number): void {
  const d = half(v, at);
  const min = half(v, at + 2);
  for (let j = 0, is = 0; j < QK_K; j += 64, is += 2) {
    const [s1, m1] = scaleMinK4(v, at + 4, is);
    const [s2, m2] = scaleMinK4(v, at + 4, is + 1);
    const d1 = f(d * s1), c1 = f(min * m1), d2 = f(d * s2), c2 = f(min * m2);
    const q = at + 16 + j / 2;
    for (let l = 0; l < 32; l++) y[o++] = f(f(d1 * (v.getUint8(q + l) & 0xf)) - c1);
    for (let l = 0; l < 32; l++) y[o++] = f(f(d2 * (v.getUint8(q + l) >> 4)) - c2);
  }
}

/** Q5_K: d, dmin, scales[12], qh[32] (fifth bits), qs[128]. */
function q5_k(v: DataView, at: number, y: Float32Array, o: number): void {
  const d = half(v, at);
  const min = half(v, at + 2);
  let u1 = 1, u2 = 2;
  for (let j = 0, is = 0; j < QK_K; j += 64, is += 2) {
    const [s1, m1] = scaleMinK4(v, at + 4, is);
    const [s2, m2] = scaleMinK4(v, at + 4, is + 1);
    const d1 = f(d * s1), c1 = f(min * m1), d2 = f(d * s2), c2 = f(min * m2);
    const ql = at + 48 + j / 2;
    for (let l = 0; l < 32; l++) y[o++] = f(f(d1 * ((v.getUint8(ql + l) & 0xf) + (v.getUint8(at + 16 + l) & u1 ? 16 : 0))) - c1);
    for (let l = 0; l < 32; l++) y[o++] = f(f(d2 * ((v.getUint8(ql + l) >> 4) + (v.getUint8(at + 16 + l) & u2 ? 16 : 0))) - c2);
    u1 <<= 2;
    u2 <<= 2;
  }
}

/** Q6_K: ql[128] low nibbles, qh[64] two high bits, scales[16] int8, d; minus 32. */
function q6_k(v: DataView, at: number, y: Float32Array, o: number): void {
  const d = half(v, at + 208);
  for (let n = 0; n < 2; n++) {
    const ql = at + n * 64;
    const qh = at + 128 + n * 32;
    const sc = at + 192 + n * 8;
    const out = o + n * 128;
    for (let l = 0; l < 32; l++) {
      const is = l >> 4;
      const lo = v.getUint8(ql + l), hi = v.getUint8(ql + l + 32), h = v.getUint8(qh + l);
      const q1 = ((lo & 0xf) | ((h & 3) << 4)) - 32;
      const q2 = ((hi & 0xf) | (((h >> 2) & 3) << 4)) - 32;
      const q3 = ((lo >> 4) | (((h >> 4) & 3) << 4)) - 32;
      const q4 = ((hi >> 4) | (((h >> 6) & 3) << 4)) - 32;
      y[out + l] = f(f(d * v.getInt8(sc + is)) * q1);
      y[out + l + 32] = f(f(d * v.getInt8(sc + is + 2)) * q2);
      y[out + l + 64] = f(f(d * v.getInt8(sc + is + 4)) * q3);
      y[out + l + 96] = f(f(d * v.getInt8(sc + is + 6)) * q4);
    }
  }
}

/** Q8_K: float32 d, qs[256] int8, bsums[16] (sums, not needed to dequantize). */
function q8_k(v: DataView, at: number, y: Float32Array, o: number): void {
  const d = v.getFloat32(at, true);
  for (let j = 0; j < QK_K; j++) y[o + j] = f(d * v.getInt8(at + 4 + j));
}

/** TQ2_0: qs[64] of 2-bit ternary values (0..2 → −1..1), d. */
function tq2_0(v: DataView, at: number, y: Float32Array, o: number): void {
  const d = half(v, at + 64);
  for (let j = 0; j < 64; j += 32) {
    for (let shift = 0; shift < 8; shift += 2) {
      for (let m = 0; m < 32; m++) y[o++] = f((((v.getUint8(at + j + m) >> shift) & 3) - 1) * d);
    }
  }
}

/** The 16 levels of IQ4_NL/IQ4_XS: a non-uniform 4-bit grid. */
const IQ4_LEVELS = [-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113];

function iq4_nl(v: DataView, at: number, y: Float32Array, o: number): void {
  const d = half(v, at);
  for (let j = 0; j < 16; j++) {
    const b = v.getUint8(at + 2 + j);
    y[o + j] = f(d * IQ4_LEVELS[b & 0xf]!);
    y[o + j + 16] = f(d * IQ4_LEVELS[b >> 4]!);
  }
}

/** IQ4_XS: d, scales_h (2 bits × 8), scales_l (4 bits × 8), qs[128]; 32-element sub-blocks on the IQ4 grid. */
function iq4_xs(v: DataView, at: number, y: Float32Array, o: number): void {
  const d = half(v, at);
  const scalesH = v.getUint16(at + 2, true);
  for (let ib = 0; ib < 8; ib++) {
    const low = (v.getUint8(at + 4 + (ib >> 1)) >> (4 * (ib % 2))) & 0xf;
    const ls = low | (((scalesH >> (2 * ib)) & 3) << 4);
    const dl = f(d * (ls - 32));
    const qs = at + 8 + ib * 16;
    for (let j = 0; j < 16; j++) {
      const b = v.getUint8(qs + j);
      y[o + ib * 32 + j] = f(dl * IQ4_LEVELS[b & 0xf]!);
      y[o + ib * 32 + j + 16] = f(dl * IQ4_LEVELS[b >> 4]!);
    }
  }
}

const TYPES: readonly GgmlType[] = [
  { id: 0, name: 'f32', blockSize: 1, typeSize: 4, dtype: 'float32' },
  { id: 1, name: 'f16', blockSize: 1, typeSize: 2, dtype: 'float16' },
  { id: 2, name: 'q4_0', blockSize: 32, typeSize: 18, dequantize: q4_0 },
  { id: 3, name: 'q4_1', blockSize: 32, typeSize: 20, dequantize: q4_1 },
  { id: 6, name: 'q5_0', blockSize: 32, typeSize: 22, dequantize: q5_0 },
  { id: 7, name: 'q5_1', blockSize: 32, typeSize: 24, dequantize: q5_1 },
  { id: 8, name: 'q8_0', blockSize: 32, typeSize: 34, dequantize: q8_0 },
  { id: 9, name: 'q8_1', blockSize: 32, typeSize: 36, dequantize: q8_1 },
  { id: 10, name: 'q2_k', blockSize: QK_K, typeSize: 84, dequantize: q2_k },
  { id: 11, name: 'q3_k', blockSize: QK_K, typeSize: 110, dequantize: q3_k },
  { id: 12, name: 'q4_k', blockSize: QK_K, typeSize: 144, dequantize: q4_k },
  { id: 13, name: 'q5_k', blockSize: QK_K, typeSize: 176, dequantize: q5_k },
  { id: 14, name: 'q6_k', blockSize: QK_K, typeSize: 210, dequantize: q6_k },
  { id: 15, name: 'q8_k', blockSize: QK_K, typeSize: 292, dequantize: q8_k },
  // The IQ1–IQ3 types index large codebooks: listed and hashed, but not dequantized here.
  { id: 16, name: 'iq2_xxs', blockSize: QK_K, typeSize: 66 },
  { id: 17, name: 'iq2_xs', blockSize: QK_K, typeSize: 74 },
  { id: 18, name: 'iq3_xxs', blockSize: QK_K, typeSize: 98 },
  { id: 19, name: 'iq1_s', blockSize: QK_K, typeSize: 50 },
  { id: 20, name: 'iq4_nl', blockSize: 32, typeSize: 18, dequantize: iq4_nl },
  { id: 21, name: 'iq3_s', blockSize: QK_K, typeSize: 110 },
  { id: 22, name: 'iq2_s', blockSize: QK_K, typeSize: 82 },
  { id: 23, name: 'iq4_xs', blockSize: QK_K, typeSize: 136, dequantize: iq4_xs },
  { id: 24, name: 'i8', blockSize: 1, typeSize: 1, dtype: 'int8' },
  { id: 25, name: 'i16', blockSize: 1, typeSize: 2, dtype: 'int16' },
  { id: 26, name: 'i32', blockSize: 1, typeSize: 4, dtype: 'int32' },
  { id: 27, name: 'i64', blockSize: 1, typeSize: 8, dtype: 'int64' },
  { id: 28, name: 'f64', blockSize: 1, typeSize: 8, dtype: 'float64' },
  { id: 29, name: 'iq1_m', blockSize: QK_K, typeSize: 56 },
  { id: 30, name: 'bf16', blockSize: 1, typeSize: 2, dtype: 'bfloat16' },
  { id: 34, name: 'tq1_0', blockSize: QK_K, typeSize: 54 },
  { id: 35, name: 'tq2_0', blockSize: QK_K, typeSize: 66, dequantize: tq2_0 },
  { id: 39, name: 'mxfp4', blockSize: 32, typeSize: 17 },
];

const BY_ID = new Map(TYPES.map((t) => [t.id, t]));
const BY_DTYPE = new Map(TYPES.filter((t) => t.dtype).map((t) => [t.dtype!, t]));

export function ggmlType(id: number): GgmlType | undefined {
  return BY_ID.get(id);
}

/** The ggml type storing a dtype elementwise (the GGUF writer's choice); undefined for dtypes ggml lacks. */
export function ggmlTypeOfDType(dtype: DType): GgmlType | undefined {
  return BY_DTYPE.get(dtype);
}

/** Block types by name, for tests and messages. */
export function ggmlBlockTypes(): readonly GgmlType[] {
  return TYPES.filter((t) => !t.dtype);
}

/** Dequantizes whole blocks of `type` into float32; `bytes` must hold exactly n blocks. */
export function dequantizeBlocks(type: GgmlType, bytes: Uint8Array): Float32Array {
  if (!type.dequantize) throw new Error(`cannot dequantize ${type.name}`);
  const blocks = bytes.byteLength / type.typeSize;
  const out = new Float32Array(blocks * type.blockSize);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let b = 0; b < blocks; b++) type.dequantize(view, b * type.typeSize, out, b * type.blockSize);
  return out;
}
