import * as fs from 'node:fs';
import * as path from 'node:path';
import type { FormatMatch, Probe } from '../types.js';
import { onDemand } from '../../core/on-demand.js';

/** The magic number a LevelDB table (a TensorBundle `.index`) ends with. */
const TABLE_MAGIC = [0x57, 0xfb, 0x80, 0x8b, 0x24, 0x75, 0x47, 0xdb];

export function hasTableMagic(lastBytes: Uint8Array): boolean {
  return lastBytes.length >= 8 && TABLE_MAGIC.every((b, i) => lastBytes[lastBytes.length - 8 + i] === b);
}

/** Checkpoint folders are told by their files, found by the module that locates them when opened. */
const locate = onDemand<typeof import('./locate.js')>(new URL('./locate.js', import.meta.url));

function hasDataShardBeside(file: string): boolean {
  const base = path.basename(file);
  if (!base.endsWith('.index')) return false;
  const shardPrefix = `${base.slice(0, -'.index'.length)}.data-`;
  try {
    return fs.readdirSync(path.dirname(file)).some((f) => f.startsWith(shardPrefix));
  } catch {
    return false;
  }
}

/** TensorFlow checkpoints: their `.index` file, or a folder with a `checkpoint` file or a single `.index`. */
export const tfCheckpointFormat: FormatMatch = {
  name: 'tf-checkpoint',
  match: (probe: Probe) => {
    if (probe.isDirectory) return locate().looksLikeCheckpointFolder(probe.path);
    if (probe.file && probe.size >= 8 && hasTableMagic(probe.file.read(probe.size - 8, 8, 'table magic'))) return true;
    // A damaged index beside its data shards is still ours, so the error can say what is wrong.
    return hasDataShardBeside(probe.path);
  },
};
