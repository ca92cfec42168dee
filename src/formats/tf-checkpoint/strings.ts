import { crc32c, maskCrc } from './crc32c.js';
import { readLength, type Fail } from './proto.js';

/**
 * A DT_STRING tensor's stored bytes (tensor_bundle.cc `WriteStringTensor`): one varint64 length
 * per element, a masked CRC32C of those lengths (each fed as a little-endian uint32, or uint64
 * when it does not fit), then the strings back to back. The entry's CRC continues over the
 * stored length checksum and the strings.
 */
export interface StringLayout {
  readonly lengths: number[];
  /** Offset of the first string within the entry's bytes. */
  readonly dataStart: number;
  /** CRC32C (unmasked) of the lengths, which the entry's checksum continues from. */
  readonly lengthsCrc: number;
}

/** The layout from the first bytes of the entry (enough for the lengths and their checksum). */
export function stringLayout(head: Uint8Array, numel: number, size: number, fail: Fail): StringLayout {
  const lengths: number[] = [];
  let pos = 0;
  let crc = 0;
  let total = 0;
  const scratch = new DataView(new ArrayBuffer(8));
  for (let i = 0; i < numel; i++) {
    const length = readLength(head, pos, head.length, fail, `string ${i} length`);
    lengths.push(length.value);
    total += length.value;
    pos = length.next;
    const wide = length.value > 0xffffffff;
    scratch.setBigUint64(0, BigInt(length.value), true);
    crc = crc32c(new Uint8Array(scratch.buffer, 0, wide ? 8 : 4), crc);
  }
  if (pos + 4 > head.length) throw fail('the checksum of the string lengths runs past the entry (truncated?)');
  const stored = new DataView(head.buffer, head.byteOffset + pos, 4).getUint32(0, true);
  if (stored !== maskCrc(crc)) throw fail(`checksum of the string lengths does not match (stored 0x${stored.toString(16)}, computed 0x${maskCrc(crc).toString(16)})`);
  const dataStart = pos + 4;
  if (dataStart + total !== size) throw fail(`${numel} strings of ${total} bytes after ${dataStart} bytes of lengths make ${dataStart + total} bytes, but the entry holds ${size}`);
  return { lengths, dataStart, lengthsCrc: crc };
}

/** The elements, after the whole entry's checksum is verified. */
export function decodeStrings(bytes: Uint8Array, layout: StringLayout, expectedCrc: number, fail: Fail): Uint8Array[] {
  const crc = crc32c(bytes.subarray(layout.dataStart), crc32c(bytes.subarray(layout.dataStart - 4, layout.dataStart), layout.lengthsCrc));
  if (maskCrc(crc) !== expectedCrc) throw fail(`checksum mismatch (stored 0x${expectedCrc.toString(16)}, computed 0x${maskCrc(crc).toString(16)}); the data file is corrupt`);
  const out: Uint8Array[] = [];
  let pos = layout.dataStart;
  for (const length of layout.lengths) {
    out.push(bytes.subarray(pos, pos + length));
    pos += length;
  }
  return out;
}
