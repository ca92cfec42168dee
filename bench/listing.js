// Shared pieces of the listing benchmarks: reading a file once against timing open() + listing
// (each after dropCaches(), see cold.js), the report lines most of them print, and the synthetic
// transformer-like tensor list the PyTorch and Paddle benchmarks hand to ckpt's writers.
import * as fs from 'node:fs';
import { open } from '../dist/src/index.js';
import { COLD, dropCaches } from './cold.js';

const msSince = (start) => Number(process.hrtime.bigint() - start) / 1e6;

/** Reads a file (or each of a list of files) once, start to end, in chunks; returns { ms, bytes }. */
export function readWholeFile(files, chunkBytes = 8 * 1024 * 1024) {
  dropCaches();
  const start = process.hrtime.bigint();
  const chunk = Buffer.allocUnsafe(chunkBytes);
  let bytes = 0;
  for (const file of [files].flat()) {
    const fd = fs.openSync(file, 'r');
    for (let n; (n = fs.readSync(fd, chunk, 0, chunk.length, null)) > 0;) bytes += n;
    fs.closeSync(fd);
  }
  return { ms: msSince(start), bytes };
}

/** Times open() + listing of a checkpoint; returns { ms, tensors (how many), bytesRead, metadata }. */
export async function timeListing(file) {
  dropCaches();
  const start = process.hrtime.bigint();
  const dict = await open(file);
  const tensors = dict.tensors.length;
  const ms = msSince(start);
  const bytesRead = dict.bytesRead?.();
  await dict.close();
  return { ms, tensors, bytesRead, metadata: dict.metadata };
}

/**
 * Prints the three report lines: `label: N MiB, T tensors<about>`, the full read and the listing
 * (`note` goes after the percentage of the file read).
 */
export function printListing({ label, about = '', size, fullRead, listing, note = '' }) {
  console.log(`${COLD ? '[cold cache] ' : ''}${label}: ${(size / 1048576).toFixed(0)} MiB, ${listing.tensors} tensors${about}`);
  console.log(`read the whole file once: ${fullRead.ms.toFixed(0)} ms, ${size} bytes`);
  console.log(`open() + listing:         ${listing.ms.toFixed(1)} ms, ${listing.bytesRead} bytes read (${((100 * listing.bytesRead) / size).toFixed(4)}% of the file${note}) — ${((100 * listing.ms) / fullRead.ms).toFixed(2)}% of the read time`);
}

/**
 * A transformer-like layout of at least totalMiB: per layer four 1024×1024 float32 projections, an
 * MLP (two 4096×1024 mlpDtype matrices), a norm and an int64 step counter, as the { name, tensor }
 * list ckpt's writers take. Each tensor's read() hands out one shared constant buffer of its size,
 * so memory stays at one tensor.
 */
export function syntheticTransformer(totalMiB, { mlpDtype = 'bfloat16' } = {}) {
  const buffers = new Map();
  const constant = (size) => {
    if (!buffers.has(size)) buffers.set(size, Buffer.alloc(size, 0x3c));
    return buffers.get(size);
  };
  const tensors = [];
  let bytes = 0;
  const add = (name, dtype, shape, width) => {
    const byteLength = shape.reduce((n, d) => n * d, 1) * width;
    const tensor = {
      name, source: name, dtype, shape, byteLength, origin: 'weight',
      read: async () => constant(byteLength),
      readStrings: async () => { throw new Error(`${name} is not a string tensor`); },
    };
    tensors.push({ name, tensor });
    bytes += byteLength;
  };
  for (let layer = 0; bytes < totalMiB * 1048576; layer++) {
    for (const p of ['q_proj', 'k_proj', 'v_proj', 'o_proj']) add(`model.layers.${layer}.self_attn.${p}.weight`, 'float32', [1024, 1024], 4);
    add(`model.layers.${layer}.mlp.up_proj.weight`, mlpDtype, [4096, 1024], 2);
    add(`model.layers.${layer}.mlp.down_proj.weight`, mlpDtype, [1024, 4096], 2);
    add(`model.layers.${layer}.input_layernorm.weight`, 'float32', [1024], 4);
    add(`model.layers.${layer}.step`, 'int64', [], 8);
  }
  return tensors;
}
