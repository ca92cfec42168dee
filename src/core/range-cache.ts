import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

/** Ranges larger than this are tensor payloads read once; they are not kept. */
const LARGEST_CACHED = 16 << 20;

/** `$CKPT_CACHE_MAX_BYTES`, default 1 GiB: past it the least recently written ranges go. */
function cacheLimit(): number {
  const value = Number(process.env.CKPT_CACHE_MAX_BYTES);
  return Number.isFinite(value) && value >= 0 ? value : 1 << 30;
}

export function cacheFolder(): string {
  const base = process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  return path.join(base, 'ckpt', 'ranges');
}

let usedBytes: number | undefined;

/**
 * Fetched ranges of one remote file version, on disk: keyed by URL and ETag, so a file that
 * changed on the server is never answered from the cache. Bounded in size; errors writing it only
 * turn it off (a cache never fails a command).
 */
export class RangeCache {
  private constructor(private readonly folder: string, private readonly prefix: string) {}

  static open(url: string, etag: string): RangeCache {
    return new RangeCache(cacheFolder(), createHash('sha256').update(`${url}\0${etag}`).digest('hex').slice(0, 32));
  }

  private file(position: number, length: number): string {
    return path.join(this.folder, `${this.prefix}-${position}-${length}`);
  }

  /** Fills `out` from the cache; false when this range is not there. */
  read(position: number, out: Uint8Array): boolean {
    if (out.length > LARGEST_CACHED) return false;
    let fd: number;
    try {
      fd = fs.openSync(this.file(position, out.length), 'r');
    } catch {
      return false;
    }
    try {
      return fs.readSync(fd, out, 0, out.length, 0) === out.length;
    } catch {
      return false;
    } finally {
      fs.closeSync(fd);
    }
  }

  write(position: number, bytes: Uint8Array): void {
    if (bytes.length > LARGEST_CACHED) return;
    try {
      fs.mkdirSync(this.folder, { recursive: true, mode: 0o700 });
      const target = this.file(position, bytes.length);
      const temp = `${target}.${process.pid}.tmp`;
      fs.writeFileSync(temp, bytes, { mode: 0o600 });
      fs.renameSync(temp, target);
      usedBytes = (usedBytes ?? folderBytes(this.folder)) + bytes.length;
      if (usedBytes > cacheLimit()) usedBytes = prune(this.folder, cacheLimit());
    } catch {
      // A full disk or a read-only home: go on without the cache.
    }
  }
}

function entries(folder: string): { file: string; size: number; mtime: number }[] {
  return fs.readdirSync(folder).flatMap((name) => {
    try {
      const stat = fs.statSync(path.join(folder, name));
      return [{ file: path.join(folder, name), size: stat.size, mtime: stat.mtimeMs }];
    } catch {
      return [];
    }
  });
}

function folderBytes(folder: string): number {
  return entries(folder).reduce((n, e) => n + e.size, 0);
}

/** Removes the oldest ranges until the cache holds at most `limit` bytes; returns what is left. */
function prune(folder: string, limit: number): number {
  const all = entries(folder).sort((a, b) => a.mtime - b.mtime);
  let total = all.reduce((n, e) => n + e.size, 0);
  for (const e of all) {
    if (total <= limit) break;
    fs.rmSync(e.file, { force: true });
    total -= e.size;
  }
  return total;
}
