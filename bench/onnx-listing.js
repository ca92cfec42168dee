// Benchmark: listing a ≥1 GiB ONNX model must cost a small fraction of reading it.
// Writes a model of 17 × 64 MiB float32 initializers (plus small ones) into a temp folder,
// then measures, in the same run: open()+listing (time and bytes read), `ckpt inspect` end to
// end, and reading the whole file once. Usage: npm run build && node bench/onnx-listing.js [MiB]
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { open } from '../dist/src/index.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const totalMiB = Number(process.argv[2] ?? 1088);
const CHUNK = 64 * 1024 * 1024;

function varint(n) {
  const out = [];
  let v = BigInt(n);
  while (v >= 0x80n) {
    out.push(Number(v & 0x7fn) | 0x80);
    v >>= 7n;
  }
  out.push(Number(v));
  return Buffer.from(out);
}
const tag = (field, wire) => varint(field * 8 + wire);
const bytesField = (field, payloadLength) => Buffer.concat([tag(field, 2), varint(payloadLength)]);
const stringField = (field, text) => Buffer.concat([bytesField(field, Buffer.byteLength(text)), Buffer.from(text)]);

/** TensorProto header (dims, data_type, name) and the raw_data field header; the payload follows. */
function tensorHead(name, elements) {
  const head = Buffer.concat([tag(1, 0), varint(elements), tag(2, 0), varint(1), stringField(8, name), bytesField(9, elements * 4)]);
  return { head, length: head.length + elements * 4 };
}

function writeModel(file) {
  const tensors = [];
  for (let i = 0; i * 64 < totalMiB; i++) tensors.push({ name: `layers.${i}.weight`, elements: CHUNK / 4 });
  for (let i = 0; i < 200; i++) tensors.push({ name: `layers.${i}.bias`, elements: 256 });
  const heads = tensors.map((t) => tensorHead(t.name, t.elements));
  const graphLength = heads.reduce((n, h) => n + bytesField(5, h.length).length + h.length, 0);
  const fd = fs.openSync(file, 'w');
  fs.writeSync(fd, Buffer.concat([tag(1, 0), varint(8), stringField(2, 'ckpt-bench'), bytesField(7, graphLength)]));
  const payload = Buffer.alloc(CHUNK, 0x3f);
  for (const h of heads) {
    fs.writeSync(fd, Buffer.concat([bytesField(5, h.length), h.head]));
    let left = h.length - h.head.length;
    while (left > 0) left -= fs.writeSync(fd, payload, 0, Math.min(left, payload.length));
  }
  fs.writeSync(fd, Buffer.concat([tag(8, 2), varint(2), tag(2, 0), varint(17)]));
  fs.closeSync(fd);
  return tensors.length;
}

const ms = (start) => Number(process.hrtime.bigint() - start) / 1e6;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ckpt-bench-'));
try {
  const file = path.join(dir, 'big.onnx');
  const count = writeModel(file);
  const size = fs.statSync(file).size;

  let start = process.hrtime.bigint();
  const buf = Buffer.allocUnsafe(16 * 1024 * 1024);
  const fd = fs.openSync(file, 'r');
  let total = 0;
  for (let n; (n = fs.readSync(fd, buf, 0, buf.length, null)) > 0;) total += n;
  fs.closeSync(fd);
  const fullRead = ms(start);

  start = process.hrtime.bigint();
  const dict = await open(file);
  const listing = ms(start);
  const bytesRead = dict.bytesRead();
  if (dict.tensors.length !== count) throw new Error(`listed ${dict.tensors.length} tensors, wrote ${count}`);
  await dict.close();

  start = process.hrtime.bigint();
  const cli = spawnSync(process.execPath, [path.join(root, 'bin', 'ckpt.js'), 'inspect', '--json', file], { maxBuffer: 64 << 20 });
  const inspect = ms(start);
  if (cli.status !== 0) throw new Error(cli.stderr.toString());

  const mib = (n) => (n / 1048576).toFixed(1);
  console.log(`ONNX model: ${mib(size)} MiB, ${count} initializers (${dir})`);
  console.log(`read whole file once:        ${fullRead.toFixed(0)} ms (${mib(total)} MiB)`);
  console.log(`open() + listing:            ${listing.toFixed(1)} ms, ${(bytesRead / 1024).toFixed(0)} KiB read (${((100 * bytesRead) / size).toFixed(3)}% of the file)`);
  console.log(`ckpt inspect --json (CLI):   ${inspect.toFixed(0)} ms end to end, including Node start-up`);
  console.log(`listing / full read:         ${((100 * listing) / fullRead).toFixed(2)}% of the time`);
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
