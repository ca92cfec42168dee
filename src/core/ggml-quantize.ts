import { numberToHalf } from './cast.js';
import { halfToNumber } from './decode.js';
import { ggmlBlockTypes, scaleMinK4, type GgmlType } from './ggml.js';

/**
 * ggml's reference quantizers (`quantize_row_*_ref` of ggml-quants.c), byte for byte: every step
 * in float32 as C computes it (Math.fround after each operation, no fused multiply-add), the same
 * rounding functions (`roundf`, the magic-number `nearest_int`, truncating casts) and float16
 * scales rounded to nearest even as GGML_FP32_TO_FP16 does. Checked against the C functions in
 * test/ggml-quantize.test.ts.
 */
type QuantizeBlock = (x: Float32Array, at: number, out: DataView, outAt: number) => void;

const f = Math.fround;
const QK_K = 256;
const FLT_MAX = 3.4028234663852886e38;
const GROUP_MAX_EPS = f(1e-15);
const ONE_TENTH = f(0.1);

const bits = new Float32Array(1);
const bitsAsInt = new Int32Array(bits.buffer);

/**
 * ggml's nearest_int: adds 1.5·2^23 in float32 and reads the mantissa, which rounds half to even
 * for |v| < 2^22 (the fast path here); beyond, the mantissa bits as C reads them.
 */
function nearestInt(value: number): number {
  if (value > -4194304 && value < 4194304) return f(value + 12582912) - 12582912;
  bits[0] = value + 12582912;
  return (bitsAsInt[0]! & 0x007fffff) - 0x00400000;
}

/** C's roundf: half away from zero. */
function roundf(value: number): number {
  return value < 0 ? -Math.floor(-value + 0.5) : Math.floor(value + 0.5);
}

/**
 * A float converted to a C integer type as x86-64 does it (cvttss2si: truncation, and INT_MIN for
 * NaN and values out of range), then cut to its low byte: what `(int8_t)` and `(uint8_t)` casts of
 * the reference give, including the degenerate blocks whose 1/d overflowed.
 */
function truncatedByte(value: number): number {
  const int = Number.isFinite(value) && Math.abs(value) < 2 ** 31 ? Math.trunc(value) : -(2 ** 31);
  return int & 0xff;
}

const asInt8 = (byte: number) => (byte << 24) >> 24;

function q8_0(x: Float32Array, at: number, y: DataView, o: number): void {
  let amax = 0;
  for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(x[at + j]!));
  const d = f(amax / 127);
  const id = d ? f(1 / d) : 0;
  y.setUint16(o, numberToHalf(d), true);
  for (let j = 0; j < 32; j++) y.setUint8(o + 2 + j, truncatedByte(roundf(f(x[at + j]! * id))));
}

/** The element of largest magnitude, the first one on ties (q4_0, q5_0, and the k-quants' make_qx_quants and q8_K). */
function signedAbsMax(x: Float32Array, at: number, n: number): number {
  let amax = 0;
  let max = 0;
  for (let j = 0; j < n; j++) {
    const v = x[at + j]!;
    if (amax < Math.abs(v)) {
      amax = Math.abs(v);
      max = v;
    }
  }
  return max;
}

/**
 * The _1 types' d = (max − min) / levels and min, stored as float16 at `o` and `o + 2`; returns the
 * min and 1/d in float32 (0 for a constant block) that the levels are computed with.
 */
function minAndInverseStep(x: Float32Array, at: number, levels: number, y: DataView, o: number): [number, number] {
  let min = FLT_MAX;
  let max = -FLT_MAX;
  for (let j = 0; j < 32; j++) {
    const v = x[at + j]!;
    if (v < min) min = v;
    if (v > max) max = v;
  }
  const d = f(f(max - min) / levels);
  y.setUint16(o, numberToHalf(d), true);
  y.setUint16(o + 2, numberToHalf(min), true);
  return [min, d ? f(1 / d) : 0];
}

