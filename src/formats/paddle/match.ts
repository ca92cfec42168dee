import * as fs from 'node:fs';
import * as path from 'node:path';
import { RandomAccessFile } from '../../core/file.js';
import { inFolder, isLocalPath, listFolder } from '../../core/location.js';
import type { FormatMatch, Probe } from '../types.js';

/** PaddlePaddle `.pdparams`/`.pdopt`: a binary pickle (protocol 2 and up; open says which ones it reads). */
export const paddleFormat: FormatMatch = {
  name: 'paddle',
  // Legacy torch files are pickles too, and are matched first.
  match: (probe: Probe) => !probe.isDirectory && probe.head[0] === 0x80 && probe.head[1]! >= 2 && probe.head[1]! < 16,
};

/** True when `head` starts like a ProgramDesc: block 0 with idx 0 and parent_idx -1. */
export function looksLikeProgram(head: Uint8Array): boolean {
  if (head[0] !== 0x0a) return false;
  let pos = 1;
  while (pos < 6 && (head[pos]! & 0x80)) pos++;
  const block = [0x08, 0x00, 0x10, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
  return block.every((b, i) => head[pos + 1 + i] === b);
}

const FLUID_MODEL = '__model__';

/** A fluid inference folder's program file, when the folder has one. */
export function fluidModel(folder: string): string | undefined {
  const file = path.join(folder, FLUID_MODEL);
  try {
    if (!fs.statSync(file).isFile()) return undefined;
    const fd = fs.openSync(file, 'r');
    try {
      const head = Buffer.alloc(32);
      return looksLikeProgram(head.subarray(0, fs.readSync(fd, head, 0, 32, 0))) ? file : undefined;
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return undefined;
  }
}

/** Paddle inference models: a `.pdmodel` (ProgramDesc), or a fluid folder with its `__model__`. */
export const paddleInferenceFormat: FormatMatch = {
  name: 'paddle-inference',
  match: (probe: Probe) => (probe.isDirectory ? fluidModel(probe.path) !== undefined : looksLikeProgram(probe.head)),
};

/** Files looked at to recognize a persistables folder; `open` checks every one. */
const PROBED_FILES = 8;

/** Regular files of the folder (hidden ones left out), sorted: the variables. */
export function variableFiles(folder: string): string[] {
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
    if (files.length === 0 || files.includes(FLUID_MODEL)) return false;
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

/** A fluid persistables folder without its program: one LoDTensor file per variable. */
export const paddlePersistablesFormat: FormatMatch = {
  name: 'paddle-persistables',
  match: (probe: Probe) => probe.isDirectory && looksLikePersistables(probe.path),
};
