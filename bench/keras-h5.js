// Writes a Keras 2 weights-layout HDF5 file for the benchmarks (with h5wasm): `dense_N` layers of
// a 4096×4096 float32 kernel (64 MiB, constant values) and a 4096 bias, as many as fit `totalMiB`.
import h5wasm from 'h5wasm/node';

export const KERNEL_BYTES = 64 * 1024 * 1024;

export async function writeKerasH5(file, totalMiB) {
  await h5wasm.ready;
  const f = new h5wasm.File(file, 'w');
  const layers = Array.from({ length: Math.max(1, Math.ceil(totalMiB / 64)) }, (_, i) => `dense_${i}`);
  f.create_attribute('layer_names', layers);
  const block = new Float32Array(KERNEL_BYTES / 4).fill(0.25);
  for (const layer of layers) {
    const g = f.create_group(layer);
    g.create_attribute('weight_names', [`${layer}/kernel:0`, `${layer}/bias:0`]);
    const inner = g.create_group(layer);
    inner.create_dataset({ name: 'kernel:0', data: block, shape: [4096, 4096], dtype: '<f' });
    inner.create_dataset({ name: 'bias:0', data: new Float32Array(4096), shape: [4096], dtype: '<f' });
  }
  f.close();
  return { layers: layers.length, largest: KERNEL_BYTES };
}
