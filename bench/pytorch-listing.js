// Benchmark: listing a ≥1 GiB PyTorch zip checkpoint (torch.save ≥ 1.6: archive/data.pkl plus one
// 64-byte aligned member per storage; float32, bfloat16 and int64 tensors), written by ckpt's own
// writer one tensor at a time, against reading the whole file once, in the same run; bytes read counted.
// Usage: npm run build && node bench/pytorch-listing.js [MiB]
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { writePytorch } from '../dist/src/formats/pytorch/write.js';
import { printListing, readWholeFile, syntheticTransformer, timeListing } from './listing.js';

const totalMiB = Number(process.argv[2] ?? 1100);
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ckpt-bench-'));
const file = path.join(dir, 'model.pt');
try {
  const tensors = syntheticTransformer(totalMiB);
  await writePytorch(file, tensors);
  const storages = tensors.splice(0).length; // empties the list, letting its constant buffers go
  const size = fs.statSync(file).size;

  const fullRead = readWholeFile(file);
  const listing = await timeListing(file);
  printListing({ label: 'PyTorch zip', about: ` in ${storages} storages (${listing.metadata.container}, written by writePytorch)`, size, fullRead, listing });
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
