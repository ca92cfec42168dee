import * as fs from 'node:fs';
import * as path from 'node:path';
import { outputTarget, passGate, syncFolder, Temporary } from './atomic.js';
import { fromSystemError, ioError } from './errors.js';

/** One file of a set: where it goes and how its bytes are written. */
export interface SetMember {
  readonly path: string;
  write(fd: number): Promise<void> | void;
}

/**
 * Writes files that are only meaningful together (shards and their index, a model and its
 * external data) as one set: each through a hidden temporary beside it; only when every one is
 * written and flushed are they renamed into place, in one synchronous step (signals wait for it),
 * and their folders synced. Then `stale` files (the old set's members the new one does not
 * replace) are removed. Any error before the renames leaves the old set as it was.
 */
export async function writeFileSet(output: string, members: readonly SetMember[], stale: readonly string[] = []): Promise<void> {
  const targets = members.map((m) => {
    const target = outputTarget(m.path);
    if (target.kind === 'stream') throw ioError(m.path, 'output', 'is a device or FIFO; this output is a set of files');
    return target;
  });
  const temps: Temporary[] = [];
  try {
    for (const [i, member] of members.entries()) {
      const temp = new Temporary(output, targets[i]!.path);
      temps.push(temp);
      await member.write(temp.descriptor);
      temp.finish(targets[i]!.mode);
    }
    await passGate();
    temps.forEach((temp, i) => temp.renameTo(targets[i]!.path));
    for (const folder of new Set(targets.map((t) => path.dirname(t.path)))) syncFolder(folder);
  } catch (err) {
    for (const temp of temps) temp.discard();
    throw fromSystemError(output, 'writing', err);
  }
  const written = new Set(targets.map((t) => path.resolve(t.path)));
  const removed = stale.filter((file) => !written.has(path.resolve(file)));
  for (const file of removed) fs.rmSync(file, { force: true });
  for (const folder of new Set(removed.map((f) => path.dirname(f)))) syncFolder(folder);
}
