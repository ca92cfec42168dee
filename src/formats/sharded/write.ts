import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeAll } from '../../core/atomic.js';
import { usageError } from '../../core/errors.js';
import { writeFileSet, type SetMember } from '../../core/fileset.js';
import type { OutputTensor } from '../writers.js';

const UNITS: Record<string, number> = {
  B: 1, KB: 1e3, MB: 1e6, GB: 1e9, TB: 1e12, KIB: 2 ** 10, MIB: 2 ** 20, GIB: 2 ** 30, TIB: 2 ** 40,
};

/**
 * A size as Hugging Face's `max_shard_size` takes it: bytes, or a number with KB/MB/GB/TB
 * (decimal) or KiB/MiB/GiB/TiB (binary), case-insensitive: `5GB` is 5·10⁹ bytes, `4GiB` 4·2³⁰.
 */
export function parseByteSize(text: string, flag: string): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(text);
  const unit = UNITS[(match?.[2] || 'B').toUpperCase()];
  const bytes = match && unit ? Math.floor(Number(match[1]) * unit) : NaN;
  if (!Number.isSafeInteger(bytes) || bytes <= 0) {
    throw usageError(`${flag} ${text}: expected a positive size such as 5GB, 500MB (decimal) or 4GiB (binary), or a number of bytes`);
  }
  return bytes;
}

/**
 * Tensors in file order, cut into shards of at most `maxBytes` as Hugging Face cuts them: a
 * shard closes when the next tensor would take it over the limit, and a tensor larger than the
 * limit gets a shard of its own.
 */
export function planShards<T extends { tensor: { byteLength: number } }>(tensors: readonly T[], maxBytes: number): T[][] {
  const shards: T[][] = [];
  let current: T[] = [];
  let size = 0;
  for (const t of tensors) {
    if (current.length && size + t.tensor.byteLength > maxBytes) {
      shards.push(current);
      current = [];
      size = 0;
    }
    current.push(t);
    size += t.tensor.byteLength;
  }
  if (current.length || shards.length === 0) shards.push(current);
  return shards;
}

/** `model.safetensors` → `model-00001-of-00003.safetensors`, as `save_pretrained` names shards. */
export function shardFileName(out: string, index: number, count: number): string {
  const ext = path.extname(out);
  const stem = path.basename(out, ext);
  const number = (n: number) => String(n).padStart(5, '0');
  return `${stem}-${number(index + 1)}-of-${number(count)}${ext}`;
}

function isFile(file: string): boolean {
  try {
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

/** The files an existing index names in its folder (plain names only), and the index itself. */
function existingSet(indexPath: string): string[] {
  try {
    const index = JSON.parse(fs.readFileSync(indexPath, 'utf8')) as { weight_map?: Record<string, unknown> };
    const names = Object.values(index.weight_map ?? {}).filter((n): n is string => typeof n === 'string' && n === path.basename(n) && n !== '..' && n !== '.');
    return [indexPath, ...new Set(names.map((n) => path.join(path.dirname(indexPath), n)))];
  } catch {
    return [];
  }
}

/**
 * Hugging Face sharded output for OUT (`model.safetensors`, `pytorch_model.bin`): the shards and
 * `OUT.index.json` (`metadata.total_size`, `weight_map`) beside it, the layout `from_pretrained`
 * reads; one file at OUT when everything fits in one shard, as `save_pretrained` does. The set is
 * written atomically; the previous set's files the new one does not replace are removed (an
 * unsharded OUT left beside an index would be loaded instead of it).
 */
export async function writeSharded(
  out: string, tensors: readonly OutputTensor[], maxBytes: number, writerFor: (shard: readonly OutputTensor[]) => (fd: number) => Promise<void>,
): Promise<string[]> {
  const shards = planShards(tensors, maxBytes);
  const indexPath = `${out}.index.json`;
  const stale = existingSet(indexPath);
  const folder = path.dirname(out);
  fs.mkdirSync(folder, { recursive: true });
  if (shards.length === 1) {
    await writeFileSet(out, [{ path: out, write: writerFor(shards[0]!) }], stale);
    return [`everything fits in one shard of ${maxBytes} bytes: wrote ${path.basename(out)} without an index`];
  }
  const names = shards.map((_, i) => shardFileName(out, i, shards.length));
  const weightMap: Record<string, string> = {};
  shards.forEach((shard, i) => shard.forEach((t) => (weightMap[t.name] = names[i]!)));
  const totalSize = tensors.reduce((n, t) => n + t.tensor.byteLength, 0);
  // Keys sorted as transformers' json.dumps(sort_keys=True) writes them, entry by entry: a JS object would put integer-like names first.
  const entries = Object.keys(weightMap).sort().map((name) => `    ${JSON.stringify(name)}: ${JSON.stringify(weightMap[name])}`);
  const index = `{\n  "metadata": {\n    "total_size": ${totalSize}\n  },\n  "weight_map": {\n${entries.join(',\n')}\n  }\n}\n`;
  const members: SetMember[] = [
    ...shards.map((shard, i) => ({ path: path.join(folder, names[i]!), write: writerFor(shard) })),
    { path: indexPath, write: (fd: number) => writeAll(fd, Buffer.from(index)) },
  ];
  await writeFileSet(out, members, [...stale, ...(isFile(out) ? [out] : [])]);
  return [`${shards.length} shards of at most ${maxBytes} bytes (${names[0]} … ${names.at(-1)}) and ${path.basename(indexPath)}`];
}
