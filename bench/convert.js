// Benchmark: `ckpt convert` of a ≥1 GiB checkpoint — here the weights of one ONNX model written
// into another of the same architecture (`convert A OUT --graph B`: every tensor streamed through
// the lossless writer) — against copying the file, with peak RSS against the largest tensor (64 MiB).
// Usage: npm run build && node bench/convert.js [MiB]
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { writeBigOnnx } from './big-onnx.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const totalMiB = Number(process.argv[2] ?? 1088);

function measure(code, args) {
  const wrapped = `${code}\nprocess.on('exit', () => process.stderr.write('\\nMAXRSS ' + process.resourceUsage().maxRSS + '\\n'));`;
  const start = process.hrtime.bigint();
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', wrapped, ...args], { cwd: root, encoding: 'utf8', maxBuffer: 64 << 20 });
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  if (r.status !== 0) throw new Error(r.stderr);
  return { ms, rss: Number(/MAXRSS (\d+)/.exec(r.stderr)?.[1] ?? 0) * 1024 };
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ckpt-bench-'));
try {
  const a = path.join(dir, 'a.onnx');
  const b = path.join(dir, 'b.onnx');
  writeBigOnnx(a, totalMiB, 0x3f);
  writeBigOnnx(b, totalMiB, 0x3e);
  const size = fs.statSync(a).size;
  const copy = measure(`import * as fs from 'node:fs'; fs.copyFileSync(process.argv[1], process.argv[2]);`, [a, path.join(dir, 'copy.onnx')]);
  fs.rmSync(path.join(dir, 'copy.onnx'));
  const convert = measure(`
    import { main } from './dist/src/cli/main.js';
    process.exitCode = await main(['convert', '--json', ...process.argv.slice(1)]);`, [a, path.join(dir, 'out.onnx'), '--graph', b]);
  const mib = (n) => (n / 1048576).toFixed(0);
  console.log(`ONNX model ${mib(size)} MiB, largest tensor 64 MiB`);
  console.log(`copy the file:                 ${copy.ms.toFixed(0)} ms, peak RSS ${mib(copy.rss)} MiB`);
  console.log(`ckpt convert A OUT --graph B:  ${convert.ms.toFixed(0)} ms, peak RSS ${mib(convert.rss)} MiB (${(convert.rss / (64 * 1048576)).toFixed(1)}× the largest tensor)`);
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
