// Benchmark: listing a ≥1 GiB TF.js model (model.json + 4 MiB shards, float32 and uint8-quantized
// weights) against reading all its shards once, in the same run.
// Usage: npm run build && node bench/tfjs-listing.js [MiB]
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { COLD } from './cold.js';
import { readWholeFile, timeListing } from './listing.js';

const totalMiB = Number(process.argv[2] ?? 1100);
const SHARD = 4 * 1024 * 1024;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ckpt-bench-'));
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

  const fullRead = readWholeFile(paths.map((p) => path.join(dir, p)), SHARD);
  const listing = await timeListing(dir);
  console.log(`${COLD ? '[cold cache] ' : ''}TF.js model: ${(bytes / 1048576).toFixed(0)} MiB in ${shards} shards, ${weights.length} weights (${listing.tensors} listed)`);
  console.log(`read every shard once:  ${fullRead.ms.toFixed(0)} ms, ${bytes} bytes`);
  console.log(`open() + listing:       ${listing.ms.toFixed(1)} ms, ${listing.bytesRead} shard bytes read (model.json parsed, shards stat()ed) — ${((100 * listing.ms) / fullRead.ms).toFixed(2)}% of the read time`);
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
