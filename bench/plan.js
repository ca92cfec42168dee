// Benchmark: `ckpt plan` between two ≥1 GiB ONNX models whose weights have exporter-generated
// (numeric) names numbered differently, so every layer is paired by graph position: 17 MatMul
// layers of 64 MiB and 400 small ones. References in the same run: what any plan must do at
// least, hashing both files (openssl dgst -sha256, as the plan records them), and the python onnx
// graph load of both (onnx.load without external data), when python3-onnx is installed.
// Usage: npm run build && node bench/plan.js
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { writeMatMulChain } from './big-onnx.js';
import { measure } from './measure.js';

const widths = [...Array(17).fill(4096), ...Array(400).fill(64)];
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ckpt-bench-'));
const timed = (command, args) => {
  const start = process.hrtime.bigint();
  const r = spawnSync(command, args, { encoding: 'utf8', maxBuffer: 64 << 20 });
  return { ms: Number(process.hrtime.bigint() - start) / 1e6, status: r.status, stderr: r.stderr };
};
try {
  const a = path.join(dir, 'a.onnx');
  const b = path.join(dir, 'b.onnx');
  writeMatMulChain(a, { widths, name: (i) => String(100 + i), fill: () => 0.5 });
  writeMatMulChain(b, { widths, name: (i) => String(700 + 2 * i), fill: () => 0.25 });
  measure(`
    import * as fs from 'node:fs';
    for (const f of process.argv.slice(1)) fs.readFileSync(f);`, [a, b]);
  const plan = measure(`
    import { main } from './dist/src/cli/main.js';
    process.exitCode = await main(['plan', '--json', ...process.argv.slice(1)]);`, [a, b]);
  if (plan.status !== 0) throw new Error(`plan exited ${plan.status}: ${plan.stderr}`);
  const summary = JSON.parse(plan.stdout).summary;
  const hashing = timed('openssl', ['dgst', '-sha256', a, b]);
  const onnx = timed('/usr/bin/python3', ['-c', 'import sys, onnx\nfor f in sys.argv[1:]: onnx.load(f, load_external_data=False)', a, b]);
  const mib = (n) => (n / 1048576).toFixed(0);
  console.log(`two ONNX models of ${widths.length} MatMul layers with numeric names, ${mib(fs.statSync(a).size)} MiB each`);
  console.log(`ckpt plan A B:                     ${plan.ms.toFixed(0)} ms, peak RSS ${mib(plan.rss)} MiB; loaded ${summary.loaded}/${summary.targetTensors} by graph position`);
  if (hashing.status === 0) console.log(`openssl dgst -sha256 A B:          ${hashing.ms.toFixed(0)} ms  (plan ÷ hashing ${(plan.ms / hashing.ms).toFixed(2)})`);
  if (onnx.status === 0) console.log(`python onnx.load A, B (reference): ${onnx.ms.toFixed(0)} ms  (plan ÷ onnx.load ${(plan.ms / onnx.ms).toFixed(2)})`);
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
