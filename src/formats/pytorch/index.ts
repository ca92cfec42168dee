import { RandomAccessFile } from '../../core/file.js';
import { invalidInput } from '../../core/errors.js';
import { swapToLittleEndian } from '../../core/decode.js';
import { canonicalName, uniqueNames } from '../../core/names.js';
import { readPickle, PyDict, PyTuple, type PickleOptions, type PyValue } from '../../core/pickle.js';
import { byteLengthOf, dtypeBits } from '../../core/dtype.js';
import { parameterCount, type OpenOptions, type StateDict, type TensorInfo } from '../../core/statedict.js';
import { checkZipCrc, crc32Of, readZipDirectory, verifyStoredMember, zipDataOffset, type ZipEntry } from '../../core/zip.js';
import type { Detection, FormatReader } from '../types.js';
import { dataPickles, hasLegacyMagic, isTar, isTorchScript, pytorchFormat, torchscriptFormat } from './match.js';
import { stillDetected } from '../probe.js';
import { interpret, nameTensors, storageId, TORCH_ALLOWED, TORCH_UNSUPPORTED, type StorageRef, type TensorRecord } from './tensors.js';
import { roleByName } from '../../core/roles.js';
import { interpretScript, moduleClasses, SCRIPT_PICKLE } from './torchscript.js';

/**
 * PyTorch `torch.save` files: the zip format (torch ≥ 1.6: `<prefix>/data.pkl` plus one member
 * per storage) and the legacy format (pickles in a row, then the storages). The pickle is read by
 * ckpt's restricted reader, which never runs anything from the file.
 */

const LEGACY_MAGIC = 0x1950a86a20f9469cfc6cn;
const LEGACY_PROTOCOL = 1001;

export const pytorchReader: FormatReader = { ...pytorchFormat, open: openPytorch };

/** TorchScript archives (torch.jit.save): the state dict of the scripted module, read like torch.save zips. */
export const torchscriptReader: FormatReader = { ...torchscriptFormat, open: openPytorch };

/** Where a storage's bytes start in the file; zip files find it on first use (a local header read per storage). */
type StorageStart = (ref: StorageRef) => number;

async function openPytorch(file: string, options: OpenOptions, detection?: Detection): Promise<StateDict> {
  const raf = RandomAccessFile.open(file);
  try {
    const head = raf.read(0, Math.min(raf.size, 512), 'header');
    if (isTar(head)) throw invalidInput(file, 'offset 0', 'a tar-based PyTorch checkpoint (torch < 0.4) is not supported; re-save it with a current torch');
    const pickleOptions: PickleOptions = { allowed: TORCH_ALLOWED, unsupported: TORCH_UNSUPPORTED, opaque: !options.strictPickle };
    const opened = hasLegacyMagic(head) ? openLegacy(raf, pickleOptions) : openZip(raf, pickleOptions, stillDetected(detection, raf)?.zipDirectory);
    const named = nameTensors(opened.tensors);
    const keep = opened.tensors.map((_, i) => options.all || named[i]!.group === 'model');
    const names = uniqueNames(named.map((n) => ({ name: canonicalName(n.name) })));
    const tensors: TensorInfo[] = [];
    opened.tensors.forEach((record, i) => {
      if (!keep[i]) return;
      const { source, group } = named[i]!;
      const where = `tensor '${source}'`;
      tensors.push({
        name: names[i]!, source, dtype: record.dtype, shape: record.shape, byteLength: byteLengthOf(record.dtype, parameterCount(record)), origin: 'weight',
        ...roleByName(names[i]!, record.dtype),
        ...(group === 'optimizer' ? { group } : {}),
        read: async () => {
          const bytes = readStrided(raf, opened.storageStart(record.storage), record, where);
          opened.checkStorage?.(record, bytes);
          return opened.bigEndian ? swapToLittleEndian(bytes, record.dtype) : bytes;
        },
        readStrings: async () => {
          throw invalidInput(file, where, `is ${record.dtype}, not strings`);
        },
      });
    });
    const hidden = keep.filter((k) => !k).length;
    const metadata = {
      ...opened.metadata,
      ...(Object.keys(opened.values).length ? { values: opened.values } : {}),
      ...(hidden ? { optimizerTensors: hidden } : {}),
      ...(opened.opaque.length ? { opaqueGlobals: opened.opaque } : {}),
      ...(opened.tensors.length === 0 ? { note: 'no tensors: not a state dict' } : {}),
    };
    return { format: opened.format ?? 'pytorch', path: file, metadata, tensors, close: async () => raf.close(), bytesRead: () => raf.bytesRead };
  } catch (err) {
    raf.close();
    throw err;
  }
}