function q4_0(x: Float32Array, at: number, y: DataView, o: number): void {
  const d = f(signedAbsMax(x, at, 32) / -8);
  const id = d ? f(1 / d) : 0;
  y.setUint16(o, numberToHalf(d), true);
  for (let j = 0; j < 16; j++) {
    const xi0 = Math.min(15, asInt8(truncatedByte(f(f(x[at + j]! * id) + 8.5)))) & 0xff;
    const xi1 = Math.min(15, asInt8(truncatedByte(f(f(x[at + 16 + j]! * id) + 8.5)))) & 0xff;
    y.setUint8(o + 2 + j, (xi0 | (xi1 << 4)) & 0xff);
  }
}

function q4_1(x: Float32Array, at: number, y: DataView, o: number): void {
  const [min, id] = minAndInverseStep(x, at, 15, y, o);
  for (let j = 0; j < 16; j++) {
    const xi0 = Math.min(15, asInt8(truncatedByte(f(f(f(x[at + j]! - min) * id) + 0.5)))) & 0xff;
    const xi1 = Math.min(15, asInt8(truncatedByte(f(f(f(x[at + 16 + j]! - min) * id) + 0.5)))) & 0xff;
    y.setUint8(o + 4 + j, (xi0 | (xi1 << 4)) & 0xff);
  }
}

/** Low nibbles of the 5-bit values (`levels`, 32) into `qs`, their fifth bits into the 32-bit `qh` (element j at bit j). */
function pack5(levels: Uint8Array, y: DataView, qhAt: number, qsAt: number): void {
  let qh = 0;
  for (let j = 0; j < 16; j++) {
    const xi0 = levels[j]!, xi1 = levels[j + 16]!;
    y.setUint8(qsAt + j, (xi0 & 0x0f) | ((xi1 & 0x0f) << 4));
    qh |= ((xi0 & 0x10) >> 4) << j;
    qh |= ((xi1 & 0x10) >> 4) << (j + 16);
  }
  y.setUint32(qhAt, qh >>> 0, true);
}

const levels5 = new Uint8Array(32);

function q5_0(x: Float32Array, at: number, y: DataView, o: number): void {
  const d = f(signedAbsMax(x, at, 32) / -16);
  const id = d ? f(1 / d) : 0;
  y.setUint16(o, numberToHalf(d), true);
  for (let j = 0; j < 32; j++) levels5[j] = Math.min(31, asInt8(truncatedByte(f(f(x[at + j]! * id) + 16.5))));
  pack5(levels5, y, o + 2, o + 6);
}

function q5_1(x: Float32Array, at: number, y: DataView, o: number): void {
  const [min, id] = minAndInverseStep(x, at, 31, y, o);
  for (let j = 0; j < 32; j++) levels5[j] = truncatedByte(f(f(f(x[at + j]! - min) * id) + 0.5));
  pack5(levels5, y, o + 4, o + 8);
}

/**
 * make_qx_quants with rmse_type 1 and no importance weights (what Q6_K uses): levels in
 * [0, 2·nmax) into L, and the scale that minimizes the x²-weighted error over 19 trial scales.
 */
function makeQxQuants(n: number, nmax: number, x: Float32Array, at: number, L: Uint8Array, lAt: number): number {
  const max = signedAbsMax(x, at, n);
  if (Math.abs(max) < GROUP_MAX_EPS) {
    L.fill(0, lAt, lAt + n);
    return 0;
  }
  const sums = (iscale: number, store: boolean): [number, number] => {
    let sumlx = 0;
    let suml2 = 0;
    for (let i = 0; i < n; i++) {
      const xi = x[at + i]!;
      const l = Math.max(-nmax, Math.min(nmax - 1, nearestInt(f(iscale * xi))));
      if (store) L[lAt + i] = l + nmax;
      const w = f(xi * xi);
      sumlx = f(sumlx + f(f(w * xi) * l));
      suml2 = f(suml2 + f(f(w * l) * l));
    }
    return [sumlx, suml2];
  };
  let [sumlx, suml2] = sums(f(-nmax / max), true);
  let scale = suml2 ? f(sumlx / suml2) : 0;
  let best = f(scale * sumlx);
  for (let is = -9; is <= 9; is++) {
    if (is === 0) continue;
    const iscale = f(f(-f(nmax + f(ONE_TENTH * is))) / max);
    [sumlx, suml2] = sums(iscale, false);
    if (suml2 > 0 && f(sumlx * sumlx) > f(best * suml2)) {
      sums(iscale, true);
      scale = f(sumlx / suml2);
      best = f(scale * sumlx);
    }
  }
  return scale;
}

