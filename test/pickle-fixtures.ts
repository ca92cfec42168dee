import * as fs from 'node:fs';
import * as path from 'node:path';
import { ZipWriter } from '../src/core/zip.js';
import { tempDir } from './helpers.js';

/**
 * Pickles written opcode by opcode, so tests can say exactly what a file holds — including what
 * no well-behaved pickler would write.
 */
export type Part = string | number[] | Uint8Array;

/** Concatenates parts; strings are taken byte for byte (latin1). */
export function bytes(...parts: Part[]): Buffer {
  return Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'latin1') : Buffer.from(p))));
}

const u32 = (n: number) => { const b = Buffer.alloc(4); b.writeUInt32LE(n); return b; };

export const op = {
  proto: (n: number) => [0x80, n],
  stop: '.',
  mark: '(',
  emptyDict: '}',
  emptyList: ']',
  emptyTuple: ')',
  tuple: 't',
  setitem: 's',
  setitems: 'u',
  append: 'a',
  reduce: 'R',
  build: 'b',
  persid: 'Q',
  none: 'N',
  false: [0x89],
  true: [0x88],
  global: (module: string, name: string) => `c${module}\n${name}\n`,
  str: (s: string) => { const b = Buffer.from(s, 'utf8'); return bytes('X', u32(b.length), b); },
  bytes: (b: Uint8Array) => bytes('B', u32(b.length), b),
  int: (n: number) => (n >= 0 && n < 256 ? [0x4b, n] : bytes('J', (() => { const b = Buffer.alloc(4); b.writeInt32LE(n); return b; })())),
  ints: (ns: number[]) => bytes('(', ...ns.map((n) => op.int(n)), 't'),
};

export interface StorageSpec {
  key: string;
  type?: string;
  numel: number;
  /** Legacy files: a 6-tuple id whose last item is the view (None, or (key, offset, numel)). */
  view?: Part;
}

/** `_rebuild_tensor_v2(('storage', torch.<type>, key, 'cpu', numel), offset, size, stride, False, OrderedDict())`. */
export function tensorCall(s: StorageSpec, offset: number, size: number[], stride: number[]): Buffer {
  return bytes(
    op.global('torch._utils', '_rebuild_tensor_v2'), op.mark,
    op.mark, op.str('storage'), op.global('torch', s.type ?? 'FloatStorage'), op.str(s.key), op.str('cpu'), op.int(s.numel), ...(s.view ? [s.view] : []), op.tuple, op.persid,
    op.int(offset), op.ints(size), op.ints(stride), op.false, op.global('collections', 'OrderedDict'), op.emptyTuple, op.reduce,
    op.tuple, op.reduce,
  );
}

/** An OrderedDict pickle (protocol 2) of name → value parts. */
export function statePickle(entries: [string, Part][]): Buffer {
  return bytes(op.proto(2), op.global('collections', 'OrderedDict'), op.emptyTuple, op.reduce, op.mark, ...entries.flatMap(([k, v]) => [op.str(k), v]), op.setitems, op.stop);
}

/** A torch zip file: `archive/data.pkl`, then members, 64-byte aligned. */
export function torchZip(pickle: Uint8Array, members: Record<string, Uint8Array>, name = 'model.pth'): string {
  const parts: Uint8Array[] = [];
  const zip = new ZipWriter((b) => parts.push(Uint8Array.from(b)), 64);
  zip.add('archive/data.pkl', [pickle]);
  for (const [member, data] of Object.entries(members)) zip.add(`archive/${member}`, [data]);
  zip.finish();
  const file = path.join(tempDir(), name);
  fs.writeFileSync(file, Buffer.concat(parts));
  return file;
}

/** Little-endian float32 bytes. */
export function f32(values: number[]): Buffer {
  return Buffer.from(new Float32Array(values).buffer);
}

/** Writes bytes to a fresh file and returns its path. */
export function pickleFile(content: Uint8Array, name = 'model.pdparams'): string {
  const file = path.join(tempDir(), name);
  fs.writeFileSync(file, content);
  return file;
}

/** A legacy (torch < 1.6) file: magic, protocol and sys_info pickles, the main pickle, the storage keys, the storages. */
export function torchLegacy(main: Uint8Array, storages: [string, number, Uint8Array][], littleEndian = true): string {
  const magic = bytes(op.proto(2), [0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19], op.stop);
  const protocol = bytes(op.proto(2), [0x4d, 0xe9, 0x03], op.stop);
  const sysInfo = bytes(op.proto(2), op.emptyDict, op.mark, op.str('protocol_version'), [0x4d, 0xe9, 0x03], op.str('little_endian'), littleEndian ? op.true : op.false, op.setitems, op.stop);
  const keys = bytes(op.proto(2), op.emptyList, op.mark, ...storages.map(([k]) => op.str(k)), 'e', op.stop);
  const data = storages.map(([, numel, payload]) => { const n = Buffer.alloc(8); n.writeBigInt64LE(BigInt(numel)); return bytes(n, payload); });
  return pickleFile(bytes(magic, protocol, sysInfo, main, keys, ...data), 'legacy.pth');
}
