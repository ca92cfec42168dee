// Benchmark: listing models by URL against a local HTTP server that adds latency to every
// answer (default 50 ms), next to listing the same files locally: requests, bytes transferred,
// share of the model, time. The models are sparse files (holes where the tensor values would be):
// a ≥ 10 GiB sharded safetensors model, a ≥ 1 GiB ONNX model and a TF.js model.
// Usage: npm run build && node bench/remote-listing.js [latency ms]
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { open } from '../dist/src/index.js';
import { configureRemote, transfer } from '../dist/src/core/http-source.js';
import { startServer } from '../dist/test/http-fixture.js';
import { bytesField, stringField, tag, varint } from './big-onnx.js';

const latencyMs = Number(process.argv[2] ?? 50);
const GiB = 1024 ** 3;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ckpt-bench-remote-'));

/** A safetensors shard of `layers` transformer layers (bf16 4096-wide), values left as a hole. */
function safetensorsShard(file, firstLayer, layers) {
  const header = { __metadata__: { format: 'pt' } };
  let at = 0;
  const add = (name, shape) => {
    const size = shape.reduce((n, d) => n * d, 1) * 2;
    header[name] = { dtype: 'BF16', shape, data_offsets: [at, at + size] };
    at += size;
  };
  for (let l = firstLayer; l < firstLayer + layers; l++) {
    for (const p of ['q_proj', 'k_proj', 'v_proj', 'o_proj']) add(`model.layers.${l}.self_attn.${p}.weight`, [4096, 4096]);
    for (const p of ['gate_proj', 'up_proj']) add(`model.layers.${l}.mlp.${p}.weight`, [11008, 4096]);
    add(`model.layers.${l}.mlp.down_proj.weight`, [4096, 11008]);
    add(`model.layers.${l}.input_layernorm.weight`, [4096]);
    add(`model.layers.${l}.post_attention_layernorm.weight`, [4096]);
  }
  const json = Buffer.from(JSON.stringify(header));
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(json.length));
  fs.writeFileSync(file, Buffer.concat([length, json]));
  fs.truncateSync(file, 8 + json.length + at);
  return Object.keys(header).filter((k) => k !== '__metadata__');
}

function shardedModel(folder) {
  fs.mkdirSync(folder);
  const shards = 4;
  const perShard = 8; // 32 layers of a 7B-like model: about 12.6 GiB in bf16
  const weightMap = {};
  for (let s = 0; s < shards; s++) {
    const name = `model-${String(s + 1).padStart(5, '0')}-of-${String(shards).padStart(5, '0')}.safetensors`;
    for (const t of safetensorsShard(path.join(folder, name), s * perShard, perShard)) weightMap[t] = name;
  }
  fs.writeFileSync(path.join(folder, 'model.safetensors.index.json'), JSON.stringify({ metadata: {}, weight_map: weightMap }));
  return path.join(folder, 'model.safetensors.index.json');
}

/** An ONNX model of `count` float32 initializers of `elements` each, payloads left as holes. */
function sparseOnnx(file, count, elements) {
  const heads = [];
  for (let i = 0; i < count; i++) {
    const head = Buffer.concat([tag(1, 0), varint(elements), tag(2, 0), varint(1), stringField(8, `layers.${i}.weight`), bytesField(9, elements * 4)]);
    heads.push({ head, length: head.length + elements * 4 });
  }
  const graphLength = heads.reduce((n, h) => n + bytesField(5, h.length).length + h.length, 0);
  const fd = fs.openSync(file, 'w');
  let at = fs.writeSync(fd, Buffer.concat([tag(1, 0), varint(8), stringField(2, 'ckpt-bench'), bytesField(7, graphLength)]), 0);
  for (const h of heads) {
    at += fs.writeSync(fd, Buffer.concat([bytesField(5, h.length), h.head]), 0, undefined, at);
    at += h.length - h.head.length;
  }
  fs.writeSync(fd, Buffer.concat([tag(8, 2), varint(2), tag(2, 0), varint(17)]), 0, undefined, at);
  fs.closeSync(fd);
  return file;
}

