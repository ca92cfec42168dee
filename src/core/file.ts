import * as fs from 'node:fs';
import * as path from 'node:path';
import { fromSystemError, invalidInput, ioError } from './errors.js';
import { ByteSource, shortRead } from './source.js';
import { isLocalPath, locationSha256, openLocation, siblingLocation } from './location.js';

const MAX_READ = 1 << 30;

/**
 * A local file opened for positioned reads, one implementation of the byte-source layer.
 * `RandomAccessFile.open` opens any location a reader is given: a path, an HTTP(S) URL or an
 * archive member (see location.ts), so readers read them all the same way.
 */
export class LocalFile extends ByteSource {
  private fd: number | undefined;

  private constructor(file: string, fd: number, size: number, blockSize: number) {
    super(file, size, blockSize, blockSize);
    this.fd = fd;
  }

  static open(file: string, blockSize = 8 * 1024): LocalFile {
    let fd: number;
    try {
      // Non-blocking: opening a FIFO without a writer would otherwise wait forever, before the
      // check below could refuse it.
      fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
    } catch (err) {
      throw fromSystemError(file, undefined, err);
    }
    try {
      const stat = fs.fstatSync(fd);
      refuseNonRegular(file, stat);
      if (stat.size === 0) refuseHiddenContent(file, fd);
      return new LocalFile(file, fd, stat.size, blockSize);
    } catch (err) {
      fs.closeSync(fd);
      throw fromSystemError(file, undefined, err);
    }
  }

  close(): void {
    if (this.fd !== undefined) {
      fs.closeSync(this.fd);
      this.fd = undefined;
    }
  }

  protected fetch(out: Uint8Array, position: number): void {
    let done = 0;
    while (done < out.length) {
      if (this.fd === undefined) throw ioError(this.path, undefined, 'file is closed');
      let n: number;
      try {
        // One read call takes at most 2 GiB − 1 bytes.
        n = fs.readSync(this.fd, out, done, Math.min(MAX_READ, out.length - done), position + done);
      } catch (err) {
        throw fromSystemError(this.path, `offset ${position + done}`, err);
      }
      this.bytesRead += n;
      if (n === 0) throw shortRead(this.path, position + done);
      done += n;
    }
  }
}

/** What readers hold: the bytes of a checkpoint file, local or not. */
export type RandomAccessFile = ByteSource;
export const RandomAccessFile = {
  /** A local path, an HTTP(S) URL or an `ARCHIVE!member`, opened for reads by range. */
  open(location: string, blockSize?: number): RandomAccessFile {
    return isLocalPath(location) ? LocalFile.open(location, blockSize) : openLocation(location);
  },
};

/** What a path that is neither a regular file nor a folder is, for messages. */
function kindOf(stat: fs.Stats): string {
  if (stat.isFIFO()) return 'a FIFO (named pipe)';
  if (stat.isSocket()) return 'a socket';
  if (stat.isCharacterDevice()) return 'a character device';
  if (stat.isBlockDevice()) return 'a block device';
  return 'not a regular file';
}

/**
 * ckpt reads checkpoints by random access and by size, which pipes, sockets and devices do not
 * offer: they are refused (exit 4) rather than read, or waited on forever.
 */
export function refuseNonRegular(file: string, stat: fs.Stats): void {
  if (stat.isDirectory()) throw ioError(file, undefined, 'is a directory, expected a file', 'is-a-directory');
  if (!stat.isFile()) {
    throw ioError(file, undefined, `is ${kindOf(stat)}; ckpt reads checkpoints by random access: save it to a regular file first`, 'not-a-regular-file');
  }
}

/**
 * A file of size 0 is empty, unless it is a pseudo-file (/proc, /sys) whose size says nothing:
 * reading one byte tells them apart, and surfaces a read error (EIO) as the I/O error it is.
 */
function refuseHiddenContent(file: string, fd: number): void {
  let n: number;
  try {
    n = fs.readSync(fd, Buffer.alloc(1), 0, 1, 0);
  } catch (err) {
    throw fromSystemError(file, 'offset 0', err);
  }
  if (n > 0) {
    throw ioError(file, undefined, 'reports a size of 0 but has content (a /proc or /sys pseudo-file?); ckpt reads regular files', 'not-a-regular-file');
  }
}

/** A whole small text file (a JSON index, a checkpoint list), refused like every input when it is not a regular file. */
export function readTextFile(file: string): string {
  const raf = RandomAccessFile.open(file);
  try {
    return new TextDecoder().decode(raf.size === 0 ? new Uint8Array(0) : raf.read(0, raf.size, 'text'));
  } finally {
    raf.close();
  }
}

/**
 * Resolves a path named inside a model file (external data, shards) against the model's folder and
 * refuses anything that could leave it: absolute paths, `..` components, and symlinks whose target
 * lies outside the folder. Returns the real path of an existing regular file.
 */
export function resolveInsideFolder(modelFile: string, folder: string, relative: string, where: string): string {
  const parts = relativeParts(modelFile, relative, where);
  // A remote model's or an archive member's siblings stay under the same base (URL, archive folder).
  if (!isLocalPath(modelFile)) return siblingLocation(modelFile, parts, where);
  let realFolder: string;
  try {
    realFolder = fs.realpathSync(folder);
  } catch (err) {
    throw fromSystemError(folder, where, err);
  }
  const candidate = path.join(realFolder, ...parts);
  let stat: fs.Stats;
  try {
    stat = fs.lstatSync(candidate);
  } catch (err) {
    throw fromSystemError(candidate, `${where} of ${modelFile}`, err);
  }
  if (stat.isSymbolicLink()) {
    throw invalidInput(modelFile, where, `file path '${relative}' is a symbolic link; expected a regular file`);
  }
  let real: string;
  try {
    real = fs.realpathSync(candidate);
  } catch (err) {
    throw fromSystemError(candidate, `${where} of ${modelFile}`, err);
  }
  if (real !== realFolder && !real.startsWith(realFolder + path.sep)) {
    throw invalidInput(modelFile, where, `file path '${relative}' resolves outside the model folder`);
  }
  if (!fs.statSync(real).isFile()) {
    throw invalidInput(modelFile, where, `file path '${relative}' is not a regular file`);
  }
  return real;
}

/** The components of a file path named inside a model, refused when it could leave the model's folder. */
export function relativeParts(modelFile: string, relative: string, where: string): string[] {
  if (relative === '') throw invalidInput(modelFile, where, 'empty file path');
  if (relative.includes('\0')) throw invalidInput(modelFile, where, `file path contains a NUL byte`);
  if (path.posix.isAbsolute(relative) || path.win32.isAbsolute(relative) || /^[a-zA-Z]:/.test(relative) || /^[a-zA-Z][a-zA-Z0-9+.-]*:\/\//.test(relative)) {
    throw invalidInput(modelFile, where, `file path '${relative}' is absolute; expected a path relative to the model folder`);
  }
  const parts = relative.split(/[\\/]+/).filter((p) => p !== '' && p !== '.');
  if (parts.includes('..')) {
    throw invalidInput(modelFile, where, `file path '${relative}' contains '..'; expected a path inside the model folder`);
  }
  return parts;
}

/**
 * SHA-256 of a whole file; for a folder (a TF.js model), of its files' names and contents in
 * sorted order. Plans record it so a stale plan is refused. A large local path is hashed on a
 * worker thread, so several hash at once; aborting `signal` stops it.
 */
export async function pathSha256(target: string, signal?: AbortSignal): Promise<string> {
  if (!isLocalPath(target)) return locationSha256(target);
  const { localSha256 } = await import('./file-sha256.js');
  return localSha256(target, signal);
}
