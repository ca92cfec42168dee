// Benchmark and check of the > 2 GiB ONNX case: a model whose 2.06 GiB of weights are in external
// data is stripped into another folder. Inline, the result would be past protobuf's 2 GiB limit,
// so ckpt writes it with external data again, automatically, and says so. Reports time vs copying
// the data, peak RSS vs the largest tensor, and that the output opens.
// Usage: npm run build && node bench/onnx-external.js [MiB]
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { bytesField, stringField, tag, varint } from './big-onnx.js';
import { measure, measureCopy, measureOk } from './measure.js';

const totalMiB = Number(process.argv[2] ?? 2112);
const TENSOR = 64 * 1024 * 1024;

const entry = (key, value) => {
  const body = Buffer.concat([stringField(1, key), stringField(2, value)]);
  return Buffer.concat([bytesField(13, body.length), body]);
};

/** model.onnx (initializers only, pointing into model.onnx.data) and its data file, streamed. */
function writeExternalOnnx(folder, count) {
  fs.mkdirSync(folder, { recursive: true });
  const tensors = Array.from({ length: count }, (_, i) => Buffer.concat([
    tag(1, 0), varint(TENSOR / 4), tag(2, 0), varint(1), stringField(8, `layers.${i}.weight`),
    entry('location', 'model.onnx.data'), entry('offset', String(i * TENSOR)), entry('length', String(TENSOR)), tag(14, 0), varint(1),
  ]));
  const graph = Buffer.concat([...tensors.map((t) => Buffer.concat([bytesField(5, t.length), t])), stringField(2, 'ckpt-bench')]);
  fs.writeFileSync(path.join(folder, 'model.onnx'), Buffer.concat([tag(1, 0), varint(8), stringField(2, 'ckpt-bench'), bytesField(7, graph.length), graph, tag(8, 2), varint(2), tag(2, 0), varint(17)]));
  const fd = fs.openSync(path.join(folder, 'model.onnx.data'), 'w');
  const values = new Uint8Array(Float32Array.from({ length: TENSOR / 4 }, (_, i) => Math.cos(i)).buffer);
  for (let i = 0; i < count; i++) fs.writeSync(fd, values);
  fs.closeSync(fd);
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ckpt-bench-'));
try {
  const source = path.join(dir, 'source');
  writeExternalOnnx(source, Math.ceil(totalMiB / 64));
  const data = path.join(source, 'model.onnx.data');
  const mib = (n) => (n / 1048576).toFixed(0);
  const copy = measureCopy(data, path.join(dir, 'copy.data'));
  const out = path.join(dir, 'out', 'model.onnx');
  fs.mkdirSync(path.dirname(out));
  const strip = measureOk(`
    import { main } from './dist/src/cli/main.js';
    process.exitCode = await main(['strip', '--json', ...process.argv.slice(1)]);`, [path.join(source, 'model.onnx'), '--exclude', 'layers.0.weight', '-o', out]);
  const notes = JSON.parse(strip.stdout).notes;
  const inspect = measure(`
    import { open } from './dist/src/index.js';
    const dict = await open(process.argv[1]);
    const t = dict.tensors.at(-1);
    const bytes = await t.read();
    console.log(dict.tensors.length, t.name, new Float32Array(bytes.buffer, bytes.byteOffset, 2).join(','));`, [out]);
  console.log(`ONNX model with ${mib(fs.statSync(data).size)} MiB of external data, largest tensor 64 MiB`);
  console.log(`copy the data file:                 ${copy.ms.toFixed(0)} ms, peak RSS ${mib(copy.rss)} MiB`);
  console.log(`ckpt strip into another folder:     ${strip.ms.toFixed(0)} ms (${(strip.ms / copy.ms).toFixed(1)}× the copy), peak RSS ${mib(strip.rss)} MiB (${(strip.rss / TENSOR).toFixed(1)}× the largest tensor)`);
  console.log(`note: ${notes.filter((n) => /external data/.test(n)).join('; ')}`);
  // Below 2 GiB (a small MiB argument) the output is written inline: there is no data file.
  const external = fs.existsSync(`${out}.data`) ? `model.onnx.data ${mib(fs.statSync(`${out}.data`).size)} MiB` : 'weights inline (under 2 GiB)';
  console.log(`output: model.onnx ${fs.statSync(out).size} bytes, ${external}; reopened: ${inspect.stdout.trim()}`);
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
