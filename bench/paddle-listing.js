// Benchmark: listing a ≥1 GiB PaddlePaddle .pdparams (one pickle of name → numpy array, each payload
// a BINBYTES the reader skips by offset; float32, float16 and int64 arrays, as numpy has no bfloat16),
// written by ckpt's own writer one tensor at a time, against reading the whole file once, in the same
// run; bytes read counted.
// Usage: npm run build && node bench/paddle-listing.js [MiB]
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { open } from '../dist/src/index.js';
import { writePaddle } from '../dist/src/formats/paddle/write.js';
import { COLD, dropCaches } from './cold.js';

const totalMiB = Number(process.argv[2] ?? 1100);
const CHUNK = 8 * 1024 * 1024;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ckpt-bench-'));
const file = path.join(dir, 'model.pdparams');
const ms = (start) => Number(process.hrtime.bigint() - start) / 1e6;
try {
  // A transformer-like layout: per layer four 1024×1024 projections, an MLP, norms and a step counter.
  // Each tensor's read() hands out one shared constant buffer of its size, so memory stays at one tensor.
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
    add(`model.layers.${layer}.mlp.up_proj.weight`, 'float16', [4096, 1024], 2);
    add(`model.layers.${layer}.mlp.down_proj.weight`, 'float16', [1024, 4096], 2);
    add(`model.layers.${layer}.input_layernorm.weight`, 'float32', [1024], 4);
    add(`model.layers.${layer}.step`, 'int64', [], 8);
  }
  await writePaddle(file, tensors, { format: 'bench', path: '', metadata: {}, tensors: [], close: async () => {} });
  buffers.clear();
  const size = fs.statSync(file).size;

  dropCaches();
  let start = process.hrtime.bigint();
  const chunk = Buffer.allocUnsafe(CHUNK);
  const rfd = fs.openSync(file, 'r');
  while (fs.readSync(rfd, chunk, 0, chunk.length, null) > 0);
  fs.closeSync(rfd);
  const fullRead = ms(start);

  dropCaches();
  start = process.hrtime.bigint();
  const dict = await open(file);
  const count = dict.tensors.length;
  const listing = ms(start);
  const bytesRead = dict.bytesRead();
  await dict.close();
  console.log(`${COLD ? '[cold cache] ' : ''}Paddle .pdparams: ${(size / 1048576).toFixed(0)} MiB, ${count} tensors (one pickle, written by writePaddle)`);
  console.log(`read the whole file once: ${fullRead.toFixed(0)} ms, ${size} bytes`);
  console.log(`open() + listing:         ${listing.toFixed(1)} ms, ${bytesRead} bytes read (${((100 * bytesRead) / size).toFixed(4)}% of the file) — ${((100 * listing) / fullRead).toFixed(2)}% of the read time`);
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
