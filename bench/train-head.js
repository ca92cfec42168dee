// Benchmark: training samples/s of a 1024→92 linear head, batch 256, through the generated ONNX
// training graph — CUDA and CPU in the same run when CUDA loads, else the CPU alone — and what
// the per-call copies cost: 64 steps in one Loop call against 64 calls of one step.
// Usage: npm run build && node bench/train-head.js
import { denseTrainable } from '../dist/src/train/graph.js';
import { loadOrt, openSession, cudaProviderInstalled } from '../dist/src/runtime/session.js';
import { seededRandom } from '../dist/src/train/engine.js';

const [inF, outF, batch, steps] = [1024, 92, 256, 64];
const spec = {
  layers: [{ layout: 'OI', inFeatures: inF, outFeatures: outF, hasBias: true, relu: false }],
  loss: 'cross-entropy',
  optimizer: { kind: 'sgd', momentum: 0.9, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0 },
};
const model = denseTrainable(spec);
const ort = await loadOrt();
const random = seededRandom(1);
const xs = Float32Array.from({ length: steps * batch * inF }, () => random() - 0.5);
const ys = new Float32Array(steps * batch * outF);
for (let i = 0; i < steps * batch; i++) ys[i * outF + (i % outF)] = 1;

async function measure(provider, stepsPerCall) {
  const { session, provider: ran } = await openSession(model.trainingModel(batch), provider, 'bench');
  let W = new Float32Array(outF * inF);
  let b = new Float32Array(outF);
  let vW = new Float32Array(W.length);
  let vb = new Float32Array(outF);
  const call = async (first, count) => {
    const feeds = {
      xs: new ort.Tensor('float32', xs.subarray(first * batch * inF, (first + count) * batch * inF), [count, batch, inF]),
      ys: new ort.Tensor('float32', ys.subarray(first * batch * outF, (first + count) * batch * outF), [count, batch, outF]),
      W0: new ort.Tensor('float32', W, [outF, inF]), b0: new ort.Tensor('float32', b, [outF]),
      W0_v: new ort.Tensor('float32', vW, [outF, inF]), b0_v: new ort.Tensor('float32', vb, [outF]),
      t: new ort.Tensor('float32', new Float32Array([0]), []), lr: new ort.Tensor('float32', new Float32Array([0.01]), []),
    };
    const out = await session.run(feeds);
    [W, b, vW, vb] = [out.W0_out.data, out.b0_out.data, out.W0_v_out.data, out.b0_v_out.data];
    return out.losses.data;
  };
  await call(0, stepsPerCall); // warm-up
  const start = performance.now();
  let last;
  for (let first = 0; first < steps; first += stepsPerCall) last = await call(first, stepsPerCall);
  const ms = performance.now() - start;
  await session.release();
  return { ran, ms, samplesPerSecond: (steps * batch) / (ms / 1000), finalLoss: last[last.length - 1] };
}

const providers = ['cpu', ...(cudaProviderInstalled() ? ['cuda'] : [])];
console.log(`linear head ${inF}→${outF}, batch ${batch}, ${steps} SGD steps`);
for (const provider of providers) {
  for (const stepsPerCall of [64, 1]) {
    try {
      const r = await measure(provider, stepsPerCall);
      console.log(`${r.ran.padEnd(4)} ${String(stepsPerCall).padStart(2)} step(s)/call: ${r.ms.toFixed(0)} ms, ${Math.round(r.samplesPerSecond).toLocaleString('en-US')} samples/s, final loss ${r.finalLoss.toFixed(3)}`);
    } catch (err) {
      console.log(`${provider}: not usable here (${err.message.split('\n')[0]})`);
      break;
    }
  }
}
