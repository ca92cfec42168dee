// Benchmark: listing a ≥1 GiB safetensors file (float32, bfloat16 and int64 tensors, an HF-style
// header with metadata) against reading the whole file once, in the same run; bytes read counted.
// Usage: npm run build && node bench/safetensors-listing.js [MiB]
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { printListing, readWholeFile, timeListing } from './listing.js';
import { safetensorsLayout, writeSafetensorsHeader } from './safetensors-pair.js';

const totalMiB = Number(process.argv[2] ?? 1100);
const CHUNK = 8 * 1024 * 1024;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ckpt-bench-'));
const file = path.join(dir, 'model.safetensors');
try {
  // A transformer-like layout: per layer four 1024×1024 projections, an MLP, norms and a step counter.
  const layout = safetensorsLayout();
  const { entries, add } = layout;
  for (let layer = 0; layout.bytes < totalMiB * 1048576; layer++) {
    for (const p of ['q_proj', 'k_proj', 'v_proj', 'o_proj']) add(`model.layers.${layer}.self_attn.${p}.weight`, 'F32', [1024, 1024], 4);
    add(`model.layers.${layer}.mlp.up_proj.weight`, 'BF16', [4096, 1024], 2);
    add(`model.layers.${layer}.mlp.down_proj.weight`, 'BF16', [1024, 4096], 2);
    add(`model.layers.${layer}.input_layernorm.weight`, 'F32', [1024], 4);
    add(`model.layers.${layer}.step`, 'I64', [], 8);
  }
  const fd = fs.openSync(file, 'w');
  const headerLength = writeSafetensorsHeader(fd, ['"__metadata__":{"format":"pt"}', ...entries]);
  const chunk = Buffer.alloc(CHUNK, 0x3c);
  for (let left = layout.bytes; left > 0; left -= CHUNK) fs.writeSync(fd, chunk, 0, Math.min(CHUNK, left));
  fs.closeSync(fd);
  const size = fs.statSync(file).size;

  const fullRead = readWholeFile(file);
  const listing = await timeListing(file);
  printListing({ label: 'safetensors', about: `, ${headerLength} B header`, size, fullRead, listing });
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