/**
 * make_qkx2_quants: levels in [0, nmax] with a scale and a (negated) min, searched over nstep+1
 * trial scales by weighted least squares. Returns [scale, -min].
 */
function makeQkx2Quants(
  nmax: number, x: Float32Array, at: number, weights: Float32Array, L: Uint8Array, lAt: number, Laux: Uint8Array,
  rmin: number, rdelta: number, nstep: number,
): [number, number] {
  const n = 32;
  let min = x[at]!;
  let max = x[at]!;
  let sumW = weights[0]!;
  let sumX = f(sumW * x[at]!);
  for (let i = 1; i < n; i++) {
    const xi = x[at + i]!;
    if (xi < min) min = xi;
    if (xi > max) max = xi;
    const w = weights[i]!;
    sumW = f(sumW + w);
    sumX = f(sumX + f(w * xi));
  }
  if (min > 0) min = 0;
  if (max === min) {
    L.fill(0, lAt, lAt + n);
    return [0, -min];
  }
  let iscale = f(nmax / f(max - min));
  let scale = f(1 / iscale);
  let bestError = 0;
  for (let i = 0; i < n; i++) {
    const l = Math.max(0, Math.min(nmax, nearestInt(f(iscale * f(x[at + i]! - min)))));
    L[lAt + i] = l;
    const diff = f(f(f(scale * l) + min) - x[at + i]!);
    bestError = f(bestError + f(weights[i]! * f(diff * diff)));
  }
  for (let is = 0; is <= nstep; is++) {
    // `min` moves to the best fit so far, and the next trial scales follow it.
    iscale = f(f(f(rmin + f(rdelta * is)) + nmax) / f(max - min));
    let sumL = 0, sumL2 = 0, sumXL = 0;
    for (let i = 0; i < n; i++) {
      const l = Math.max(0, Math.min(nmax, nearestInt(f(iscale * f(x[at + i]! - min)))));
      Laux[i] = l;
      const wl = f(weights[i]! * l);
      sumL = f(sumL + wl);
      sumL2 = f(sumL2 + f(wl * l));
      sumXL = f(sumXL + f(wl * x[at + i]!));
    }
    const D = f(f(sumW * sumL2) - f(sumL * sumL));
    if (!(D > 0)) continue;
    let thisScale = f(f(f(sumW * sumXL) - f(sumX * sumL)) / D);
    let thisMin = f(f(f(sumL2 * sumX) - f(sumL * sumXL)) / D);
    if (thisMin > 0) {
      thisMin = 0;
      thisScale = f(sumXL / sumL2);
    }
    let curError = 0;
    for (let i = 0; i < n; i++) {
      const diff = f(f(f(thisScale * Laux[i]!) + thisMin) - x[at + i]!);
      curError = f(curError + f(weights[i]! * f(diff * diff)));
    }
    if (curError < bestError) {
      for (let i = 0; i < n; i++) L[lAt + i] = Laux[i]!;
      bestError = curError;
      scale = thisScale;
      min = thisMin;
    }
  }
  return [scale, -min];
}

/**
 * The super-block part Q4_K and Q5_K share: 8 sub-blocks of 32 by make_qkx2_quants, their scales
 * and mins quantized to 6 bits against float16 d and dmin, then each element's level (0..nmax)
 * recomputed with the stored scales into L.
 */
const weights = new Float32Array(32);
const Laux = new Uint8Array(32);
const subScales = new Float32Array(16);
const subMins = new Float32Array(8);
const levels = new Uint8Array(QK_K);

