import { createHash } from 'node:crypto';
import type { TensorInfo } from '../core/statedict.js';

/**
 * SHA-256 of a tensor's values as little-endian bytes of its dtype, row-major: the `--hash`
 * contract, comparable across formats. Strings have no hash.
 */
export async function tensorSha256(tensor: TensorInfo): Promise<string | undefined> {
  if (tensor.dtype === 'string') return undefined;
  return bytesSha256(await tensor.read());
}

export function bytesSha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}
