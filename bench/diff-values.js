// Benchmark: `ckpt diff --values` on two ≥1 GiB ONNX checkpoints against reading both files once,
// in the same run; peak RSS of the diff against the largest tensor (64 MiB).
// Usage: npm run build && node bench/diff-values.js [MiB per model]
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { writeOnnxPair } from './big-onnx.js';
import { measure } from './measure.js';

const totalMiB = Number(process.argv[2] ?? 1088);

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ckpt-bench-'));
try {
  const { a, b } = writeOnnxPair(dir, totalMiB);
  const size = fs.statSync(a).size + fs.statSync(b).size;
  const readBoth = measure(`
    import * as fs from 'node:fs';
    const buf = Buffer.allocUnsafe(16 << 20);
    for (const f of process.argv.slice(1)) { const fd = fs.openSync(f, 'r'); while (fs.readSync(fd, buf, 0, buf.length, null) > 0); fs.closeSync(fd); }`, [a, b]);
  const diff = measure(`
    import { main } from './dist/src/cli/main.js';
    process.exitCode = await main(['diff', '--values', '--json', ...process.argv.slice(1)]);`, [a, b]);
  if (diff.status !== 1) throw new Error(`diff exited ${diff.status}: ${diff.stderr}`);
  const mib = (n) => (n / 1048576).toFixed(0);
  console.log(`two ONNX models, ${mib(size)} MiB together (largest tensor 64 MiB)`);
  console.log(`read both files once:   ${readBoth.ms.toFixed(0)} ms  (${(size / 1048576 / (readBoth.ms / 1000)).toFixed(0)} MiB/s), peak RSS ${mib(readBoth.rss)} MiB`);
  console.log(`ckpt diff --values:     ${diff.ms.toFixed(0)} ms  (${(size / 1048576 / (diff.ms / 1000)).toFixed(0)} MiB/s), peak RSS ${mib(diff.rss)} MiB`);
  console.log(`throughput ratio (diff / plain read): ${(readBoth.ms / diff.ms).toFixed(2)}`);
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
