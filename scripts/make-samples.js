// Writes the ONNX samples in samples/: the tiny detector of scripts/sample-network.js with a
// 90-class (COCO-style) and a 92-class `yolo_output` head. Deterministic: running it again gives
// identical bytes (a test checks that). Run with `npm run samples` after `npm run build`.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { encodeModel, float32Tensor } from '../dist/src/formats/onnx/build.js';
import { detectorLayers, detectorWeights, INPUT } from './sample-network.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

export function detectorOnnx(classes) {
  const weights = detectorWeights(classes);
  const layers = detectorLayers(classes);
  const nodes = [];
  let x = 'images';
  for (const layer of layers) {
    const conv = layer.relu ? `${layer.name}.conv` : 'yolo_output';
    nodes.push({
      op: 'Conv',
      name: `${layer.name}.Conv`,
      inputs: [x, `${layer.name}.weight`, `${layer.name}.bias`],
      outputs: [conv],
      attributes: { kernel_shape: [layer.kernel, layer.kernel], strides: [layer.stride, layer.stride], pads: [layer.pad, layer.pad, layer.pad, layer.pad] },
    });
    x = conv;
    if (layer.relu) {
      nodes.push({ op: 'Relu', name: `${layer.name}.Relu`, inputs: [conv], outputs: [`${layer.name}.relu`] });
      x = `${layer.name}.relu`;
    }
  }
  const head = layers[layers.length - 1];
  const grid = INPUT.height / 4;
  return encodeModel({
    graphName: `detector_${classes}`,
    producerName: 'ckpt-samples',
    producerVersion: '1',
    docString: `Tiny YOLO-style detector, ${classes} classes, 3 anchors: yolo_output channels = 3 x (5 + ${classes}).`,
    nodes,
    initializers: weights.map((t) => float32Tensor(t.name, t.shape, t.data)),
    inputs: [{ name: 'images', dtype: 'float32', shape: [1, INPUT.channels, INPUT.height, INPUT.width] }],
    outputs: [{ name: 'yolo_output', dtype: 'float32', shape: [1, head.out, grid, grid] }],
  });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const outDir = process.argv[2] ?? path.join(root, 'samples');
  fs.mkdirSync(outDir, { recursive: true });
  for (const classes of [90, 92]) {
    const file = path.join(outDir, `detector-${classes}.onnx`);
    fs.writeFileSync(file, detectorOnnx(classes));
    console.log(`wrote ${path.relative(process.cwd(), file)}`);
  }
}
