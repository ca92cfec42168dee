import { AsyncLocalStorage } from 'node:async_hooks';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fromSystemError, ioError } from './errors.js';

const commitGates = new AsyncLocalStorage<Promise<unknown>>();

/**
 * Runs `write` so that every output it writes through this module is put in place only once
 * `gate` has resolved, and not at all when it rejects (its temporaries are removed, the gate's
 * error is thrown). Lets a check run while the output is being written: `apply` hashes its
 * inputs on other threads meanwhile, and a stale plan still replaces nothing.
 */
export function writeOnlyIf<T>(gate: Promise<unknown>, write: () => Promise<T>): Promise<T> {
  return commitGates.run(gate, write);
}

/** Waits for the gate of the enclosing writeOnlyIf, if any. */
export async function passGate(): Promise<void> {
  await commitGates.getStore();
}

const pending = new Set<string>();
let handlersInstalled = false;
const SIGNAL_NUMBERS = { SIGHUP: 1, SIGINT: 2, SIGTERM: 15 } as const;

/** On Ctrl-C or a termination signal, remove temporaries so no partial output is left behind. */
function installSignalCleanup(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  for (const [signal, number] of Object.entries(SIGNAL_NUMBERS)) {
    process.once(signal, () => {
      for (const file of pending) removeQuietly(file);
      process.exit(128 + number);
    });
  }
}

/** Cleanup never throws: its failure (a folder one cannot search) must not hide the error that caused it. */
function removeQuietly(file: string): void {
  try {
    fs.rmSync(file, { force: true });
  } catch {
    // nothing more can be done; the original error is reported
  }
}

