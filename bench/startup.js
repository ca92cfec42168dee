// Benchmark: start-up. `ckpt inspect` of tiny models (ONNX, safetensors, .pth, TF.js, Keras .h5)
// against `node -e 0`, measured side by side: interleaved rounds, medians, wall and CPU time.
// Each measurement runs the command `batch` times in a row under one /usr/bin/time, whose CPU
// figures have 10 ms steps: a single run of ~50 ms could not be told from one 20% slower.
// Usage: npm run build && node bench/startup.js [rounds, 7] [batch, 5]
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { writeSafetensors } from './safetensors-pair.js';
import { median, timeCommand } from './measure.js';

const rounds = Number(process.argv[2] ?? 7);
const batch = Number(process.argv[3] ?? 5);
// CKPT_BENCH_BIN=/other/checkout/bin/ckpt.js measures another build (before/after figures).
const bin = process.env.CKPT_BENCH_BIN ?? 'bin/ckpt.js';

/** What bin/ckpt.js runs: the CLI bundle, unless it is missing or older than the compiled sources (`tsc` alone). */
function whatRuns(binFile) {
  const mtime = (file) => fs.statSync(path.resolve(path.dirname(binFile), '..', file), { throwIfNoEntry: false })?.mtimeMs ?? -Infinity;
  return mtime('dist/cli/cli-main.js') >= mtime('dist/src/cli/main.js') ? 'the bundle, dist/cli' : 'the compiled sources, dist/src (no bundle, or an older one)';
}

/** The command `batch` times in a row, output discarded, as one process tree to time. */
const repeated = (...command) => ['sh', ['-c', `for i in $(seq ${batch}); do "$@" >/dev/null || exit 1; done`, 'sh', ...command]];

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ckpt-startup-'));
try {
  const tiny = path.join(dir, 'tiny.safetensors');
  writeSafetensors(tiny, [{ name: 'weight', bytes: 1024 }, { name: 'bias', bytes: 64 }], (_, out) => out.fill(0.5));
  const cases = [
    { label: 'inspect tiny ONNX', file: 'samples/detector-90.onnx', goal: 2 },
    { label: 'inspect tiny safetensors', file: tiny, goal: 2 },
    { label: 'inspect tiny .pth', file: 'samples/detector-90-train.pth' },
    { label: 'inspect tiny TF.js', file: 'samples/detector-90-tfjs' },
    { label: 'inspect tiny Keras .h5', file: 'samples/detector-90.h5' },
  ];
  const reference = repeated(process.execPath, '-e', '0');
  const runs = cases.map(() => ({ ckpt: [], reference: [] }));
  for (let round = 0; round < rounds; round++) {
    cases.forEach((c, i) => {
      runs[i].ckpt.push(timeCommand(...repeated(process.execPath, bin, 'inspect', c.file)));
      runs[i].reference.push(timeCommand(...reference));
    });
  }
  console.log(`start-up: ${bin} inspect (running ${whatRuns(bin)}) vs node -e 0; ${os.availableParallelism()} cores, load ${os.loadavg()[0].toFixed(1)}; ${rounds} rounds of ${batch} runs each, medians per run`);
  const ms = (s) => `${((s / batch) * 1000).toFixed(0)} ms`;
  const pad = (s, n) => String(s).padEnd(n);
  console.log(`${pad('case', 26)} ${pad('ckpt wall (cpu)', 18)} ${pad('node -e 0 wall (cpu)', 22)} ${pad('ratio wall', 11)} ${pad('ratio cpu', 10)} goal`);
  cases.forEach((c, i) => {
    const pick = (list, key) => median(list.map((r) => r[key]));
    const [cw, cc, rw, rc] = [pick(runs[i].ckpt, 'wall'), pick(runs[i].ckpt, 'cpu'), pick(runs[i].reference, 'wall'), pick(runs[i].reference, 'cpu')];
    console.log(`${pad(c.label, 26)} ${pad(`${ms(cw)} (${ms(cc)})`, 18)} ${pad(`${ms(rw)} (${ms(rc)})`, 22)} ${pad(`${(cw / rw).toFixed(2)}×`, 11)} ${pad(`${(cc / rc).toFixed(2)}×`, 10)} ${c.goal ? `≤ ${c.goal}×` : ''}`);
  });
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
