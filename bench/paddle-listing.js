// Benchmark: listing a ≥1 GiB PaddlePaddle .pdparams (one pickle of name → numpy array, each payload
// a BINBYTES the reader skips by offset; float32, float16 and int64 arrays, as numpy has no bfloat16),
// written by ckpt's own writer one tensor at a time, against reading the whole file once, in the same
// run; bytes read counted.
// Usage: npm run build && node bench/paddle-listing.js [MiB]
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { writePaddle } from '../dist/src/formats/paddle/write.js';
import { printListing, readWholeFile, syntheticTransformer, timeListing } from './listing.js';

const totalMiB = Number(process.argv[2] ?? 1100);
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ckpt-bench-'));
const file = path.join(dir, 'model.pdparams');
try {
  await writePaddle(file, syntheticTransformer(totalMiB, { mlpDtype: 'float16' }), { format: 'bench', path: '', metadata: {}, tensors: [], close: async () => {} });
  const size = fs.statSync(file).size;

  const fullRead = readWholeFile(file);
  const listing = await timeListing(file);
  printListing({ label: 'Paddle .pdparams', about: ' (one pickle, written by writePaddle)', size, fullRead, listing });
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
