import * as fs from 'node:fs';
import { writeGguf, type GgufOutput } from '../src/formats/gguf/write.js';
import { ggmlBlockTypes, ggmlType } from '../src/core/ggml.js';
import { ROOT } from './helpers.js';
import * as path from 'node:path';

/** GGUF key-value entries, encoded as the format does (for making test and bench files). */
export type KeyValue = [key: string, type: number, value: unknown];

const enc = {
  u32: (v: number) => { const b = Buffer.alloc(4); b.writeUInt32LE(v); return b; },
  u64: (v: number | bigint) => { const b = Buffer.alloc(8); b.writeBigUInt64LE(BigInt(v)); return b; },
  str: (s: string) => { const b = Buffer.from(s); return Buffer.concat([enc.u64(b.length), b]); },
};

function scalar(type: number, v: unknown): Buffer {
  const b = Buffer.alloc(8);
  switch (type) {
    case 0: b.writeUInt8(v as number); return b.subarray(0, 1);
    case 1: b.writeInt8(v as number); return b.subarray(0, 1);
    case 2: b.writeUInt16LE(v as number); return b.subarray(0, 2);
    case 3: b.writeInt16LE(v as number); return b.subarray(0, 2);
    case 4: b.writeUInt32LE(v as number); return b.subarray(0, 4);
    case 5: b.writeInt32LE(v as number); return b.subarray(0, 4);
    case 6: b.writeFloatLE(v as number); return b.subarray(0, 4);
    case 7: return Buffer.from([v ? 1 : 0]);
    case 8: return enc.str(v as string);
    case 10: b.writeBigUInt64LE(BigInt(v as number)); return b;
    case 11: b.writeBigInt64LE(BigInt(v as number)); return b;
    case 12: b.writeDoubleLE(v as number); return b;
    default: throw new Error(`type ${type}`);
  }
}

/** Type 9 (array) takes [elementType, values]. */
export function encodeKeyValues(entries: readonly KeyValue[]): { bytes: Uint8Array; count: number } {
  const parts = entries.map(([key, type, value]) => {
    if (type !== 9) return Buffer.concat([enc.str(key), enc.u32(type), scalar(type, value)]);
    const [of, items] = value as [number, unknown[]];
    return Buffer.concat([enc.str(key), enc.u32(9), enc.u32(of), enc.u64(items.length), ...items.map((x) => scalar(of, x))]);
  });
  return { bytes: Buffer.concat(parts), count: entries.length };
}

/** Blocks of a ggml type from the gguf-py reference fixture (real, dequantizable blocks). */
export function referenceBlocks(typeName: string): Buffer {
  const reference = JSON.parse(fs.readFileSync(path.join(ROOT, 'test', 'fixtures', 'ggml-reference.json'), 'utf8')) as { types: Record<string, { blocks: string }> };
  return Buffer.from(reference.types[typeName]!.blocks, 'hex');
}

export const blockType = (name: string) => ggmlBlockTypes().find((t) => t.name === name)!;

/**
 * A llama-like GGUF: metadata of every value type (a long token array included), a float32, a
 * float16 and block-quantized tensors (three blocks each, from the reference fixture).
 */
export async function writeSampleGguf(out: string): Promise<void> {
  const tokens = Array.from({ length: 1000 }, (_, i) => `tok${i}`);
  const kv = encodeKeyValues([
    ['general.architecture', 8, 'llama'], ['general.name', 8, 'tiny'], ['llama.block_count', 4, 1], ['u8', 0, 200], ['i8', 1, -3],
    ['u16', 2, 60000], ['i16', 3, -300], ['i32', 5, -70000], ['f32', 6, 0.5], ['flag', 7, true], ['u64', 10, 2n ** 60n], ['i64', 11, -5],
    ['f64', 12, 0.25], ['tokenizer.ggml.tokens', 9, [8, tokens]], ['tokenizer.ggml.scores', 9, [6, [0, 1, 2]]],
  ]);
  const plain = (name: string, shape: number[], typeId: number, bytes: Uint8Array): GgufOutput => ({ name, shape, type: ggmlType(typeId)!, byteLength: bytes.length, read: async () => bytes });
  const quantized = (name: string, typeName: string): GgufOutput => {
    const type = blockType(typeName);
    const bytes = referenceBlocks(typeName);
    return { name, shape: [3, type.blockSize], type, byteLength: bytes.length, read: async () => bytes };
  };
  await writeGguf(out, [
    plain('token_embd.weight', [4, 2], 0, new Uint8Array(new Float32Array([1, 2, 3, 4, 5, 6, 7, 8]).buffer)),
    plain('output_norm.weight', [2], 1, new Uint8Array(new Uint16Array([0x3c00, 0xc000]).buffer)),
    quantized('blk.0.attn_q.weight', 'q4_k'),
    quantized('blk.0.attn_k.weight', 'q8_0'),
    quantized('blk.0.ffn_down.weight', 'q6_k'),
  ], kv);
}
