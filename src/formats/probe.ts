import * as fs from 'node:fs';
import { RandomAccessFile, refuseNonRegular } from '../core/file.js';
import { fromSystemError } from '../core/errors.js';
import { isLocalPath, locationIsFolder } from '../core/location.js';
import { onDemand } from '../core/on-demand.js';
import type { ZipEntry } from '../core/zip.js';
import type { Detection, Probe } from './types.js';

const HEAD_BYTES = 4096;

/** ZIP directories, read only for files that start with a ZIP signature ('PK'). */
const zip = onDemand<typeof import('../core/zip.js')>(new URL('../core/zip.js', import.meta.url));

/** What detection parsed, while the file still has the size it had when probed (else parsed again). */
export function stillDetected(detection: Detection | undefined, file: RandomAccessFile): Detection | undefined {
  return detection?.size === file.size ? detection : undefined;
}

/**
 * Opens `path` just long enough for `use` to look at it: its first bytes, size, file, and a ZIP's
 * directory read once; what the matching reader parsed stays in `probe.detection` for its open.
 */
export function withProbe<T>(path: string, use: (probe: Probe) => T): T {
  if (isLocalPath(path)) {
    let stat: fs.Stats;
    try {
      stat = fs.statSync(path);
    } catch (err) {
      throw fromSystemError(path, undefined, err);
    }
    if (stat.isDirectory()) return use({ path, isDirectory: true, size: 0, head: new Uint8Array(0), detection: { size: 0 } });
    // Before any open: opening a device can have effects, and opening a FIFO waits for a writer.
    refuseNonRegular(path, stat);
  } else if (locationIsFolder(path)) {
    return use({ path, isDirectory: true, size: 0, head: new Uint8Array(0), detection: { size: 0 } });
  }
  const file = RandomAccessFile.open(path);
  try {
    const head = file.size === 0 ? new Uint8Array(0) : file.read(0, Math.min(HEAD_BYTES, file.size), 'header');
    const detection: Detection = { size: file.size };
    let directory: { entries: readonly ZipEntry[] } | { error: unknown } | undefined;
    const zipDirectory = () => {
      if (!directory) {
        try {
          directory = { entries: zip().readZipDirectory(file) };
          detection.zipDirectory = directory.entries;
        } catch (error) {
          directory = { error };
        }
      }
      if ('error' in directory) throw directory.error;
      return directory.entries;
    };
    return use({ path, isDirectory: false, size: file.size, head, file, detection, ...(head[0] === 0x50 && zip().isZip(head) ? { zipDirectory } : {}) });
  } finally {
    file.close();
  }
}
