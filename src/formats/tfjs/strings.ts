import { invalidInput } from '../../core/errors.js';
import type { ShardGroup } from './shards.js';

/**
 * String weights store, per element, a uint32 little-endian byte length then the bytes. Their size
 * is only known by walking the lengths (4 bytes per element; the string bytes are skipped), and
 * every later offset of the group depends on it.
 */
export function stringWeightBytes(file: string, group: ShardGroup, offset: number, numel: number, weight: string): number {
  const lengths = group.uint32Reader();
  try {
    let size = 0;
    for (let i = 0; i < numel; i++) {
      const what = `weight '${weight}' string ${i}`;
      if (offset + size + 4 > group.size) {
        throw invalidInput(file, what, `its length field at byte ${offset + size} runs past the end of the shards ${group.names} (${group.size} bytes)`);
      }
      const length = lengths.at(offset + size, what);
      size += 4 + length;
      if (offset + size > group.size) {
        throw invalidInput(file, what, `${length} bytes from byte ${offset + size - length} run past the end of the shards ${group.names} (${group.size} bytes)`);
      }
    }
    return size;
  } finally {
    lengths.close();
  }
}

/** The elements of a string weight from its stored bytes. */
export function splitStrings(file: string, weight: string, bytes: Uint8Array, numel: number): Uint8Array[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: Uint8Array[] = [];
  let pos = 0;
  for (let i = 0; i < numel; i++) {
    const length = pos + 4 <= bytes.length ? view.getUint32(pos, true) : undefined;
    if (length === undefined || pos + 4 + length > bytes.length) {
      throw invalidInput(file, `weight '${weight}' string ${i}`, `runs past the ${bytes.length} bytes of the weight (shards changed since listing?)`);
    }
    out.push(bytes.slice(pos + 4, pos + 4 + length));
    pos += 4 + length;
  }
  return out;
}
