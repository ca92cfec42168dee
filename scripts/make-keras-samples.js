// Writes samples/detector-90.h5 and samples/detector-92.h5: the TF.js samples (made by
// @tensorflow/tfjs, scripts/make-tfjs-samples.js) written by ckpt's Keras writer through the HDF5
// library (h5wasm) in the layout Keras's model.save / load_weights use, with the model config kept.
// Run after `npm run build`: node scripts/make-keras-samples.js [out-folder]
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { open } from '../dist/src/index.js';
import { writeKeras } from '../dist/src/formats/keras/write.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const out = process.argv[2] ?? path.join(root, 'samples');
for (const classes of [90, 92]) {
  const source = await open(path.join(root, 'samples', `detector-${classes}-tfjs`));
  const file = path.join(out, `detector-${classes}.h5`);
  await writeKeras(file, source.tensors.map((t) => ({ name: t.name, tensor: t })), source);
  await source.close();
  console.log(`wrote ${path.relative(process.cwd(), file)}`);
}