interface Opened {
  /** `torchscript` for a torch.jit.save archive. */
  format?: string;
  tensors: TensorRecord[];
  /** Globals read as opaque values (lenient pickle reading). */
  opaque: readonly string[];
  values: Record<string, string | number | boolean | null>;
  metadata: Record<string, unknown>;
  bigEndian: boolean;
  storageStart: StorageStart;
  /** Zip files: checks the CRC-32 of a tensor's storage member once, given the bytes just read. */
  checkStorage?: (record: TensorRecord, bytes: Uint8Array) => void;
}

function openZip(raf: RandomAccessFile, pickleOptions: PickleOptions, entries: readonly ZipEntry[] = readZipDirectory(raf)): Opened {
  const fail = (where: string, detail: string) => invalidInput(raf.path, where, detail);
  const pickles = dataPickles(entries);
  if (pickles.length !== 1) throw fail('zip directory', `expected one data.pkl under a single folder, found ${pickles.length}`);
  const pkl = pickles[0]!;
  const prefix = pkl.name.slice(0, -'data.pkl'.length);
  const byName = new Map(entries.map((e) => [e.name, e]));
  const script = isTorchScript(entries, prefix);
  const small = (name: string) => {
    const e = byName.get(`${prefix}${name}`);
    return e && e.method === 0 && e.size <= 64 ? new TextDecoder().decode(raf.read(zipDataOffset(raf, e), e.size, name)).trim() : undefined;
  };
  const byteorder = small('byteorder') ?? 'little';
  if (byteorder !== 'little' && byteorder !== 'big') throw fail(`member '${prefix}byteorder'`, `is '${byteorder}', expected 'little' or 'big'`);
  const label = `member '${pkl.name}', `;
  if (pkl.method !== 0) throw fail(`member '${pkl.name}'`, 'is compressed; torch.save stores it uncompressed');
  const start = zipDataOffset(raf, pkl);
  const { value, opaque } = readPickle(raf, start, start + pkl.size, { ...(script ? { ...SCRIPT_PICKLE, opaque: pickleOptions.opaque } : pickleOptions), label });

  const storages = new Map<string, StorageRef>();
  const storageOf = (id: PyValue, where: string): StorageRef => {
    const parsed = storageId(id);
    if (typeof parsed === 'string') throw fail(`${label}${where}`, parsed);
    const known = storages.get(parsed.key);
    if (known) return known;
    const member = byName.get(`${prefix}data/${parsed.key}`);
    if (!member) throw fail(`${label}${where}`, `storage '${parsed.key}' has no member '${prefix}data/${parsed.key}'`);
    if (member.method !== 0) throw fail(`member '${member.name}'`, 'is compressed; storages must be stored uncompressed');
    const bytes = byteLengthOf(parsed.type, parsed.numel);
    if (member.size !== bytes) throw fail(`member '${member.name}'`, `holds ${member.size} bytes, expected ${bytes} for ${parsed.numel} elements of ${parsed.type}`);
    const ref = { key: parsed.key, dtype: parsed.type, numel: parsed.numel, viewOffset: 0 };
    storages.set(parsed.key, ref);
    return ref;
  };
  const failAt = (where: string, detail: string) => fail(`${label}${where}`, detail);
  const scripted = script ? interpretScript(value, moduleClasses(raf, entries, prefix), storageOf, failAt) : undefined;
  const { tensors, values } = scripted ?? interpret(value, storageOf, failAt);
  const starts = new Map<string, number>();
  const verified = new Set<string>();
  const version = small('version');
  return {
    tensors, values, opaque, bigEndian: byteorder === 'big',
    ...(scripted ? { format: 'torchscript' } : {}),
    metadata: {
      container: 'zip', archive: prefix.replace(/\/$/, ''), byteorder, ...(version ? { version } : {}),
      ...(scripted?.notListed ? { notListed: `${scripted.notListed} tensor(s) outside state_dict (constants, quantized packed params) are not listed` } : {}),
    },
    storageStart: (ref) => {
      if (!starts.has(ref.key)) starts.set(ref.key, zipDataOffset(raf, byName.get(`${prefix}data/${ref.key}`)!));
      return starts.get(ref.key)!;
    },
    checkStorage: (record, bytes) => {
      const key = record.storage.key;
      if (verified.has(key)) return;
      const member = byName.get(`${prefix}data/${key}`)!;
      // A tensor that is its whole storage was just read; a view of part of one reads the member in chunks.
      if (record.offset === 0 && isContiguous(record) && bytes.length === member.size) checkZipCrc(raf, member, crc32Of([bytes]));
      else verifyStoredMember(raf, member, starts.get(key)!);
      verified.add(key);
    },
  };
}

