// Benchmark: `ckpt convert model.safetensors out.gguf --quantize TYPE` of a ≥1 GiB float32
// llama-like checkpoint, against copying the file and against the float GGUF writer, with peak
// RSS against the largest tensor (125 MiB): quantizing goes tensor by tensor.
// Usage: npm run build && node bench/gguf-quantize.js [MiB] [types, default q8_0,q4_0]
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { measureCopy, measureOk } from './measure.js';
import { safetensorsLayout, writeSafetensorsHeader } from './safetensors-pair.js';
import { seededRandom } from '../dist/src/core/random.js';

const totalMiB = Number(process.argv[2] ?? 1100);
const types = (process.argv[3] ?? 'q8_0,q4_0').split(',');
const CHUNK = 8 * 1024 * 1024;
const LARGEST = 16000 * 2048 * 4;

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ckpt-bench-'));
const file = path.join(dir, 'model.safetensors');
try {
  const layout = safetensorsLayout();
  const { entries } = layout;
  const add = (name, shape) => layout.add(name, 'F32', shape, 4);
  add('model.embed_tokens.weight', [16000, 2048]);
  for (let layer = 0; layout.bytes < totalMiB * 1048576; layer++) {
    for (const p of ['q_proj', 'k_proj', 'v_proj', 'o_proj']) add(`model.layers.${layer}.self_attn.${p}.weight`, [2048, 2048]);
    add(`model.layers.${layer}.mlp.up_proj.weight`, [5632, 2048]);
    add(`model.layers.${layer}.mlp.down_proj.weight`, [2048, 5632]);
    add(`model.layers.${layer}.input_layernorm.weight`, [2048]);
  }
  add('model.norm.weight', [2048]);
  // Weight-like values (roughly normal, 0.02 wide), one 8 MiB pattern repeated.
  const random = seededRandom(7);
  const pattern = Float32Array.from({ length: CHUNK / 4 }, () => (random() + random() + random() - 1.5) * 0.02);
  const fd = fs.openSync(file, 'w');
  writeSafetensorsHeader(fd, entries);
  for (let left = layout.bytes; left > 0; left -= CHUNK) fs.writeSync(fd, new Uint8Array(pattern.buffer), 0, Math.min(CHUNK, left));
  fs.closeSync(fd);
  const size = fs.statSync(file).size;

  const mib = (n) => (n / 1048576).toFixed(0);
  const copy = measureCopy(file, path.join(dir, 'copy.safetensors'));
  console.log(`safetensors float32 ${mib(size)} MiB, ${entries.length} tensors, largest tensor ${mib(LARGEST)} MiB`);
  console.log(`copy the file:                       ${copy.ms.toFixed(0)} ms, peak RSS ${mib(copy.rss)} MiB`);
  for (const type of ['f32', ...types]) {
    const out = path.join(dir, `out-${type}.gguf`);
    const args = ['convert', '--json', file, out, ...(type === 'f32' ? [] : ['--quantize', type])];
    const r = measureOk(`
      import { main } from './dist/src/cli/main.js';
      process.exitCode = await main(process.argv.slice(1));`, args);
    const label = type === 'f32' ? 'ckpt convert → GGUF (float32):' : `ckpt convert → GGUF --quantize ${type}:`;
    console.log(`${label.padEnd(36)} ${r.ms.toFixed(0)} ms (cpu ${r.cpuMs.toFixed(0)} ms, ${(r.ms / copy.ms).toFixed(1)}× the copy, ${(size / 1048576 / (r.ms / 1000)).toFixed(0)} MiB/s), output ${mib(fs.statSync(out).size)} MiB, peak RSS ${mib(r.rss)} MiB (${(r.rss / LARGEST).toFixed(1)}× the largest tensor)`);
    fs.rmSync(out);
  }
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
