// Benchmark: `ckpt compare` (and `--bisect`) on two ≥1 GiB runnable ONNX models (a chain of
// 4096×4096 MatMuls, the last layer differing), against onnxruntime-node loading and running the
// same two models directly, one after the other, in the same run (files read once beforehand, so
// every measurement starts from a warm page cache).
// Usage: npm run build && node bench/compare.js [layers, 64 MiB each; default 17 = 1088 MiB]
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { writeMatMulChain } from './big-onnx.js';
import { measure } from './measure.js';

const layers = Number(process.argv[2] ?? 17);
const WIDTH = 4096;

const writeChain = (file, fill, lastFill) =>
  writeMatMulChain(file, { widths: Array(layers).fill(WIDTH), name: (i) => `w${i}`, fill: (i) => (i === layers - 1 ? lastFill : fill) });

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ckpt-bench-'));
try {
  const a = path.join(dir, 'a.onnx');
  const b = path.join(dir, 'b.onnx');
  writeChain(a, 1 / WIDTH, 1 / WIDTH);
  writeChain(b, 1 / WIDTH, 1.001 / WIDTH);
  const mib = (n) => (n / 1048576).toFixed(0);
  measure(`
    import * as fs from 'node:fs';
    for (const f of process.argv.slice(1)) fs.readFileSync(f);`, [a, b]);
  const reference = measure(`
    import ort from 'onnxruntime-node';
    for (const file of process.argv.slice(1)) {
      const session = await ort.InferenceSession.create(file, { executionProviders: ['cpu'] });
      await session.run({ x: new ort.Tensor('float32', new Float32Array(${WIDTH}).fill(0.5), [1, ${WIDTH}]) });
      await session.release();
    }`, [a, b]);
  if (reference.status !== 0) throw new Error(`reference failed: ${reference.stderr}`);
  const cli = (args) => measure(`
    import { main } from './dist/src/cli/main.js';
    process.exitCode = await main(['compare', '--json', '--ep', 'cpu', ...process.argv.slice(1)]);`, [a, b, ...args]); // options last: node would take a leading --flag as its own
  const compare = cli([]);
  if (compare.status !== 1) throw new Error(`compare exited ${compare.status}: ${compare.stderr}`);
  const bisect = cli(['--bisect']);
  if (bisect.status !== 1) throw new Error(`compare --bisect exited ${bisect.status}: ${bisect.stderr}`);
  const found = JSON.parse(bisect.stdout).bisect.firstDivergent.name;
  console.log(`two ONNX models of ${layers} MatMul layers, ${mib(fs.statSync(a).size)} MiB each`);
  console.log(`onnxruntime-node, load + run A, then B:  ${reference.ms.toFixed(0)} ms, peak RSS ${mib(reference.rss)} MiB`);
  console.log(`ckpt compare A B:                        ${compare.ms.toFixed(0)} ms, peak RSS ${mib(compare.rss)} MiB  (${(compare.ms / reference.ms).toFixed(2)}× the reference)`);
  console.log(`ckpt compare --bisect A B:               ${bisect.ms.toFixed(0)} ms, peak RSS ${mib(bisect.rss)} MiB  (${(bisect.ms / reference.ms).toFixed(2)}×; first divergent node: ${found})`);
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
