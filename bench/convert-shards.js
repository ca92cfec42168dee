// Benchmark: `ckpt convert` of a ≥1 GiB safetensors checkpoint (17 float32 tensors of 64 MiB)
// to Hugging Face sharded safetensors, to sharded PyTorch, to float16 and to TF.js, against copying
// the file; peak RSS against the largest tensor (64 MiB). Usage: npm run build && node bench/convert-shards.js [MiB]
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { measureCopy, measureOk } from './measure.js';
import { writeSafetensorsHeader } from './safetensors-pair.js';

const totalMiB = Number(process.argv[2] ?? 1088);
const TENSOR = 64 * 1024 * 1024;

/** A safetensors file of `count` float32 tensors of 64 MiB, streamed (never in memory at once). */
function writeBigSafetensors(file, count) {
  const entries = Array.from({ length: count }, (_, i) => `"layers.${i}.weight":{"dtype":"F32","shape":[${TENSOR / 4}],"data_offsets":[${i * TENSOR},${(i + 1) * TENSOR}]}`);
  const fd = fs.openSync(file, 'w');
  writeSafetensorsHeader(fd, entries);
  const values = Float32Array.from({ length: TENSOR / 4 }, (_, i) => Math.sin(i) * 0.05);
  for (let i = 0; i < count; i++) fs.writeSync(fd, new Uint8Array(values.buffer));
  fs.closeSync(fd);
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ckpt-bench-'));
try {
  const source = path.join(dir, 'model.safetensors');
  writeBigSafetensors(source, Math.ceil(totalMiB / 64));
  const size = fs.statSync(source).size;
  const mib = (n) => (n / 1048576).toFixed(0);
  const copy = measureCopy(source, path.join(dir, 'copy.safetensors'));
  console.log(`safetensors checkpoint ${mib(size)} MiB, largest tensor 64 MiB`);
  console.log(`copy the file:                                 ${copy.ms.toFixed(0)} ms, peak RSS ${mib(copy.rss)} MiB`);
  const runs = [
    ['convert → safetensors --shard-size 300MB', ['sharded/model.safetensors', '--shard-size', '300MB']],
    ['convert → pytorch_model.bin --shard-size 300MB', ['pt/pytorch_model.bin', '--shard-size', '300MB']],
    ['convert → safetensors --dtype float16', ['half.safetensors', '--dtype', 'float16']],
    ['convert → TF.js (4 MiB shards)', ['tfjs/model.json']],
    ['convert → TF.js --quantize uint8', ['tfjs-q/model.json', '--quantize', 'uint8']],
  ];
  for (const [label, [out, ...options]] of runs) {
    const r = measureOk(`
      import { main } from './dist/src/cli/main.js';
      process.exitCode = await main(['convert', '--json', ...process.argv.slice(1)]);`, [source, path.join(dir, out), ...options]);
    console.log(`${`${label}:`.padEnd(48)}${r.ms.toFixed(0)} ms (${(r.ms / copy.ms).toFixed(1)}× the copy), peak RSS ${mib(r.rss)} MiB (${(r.rss / TENSOR).toFixed(1)}× the largest tensor)`);
    fs.rmSync(path.join(dir, path.dirname(out) === '.' ? out : path.dirname(out)), { recursive: true, force: true });
  }
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
