// Benchmark: listing a ≥1 GiB legacy PyTorch file (torch < 1.6, `_use_new_zipfile_serialization=False`:
// magic, protocol and sys_info pickles, the main pickle, the storage keys, then each storage as an
// int64 count + its bytes; float32, bfloat16 and int64 tensors) against reading the whole file once,
// in the same run; bytes read counted. ckpt cannot write this format: the file is built here, the
// pickles with ckpt's PickleWriter and the storages streamed to disk in chunks.
// Usage: npm run build && node bench/pytorch-legacy-listing.js [MiB]
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PickleWriter } from '../dist/src/core/pickle-write.js';
import { printListing, readWholeFile, timeListing } from './listing.js';

const totalMiB = Number(process.argv[2] ?? 1100);
const CHUNK = 8 * 1024 * 1024;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ckpt-bench-'));
const file = path.join(dir, 'model.pth');
const STORAGE = { float32: ['FloatStorage', 4], bfloat16: ['BFloat16Storage', 2], int64: ['LongStorage', 8] };
try {
  // A transformer-like layout: per layer four 1024×1024 projections, an MLP, norms and a step counter.
  // Storage keys are decimal addresses, as torch wrote them.
  const tensors = [];
  let bytes = 0;
  const add = (name, dtype, shape) => {
    const numel = shape.reduce((n, d) => n * d, 1);
    tensors.push({ name, dtype, shape, numel, key: String(94869799193440 + 64 * tensors.length) });
    bytes += numel * STORAGE[dtype][1];
  };
  for (let layer = 0; bytes < totalMiB * 1048576; layer++) {
    for (const p of ['q_proj', 'k_proj', 'v_proj', 'o_proj']) add(`model.layers.${layer}.self_attn.${p}.weight`, 'float32', [1024, 1024]);
    add(`model.layers.${layer}.mlp.up_proj.weight`, 'bfloat16', [4096, 1024]);
    add(`model.layers.${layer}.mlp.down_proj.weight`, 'bfloat16', [1024, 4096]);
    add(`model.layers.${layer}.input_layernorm.weight`, 'float32', [1024]);
    add(`model.layers.${layer}.step`, 'int64', []);
  }

  const fd = fs.openSync(file, 'w');
  const sink = (b) => fs.writeSync(fd, b);
  const pickle = (body) => {
    const p = new PickleWriter(sink);
    p.proto(2);
    body(p);
    p.stop();
  };
  pickle((p) => p.int(0x1950a86a20f9469cfc6cn)); // magic number
  pickle((p) => p.int(1001)); // protocol version
  pickle((p) => { // sys_info
    p.emptyDict();
    const next = p.items(3);
    p.values('protocol_version', 1001);
    next();
    p.values('little_endian', true);
    next();
    p.unicode('type_sizes');
    p.emptyDict();
    const nextSize = p.items(3);
    for (const [k, v] of [['short', 2], ['int', 4], ['long', 4]]) {
      p.values(k, v);
      nextSize();
    }
    next();
  });
  pickle((p) => { // the state dict: name → _rebuild_tensor_v2(('storage', torch.XStorage, key, 'cpu', numel, None), 0, size, stride, False, OrderedDict())
    p.global('collections', 'OrderedDict');
    p.value([]);
    p.reduce();
    const next = p.items(tensors.length);
    for (const t of tensors) {
      p.unicode(t.name);
      p.global('torch._utils', '_rebuild_tensor_v2');
      p.tuple(6, () => {
        p.tuple(6, () => {
          p.unicode('storage');
          p.global('torch', STORAGE[t.dtype][0]);
          p.values(t.key, 'cpu', t.numel, null);
        });
        p.persistentId();
        const stride = t.shape.map((_, i) => t.shape.slice(i + 1).reduce((n, d) => n * d, 1));
        p.values(0, t.shape, stride, false);
        p.global('collections', 'OrderedDict');
        p.value([]);
        p.reduce();
      });
      p.reduce();
      next();
    }
  });
  pickle((p) => { // the storage keys, a list appended in CPython's batches
    p.emptyList();
    const next = p.appends(tensors.length);
    for (const t of tensors) {
      p.unicode(t.key);
      next();
    }
  });
  const pickles = fs.fstatSync(fd).size;
  const chunk = Buffer.alloc(CHUNK, 0x3c);
  const count = Buffer.alloc(8);
  for (const t of tensors) {
    count.writeBigInt64LE(BigInt(t.numel));
    fs.writeSync(fd, count);
    for (let left = t.numel * STORAGE[t.dtype][1]; left > 0; left -= CHUNK) fs.writeSync(fd, chunk, 0, Math.min(CHUNK, left));
  }
  fs.closeSync(fd);
  const size = fs.statSync(file).size;

  const fullRead = readWholeFile(file);
  const listing = await timeListing(file);
  printListing({
    label: 'PyTorch legacy', about: ` in ${tensors.length} storages (${listing.metadata.container}), ${pickles} B of pickles`, size, fullRead, listing,
    note: `; ${tensors.length} × 8-byte storage counts walked`,
  });
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
