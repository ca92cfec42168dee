import { inFolder, listFolder } from '../../core/location.js';
import type { FormatMatch, Probe } from '../types.js';

const INDEX_SUFFIX = '.index.json';
const WEIGHT_MAP = /"weight_map"\s*:/;

/** The index in a folder: the only `*.index.json`, or the safetensors one where both kinds are there. */
export function indexInFolder(folder: string): string | undefined {
  let names: string[];
  try {
    names = listFolder(folder).filter((f) => f.endsWith(INDEX_SUFFIX));
  } catch {
    return undefined;
  }
  const chosen = names.length === 1 ? names[0] : names.find((n) => n.includes('safetensors'));
  return chosen && inFolder(folder, chosen);
}

/** Hugging Face sharded checkpoints: their `*.index.json`, or a folder with one. */
export const shardedFormat: FormatMatch = {
  name: 'sharded',
  match: (probe: Probe) => {
    if (probe.isDirectory) return indexInFolder(probe.path) !== undefined;
    const head = new TextDecoder().decode(probe.head).trimStart();
    return head.startsWith('{') && (WEIGHT_MAP.test(head) || probe.path.endsWith(INDEX_SUFFIX));
  },
};
