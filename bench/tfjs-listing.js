// Benchmark: listing a ≥1 GiB TF.js model (model.json + 4 MiB shards, float32 and uint8-quantized
// weights) against reading all its shards once, in the same run.
// Usage: npm run build && node bench/tfjs-listing.js [MiB]
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { open } from '../dist/src/index.js';
import { COLD, dropCaches } from './cold.js';

const totalMiB = Number(process.argv[2] ?? 1100);
const SHARD = 4 * 1024 * 1024;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ckpt-bench-'));
const ms = (start) => Number(process.hrtime.bigint() - start) / 1e6;
try {
  const weights = [];
  let bytes = 0;
  for (let i = 0; bytes < totalMiB * 1048576; i++) {
    const quantized = i % 4 === 3;
    const shape = [1024, 4096];
    weights.push({ name: `layer_${i}/kernel`, shape, dtype: 'float32', ...(quantized ? { quantization: { dtype: 'uint8', scale: 0.01, min: -1 } } : {}) });
    bytes += 1024 * 4096 * (quantized ? 1 : 4);
  }
  const shards = Math.ceil(bytes / SHARD);
  const paths = Array.from({ length: shards }, (_, i) => `group1-shard${i + 1}of${shards}.bin`);
  const block = Buffer.alloc(SHARD, 0x3c);
  for (let i = 0; i < shards; i++) fs.writeFileSync(path.join(dir, paths[i]), i === shards - 1 ? block.subarray(0, bytes - SHARD * i) : block);
  fs.writeFileSync(path.join(dir, 'model.json'), JSON.stringify({ format: 'layers-model', modelTopology: {}, weightsManifest: [{ paths, weights }] }));

  dropCaches();
  let start = process.hrtime.bigint();
  const buf = Buffer.allocUnsafe(SHARD);
  for (const p of paths) {
    const fd = fs.openSync(path.join(dir, p), 'r');
    while (fs.readSync(fd, buf, 0, buf.length, null) > 0);
    fs.closeSync(fd);
  }
  const fullRead = ms(start);
  dropCaches();
  start = process.hrtime.bigint();
  const dict = await open(dir);
  const listing = ms(start);
  const listedBytes = dict.bytesRead();
  const tensors = dict.tensors.length;
  await dict.close();
  console.log(`${COLD ? '[cold cache] ' : ''}TF.js model: ${(bytes / 1048576).toFixed(0)} MiB in ${shards} shards, ${weights.length} weights (${tensors} listed)`);
  console.log(`read every shard once:  ${fullRead.toFixed(0)} ms, ${bytes} bytes`);
  console.log(`open() + listing:       ${listing.toFixed(1)} ms, ${listedBytes} shard bytes read (model.json parsed, shards stat()ed) — ${((100 * listing) / fullRead).toFixed(2)}% of the read time`);
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
