import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { RandomAccessFile } from '../../core/file.js';
import { invalidInput } from '../../core/errors.js';
import { byteLengthOf, dtypeBits, numelOf } from '../../core/dtype.js';
import { fortranToRowMajor, swapToLittleEndian } from '../../core/decode.js';
import { canonicalName, uniqueNames } from '../../core/names.js';
import type { OpenOptions, StateDict, TensorInfo } from '../../core/statedict.js';
import { checkZipCrc, crc32Of, isSafeMemberName, readZipDirectory, zipDataOffset, type ZipEntry } from '../../core/zip.js';
import type { Detection, FormatReader } from '../types.js';
import { stillDetected } from '../probe.js';
import { MAX_HEADER, parseNpyHeader, type NpyHeader } from './header.js';
import { hasNpyMagic, numpyFormat } from './match.js';
import { roleByName } from '../../core/roles.js';

/** NumPy `.npy` (one array, named after the file) and `.npz` (a ZIP of `.npy` members). */
export const numpyReader: FormatReader = { ...numpyFormat, open: openNumpy };

interface Located {
  name: string;
  header: NpyHeader;
  byteLength: number;
  /** Bytes of the stored array as in the file (before byte swapping or reordering). */
  raw: () => Uint8Array;
  where: string;
}

async function openNumpy(file: string, _options: OpenOptions, detection?: Detection): Promise<StateDict> {
  const raf = RandomAccessFile.open(file);
  try {
    const head = raf.read(0, Math.min(raf.size, 16), 'header');
    const located = hasNpyMagic(head) ? [locateNpy(raf, path.basename(file).replace(/\.npy$/i, ''))] : locateNpz(raf, stillDetected(detection, raf)?.zipDirectory);
    const names = uniqueNames(located.map((l) => ({ name: canonicalName(l.name) })));
    const tensors: TensorInfo[] = located.map((l, i) => ({
      name: names[i]!,
      source: l.name,
      dtype: l.header.dtype,
      shape: l.header.shape,
      byteLength: l.byteLength,
      origin: 'weight',
      ...roleByName(names[i]!, l.header.dtype),
      read: async () => normalize(l),
      readStrings: async () => {
        throw invalidInput(file, l.where, `'${l.name}' is a ${l.header.dtype} array, not strings`);
      },
    }));
    const metadata = { container: hasNpyMagic(head) ? 'npy' : 'npz', arrays: tensors.length };
    return { format: 'numpy', path: file, metadata, tensors, close: async () => raf.close(), bytesRead: () => raf.bytesRead };
  } catch (err) {
    raf.close();
    throw err;
  }
}

/** Little-endian, row-major bytes: big-endian arrays are swapped, Fortran-order ones transposed. */
function normalize(l: Located): Uint8Array {
  let bytes = l.raw();
  const width = dtypeBits(l.header.dtype) / 8;
  if (l.header.bigEndian) bytes = swapToLittleEndian(bytes, l.header.dtype);
  return l.header.fortranOrder ? fortranToRowMajor(bytes, l.header.shape, width) : bytes;
}

function sizeOf(fileName: string, where: string, name: string, header: NpyHeader): number {
  const numel = numelOf(header.shape);
  if (numel === undefined) throw invalidInput(fileName, where, `'${name}': shape (${header.shape.join(', ')}) has too many elements`);
  return byteLengthOf(header.dtype, numel);
}

function locateNpy(raf: RandomAccessFile, name: string): Located {
  const fail = (where: string, what: string) => invalidInput(raf.path, where, what);
  const header = parseNpyHeader(raf.read(0, Math.min(raf.size, MAX_HEADER + 12), 'npy header'), fail);
  const byteLength = sizeOf(raf.path, 'header', name, header);
  if (header.dataOffset + byteLength !== raf.size) {
    throw fail(`offset ${header.dataOffset}`, `data is ${raf.size - header.dataOffset} bytes, expected ${byteLength} for ${header.dtype} (${header.shape.join(', ')})`);
  }
  return { name, header, byteLength, raw: () => raf.read(header.dataOffset, byteLength, name), where: `offset ${header.dataOffset}` };
}