function openLegacy(raf: RandomAccessFile, pickleOptions: PickleOptions): Opened {
  const fail = (where: string, detail: string) => invalidInput(raf.path, where, detail);
  let pos = 0;
  const opaque = new Set<string>();
  const next = (label: string) => {
    const r = readPickle(raf, pos, raf.size, { ...pickleOptions, label: `${label} at offset ${pos}, ` });
    const at = pos;
    pos = r.end;
    r.opaque.forEach((g) => opaque.add(g));
    return { value: r.value, at };
  };
  const magic = next('magic number pickle');
  if (magic.value !== LEGACY_MAGIC) throw fail('offset 0', 'legacy PyTorch magic number is wrong');
  const protocol = next('protocol pickle');
  if (protocol.value !== LEGACY_PROTOCOL) throw fail(`offset ${protocol.at}`, `legacy PyTorch protocol ${String(protocol.value)}, expected ${LEGACY_PROTOCOL}`);
  const sysInfo = next('sys_info pickle');
  const littleEndian = sysInfo.value instanceof PyDict ? sysInfo.value.entries.get('little_endian') : undefined;
  if (typeof littleEndian !== 'boolean') throw fail(`offset ${sysInfo.at}`, 'sys_info pickle has no little_endian flag');
  const mainAt = pos;
  const main = next('main pickle');

  // Persistent ids name root storages; views are parts of them (torch < 1.6 saved slices that way).
  const roots = new Map<string, { dtype: StorageRef['dtype']; numel: number }>();
  const storageOf = (id: PyValue, where: string): StorageRef => {
    const parsed = storageId(id);
    if (typeof parsed === 'string') throw fail(`main pickle at offset ${mainAt}, ${where}`, parsed);
    const root = roots.get(parsed.key);
    if (root && (root.dtype !== parsed.type || root.numel !== parsed.numel)) throw fail(`main pickle at offset ${mainAt}, ${where}`, `storage '${parsed.key}' is declared twice with different types or sizes`);
    roots.set(parsed.key, { dtype: parsed.type, numel: parsed.numel });
    let ref: StorageRef = { key: parsed.key, dtype: parsed.type, numel: parsed.numel, viewOffset: 0 };
    if (parsed.view !== null) {
      const [, offset, size] = parsed.view instanceof PyTuple ? parsed.view.items : [];
      if (typeof offset !== 'number' || typeof size !== 'number' || offset < 0 || size < 0 || offset + size > parsed.numel) {
        throw fail(`main pickle at offset ${mainAt}, ${where}`, `storage view of '${parsed.key}' lies outside its ${parsed.numel} elements`);
      }
      ref = { ...ref, numel: size, viewOffset: offset };
    }
    return ref;
  };
  const { tensors, values } = interpret(main.value, storageOf, (where, detail) => fail(`main pickle at offset ${mainAt}, ${where}`, detail));
  const keysPickle = next('storage keys pickle');
  const keys = Array.isArray(keysPickle.value) ? keysPickle.value : undefined;
  if (!keys || !keys.every((k) => typeof k === 'string')) throw fail(`offset ${keysPickle.at}`, 'storage keys pickle is not a list of strings');

  // Then each storage in that order: an int64 element count and the elements.
  const dataAt = new Map<string, number>();
  for (const key of keys as string[]) {
    const root = roots.get(key);
    if (!root) throw fail(`offset ${pos}`, `storage '${key}' is listed but no tensor uses it`);
    if (pos + 8 > raf.size) throw fail(`offset ${pos}`, `storage '${key}' starts past the end of the file (truncated?)`);
    const count = new DataView(raf.read(pos, 8, `storage '${key}' size`).slice().buffer).getBigInt64(0, true);
    if (count !== BigInt(root.numel)) throw fail(`offset ${pos}`, `storage '${key}' holds ${count} elements, the pickle says ${root.numel}`);
    const bytes = byteLengthOf(root.dtype, root.numel);
    if (pos + 8 + bytes > raf.size) throw fail(`offset ${pos}`, `storage '${key}' of ${bytes} bytes runs past the end of the file (truncated?)`);
    dataAt.set(key, pos + 8);
    pos += 8 + bytes;
  }
  const missing = [...roots.keys()].find((k) => !dataAt.has(k));
  if (missing) throw fail(`offset ${keysPickle.at}`, `storage '${missing}' is used by a tensor but not in the storage list`);
  return {
    tensors, values, opaque: [...opaque], bigEndian: !littleEndian,
    metadata: { container: 'legacy', byteorder: littleEndian ? 'little' : 'big' },
    storageStart: (ref) => dataAt.get(ref.key)! + ref.viewOffset * (dtypeBits(ref.dtype) / 8),
  };
}

