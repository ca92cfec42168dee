import * as fs from 'node:fs';
import { RandomAccessFile } from './core/file.js';
import { fromSystemError, invalidInput } from './core/errors.js';
import type { OpenOptions, StateDict } from './core/statedict.js';
import { READERS } from './formats/index.js';
import { isZip, readZipDirectory, type ZipEntry } from './core/zip.js';
import type { Probe } from './formats/types.js';

const HEAD_BYTES = 4096;

/** Which reader recognizes this file or folder from its content; undefined when none does. */
export function detectFormat(path: string): string | undefined {
  return withProbe(path, (probe) => READERS.find((r) => r.match(probe))?.name);
}

/**
 * Opens a checkpoint and returns its normalized state dict. The format comes from the content
 * (magic bytes, structure), never from the file name. Only metadata is read here; each tensor's
 * values are read when its `read()` is called.
 */
export async function open(path: string, options: OpenOptions = {}): Promise<StateDict> {
  const reader = withProbe(path, (probe) => READERS.find((r) => r.match(probe)));
  if (!reader) {
    throw invalidInput(path, undefined, `unrecognized format; expected one of: ${READERS.map((r) => r.name).join(', ')}`);
  }
  return reader.open(path, options);
}

function withProbe<T>(path: string, use: (probe: Probe) => T): T {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(path);
  } catch (err) {
    throw fromSystemError(path, undefined, err);
  }
  if (stat.isDirectory()) {
    return use({ path, isDirectory: true, size: 0, head: new Uint8Array(0) });
  }
  const file = RandomAccessFile.open(path);
  try {
    const head = file.size === 0 ? new Uint8Array(0) : file.read(0, Math.min(HEAD_BYTES, file.size), 'header');
    let directory: { entries: readonly ZipEntry[] } | { error: unknown } | undefined;
    const zipDirectory = () => {
      if (!directory) {
        try {
          directory = { entries: readZipDirectory(file) };
        } catch (error) {
          directory = { error };
        }
      }
      if ('error' in directory) throw directory.error;
      return directory.entries;
    };
    return use({ path, isDirectory: false, size: file.size, head, file, ...(isZip(head) ? { zipDirectory } : {}) });
  } finally {
    file.close();
  }
}
