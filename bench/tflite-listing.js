// Benchmark: listing a ≥1 GiB TFLite model whose buffers lie after the flatbuffer (offset/size, as
// the converter lays out models over 2 GB) against reading the whole file once; bytes read counted.
// Usage: npm run build && node bench/tflite-listing.js [MiB]
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { printListing, readWholeFile, timeListing } from './listing.js';
import { tfliteLayout } from '../dist/test/tflite-fixtures.js';

const totalMiB = Number(process.argv[2] ?? 1100);
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ckpt-bench-'));
const file = path.join(dir, 'model.tflite');
try {
  // Per layer: an int8 per-channel 4096×1024 fully-connected weight, its int32 bias and a float32 norm.
  const tensors = [{ name: 'input', shape: [1, 1024], type: 0, buffer: 0 }];
  const buffers = [undefined];
  const operators = [];
  let bytes = 0;
  for (let layer = 0; bytes < totalMiB * 1048576; layer++) {
    const base = tensors.length;
    buffers.push({ externalLength: 4096 * 1024 }, { externalLength: 4096 * 4 }, { externalLength: 1024 * 4 });
    tensors.push(
      { name: `layer${layer}/fc/weights`, shape: [4096, 1024], type: 9, buffer: buffers.length - 3, quantization: { scale: Array.from({ length: 4096 }, () => 0.01), zeroPoint: new Array(4096).fill(0), axis: 0 } },
      { name: `layer${layer}/fc/bias`, shape: [4096], type: 2, buffer: buffers.length - 2, quantization: { scale: [0.0001], zeroPoint: [0] } },
      { name: `layer${layer}/norm/gamma`, shape: [1024], type: 0, buffer: buffers.length - 1 },
      { name: `layer${layer}/out`, shape: [1, 4096], type: 0, buffer: 0 },
    );
    operators.push({ opcode: 0, inputs: [base - (layer ? 1 : 0) - (layer ? 0 : 0), base, base + 1], outputs: [base + 3] });
    bytes += 4096 * 1024 + 4096 * 4 + 1024 * 4;
  }
  const { flatbuffer, external } = tfliteLayout({ opcodes: [9], buffers, subgraphs: [{ name: 'main', tensors, operators }] });
  const fd = fs.openSync(file, 'w');
  fs.writeSync(fd, flatbuffer, 0, flatbuffer.length, 0);
  const zeros = Buffer.alloc(4096 * 1024);
  for (const e of external) fs.writeSync(fd, zeros, 0, e.length, e.at);
  fs.closeSync(fd);
  const size = fs.statSync(file).size;
  const fullRead = readWholeFile(file);
  const listing = await timeListing(file);
  printListing({ label: 'tflite', about: `, flatbuffer ${flatbuffer.length} B, buffers at offset/size after it`, size, fullRead, listing });
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