function locateNpz(raf: RandomAccessFile, directory: readonly ZipEntry[] = readZipDirectory(raf)): Located[] {
  return directory.map((entry) => locateMember(raf, entry));
}

function locateMember(raf: RandomAccessFile, entry: ZipEntry): Located {
  const where = `member '${entry.name}'`;
  const fail = (at: string, what: string) => invalidInput(raf.path, `${where}, ${at}`, what);
  if (!isSafeMemberName(entry.name)) throw invalidInput(raf.path, where, 'member name is absolute or contains ..');
  const name = entry.name.replace(/\.npy$/, '');
  const dataStart = zipDataOffset(raf, entry);
  let headerBytes: Uint8Array;
  if (entry.method === 0) {
    headerBytes = raf.read(dataStart, Math.min(entry.compressedSize, MAX_HEADER + 12), where);
  } else {
    headerBytes = inflateHead(raf, dataStart, entry.compressedSize, where);
  }
  const header = parseNpyHeader(headerBytes, fail);
  const byteLength = sizeOf(raf.path, where, name, header);
  if (header.dataOffset + byteLength !== entry.size) {
    throw invalidInput(raf.path, where, `holds ${entry.size - header.dataOffset} data bytes, expected ${byteLength} for ${header.dtype} (${header.shape.join(', ')})`);
  }
  // Values are checked against the member's CRC-32 as they are read.
  const raw = entry.method === 0
    ? () => {
        const data = raf.read(dataStart + header.dataOffset, byteLength, `${where} data`);
        checkZipCrc(raf, entry, crc32Of([raf.read(dataStart, header.dataOffset, where), data]));
        return data;
      }
    : () => {
        // The declared shape caps the inflated size: a zip bomb stops there.
        const compressed = raf.read(dataStart, entry.compressedSize, where);
        let out: Buffer;
        try {
          out = zlib.inflateRawSync(compressed, { maxOutputLength: Math.max(1, header.dataOffset + byteLength) });
        } catch (err) {
          throw invalidInput(raf.path, where, `does not inflate to the ${header.dataOffset + byteLength} bytes its header implies (${(err as Error).message})`);
        }
        if (out.length !== header.dataOffset + byteLength) throw invalidInput(raf.path, where, `inflates to ${out.length} bytes, expected ${header.dataOffset + byteLength}`);
        checkZipCrc(raf, entry, crc32Of([out]));
        return new Uint8Array(out.buffer, out.byteOffset + header.dataOffset, byteLength);
      };
  return { name, header, byteLength, raw, where };
}

/**
 * The first bytes of a deflated member, enough for its .npy header: growing compressed prefixes
 * are inflated until the header is complete, so a member that inflates hugely is never inflated whole.
 */
function inflateHead(raf: RandomAccessFile, start: number, compressedSize: number, where: string): Uint8Array {
  for (let prefix = 256; ; prefix *= 2) {
    const chunk = raf.read(start, Math.min(prefix, compressedSize), where);
    let out: Buffer;
    try {
      out = zlib.inflateRawSync(chunk, { finishFlush: zlib.constants.Z_SYNC_FLUSH, maxOutputLength: 4 << 20 });
    } catch (err) {
      throw invalidInput(raf.path, where, `deflated data is corrupt or inflates too fast (${(err as Error).message})`);
    }
    const complete = out.length >= 12 && out.length >= (out[6] === 1 ? 10 + out.readUInt16LE(8) : 12 + out.readUInt32LE(8));
    if (complete || out.length > MAX_HEADER + 12 || prefix >= compressedSize) return out.subarray(0, MAX_HEADER + 12);
  }
}
