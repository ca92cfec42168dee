import * as fs from 'node:fs';
import * as path from 'node:path';
import { fromSystemError } from './errors.js';

const pending = new Set<string>();
let handlersInstalled = false;

/** On Ctrl-C or a termination signal, remove temporaries so no partial output is left behind. */
function installSignalCleanup(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      for (const file of pending) fs.rmSync(file, { force: true });
      process.exit(128 + (signal === 'SIGINT' ? 2 : signal === 'SIGTERM' ? 15 : 1));
    });
  }
}

/**
 * Writes `dest` through a temporary file in the same folder, renamed into place only once
 * `write` has finished and the data is flushed. On any error the temporary is removed and an
 * existing `dest` is left untouched.
 */
export async function writeAtomic(dest: string, write: (fd: number) => Promise<void> | void): Promise<void> {
  installSignalCleanup();
  const dir = path.dirname(path.resolve(dest));
  const temp = path.join(dir, `.${path.basename(dest)}.ckpt-${process.pid}-${Math.random().toString(36).slice(2, 8)}.tmp`);
  let fd: number | undefined;
  try {
    fd = fs.openSync(temp, 'wx', 0o644);
    pending.add(temp);
    await write(fd);
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fd = undefined;
    fs.renameSync(temp, dest);
  } catch (err) {
    if (fd !== undefined) fs.closeSync(fd);
    fs.rmSync(temp, { force: true });
    throw fromSystemError(dest, 'writing', err);
  } finally {
    pending.delete(temp);
  }
}

/** One write call takes at most 2 GiB − 1 bytes: larger tensors go in pieces. */
const MAX_WRITE = 1 << 30;

/** Writes all of `bytes` at the current position of `fd`. */
export function writeAll(fd: number, bytes: Uint8Array): void {
  let done = 0;
  while (done < bytes.length) done += fs.writeSync(fd, bytes, done, Math.min(MAX_WRITE, bytes.length - done));
}

/**
 * Lets the event loop run between tensors: a long synchronous write would otherwise hold back
 * Ctrl-C and termination signals until it is done, so the cleanup above could not run.
 */
export function yieldToSignals(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
