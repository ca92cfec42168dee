// Benchmark: `ckpt convert` of a ≥1 GiB safetensors checkpoint (17 float32 tensors of 64 MiB and
// 276 of 256 KiB) into Keras HDF5 — `.h5`, `.weights.h5`, `.h5 --dtype float16` — written by
// ckpt's own HDF5 writer, against `cp` + `sync` of the same file (the floor for any writer that
// fsyncs its output); peak RSS against the largest tensor (goal: ≤ 2× it + 100 MB).
// Medians of interleaved rounds. Usage: npm run build && node bench/convert-h5.js [MiB] [rounds]
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { measureOk, median } from './measure.js';
import { pairLayout, writeSafetensors } from './safetensors-pair.js';

const totalMiB = Number(process.argv[2] ?? 1088);
const rounds = Number(process.argv[3] ?? 3);
const LARGEST = 64 * 1024 * 1024;

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ckpt-bench-'));
try {
  const source = path.join(dir, 'model.safetensors');
  writeSafetensors(source, pairLayout(totalMiB), (index, out, from) => out.forEach((_, i) => (out[i] = Math.sin(index + from + i) * 0.05)));
  const copyAndSync = () => measureOk(`
    import * as fs from 'node:fs';
    fs.copyFileSync(process.argv[1], process.argv[2]);
    const fd = fs.openSync(process.argv[2], 'r+'); fs.fsyncSync(fd); fs.closeSync(fd);`, [source, path.join(dir, 'copy')]);
  const cases = [
    ['convert → model.h5', ['model.h5']],
    ['convert → model.weights.h5', ['model.weights.h5']],
    ['convert → model.h5 --dtype float16', ['half.h5', '--dtype', 'float16']],
  ];
  const copies = [];
  const runs = cases.map(() => []);
  for (let round = 0; round < rounds; round++) {
    copies.push(copyAndSync());
    fs.rmSync(path.join(dir, 'copy'));
    cases.forEach(([, [out, ...options]], i) => {
      runs[i].push(measureOk(`
        import { main } from './dist/src/cli/main.js';
        process.exitCode = await main(['convert', '--json', ...process.argv.slice(1)]);`, [source, path.join(dir, out), ...options]));
      fs.rmSync(path.join(dir, out));
    });
  }
  const mib = (n) => (n / 1048576).toFixed(0);
  const copyMs = median(copies.map((r) => r.ms));
  console.log(`safetensors checkpoint ${mib(fs.statSync(source).size)} MiB, largest tensor ${mib(LARGEST)} MiB; medians of ${rounds} rounds`);
  console.log(`${'cp + sync:'.padEnd(40)}${copyMs.toFixed(0)} ms, peak RSS ${mib(median(copies.map((r) => r.rss)))} MiB`);
  cases.forEach(([label], i) => {
    const [ms, rss] = [median(runs[i].map((r) => r.ms)), median(runs[i].map((r) => r.rss))];
    console.log(`${`${label}:`.padEnd(40)}${ms.toFixed(0)} ms (${(ms / copyMs).toFixed(2)}× cp + sync, goal ≤ 2×), peak RSS ${mib(rss)} MiB (${(rss / LARGEST).toFixed(1)}× the largest tensor; goal ≤ ${mib(2 * LARGEST + 100e6)} MiB)`);
  });
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
