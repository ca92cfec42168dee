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
import { COLD, dropCaches } from './cold.js';
import { writeBigOnnx } from './big-onnx.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const totalMiB = Number(process.argv[2] ?? 1088);

const ms = (start) => Number(process.hrtime.bigint() - start) / 1e6;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ckpt-bench-'));
try {
  const file = path.join(dir, 'big.onnx');
  const count = writeBigOnnx(file, totalMiB);
  const size = fs.statSync(file).size;

  dropCaches();
  let start = process.hrtime.bigint();
  const buf = Buffer.allocUnsafe(16 * 1024 * 1024);
  const fd = fs.openSync(file, 'r');
  let total = 0;
  for (let n; (n = fs.readSync(fd, buf, 0, buf.length, null)) > 0;) total += n;
  fs.closeSync(fd);
  const fullRead = ms(start);

  dropCaches();
  start = process.hrtime.bigint();
  const dict = await open(file);
  const listing = ms(start);
  const bytesRead = dict.bytesRead();
  if (dict.tensors.length !== count) throw new Error(`listed ${dict.tensors.length} tensors, wrote ${count}`);
  await dict.close();

  dropCaches();
  start = process.hrtime.bigint();
  const cli = spawnSync(process.execPath, [path.join(root, 'bin', 'ckpt.js'), 'inspect', '--json', file], { maxBuffer: 64 << 20 });
  const inspect = ms(start);
  if (cli.status !== 0) throw new Error(cli.stderr.toString());

  const mib = (n) => (n / 1048576).toFixed(1);
  console.log(`${COLD ? '[cold cache] ' : ''}ONNX model: ${mib(size)} MiB, ${count} initializers (${dir})`);
  console.log(`read whole file once:        ${fullRead.toFixed(0)} ms (${mib(total)} MiB)`);
  console.log(`open() + listing:            ${listing.toFixed(1)} ms, ${(bytesRead / 1024).toFixed(0)} KiB read (${((100 * bytesRead) / size).toFixed(3)}% of the file)`);
  console.log(`ckpt inspect --json (CLI):   ${inspect.toFixed(0)} ms end to end, including Node start-up`);
  console.log(`listing / full read:         ${((100 * listing) / fullRead).toFixed(2)}% of the time`);
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