/** A TF.js layers model: `shards` 4 MiB shards of float32 weights, values left as holes. */
function tfjsModel(folder, shards) {
  fs.mkdirSync(folder);
  const shardBytes = 4 << 20;
  const weights = [];
  for (let i = 0; i < shards; i++) weights.push({ name: `dense_${i}/kernel`, shape: [1024, 1024], dtype: 'float32' });
  const paths = [];
  for (let i = 0; i < shards; i++) {
    const name = `group1-shard${i + 1}of${shards}.bin`;
    fs.writeFileSync(path.join(folder, name), '');
    fs.truncateSync(path.join(folder, name), shardBytes);
    paths.push(name);
  }
  fs.writeFileSync(path.join(folder, 'model.json'), JSON.stringify({ format: 'graph-model', generatedBy: 'bench', convertedBy: 'bench', modelTopology: {}, weightsManifest: [{ paths, weights }] }));
  return path.join(folder, 'model.json');
}

const sizeOf = (files) => files.reduce((n, f) => n + fs.statSync(f).size, 0);
const mib = (n) => `${(n / 2 ** 20).toFixed(n < 2 ** 20 ? 3 : 1)} MiB`;

async function listing(input) {
  const start = process.hrtime.bigint();
  const dict = await open(input);
  const tensors = dict.tensors.length;
  const bytesRead = dict.bytesRead?.() ?? 0;
  await dict.close();
  return { ms: Number(process.hrtime.bigint() - start) / 1e6, tensors, bytesRead };
}

const server = await startServer({ root: dir, latencyMs });
try {
  configureRemote({ cache: false });
  const models = [
    { label: 'sharded safetensors (4 shards)', file: shardedModel(path.join(dir, 'llm')), files: () => fs.readdirSync(path.join(dir, 'llm')).map((f) => path.join(dir, 'llm', f)) },
    { label: 'ONNX (256 × 4 MiB initializers)', file: sparseOnnx(path.join(dir, 'big.onnx'), 256, 1 << 20), files: () => [path.join(dir, 'big.onnx')] },
    { label: 'TF.js (64 × 4 MiB shards)', file: tfjsModel(path.join(dir, 'tfjs'), 64), files: () => fs.readdirSync(path.join(dir, 'tfjs')).map((f) => path.join(dir, 'tfjs', f)) },
  ];
  console.log(`latency ${latencyMs} ms per answer`);
  for (const m of models) {
    const size = sizeOf(m.files());
    const local = await listing(m.file);
    const before = { requests: transfer.requests, bytes: transfer.bytes };
    const remote = await listing(`${server.url}/${path.relative(dir, m.file)}`);
    const requests = transfer.requests - before.requests;
    const log = await server.requests();
    const connections = new Set(log.slice(-requests).map((r) => r.clientPort)).size;
    const bytes = transfer.bytes - before.bytes;
    console.log(`${m.label}: ${(size / GiB).toFixed(2)} GiB, ${remote.tensors} tensors`);
    console.log(`  local:  ${local.ms.toFixed(0)} ms, read ${mib(local.bytesRead)}`);
    console.log(`  by URL: ${remote.ms.toFixed(0)} ms, ${requests} requests on ${connections} connection${connections === 1 ? '' : 's'}, ${mib(bytes)} transferred (${((100 * bytes) / size).toFixed(4)}% of the model)`);
  }
  // One 86 MiB tensor's values: fetched as 8 MiB parts, four at a time.
  const dict = await open(`${server.url}/llm/model.safetensors.index.json`);
  const tensor = dict.tensors.find((t) => t.name === 'model.layers.0.mlp.up_proj.weight');
  const before = { requests: transfer.requests, bytes: transfer.bytes, log: (await server.requests()).length };
  const start = process.hrtime.bigint();
  await tensor.read();
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  const log = (await server.requests()).slice(before.log);
  console.log(`values of ${tensor.name} (${mib(tensor.byteLength)}) by URL: ${ms.toFixed(0)} ms, ${transfer.requests - before.requests} requests on ${new Set(log.map((r) => r.clientPort)).size} connections, ${mib(transfer.bytes - before.bytes)} transferred`);
  await dict.close();
} finally {
  await server.stop();
  fs.rmSync(dir, { recursive: true, force: true });
}
