// Writes samples/detector-90-tfjs/ and samples/detector-92-tfjs/: the detector of
// scripts/sample-network.js built as a TensorFlow.js layers model (channels-last, HWIO kernels)
// with @tensorflow/tfjs itself and saved through its IO handler API. Needs the devDependencies.
// Run: node scripts/make-tfjs-samples.js [out-folder]
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { detectorLayers, detectorWeights, oihwToHwio, INPUT } from './sample-network.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

export async function saveDetectorTfjs(classes, folder) {
  const model = tf.sequential({ name: `detector_${classes}` });
  for (const [i, layer] of detectorLayers(classes).entries()) {
    model.add(tf.layers.conv2d({
      name: layer.name.replace('.', '_'),
      filters: layer.out,
      kernelSize: layer.kernel,
      strides: layer.stride,
      padding: 'same',
      activation: layer.relu ? 'relu' : 'linear',
      ...(i === 0 ? { inputShape: [INPUT.height, INPUT.width, INPUT.channels] } : {}),
    }));
  }
  const weights = detectorWeights(classes);
  model.setWeights(weights.map((w) => (w.shape.length === 4
    ? tf.tensor(oihwToHwio(w.data, w.shape), [w.shape[2], w.shape[3], w.shape[1], w.shape[0]])
    : tf.tensor(w.data, w.shape))));
  fs.mkdirSync(folder, { recursive: true });
  await model.save(tf.io.withSaveHandler(async (artifacts) => {
    const shard = 'group1-shard1of1.bin';
    fs.writeFileSync(path.join(folder, shard), Buffer.from(artifacts.weightData));
    const json = {
      format: 'layers-model',
      generatedBy: `TensorFlow.js tfjs-layers v${tf.version.tfjs}`,
      convertedBy: null,
      modelTopology: artifacts.modelTopology,
      weightsManifest: [{ paths: [shard], weights: artifacts.weightSpecs }],
    };
    fs.writeFileSync(path.join(folder, 'model.json'), `${JSON.stringify(json, null, 1)}\n`);
    return { modelArtifactsInfo: { dateSaved: new Date(0), modelTopologyType: 'JSON' } };
  }));
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const out = process.argv[2] ?? path.join(root, 'samples');
  for (const classes of [90, 92]) {
    const folder = path.join(out, `detector-${classes}-tfjs`);
    await saveDetectorTfjs(classes, folder);
    console.log(`wrote ${path.relative(process.cwd(), folder)}/`);
  }
}
