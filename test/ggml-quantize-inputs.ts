import { seededRandom } from '../src/core/random.js';

/**
 * The float32 inputs the ggml quantizers are checked on, for blocks of 32 (q4_0…q8_0) or 256
 * (k-quants): the same seeded values here and in the reference run of ggml's C functions that made
 * test/fixtures/ggml-quantize-reference.json (whose `inputs` sha256 pins them).
 */
export interface QuantizeCase {
  readonly name: string;
  readonly values: Float32Array;
  /** What each block tests, where blocks are edge cases. */
  readonly blockNames?: readonly string[];
}

/** Roughly normal (sum of four uniforms, centred), as weights are. */
function normal(random: () => number): number {
  return (random() + random() + random() + random() - 2) * 1.7;
}

/** Blocks of varied magnitude (1e-4…10) and offset, so that mins, signs and scales all vary. */
function randomBlocks(blockSize: number, blocks: number, seed: number): Float32Array {
  const random = seededRandom(seed);
  const out = new Float32Array(blockSize * blocks);
  for (let b = 0; b < blocks; b++) {
    const scale = 10 ** (random() * 5 - 4);
    const offset = b % 3 === 0 ? (random() - 0.5) * 4 * scale : 0;
    for (let j = 0; j < blockSize; j++) out[b * blockSize + j] = normal(random) * scale + offset;
  }
  return out;
}

/** One block per edge case, each `blockSize` long: what quantizers get wrong first. */
function edgeBlocks(blockSize: number): QuantizeCase {
  const random = seededRandom(1616);
  const small = () => (random() - 0.5) * 0.02;
  const blocks: [string, (j: number) => number][] = [
    ['all zero', () => 0],
    ['one huge value', (j) => (j === 5 ? 1000 : small())],
    ['the largest magnitude is negative', (j) => (j === 9 ? -2.5 : (random() - 0.6) * 0.8)],
    ['negative max beside positive values', (j) => (j % 7 === 3 ? -1.25 : 0.25 + random())],
    ['all equal', () => 0.75],
    ['evenly spaced: many exact halves, ties for the rounding', (j) => (j - blockSize / 2 + 0.5) * 0.5],
    ['alternating, the first extreme negative', (j) => (j % 2 ? 1 : -1)],
    ['float16 subnormal scales', () => normal(random) * 3e-5],
    ['scales that round to float16 zero', () => normal(random) * 1e-6],
    ['float32 subnormal values: 1/d overflows', () => normal(random) * 1e-38],
    ['near the float16 limit, still finite scales', (j) => (j === 0 ? 60000 : normal(random) * 100)],
    ['float32 subnormals among normal values', (j) => (j % 4 === 0 ? 1e-40 : normal(random))],
    ['a narrow range far from zero (the min carries it)', (j) => 1 + j * 2 ** -20],
    ['all negative', () => -5 - random()],
  ];
  const out = new Float32Array(blocks.length * blockSize);
  blocks.forEach(([, value], b) => {
    for (let j = 0; j < blockSize; j++) out[b * blockSize + j] = value(j);
  });
  return { name: 'edges', values: out, blockNames: blocks.map(([name]) => name) };
}

/** llama.cpp's test-quantize-fns data: 0.1 + 2·cos(i), 32 × 128 values. */
export function cosineData(): Float32Array {
  return Float32Array.from({ length: 32 * 128 }, (_, i) => 0.1 + 2 * Math.cos(i));
}

export function quantizeCases(blockSize: number): QuantizeCase[] {
  return [
    { name: 'random', values: randomBlocks(blockSize, blockSize === 32 ? 96 : 16, 16) },
    edgeBlocks(blockSize),
    { name: 'cosine', values: cosineData() },
  ];
}
