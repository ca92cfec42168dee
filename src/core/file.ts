import { constants as bufferConstants } from 'node:buffer';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fromSystemError, invalidInput, ioError } from './errors.js';

const MAX_BUFFER = bufferConstants.MAX_LENGTH;
const MAX_READ = 1 << 30;

/**
 * A file opened for positioned reads. Header walkers read through a small block cache so that
 * skipping a tensor payload costs nothing; `read` fetches exact ranges for tensor values.
 * Counts the bytes it reads, which benchmarks report.
 */
export class RandomAccessFile {
  private fd: number | undefined;
  private blockStart = 0;
  private block = Buffer.alloc(0);
  bytesRead = 0;

  private constructor(
    readonly path: string,
    fd: number,
    readonly size: number,
    private readonly blockSize: number,
  ) {
    this.fd = fd;
  }

  static open(file: string, blockSize = 8 * 1024): RandomAccessFile {
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
      return new RandomAccessFile(file, fd, stat.size, blockSize);
    } catch (err) {
      fs.closeSync(fd);
      throw fromSystemError(file, undefined, err);
    }
  }

  /** Exactly `length` bytes at `offset`, or an error naming `what` when the file is shorter. */
  read(offset: number, length: number, what = 'data'): Uint8Array {
    if (offset < 0 || length < 0 || offset + length > this.size) {
      throw invalidInput(
        this.path,
        `offset ${offset}`,
        `${what} needs ${length} bytes but the file ends at ${this.size} (truncated?)`,
      );
    }
    if (length > MAX_BUFFER) {
      throw invalidInput(this.path, `offset ${offset}`, `${what} is ${length} bytes; ckpt reads one tensor at a time and Node.js holds at most ${MAX_BUFFER} bytes in one buffer`);
    }
    // Not pooled, so `out.buffer` holds exactly these bytes for callers that view it.
    const out = Buffer.allocUnsafeSlow(length);
    this.readInto(offset, out, what);
    return new Uint8Array(out.buffer, out.byteOffset, length);
  }

  /**
   * Fills `target` with the bytes at `offset` (exactly `target.length` of them), or an error naming
   * `what` when the file is shorter: `read` without a fresh buffer, for streaming through a reused one.
   */
  readInto<T extends Uint8Array>(offset: number, target: T, what = 'data'): T {
    const length = target.length;
    if (!Number.isSafeInteger(offset) || offset < 0 || offset + length > this.size) {
      throw invalidInput(this.path, `offset ${offset}`, `${what} needs ${length} bytes but the file ends at ${this.size} (truncated?)`);
    }
    let done = 0;
    while (done < length) {
      // One read call takes at most 2 GiB − 1 bytes.
      const n = this.readSyncAt(target, done, Math.min(MAX_READ, length - done), offset + done);
      if (n === 0) throw ioError(this.path, `offset ${offset + done}`, 'unexpected end of file while reading');
      done += n;
    }
    return target;
  }

  /** One byte through the block cache; for header walkers. */
  byteAt(offset: number): number {
    if (offset < this.blockStart || offset >= this.blockStart + this.block.length) this.fill(offset);
    return this.block[offset - this.blockStart]!;
  }

  /** A short range through the block cache (falls back to a direct read when larger than a block). */
  bytesAt(offset: number, length: number, what = 'data'): Uint8Array {
    if (offset >= this.blockStart && offset + length <= this.blockStart + this.block.length) {
      return this.block.subarray(offset - this.blockStart, offset - this.blockStart + length);
    }
    if (length > this.blockSize) return this.read(offset, length, what);
    if (offset + length > this.size) this.read(offset, length, what); // throws the truncation error
    this.fill(offset);
    return this.block.subarray(0, length);
  }

  close(): void {
    if (this.fd !== undefined) {
      fs.closeSync(this.fd);
      this.fd = undefined;
    }
  }

  private fill(offset: number): void {
    if (offset >= this.size) {
      throw invalidInput(this.path, `offset ${offset}`, `unexpected end of file (size ${this.size}; truncated?)`);
    }
    const length = Math.min(this.blockSize, this.size - offset);
    const block = Buffer.allocUnsafe(length);
    let done = 0;
    while (done < length) {
      const n = this.readSyncAt(block, done, length - done, offset + done);
      if (n === 0) throw ioError(this.path, `offset ${offset + done}`, 'unexpected end of file while reading');
      done += n;
    }
    this.block = block;
    this.blockStart = offset;
  }

  private readSyncAt(buf: Uint8Array, at: number, length: number, position: number): number {
    if (this.fd === undefined) throw ioError(this.path, undefined, 'file is closed');
    try {
      const n = fs.readSync(this.fd, buf, at, length, position);
      this.bytesRead += n;
      return n;
    } catch (err) {
      throw fromSystemError(this.path, `offset ${position}`, err);
    }
  }
}

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
  if (relative === '') throw invalidInput(modelFile, where, 'empty file path');
  if (relative.includes('\0')) throw invalidInput(modelFile, where, `file path contains a NUL byte`);
  if (path.posix.isAbsolute(relative) || path.win32.isAbsolute(relative) || /^[a-zA-Z]:/.test(relative)) {
    throw invalidInput(modelFile, where, `file path '${relative}' is absolute; expected a path relative to the model folder`);
  }
  const parts = relative.split(/[\\/]+/);
  if (parts.includes('..')) {
    throw invalidInput(modelFile, where, `file path '${relative}' contains '..'; expected a path inside the model folder`);
  }
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

/**
 * SHA-256 of a whole file, streamed; for a folder (a TF.js model), of its files' names and
 * contents in sorted order. Plans record it so a stale plan is refused.
 */
export async function pathSha256(target: string): Promise<string> {
  const { createHash } = await import('node:crypto');
  const hash = createHash('sha256');
  const files = fs.statSync(target).isDirectory()
    ? (fs.readdirSync(target, { recursive: true }) as string[]).sort().map((f) => path.join(target, f)).filter((f) => fs.statSync(f).isFile())
    : [target];
  for (const file of files) {
    if (files.length > 1) hash.update(path.relative(target, file));
    try {
      for await (const chunk of fs.createReadStream(file, { highWaterMark: 4 * 1024 * 1024 })) hash.update(chunk as Buffer);
    } catch (err) {
      throw fromSystemError(file, undefined, err);
    }
  }
  return hash.digest('hex');
}
