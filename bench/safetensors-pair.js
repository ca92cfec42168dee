// Writes two float32 safetensors checkpoints of the same architecture for the speed benchmarks:
// 64 MiB tensors plus 276 small ones (292 in all at 1088 MiB), pseudo-random values; in B every
// other tensor is nudged by a small amount, so half the pairs are bit-identical and half differ.
import * as fs from 'node:fs';
import * as path from 'node:path';

const BIG = 64 * 1024 * 1024;
const SMALL = 256 * 1024;

/** name → [bytes] layout: `layers.N.weight` 64 MiB each, then `layers.N.bias` 256 KiB each. */
export function pairLayout(totalMiB, smallCount = 276) {
  const tensors = [];
  for (let i = 0; i * 64 + 64 <= totalMiB || i === 0; i++) tensors.push({ name: `layers.${i}.weight`, bytes: BIG });
  for (let i = 0; i < smallCount; i++) tensors.push({ name: `layers.${i}.bias`, bytes: SMALL });
  return tensors;
}

/**
 * Header entries (`"name":{…}`) of tensors stored one after another: `add(name, dtype, shape,
 * width)` appends one of `width`-byte elements; `bytes` is the data size so far.
 */
export function safetensorsLayout() {
  const entries = [];
  let bytes = 0;
  return {
    entries,
    get bytes() { return bytes; },
    add(name, dtype, shape, width) {
      const size = shape.reduce((n, d) => n * d, 1) * width;
      entries.push(`${JSON.stringify(name)}:${JSON.stringify({ dtype, shape, data_offsets: [bytes, bytes + size] })}`);
      bytes += size;
    },
  };
}

/** Writes the length and the JSON header (entries `"name":{…}`, padded to 8 bytes) at the start of `fd`. */
export function writeSafetensorsHeader(fd, entries) {
  let header = Buffer.from(`{${entries.join(',')}}`);
  header = Buffer.concat([header, Buffer.alloc((8 - (header.length % 8)) % 8, 0x20)]);
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(header.length));
  fs.writeSync(fd, length);
  fs.writeSync(fd, header);
  return header.length;
}

/** Writes a safetensors file of float32 vectors; `fill(index, values, from)` fills a piece of tensor `index`. */
export function writeSafetensors(file, tensors, fill) {
  const layout = safetensorsLayout();
  for (const t of tensors) layout.add(t.name, 'F32', [t.bytes / 4], 4);
  const fd = fs.openSync(file, 'w');
  writeSafetensorsHeader(fd, layout.entries);
  const piece = new Float32Array(4 * 1024 * 1024);
  const bytes = Buffer.from(piece.buffer);
  tensors.forEach((t, index) => {
    for (let from = 0; from < t.bytes / 4; from += piece.length) {
      const n = Math.min(piece.length, t.bytes / 4 - from);
      fill(index, piece.subarray(0, n), from);
      fs.writeSync(fd, bytes, 0, n * 4);
    }
  });
  fs.closeSync(fd);
}

/** Deterministic values in (−1, 1) from the element's position: no generator state, so A and B agree. */
function values(index, out, from, nudge) {
  let x = (Math.imul(index + 1, 0x9e3779b1) ^ from) >>> 0;
  for (let i = 0; i < out.length; i++) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    out[i] = x / 2147483648 - 1 + nudge;
  }
}

export function writeSafetensorsPair(dir, totalMiB, smallCount) {
  const tensors = pairLayout(totalMiB, smallCount);
  const a = path.join(dir, 'a.safetensors');
  const b = path.join(dir, 'b.safetensors');
  writeSafetensors(a, tensors, (index, out, from) => values(index, out, from, 0));
  writeSafetensors(b, tensors, (index, out, from) => values(index, out, from, index % 2 ? 1e-3 : 0));
  return { a, b, tensors };
}
