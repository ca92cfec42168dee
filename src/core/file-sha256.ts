import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { startWorker } from './worker.js';
import { chunkBuffer } from './chunks.js';
import { CkptError, ExitCode, fromPostedError, fromSystemError, type PostedError } from './errors.js';

/** Below this many bytes a path is hashed on the calling thread: a worker takes longer to start. */
const WORKER_MIN_BYTES = 64 << 20;

/** What the hashing worker posts back. */
export type Sha256Reply = { ok: true; sha256: string } | { ok: false; error: PostedError };

/** The files a path's hash covers: the file itself, or a folder's files in sorted order (a TF.js model). */
function filesOf(target: string): string[] {
  try {
    if (!fs.statSync(target).isDirectory()) return [target];
    return (fs.readdirSync(target, { recursive: true }) as string[]).sort().map((f) => path.join(target, f)).filter((f) => fs.statSync(f).isFile());
  } catch (err) {
    throw fromSystemError(target, undefined, err);
  }
}

/**
 * SHA-256 of a local file, or of a folder's relative file names and contents in sorted order,
 * read through one reused buffer on this thread.
 */
export function localSha256Sync(target: string, files = filesOf(target)): string {
  const hash = createHash('sha256');
  const buffer = chunkBuffer();
  for (const file of files) {
    if (files.length > 1) hash.update(path.relative(target, file));
    let fd: number | undefined;
    try {
      fd = fs.openSync(file, 'r');
      for (let n; (n = fs.readSync(fd, buffer, 0, buffer.length, null)) > 0;) hash.update(buffer.subarray(0, n));
    } catch (err) {
      throw fromSystemError(file, undefined, err);
    } finally {
      if (fd !== undefined) fs.closeSync(fd);
    }
  }
  return hash.digest('hex');
}

/**
 * localSha256Sync of `target`, on a worker thread when it is large: hashes of several paths then
 * run on several cores, and the calling thread is free meanwhile (`apply` writes its output).
 * Aborting `signal` stops the worker; the promise then rejects.
 */
export async function localSha256(target: string, signal?: AbortSignal): Promise<string> {
  const files = filesOf(target);
  // A file gone meanwhile counts 0 here; reading it reports it.
  const bytes = files.reduce((n, file) => n + (fs.statSync(file, { throwIfNoEntry: false })?.size ?? 0), 0);
  if (bytes < WORKER_MIN_BYTES) return localSha256Sync(target, files);
  signal?.throwIfAborted();
  return new Promise((resolve, reject) => {
    const worker = startWorker(new URL('./file-sha256-worker.js', import.meta.url), { workerData: { target, files } });
    // A command that fails meanwhile need not wait for the hash.
    signal?.addEventListener('abort', () => void worker.terminate(), { once: true });
    let settled = false;
    worker.once('message', (reply: Sha256Reply) => {
      settled = true;
      if (reply.ok) resolve(reply.sha256);
      else reject(fromPostedError(reply.error));
    });
    worker.once('error', (err) => {
      settled = true;
      reject(new CkptError(ExitCode.internal, target, undefined, `hashing in a worker thread failed: ${err.message}`));
    });
    worker.once('exit', () => {
      if (!settled) reject(new CkptError(ExitCode.internal, target, undefined, 'the hashing worker stopped without an answer'));
    });
  });
}

/**
 * What identifies a local file's bytes without reading them, as git's index does: while device,
 * inode, size and both timestamps are unchanged, so are the contents (writing changes ctime, and
 * nothing can set ctime back). Nanoseconds and inodes are decimal strings: they exceed 2^53.
 */
export interface FileIdentity { device: string; inode: string; size: number; mtimeNs: string; ctimeNs: string }

/**
 * A change this long after a file's ctime may leave ctime as it was (timestamps advance in clock
 * ticks, and coarsely on some file systems): a file changed more recently than this is not
 * identified by its numbers, only by its hash.
 */
const TIMESTAMP_SLACK_MS = 2000;

export function fileIdentity(file: string): FileIdentity | undefined {
  let stat: fs.BigIntStats;
  try {
    stat = fs.statSync(file, { bigint: true });
  } catch {
    return undefined;
  }
  if (!stat.isFile()) return undefined;
  return { device: String(stat.dev), inode: String(stat.ino), size: Number(stat.size), mtimeNs: String(stat.mtimeNs), ctimeNs: String(stat.ctimeNs) };
}

export const sameIdentity = (a: FileIdentity, b: FileIdentity): boolean =>
  a.device === b.device && a.inode === b.inode && a.size === b.size && a.mtimeNs === b.mtimeNs && a.ctimeNs === b.ctimeNs;

/**
 * localSha256 of `target` with the file's identity when it can stand for the hash later: a
 * regular file, unchanged while it was hashed, last changed well before (TIMESTAMP_SLACK_MS).
 */
export async function hashWithIdentity(target: string): Promise<{ sha256: string; identity?: FileIdentity }> {
  const started = BigInt(Date.now() - TIMESTAMP_SLACK_MS) * 1_000_000n;
  const before = fileIdentity(target);
  const sha256 = await localSha256(target);
  const after = fileIdentity(target);
  const settled = before && after && sameIdentity(before, after) && BigInt(after.ctimeNs) < started;
  return settled ? { sha256, identity: after } : { sha256 };
}
