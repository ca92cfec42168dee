import * as fs from 'node:fs';
import * as path from 'node:path';
import { outputTarget, writeAll, writeAtomic, yieldToSignals } from '../../core/atomic.js';
import { usageError } from '../../core/errors.js';
import type { StateDict } from '../../core/statedict.js';
import type { FormatWriter, OutputTensor } from '../writers.js';
import { readNetwork, seenBytesOf, VERSION_BYTES } from './index.js';

/**
 * Darknet `.weights` for a `.cfg`: the cfg fixes which arrays the file holds and in what order, so
 * every one must be given, under its `layers.<i>.<field>` name and shape, as float32. The cfg is
 * the source model's when it is a darknet one (its header and `seen` are kept; the cfg is copied
 * beside the output), else the `.cfg` of the output's stem beside it (header 0.2.5, seen 0).
 */
export async function writeDarknet(out: string, tensors: readonly OutputTensor[], source: StateDict): Promise<string[]> {
  const beside = cfgBeside(out);
  const cfg = source.format === 'darknet' ? source.path : beside;
  if (source.format !== 'darknet' && !fs.existsSync(cfg)) {
    throw usageError(`writing darknet weights needs the network's .cfg: '${cfg}' does not exist (or convert from a darknet model)`);
  }
  const network = readNetwork(cfg);
  const given = new Map(tensors.map((t) => [t.name, t]));
  const missing = network.arrays.filter((a) => !given.has(a.name));
  if (missing.length) {
    throw usageError(`${path.basename(cfg)} needs all ${network.arrays.length} arrays in the .weights file; missing ${missing.length}: ${missing.slice(0, 5).map((a) => a.name).join(', ')}${missing.length > 5 ? ', …' : ''}`);
  }
  const known = new Set(network.arrays.map((a) => a.name));
  const extra = tensors.filter((t) => !known.has(t.name));
  if (extra.length) throw usageError(`${path.basename(cfg)} has no place for ${extra.length} tensor(s): ${extra.slice(0, 5).map((t) => t.name).join(', ')}`);
  for (const a of network.arrays) {
    const t = given.get(a.name)!.tensor;
    if (t.dtype !== 'float32') throw usageError(`'${a.name}' is ${t.dtype}; darknet weights are float32`);
    if (t.shape.join(',') !== a.shape.join(',')) throw usageError(`'${a.name}' is [${t.shape.join(', ')}]; ${path.basename(cfg)} implies [${a.shape.join(', ')}]`);
  }
  const darknet = source.format === 'darknet' ? (source.metadata.darknet as { version: readonly number[]; seen: number }) : { version: [0, 2, 5], seen: 0 };
  const [major, minor, revision] = darknet.version as [number, number, number];
  const seenBytes = seenBytesOf(major, minor);
  const header = new DataView(new ArrayBuffer(VERSION_BYTES + seenBytes));
  [major, minor, revision].forEach((v, i) => header.setInt32(i * 4, v, true));
  if (seenBytes === 8) header.setBigUint64(12, BigInt(darknet.seen), true);
  else header.setUint32(12, darknet.seen, true);
  const streamed = outputTarget(out).kind === 'stream';
  await writeAtomic(out, async (fd) => {
    writeAll(fd, new Uint8Array(header.buffer));
    for (const a of network.arrays) {
      await yieldToSignals();
      const t = given.get(a.name)!.tensor;
      const bytes = await t.read();
      if (bytes.length !== t.byteLength) throw new Error(`'${a.name}' read ${bytes.length} bytes, expected ${t.byteLength}`);
      writeAll(fd, bytes);
    }
  });
  return streamed ? [`the weights are for ${cfg}; darknet opens them with that cfg`] : copyCfg(cfg, beside);
}

/** Darknet (and ckpt) open `.weights` through the `.cfg` of the same stem beside them. */
const cfgBeside = (weights: string) => path.join(path.dirname(weights), `${path.basename(weights).replace(/\.[^.]*$/, '')}.cfg`);

/** Written weights get their network's cfg beside them, so the output opens as the model it was written for. */
async function copyCfg(cfg: string, beside: string): Promise<string[]> {
  if (path.resolve(beside) === path.resolve(cfg)) return [];
  const network = fs.readFileSync(cfg);
  if (fs.existsSync(beside)) {
    if (fs.readFileSync(beside).equals(network)) return [];
    return [`'${beside}' is another network than the one the weights are for (${cfg}); darknet and ckpt open the weights with it`];
  }
  await writeAtomic(beside, (fd) => writeAll(fd, network));
  return [`wrote the network definition beside the weights: ${beside} (a copy of ${cfg})`];
}

export const darknetWriter: FormatWriter = {
  format: 'darknet',
  extensions: ['.weights'],
  async write(out, tensors, source) {
    return { format: 'darknet', notes: await writeDarknet(out, tensors, source) };
  },
};
