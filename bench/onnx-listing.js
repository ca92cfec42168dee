// Benchmark: listing a ≥1 GiB ONNX model must cost a small fraction of reading it.
// Writes a model of 17 × 64 MiB float32 initializers (plus small ones) into a temp folder,
// then measures, in the same run: open()+listing (time and bytes read), `ckpt inspect` end to
// end, and reading the whole file once. Usage: npm run build && node bench/onnx-listing.js [MiB]
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { COLD, dropCaches } from './cold.js';
import { writeBigOnnx } from './big-onnx.js';
import { readWholeFile, timeListing } from './listing.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const totalMiB = Number(process.argv[2] ?? 1088);

const ms = (start) => Number(process.hrtime.bigint() - start) / 1e6;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ckpt-bench-'));
try {
  const file = path.join(dir, 'big.onnx');
  const count = writeBigOnnx(file, totalMiB);
  const size = fs.statSync(file).size;

  const fullRead = readWholeFile(file, 16 * 1024 * 1024);
  const listing = await timeListing(file);
  if (listing.tensors !== count) throw new Error(`listed ${listing.tensors} tensors, wrote ${count}`);

  dropCaches();
  const start = process.hrtime.bigint();
  const cli = spawnSync(process.execPath, [path.join(root, 'bin', 'ckpt.js'), 'inspect', '--json', file], { maxBuffer: 64 << 20 });
  const inspect = ms(start);
  if (cli.status !== 0) throw new Error(cli.stderr.toString());

  const mib = (n) => (n / 1048576).toFixed(1);
  console.log(`${COLD ? '[cold cache] ' : ''}ONNX model: ${mib(size)} MiB, ${count} initializers (${dir})`);
  console.log(`read whole file once:        ${fullRead.ms.toFixed(0)} ms (${mib(fullRead.bytes)} MiB)`);
  console.log(`open() + listing:            ${listing.ms.toFixed(1)} ms, ${(listing.bytesRead / 1024).toFixed(0)} KiB read (${((100 * listing.bytesRead) / size).toFixed(3)}% of the file)`);
  console.log(`ckpt inspect --json (CLI):   ${inspect.toFixed(0)} ms end to end, including Node start-up`);
  console.log(`listing / full read:         ${((100 * listing.ms) / fullRead.ms).toFixed(2)}% of the time`);
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
