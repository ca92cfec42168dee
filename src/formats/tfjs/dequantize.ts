import { float16BitsToFloat32Bits } from '../../core/cast.js';
import type { ManifestEntry } from './manifest.js';

/**
 * The values of a weight as little-endian bytes of its manifest dtype, bit-identical to what
 * tfjs-core's `decodeWeight` produces: `q * scale + min` evaluated in double precision and then
 * stored into a Float32Array (rounded once), or `Math.round` of it into an Int32Array; float16
 * widened bit by bit as tfjs's lookup tables do, NaN payloads included. Unquantized bytes are
 * returned as stored.
 */
export function dequantize(entry: ManifestEntry, stored: Uint8Array, numel: number): Uint8Array {
  const q = entry.quantization;
  if (!q) return stored;
  const view = new DataView(stored.buffer, stored.byteOffset, stored.byteLength);
  if (q.dtype === 'float16') {
    const out = new Uint32Array(numel);
    for (let i = 0; i < numel; i++) out[i] = float16BitsToFloat32Bits(view.getUint16(2 * i, true));
    return new Uint8Array(out.buffer);
  }
  const scale = q.scale!;
  const min = q.min!;
  const word = q.dtype === 'uint8' ? (i: number) => stored[i]! : (i: number) => view.getUint16(2 * i, true);
  const out = entry.dtype === 'int32' ? new Int32Array(numel) : new Float32Array(numel);
  if (entry.dtype === 'int32') {
    for (let i = 0; i < numel; i++) out[i] = Math.round(word(i) * scale + min);
  } else {
    for (let i = 0; i < numel; i++) out[i] = word(i) * scale + min;
  }
  return new Uint8Array(out.buffer);
}
