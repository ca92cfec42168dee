import * as fs from 'node:fs';
import { RandomAccessFile, refuseNonRegular } from '../core/file.js';
import { fromSystemError } from '../core/errors.js';
import { isLocalPath, locationIsFolder } from '../core/location.js';
import { isZip, readZipDirectory, type ZipEntry } from '../core/zip.js';
import type { Probe } from './types.js';

const HEAD_BYTES = 4096;

/** Opens `path` just long enough for `use` to look at it: its first bytes, size, file, and a ZIP's directory read once. */
export function withProbe<T>(path: string, use: (probe: Probe) => T): T {
  if (isLocalPath(path)) {
    let stat: fs.Stats;
    try {
      stat = fs.statSync(path);
    } catch (err) {
      throw fromSystemError(path, undefined, err);
    }
    if (stat.isDirectory()) return use({ path, isDirectory: true, size: 0, head: new Uint8Array(0) });
    // Before any open: opening a device can have effects, and opening a FIFO waits for a writer.
    refuseNonRegular(path, stat);
  } else if (locationIsFolder(path)) {
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