/** Makes renames in `folder` durable. Some file systems cannot sync a folder; the rename is done either way. */
export function syncFolder(folder: string): void {
  let fd: number | undefined;
  try {
    fd = fs.openSync(folder, 'r');
    fs.fsyncSync(fd);
  } catch {
    // best effort, see above
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

/**
 * How an output path is written. `replace`: a regular file (reached through symlinks: their final
 * target, as `cp` does) or a new one, replaced through a temporary in its folder; `mode` keeps an
 * existing file's permissions. `stream`: a character device or FIFO (`/dev/null`), written straight
 * through so it stays what it is; `/dev/stdout` is written through whatever it is (a pipe, a socket).
 */
export type OutputTarget = { kind: 'replace'; path: string; mode?: number } | { kind: 'stream'; path: string; standardOutput: boolean };

export function outputTarget(dest: string): OutputTarget {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(dest);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw fromSystemError(dest, 'output', err);
    const link = symlinkTarget(dest);
    if (link !== undefined) throw ioError(dest, 'output', `is a symbolic link to '${link}', which does not exist`);
    return { kind: 'replace', path: dest };
  }
  if (stat.isFile()) {
    return { kind: 'replace', path: symlinkTarget(dest) === undefined ? dest : fs.realpathSync(dest), mode: stat.mode & 0o7777 };
  }
  const standardOutput = isStandardOutput(dest);
  if (stat.isCharacterDevice() || stat.isFIFO() || standardOutput) return { kind: 'stream', path: dest, standardOutput };
  const kind = stat.isDirectory() ? 'a directory' : stat.isSocket() ? 'a socket' : stat.isBlockDevice() ? 'a block device' : 'not a regular file';
  throw ioError(dest, 'output', `is ${kind}; expected a regular file (or a character device or FIFO to write through)`);
}

function symlinkTarget(file: string): string | undefined {
  try {
    return fs.lstatSync(file).isSymbolicLink() ? fs.readlinkSync(file) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * A hidden temporary beside `target`, removed on failure and on SIGINT/SIGTERM/SIGHUP until it is
 * renamed into place. Errors name `output`, the path the user gave.
 */
export class Temporary {
  readonly path: string;
  private fd: number | undefined;

  constructor(output: string, target: string) {
    installSignalCleanup();
    this.path = path.join(path.dirname(target), `.${path.basename(target)}.ckpt-${process.pid}-${Math.random().toString(36).slice(2, 8)}.tmp`);
    try {
      this.fd = fs.openSync(this.path, 'wx', 0o644);
    } catch (err) {
      throw fromSystemError(output, 'writing', err);
    }
    pending.add(this.path);
  }

  get descriptor(): number {
    if (this.fd === undefined) throw new Error(`${this.path} is closed`);
    return this.fd;
  }

  /** Flushes the data to disk and closes; `mode` gives it an existing file's permissions. */
  finish(mode?: number): void {
    const fd = this.descriptor;
    if (mode !== undefined) fs.fchmodSync(fd, mode);
    fs.fsyncSync(fd);
    this.fd = undefined;
    fs.closeSync(fd);
  }

  /** Renames the finished temporary over `target`; the caller then syncs the folder (`syncFolder`). */
  renameTo(target: string): void {
    fs.renameSync(this.path, target);
    pending.delete(this.path);
  }

  /** Closes and removes the temporary; for failures. */
  discard(): void {
    if (this.fd !== undefined) {
      try {
        fs.closeSync(this.fd);
      } catch {
        // it is removed below either way
      }
      this.fd = undefined;
    }
    if (pending.delete(this.path)) removeQuietly(this.path);
  }
}

/**
 * Writes `dest` atomically: through a temporary in the folder of the file it names, renamed into
 * place once `write` has finished and the data is flushed, then the folder synced. On any error
 * the temporary is removed and an existing `dest` is left untouched. Character devices and FIFOs
 * are written straight through; other special files are refused.
 */
export async function writeAtomic(dest: string, write: (fd: number) => Promise<void> | void): Promise<void> {
  const target = outputTarget(dest);
  if (target.kind === 'stream') return writeThrough(target, write);
  return replaceFile(dest, target, (temp) => write(temp.descriptor));
}

async function replaceFile(dest: string, target: { path: string; mode?: number }, write: (temp: Temporary) => Promise<void> | void): Promise<void> {
  const temp = new Temporary(dest, target.path);
  try {
    await write(temp);
    temp.finish(target.mode);
    await passGate();
    temp.renameTo(target.path);
    syncFolder(path.dirname(target.path));
  } catch (err) {
    temp.discard();
    throw fromSystemError(dest, 'writing', err);
  }
}

/** A device or FIFO, written in place: nothing to rename, no fsync (pipes and /dev/null refuse it). */
async function writeThrough(target: { path: string; standardOutput: boolean }, write: (fd: number) => Promise<void> | void): Promise<void> {
  installSignalCleanup();
  let handle: fs.promises.FileHandle | undefined;
  try {
    // Nothing written through can be taken back: the gate first.
    await passGate();
    if (target.standardOutput) return await write(1);
    // Opened off the main thread: a FIFO's open waits for its reader, and Ctrl-C must work meanwhile.
    handle = await fs.promises.open(target.path, fs.constants.O_WRONLY);
    await write(handle.fd);
  } catch (err) {
    throw fromSystemError(target.path, 'writing', err);
  } finally {
    await handle?.close();
  }
}

/** True when `output` is this process's standard output (`-o /dev/stdout`): reports then go to stderr. */
export function isStandardOutput(output: string): boolean {
  try {
    const out = fs.fstatSync(1);
    const file = fs.statSync(output);
    return out.dev === file.dev && out.ino === file.ino;
  } catch {
    return false;
  }
}

/** One write call takes at most 2 GiB − 1 bytes: larger tensors go in pieces. */
const MAX_WRITE = 1 << 30;

const PAUSE = new Int32Array(new SharedArrayBuffer(4));

/** Writes all of `bytes` at the current position of `fd`. */
export function writeAll(fd: number, bytes: Uint8Array): void {
  let done = 0;
  while (done < bytes.length) {
    try {
      done += fs.writeSync(fd, bytes, done, Math.min(MAX_WRITE, bytes.length - done));
    } catch (err) {
      // Standard output, which Node.js makes non-blocking when it is a pipe or socket, is full: wait for its reader.
      if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') throw err;
      Atomics.wait(PAUSE, 0, 0, 1);
    }
  }
}

/** Test hook: pauses this long between tensors so a test can interrupt a write half-way. */
const TEST_WRITE_DELAY_MS = Number(process.env.CKPT_TEST_WRITE_DELAY_MS) || 0;

/**
 * Lets the event loop run between tensors: a long synchronous write would otherwise hold back
 * Ctrl-C and termination signals until it is done, so the cleanup above could not run.
 */
export function yieldToSignals(): Promise<void> {
  return new Promise((resolve) => (TEST_WRITE_DELAY_MS ? setTimeout(resolve, TEST_WRITE_DELAY_MS) : setImmediate(resolve)));
}
