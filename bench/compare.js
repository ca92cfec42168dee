// Benchmark: `ckpt compare` (and `--bisect`) on two ≥1 GiB runnable ONNX models (a chain of
// 4096×4096 MatMuls, the last layer differing), against onnxruntime-node loading and running the
// same two models directly, one after the other, in the same run (files read once beforehand, so
// every measurement starts from a warm page cache).
// Usage: npm run build && node bench/compare.js [layers, 64 MiB each; default 17 = 1088 MiB]
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { bytesField, stringField, tag, varint } from './big-onnx.js';
import { measure } from './measure.js';

const layers = Number(process.argv[2] ?? 17);
const WIDTH = 4096;

const message = (field, ...parts) => {
  const body = Buffer.concat(parts);
  return Buffer.concat([bytesField(field, body.length), body]);
};
const varintField = (field, value) => Buffer.concat([tag(field, 0), varint(value)]);
/** ValueInfoProto of a float32 [1, WIDTH] tensor. */
const floatRow = (field, name) => message(field, stringField(1, name), message(2, message(1, varintField(1, 1), message(2, message(1, varintField(1, 1)), message(1, varintField(1, WIDTH))))));

/** x [1, 4096] → MatMul by `layers` 4096×4096 weights; every weight holds `fill`, the last one `lastFill`. */
function writeChain(file, fill, lastFill) {
  const nodes = [];
  let x = 'x';
  for (let i = 0; i < layers; i++) {
    nodes.push(message(1, stringField(1, x), stringField(1, `w${i}`), stringField(2, `h${i}`), stringField(3, `layer${i}.MatMul`), stringField(4, 'MatMul')));
    x = `h${i}`;
  }
  const head = Buffer.concat([...nodes, stringField(2, 'chain'), floatRow(11, 'x'), floatRow(12, x)]);
  const bytes = WIDTH * WIDTH * 4;
  const initHead = (i) => Buffer.concat([varintField(1, WIDTH), varintField(1, WIDTH), varintField(2, 1), stringField(8, `w${i}`), bytesField(9, bytes)]);
  const initLength = (i) => initHead(i).length + bytes;
  const graphLength = head.length + Array.from({ length: layers }, (_, i) => bytesField(5, initLength(i)).length + initLength(i)).reduce((n, l) => n + l, 0);
  const fd = fs.openSync(file, 'w');
  fs.writeSync(fd, Buffer.concat([varintField(1, 8), stringField(2, 'ckpt-bench'), message(8, varintField(2, 17)), bytesField(7, graphLength), head]));
  for (let i = 0; i < layers; i++) {
    fs.writeSync(fd, Buffer.concat([bytesField(5, initLength(i)), initHead(i)]));
    fs.writeSync(fd, Buffer.from(new Float32Array(WIDTH * WIDTH).fill(i === layers - 1 ? lastFill : fill).buffer));
  }
  fs.closeSync(fd);
}

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
