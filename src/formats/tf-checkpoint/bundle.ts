import { expectWire, fieldsOf, int64Of, type Fail } from './proto.js';
import { tfDType, type TfDType } from './dtypes.js';

/**
 * The values of a TensorBundle `.index` (tensorflow/core/protobuf/tensor_bundle.proto): the header
 * under the empty key, and one entry per tensor saying where its bytes are.
 */
export interface BundleHeader {
  readonly numShards: number;
  readonly bigEndian: boolean;
}

export interface BundleEntry {
  readonly type: TfDType;
  readonly shape: number[];
  readonly shardId: number;
  readonly offset: number;
  readonly size: number;
  /** Masked CRC32C of the stored bytes. */
  readonly crc32c: number;
  /** A partitioned variable: its pieces are stored under separate slice keys. */
  readonly sliced: boolean;
}

const WIRE_VARINT = 0;
const WIRE_BYTES = 2;
const WIRE_FIXED32 = 5;

/** A non-negative integer field that must fit a JS number exactly. */
function count(value: bigint, fail: Fail, what: string): number {
  if (value < 0n || value > BigInt(Number.MAX_SAFE_INTEGER)) throw fail(`${what} ${value} is not a valid non-negative integer`);
  return Number(value);
}

export function decodeHeader(value: Uint8Array, fail: Fail): BundleHeader {
  let numShards = 0n;
  let endianness = 0n;
  for (const f of fieldsOf(value, fail, 'BundleHeaderProto')) {
    if (f.no === 1) numShards = int64Of(expectWire(f, WIRE_VARINT, fail, 'BundleHeaderProto'));
    else if (f.no === 2) endianness = expectWire(f, WIRE_VARINT, fail, 'BundleHeaderProto').varint;
  }
  if (numShards < 1n || numShards > 0x7fffffffn) throw fail(`BundleHeaderProto: num_shards ${numShards}; expected 1 to 2147483647`);
  if (endianness > 1n) throw fail(`BundleHeaderProto: endianness ${endianness}; expected 0 (little) or 1 (big)`);
  return { numShards: Number(numShards), bigEndian: endianness === 1n };
}

export function decodeEntry(value: Uint8Array, fail: Fail): BundleEntry {
  let code = 0n;
  let shape: number[] = [];
  let shardId = 0n;
  let offset = 0n;
  let size = 0n;
  let crc = 0;
  let sliced = false;
  const what = 'BundleEntryProto';
  for (const f of fieldsOf(value, fail, what)) {
    switch (f.no) {
      case 1: code = expectWire(f, WIRE_VARINT, fail, what).varint; break;
      case 2: shape = decodeShape(expectWire(f, WIRE_BYTES, fail, what).bytes, fail); break;
      case 3: shardId = int64Of(expectWire(f, WIRE_VARINT, fail, what)); break;
      case 4: offset = int64Of(expectWire(f, WIRE_VARINT, fail, what)); break;
      case 5: size = int64Of(expectWire(f, WIRE_VARINT, fail, what)); break;
      case 6: {
        const b = expectWire(f, WIRE_FIXED32, fail, what).bytes;
        crc = new DataView(b.buffer, b.byteOffset, 4).getUint32(0, true);
        break;
      }
      case 7: sliced = true; break;
    }
  }
  const type = code <= 0xffffn ? tfDType(Number(code)) : undefined;
  if (!type) {
    const detail = code >= 101n && code <= 132n ? ' (a reference type, never stored in checkpoints)' : '';
    throw fail(`${what}: unknown dtype ${code}${detail}`);
  }
  return {
    type,
    shape,
    shardId: count(shardId, fail, `${what}: shard_id`),
    offset: count(offset, fail, `${what}: offset`),
    size: count(size, fail, `${what}: size`),
    crc32c: crc,
    sliced,
  };
}

/** TensorShapeProto: `repeated Dim dim = 2` (`int64 size = 1`), `bool unknown_rank = 3`. */
function decodeShape(bytes: Uint8Array, fail: Fail): number[] {
  const dims: number[] = [];
  const what = 'TensorShapeProto';
  for (const f of fieldsOf(bytes, fail, what)) {
    if (f.no === 3 && expectWire(f, WIRE_VARINT, fail, what).varint !== 0n) throw fail(`${what}: unknown rank; a saved tensor has a full shape`);
    if (f.no !== 2) continue;
    let size = 0n;
    for (const d of fieldsOf(expectWire(f, WIRE_BYTES, fail, what).bytes, fail, `${what}.Dim`)) {
      if (d.no === 1) size = int64Of(expectWire(d, WIRE_VARINT, fail, `${what}.Dim`));
    }
    dims.push(count(size, fail, `${what}: dim ${dims.length}`));
  }
  return dims;
}