function superBlockK(x: Float32Array, at: number, y: DataView, o: number, nmax: number, rmin: number, nstep: number, L: Uint8Array): void {
  const scales = subScales;
  const mins = subMins;
  let maxScale = 0;
  let maxMin = 0;
  for (let j = 0; j < 8; j++) {
    const sub = at + 32 * j;
    let sumX2 = 0;
    for (let l = 0; l < 32; l++) sumX2 = f(sumX2 + f(x[sub + l]! * x[sub + l]!));
    const avX = f(Math.sqrt(f(sumX2 / 32)));
    for (let l = 0; l < 32; l++) weights[l] = avX + Math.abs(x[sub + l]!);
    const [scale, min] = makeQkx2Quants(nmax, x, sub, weights, L, 32 * j, Laux, rmin, ONE_TENTH, nstep);
    scales[j] = scale;
    mins[j] = min;
    if (scales[j]! > maxScale) maxScale = scales[j]!;
    if (mins[j]! > maxMin) maxMin = mins[j]!;
  }
  const invScale = maxScale > 0 ? f(63 / maxScale) : 0;
  const invMin = maxMin > 0 ? f(63 / maxMin) : 0;
  const sc = o + 4;
  for (let j = 0; j < 8; j++) {
    const ls = Math.min(63, nearestInt(f(invScale * scales[j]!)) & 0xff);
    const lm = Math.min(63, nearestInt(f(invMin * mins[j]!)) & 0xff);
    if (j < 4) {
      y.setUint8(sc + j, ls);
      y.setUint8(sc + j + 4, lm);
    } else {
      y.setUint8(sc + j + 4, (ls & 0xf) | ((lm & 0xf) << 4));
      y.setUint8(sc + j - 4, y.getUint8(sc + j - 4) | ((ls >> 4) << 6));
      y.setUint8(sc + j, y.getUint8(sc + j) | ((lm >> 4) << 6));
    }
  }
  y.setUint16(o, numberToHalf(f(maxScale / 63)), true);
  y.setUint16(o + 2, numberToHalf(f(maxMin / 63)), true);
  const dHalf = halfToNumber(y.getUint16(o, true));
  const dminHalf = halfToNumber(y.getUint16(o + 2, true));
  for (let j = 0; j < 8; j++) {
    const [s, m] = scaleMinK4(y, sc, j);
    const d = f(dHalf * s);
    if (!d) continue;
    const dm = f(dminHalf * m);
    for (let ii = 0; ii < 32; ii++) L[32 * j + ii] = Math.max(0, Math.min(nmax, nearestInt(f(f(x[at + 32 * j + ii]! + dm) / d))));
  }
}

function q4_k(x: Float32Array, at: number, y: DataView, o: number): void {
  for (let i = 4; i < 16; i++) y.setUint8(o + i, 0);
  const L = levels;
  superBlockK(x, at, y, o, 15, -1, 20, L);
  for (let j = 0, q = o + 16; j < QK_K; j += 64, q += 32) {
    for (let l = 0; l < 32; l++) y.setUint8(q + l, L[j + l]! | (L[j + l + 32]! << 4));
  }
}

function q5_k(x: Float32Array, at: number, y: DataView, o: number): void {
  for (let i = 4; i < 48; i++) y.setUint8(o + i, 0);
  const L = levels;
  superBlockK(x, at, y, o, 31, -0.5, 15, L);
  const qh = o + 16;
  let m1 = 1, m2 = 2;
  for (let n = 0, ql = o + 48; n < QK_K; n += 64, ql += 32) {
    for (let j = 0; j < 32; j++) {
      let l1 = L[n + j]!;
      let l2 = L[n + j + 32]!;
      if (l1 > 15) {
        l1 -= 16;
        y.setUint8(qh + j, y.getUint8(qh + j) | m1);
      }
      if (l2 > 15) {
        l2 -= 16;
        y.setUint8(qh + j, y.getUint8(qh + j) | m2);
      }
      y.setUint8(ql + j, l1 | (l2 << 4));
    }
    m1 <<= 2;
    m2 <<= 2;
  }
}

