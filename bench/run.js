// `npm run bench`: the benchmarks below, one after the other (each cleans up after itself). The
// issue's ratios first, each against its reference measured in the same run; then the listing
// and command benchmarks. Add yours to BENCHMARKS.
//   node bench/run.js [name…]       only the named ones (speed, scaling, …)
//   CKPT_BENCH_MIB=1088             model size for the ratios (default 256 MiB: a quick run)
//   CKPT_BENCH_ROUNDS=5             interleaved rounds of each ratio (default 3)
//   CKPT_BENCH_GIB=3                the single tensor of the scaling run (default 3 GiB)
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const mib = process.env.CKPT_BENCH_MIB ?? '256';
const rounds = process.env.CKPT_BENCH_ROUNDS ?? '3';
const gib = process.env.CKPT_BENCH_GIB ?? '3';

/** [script in bench/, its arguments] */
const BENCHMARKS = [
  // diff --values vs numpy, inspect --stats vs numpy, --hash vs openssl, start-up vs node, convert/strip vs cp + sync.
  ['speed.js', [mib, rounds]],
  // 10,000 small tensors and one multi-GiB tensor: listing and hashing vs openssl.
  ['scaling.js', ['10000', gib]],
  // inspect of tiny models of five formats vs node -e 0 (instruction-level: 5 runs per measurement).
  ['startup.js', []],
  // convert into Keras HDF5 (.h5, .weights.h5, --dtype float16) vs cp + sync, peak RSS vs the largest tensor.
  ['convert-h5.js', [mib, rounds]],
  // GGUF --quantize q8_0/q4_0 vs copying the file, peak RSS vs the largest tensor.
  ['gguf-quantize.js', [mib]],
  ['stats.js', [mib]],
  ['diff-values.js', [mib]],
  ['convert.js', [mib]],
  ['compare.js', []],
  ['convert-shards.js', []],
  ['onnx-external.js', []],
  ['plan.js', []],
  ['train-head.js', []],
  ...['gguf', 'keras', 'onnx', 'paddle', 'pytorch-legacy', 'pytorch', 'remote', 'safetensors', 'tfjs', 'tflite'].map((format) => [`${format}-listing.js`, []]),
];

const only = process.argv.slice(2);
for (const [script, args] of BENCHMARKS.filter(([script]) => !only.length || only.includes(script.replace(/\.js$/, '')))) {
  console.log(`\n== ${script} ${args.join(' ')}`);
  const r = spawnSync(process.execPath, [path.join(here, script), ...args], { stdio: 'inherit' });
  if (r.status !== 0) process.exitCode = 1;
}
