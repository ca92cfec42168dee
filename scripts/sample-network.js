// The network every sample is made of, in every format: a tiny YOLO-style detector.
//
//   input  [1, 3, 64, 64] (NCHW; Keras/TF.js samples use NHWC [1, 64, 64, 3])
//   backbone.conv1  Conv 3→8,   3×3, stride 2, pad 1, Relu   → 32×32
//   backbone.conv2  Conv 8→16,  3×3, stride 2, pad 1, Relu   → 16×16
//   yolo_output     Conv 16→A·(5+C), 1×1                     → 16×16, A = 3 anchors
//
// C = 90 (COCO-style) or 92 classes. Weights are deterministic pseudo-random values, a different
// stream per class count (the two models were "trained" separately), so every generator here
// produces byte-identical files on every machine.

export const ANCHORS = 3;
export const INPUT = { channels: 3, height: 64, width: 64 };

/** The layers, with PyTorch/ONNX layouts (OIHW kernels). */
export function detectorLayers(classes) {
  const head = ANCHORS * (5 + classes);
  return [
    { name: 'backbone.conv1', in: 3, out: 8, kernel: 3, stride: 2, pad: 1, relu: true },
    { name: 'backbone.conv2', in: 8, out: 16, kernel: 3, stride: 2, pad: 1, relu: true },
    { name: 'yolo_output', in: 16, out: head, kernel: 1, stride: 1, pad: 0, relu: false },
  ];
}

/** mulberry32: a small, well-known deterministic PRNG (uniform in [0, 1)). */
export function random(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * The weights as PyTorch-style tensors: `<layer>.weight` [out, in, k, k] and `<layer>.bias` [out],
 * Kaiming-uniform-like scale so activations stay in a sane range.
 */
export function detectorWeights(classes) {
  const next = random(0x5eed0000 + classes);
  const tensors = [];
  for (const layer of detectorLayers(classes)) {
    const fanIn = layer.in * layer.kernel * layer.kernel;
    const bound = 1 / Math.sqrt(fanIn);
    const weight = new Float32Array(layer.out * fanIn).map(() => (next() * 2 - 1) * bound);
    const bias = new Float32Array(layer.out).map(() => (next() * 2 - 1) * bound);
    tensors.push({ name: `${layer.name}.weight`, shape: [layer.out, layer.in, layer.kernel, layer.kernel], data: weight, layer });
    tensors.push({ name: `${layer.name}.bias`, shape: [layer.out], data: bias, layer });
  }
  return tensors;
}

/** OIHW → HWIO (Keras / TF.js Conv2D kernel layout). */
export function oihwToHwio(data, [o, i, h, w]) {
  const out = new Float32Array(data.length);
  for (let a = 0; a < o; a++)
    for (let b = 0; b < i; b++)
      for (let y = 0; y < h; y++)
        for (let x = 0; x < w; x++) out[((y * w + x) * i + b) * o + a] = data[((a * i + b) * h + y) * w + x];
  return out;
}