/** True when the tensor's elements lie row-major, back to back, in its storage. */
function isContiguous(t: TensorRecord): boolean {
  let expected = 1;
  for (let d = t.shape.length - 1; d >= 0; d--) {
    if (t.shape[d] !== 1 && t.stride[d] !== expected) return false;
    expected *= t.shape[d]!;
  }
  return true;
}

/**
 * A tensor's bytes, row-major: contiguous tensors are one read; views with other strides (slices
 * saved without `.clone()`, transposes, shared storages) read the span they cover and gather it.
 */
function readStrided(raf: RandomAccessFile, storageStart: number, t: TensorRecord, where: string): Uint8Array {
  const width = dtypeBits(t.dtype) / 8;
  const numel = parameterCount(t);
  if (numel === 0) return new Uint8Array(0);
  const base = storageStart + t.offset * width;
  if (isContiguous(t)) return raf.read(base, numel * width, where);
  const span = t.shape.reduce((n, d, i) => n + (d - 1) * t.stride[i]!, 0) + 1;
  const source = raf.read(base, span * width, where);
  const out = new Uint8Array(numel * width);
  const rank = t.shape.length;
  const index = new Array<number>(rank).fill(0);
  let from = 0;
  for (let i = 0; i < numel; i++) {
    out.set(source.subarray(from * width, (from + 1) * width), i * width);
    for (let k = rank - 1; k >= 0; k--) {
      from += t.stride[k]!;
      if (++index[k]! < t.shape[k]!) break;
      from -= t.stride[k]! * t.shape[k]!;
      index[k] = 0;
    }
  }
  return out;
}
