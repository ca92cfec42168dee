import { createHash } from 'node:crypto';
import type { TensorInfo } from '../core/statedict.js';
import { readStored } from '../core/encoding.js';

/**
 * SHA-256 of a tensor's values as little-endian bytes of its dtype, row-major: the `--hash`
 * contract, comparable across formats. An encoded tensor (GGUF blocks, TFLite int8) hashes its
 * stored bytes, as the format's own tools do. Strings have no hash.
 */
export async function tensorSha256(tensor: TensorInfo): Promise<string | undefined> {
  if (tensor.dtype === 'string') return undefined;
  return createHash('sha256').update(await readStored(tensor)).digest('hex');
}
