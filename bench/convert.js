// Benchmark: `ckpt convert` of a ≥1 GiB checkpoint — here the weights of one ONNX model written
// into another of the same architecture (`convert A OUT --graph B`: every tensor streamed through
// the lossless writer) — against copying the file, with peak RSS against the largest tensor (64 MiB).
// Usage: npm run build && node bench/convert.js [MiB]
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { writeOnnxPair } from './big-onnx.js';
import { measureCopy, measureOk } from './measure.js';

const totalMiB = Number(process.argv[2] ?? 1088);

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ckpt-bench-'));
try {
  const { a, b } = writeOnnxPair(dir, totalMiB);
  const size = fs.statSync(a).size;
  const copy = measureCopy(a, path.join(dir, 'copy.onnx'));
  const convert = measureOk(`
    import { main } from './dist/src/cli/main.js';
    process.exitCode = await main(['convert', '--json', ...process.argv.slice(1)]);`, [a, path.join(dir, 'out.onnx'), '--graph', b]);
  const mib = (n) => (n / 1048576).toFixed(0);
  console.log(`ONNX model ${mib(size)} MiB, largest tensor 64 MiB`);
  console.log(`copy the file:                 ${copy.ms.toFixed(0)} ms, peak RSS ${mib(copy.rss)} MiB`);
  console.log(`ckpt convert A OUT --graph B:  ${convert.ms.toFixed(0)} ms, peak RSS ${mib(convert.rss)} MiB (${(convert.rss / (64 * 1048576)).toFixed(1)}× the largest tensor)`);
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
