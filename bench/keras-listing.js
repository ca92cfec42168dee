// Benchmark: listing a ≥1 GiB Keras HDF5 file (Keras 2 weights layout, 64 MiB datasets) against
// reading the whole file once, in the same run. Usage: npm run build && node bench/keras-listing.js [MiB]
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import h5wasm from 'h5wasm/node';
import { open } from '../dist/src/index.js';
import { COLD, dropCaches } from './cold.js';
import { readWholeFile, timeListing } from './listing.js';
import { writeKerasH5 } from './keras-h5.js';

const totalMiB = Number(process.argv[2] ?? 1088);
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ckpt-bench-'));
const ms = (start) => Number(process.hrtime.bigint() - start) / 1e6;
try {
  const file = path.join(dir, 'big.h5');
  await writeKerasH5(file, totalMiB);
  const size = fs.statSync(file).size;

  const fullRead = readWholeFile(file, 16 << 20);
  const listing = await timeListing(file);
  // The same listing of a tiny file: what is fixed cost (the superblock, the root group), not data.
  const tiny = path.join(dir, 'tiny.h5');
  const t = new h5wasm.File(tiny, 'w');
  t.create_attribute('layer_names', ['d']);
  t.create_group('d').create_attribute('weight_names', ['d/kernel:0']);
  t.get('d').create_group('d').create_dataset({ name: 'kernel:0', data: new Float32Array(4), shape: [2, 2], dtype: '<f' });
  t.close();
  dropCaches();
  const start = process.hrtime.bigint();
  await (await open(tiny)).close();
  const fixed = ms(start);
  console.log(`${COLD ? '[cold cache] ' : ''}Keras HDF5: ${(size / 1048576).toFixed(0)} MiB, ${listing.tensors} datasets`);
  console.log(`read whole file once:  ${fullRead.ms.toFixed(0)} ms`);
  console.log(`open() + listing:      ${listing.ms.toFixed(0)} ms; a 1 KiB file takes ${fixed.toFixed(0)} ms (fixed cost): ${(listing.ms - fixed).toFixed(0)} ms depend on the file, ${((100 * (listing.ms - fixed)) / fullRead.ms).toFixed(1)}% of the read time`);
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
