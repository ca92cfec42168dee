// Benchmark: listing a ≥1 GiB llama-like GGUF (q4_k, q6_k, f16 and f32 tensors, a 32,000-token
// vocabulary in the metadata) against reading the whole file once; bytes read counted.
// Usage: npm run build && node bench/gguf-listing.js [MiB]
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { printListing, readWholeFile, timeListing } from './listing.js';
import { writeGguf } from '../dist/src/formats/gguf/write.js';
import { ggmlType } from '../dist/src/core/ggml.js';
import { encodeKeyValues } from '../dist/test/gguf-fixtures.js';

const totalMiB = Number(process.argv[2] ?? 1100);
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ckpt-bench-'));
const file = path.join(dir, 'model.gguf');
try {
  const [f32, f16, q4k, q6k] = [0, 1, 12, 14].map(ggmlType);
  const zeros = new Map();
  const tensor = (name, shape, type) => {
    const byteLength = (shape.reduce((n, d) => n * d, 1) / type.blockSize) * type.typeSize;
    if (!zeros.has(byteLength)) zeros.set(byteLength, new Uint8Array(byteLength));
    return { name, shape, type, byteLength, read: async () => zeros.get(byteLength) };
  };
  const tensors = [tensor('token_embd.weight', [32000, 4096], q4k)];
  let bytes = tensors[0].byteLength;
  for (let b = 0; bytes < totalMiB * 1048576; b++) {
    const layer = [
      ...['attn_q', 'attn_k', 'attn_v', 'attn_output'].map((p) => tensor(`blk.${b}.${p}.weight`, [4096, 4096], q4k)),
      tensor(`blk.${b}.ffn_gate.weight`, [11008, 4096], q4k), tensor(`blk.${b}.ffn_up.weight`, [11008, 4096], q4k),
      tensor(`blk.${b}.ffn_down.weight`, [4096, 11008], q6k),
      tensor(`blk.${b}.attn_norm.weight`, [4096], f32), tensor(`blk.${b}.ffn_norm.weight`, [4096], f32),
    ];
    tensors.push(...layer);
    bytes += layer.reduce((n, t) => n + t.byteLength, 0);
  }
  tensors.push(tensor('output_norm.weight', [4096], f32), tensor('output.weight', [32000, 4096], f16));
  const tokens = Array.from({ length: 32000 }, (_, i) => `▁token${i}`);
  const kv = encodeKeyValues([['general.architecture', 8, 'llama'], ['llama.block_count', 4, 32], ['tokenizer.ggml.tokens', 9, [8, tokens]], ['tokenizer.ggml.scores', 9, [6, tokens.map((_, i) => -i)]]]);
  await writeGguf(file, tensors, kv);
  const size = fs.statSync(file).size;
  const fullRead = readWholeFile(file);
  const listing = await timeListing(file);
  printListing({ label: 'gguf', about: `, header ${listing.metadata.dataOffset} B (32,000-token vocabulary)`, size, fullRead, listing });
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