function q6_k(x: Float32Array, at: number, y: DataView, o: number): void {
  const L = levels;
  const scales = subScales;
  let maxScale = 0;
  let maxAbsScale = 0;
  for (let ib = 0; ib < 16; ib++) {
    scales[ib] = makeQxQuants(16, 32, x, at + 16 * ib, L, 16 * ib);
    const absScale = Math.abs(scales[ib]!);
    if (absScale > maxAbsScale) {
      maxAbsScale = absScale;
      maxScale = scales[ib]!;
    }
  }
  for (let i = 0; i < 210; i++) y.setUint8(o + i, 0);
  if (maxAbsScale < GROUP_MAX_EPS) return;
  const iscale = f(-128 / maxScale);
  y.setUint16(o + 208, numberToHalf(f(1 / iscale)), true);
  const dHalf = halfToNumber(y.getUint16(o + 208, true));
  for (let ib = 0; ib < 16; ib++) y.setInt8(o + 192 + ib, asInt8(Math.min(127, nearestInt(f(iscale * scales[ib]!))) & 0xff));
  for (let j = 0; j < 16; j++) {
    const d = f(dHalf * y.getInt8(o + 192 + j));
    if (!d) continue;
    for (let ii = 0; ii < 16; ii++) L[16 * j + ii] = Math.max(-32, Math.min(31, nearestInt(f(x[at + 16 * j + ii]! / d)))) + 32;
  }
  for (let j = 0, ql = o, qh = o + 128; j < QK_K; j += 128, ql += 64, qh += 32) {
    for (let l = 0; l < 32; l++) {
      const a = L[j + l]!, b = L[j + l + 32]!, c = L[j + l + 64]!, e = L[j + l + 96]!;
      y.setUint8(ql + l, (a & 0xf) | ((c & 0xf) << 4));
      y.setUint8(ql + l + 32, (b & 0xf) | ((e & 0xf) << 4));
      y.setUint8(qh + l, ((a >> 4) | ((b >> 4) << 2) | ((c >> 4) << 4) | ((e >> 4) << 6)) & 0xff);
    }
  }
}

function q8_k(x: Float32Array, at: number, y: DataView, o: number): void {
  const max = signedAbsMax(x, at, QK_K);
  for (let i = 0; i < 292; i++) y.setUint8(o + i, 0);
  if (!max) return;
  const iscale = f(-127 / max);
  for (let j = 0; j < QK_K; j++) y.setInt8(o + 4 + j, asInt8(Math.min(127, nearestInt(f(iscale * x[at + j]!))) & 0xff));
  for (let j = 0; j < 16; j++) {
    let sum = 0;
    for (let ii = 0; ii < 16; ii++) sum += y.getInt8(o + 4 + 16 * j + ii);
    y.setInt16(o + 260 + 2 * j, sum, true);
  }
  y.setFloat32(o, f(1 / iscale), true);
}

const QUANTIZERS: Readonly<Record<string, QuantizeBlock>> = { q4_0, q4_1, q5_0, q5_1, q8_0, q4_k, q5_k, q6_k, q8_k };

/** Offsets of each block's float16 scale fields: where an overflow to infinity would show. */
const HALF_FIELDS: Readonly<Record<string, readonly number[]>> = {
  q4_0: [0], q4_1: [0, 2], q5_0: [0], q5_1: [0, 2], q8_0: [0], q4_k: [0, 2], q5_k: [0, 2], q6_k: [208], q8_k: [],
};

/** The block types ckpt writes, in ggml's id order. */
export function quantizableTypes(): readonly GgmlType[] {
  return ggmlBlockTypes().filter((t) => QUANTIZERS[t.name]);
}

/**
 * Quantizes whole blocks of float32 values (`values.length` a multiple of the block size) into
 * `out` at `outAt`. Values must be finite (see firstNonFinite).
 */
export function quantizeBlocks(type: GgmlType, values: Float32Array, out: Uint8Array, outAt = 0): void {
  const quantize = QUANTIZERS[type.name];
  if (!quantize) throw new Error(`ckpt does not quantize to ${type.name}`);
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  const blocks = values.length / type.blockSize;
  for (let b = 0; b < blocks; b++) quantize(values, b * type.blockSize, view, outAt + b * type.typeSize);
}

/** Index of the first NaN or infinite value, or -1: ggml's quantizers have no meaning for them. */
export function firstNonFinite(values: Float32Array): number {
  for (let i = 0; i < values.length; i++) if (!Number.isFinite(values[i]!)) return i;
  return -1;
}

/** Index of the first block (of `blocks` at `at`) whose float16 scale or min overflowed to infinity, or -1. */
export function firstOverflowingBlock(type: GgmlType, blocks: Uint8Array): number {
  const fields = HALF_FIELDS[type.name] ?? [];
  const view = new DataView(blocks.buffer, blocks.byteOffset, blocks.byteLength);
  for (let b = 0; b * type.typeSize < blocks.byteLength; b++) {
    for (const at of fields) if ((view.getUint16(b * type.typeSize + at, true) & 0x7c00) === 0x7c00) return b;
  }
  return -1;
}
