import { invalidInput } from '../../core/errors.js';
import { inFolder, listFolder, isLocalPath } from '../../core/location.js';
import { RandomAccessFile } from '../../core/file.js';
import { canonicalName, uniqueNames } from '../../core/names.js';
import { roleFromName } from '../../core/roles.js';
import type { StateDict, TensorInfo } from '../../core/statedict.js';
import type { FormatReader, Probe } from '../types.js';
import { rangeTensor } from '../range-tensor.js';
import { readLoDTensor } from './inference.js';
import { PADDLE_DTYPES } from './program.js';
import * as fs from 'node:fs';
import * as path from 'node:path';

/**
 * A fluid persistables folder without its program: what PaddleDetection 1.x ships as pretrained
 * weights (`faster_rcnn_r50_1x.tar`): one LoDTensor file per variable, named after it. Opened as a
 * folder — local, inside a `.tar`/`.zip`, or an archive by URL — each file one tensor.
 */

/** Files looked at to recognize the folder; `open` checks every one. */
const PROBED_FILES = 8;

export const paddlePersistablesReader: FormatReader = {
  name: 'paddle-persistables',
  match: (probe: Probe) => probe.isDirectory && looksLikePersistables(probe.path),
  open: openPersistables,
};

/** Regular files of the folder (hidden ones left out), sorted: the variables. */
function variableFiles(folder: string): string[] {
  return listFolder(folder).filter((name) => !name.startsWith('.') && (!isLocalPath(folder) || fs.statSync(path.join(folder, name), { throwIfNoEntry: false })?.isFile()));
}

/** The first bytes of a LoDTensor file: version 0, a few LoD levels, tensor version 0, a TensorDesc (field 1, data_type). */
function looksLikeLoDTensor(head: Uint8Array): boolean {
  if (head.length < 21) return false;
  const view = new DataView(head.buffer, head.byteOffset, head.byteLength);
  if (view.getUint32(0, true) !== 0 || view.getBigUint64(4, true) !== 0n) return false; // parameters have no LoD
  const descSize = view.getUint32(16, true);
  return view.getUint32(12, true) === 0 && descSize > 0 && descSize < 4096 && head[20] === 0x08;
}

function looksLikePersistables(folder: string): boolean {
  try {
    const files = variableFiles(folder);
    if (files.length === 0 || files.includes('__model__')) return false;
    return files.slice(0, PROBED_FILES).every((name) => {
      const file = RandomAccessFile.open(inFolder(folder, name));
      try {
        return looksLikeLoDTensor(file.read(0, Math.min(file.size, 32), 'header'));
      } finally {
        file.close();
      }
    });
  } catch {
    return false;
  }
}

async function openPersistables(folder: string): Promise<StateDict> {
  const files: RandomAccessFile[] = [];
  const close = async () => files.splice(0).forEach((f) => f.close());
  try {
    const names = variableFiles(folder);
    const canonical = uniqueNames(names.map((name) => ({ name: canonicalName(name) })));
    const tensors: TensorInfo[] = names.map((name, i) => {
      const raf = RandomAccessFile.open(inFolder(folder, name));
      files.push(raf);
      const what = `variable '${name}'`;
      const record = readLoDTensor(raf, 0, what);
      if (record.end !== raf.size) throw invalidInput(raf.path, `offset ${record.end}`, `${raf.size - record.end} bytes after the tensor`);
      const dtype = PADDLE_DTYPES[record.desc.dataType]!;
      return rangeTensor(raf, {
        name: canonical[i]!, source: name, dtype, shape: record.desc.dims, offset: record.dataOffset, origin: 'weight',
        role: roleFromName(name, dtype), roleFrom: 'names' as const,
      });
    });
    const metadata = { parameters: 'one file per variable', variables: names.length };
    return { format: 'paddle-persistables', path: folder, metadata, tensors, close, bytesRead: () => files.reduce((n, f) => n + f.bytesRead, 0) };
  } catch (err) {
    await close();
    throw err;
  }
}
