import * as fs from 'node:fs';
import * as path from 'node:path';
import { readTextFile, resolveInsideFolder } from '../../core/file.js';
import { CkptError, ExitCode, fromSystemError, invalidInput, ioError } from '../../core/errors.js';

/**
 * The files of a checkpoint with prefix P: `P.index` and the shards `P.data-00000-of-00002`…
 * A folder may also hold a `checkpoint` text file naming the latest prefix
 * (`model_checkpoint_path: "cp-0050.ckpt"`), which TensorFlow writes but which can be stale.
 */
const CHECKPOINT_FILE = 'checkpoint';
const MAX_CHECKPOINT_FILE = 1 << 20;

function indexFilesIn(folder: string): string[] {
  try {
    return fs.readdirSync(folder).filter((f) => f.endsWith('.index')).sort();
  } catch (err) {
    throw fromSystemError(folder, undefined, err);
  }
}

function isFile(file: string): boolean {
  return fs.statSync(file, { throwIfNoEntry: false })?.isFile() ?? false;
}

export function looksLikeCheckpointFolder(folder: string): boolean {
  try {
    return isFile(path.join(folder, CHECKPOINT_FILE)) || indexFilesIn(folder).length > 0;
  } catch {
    return false;
  }
}

/**
 * The `.index` for a folder: the one its `checkpoint` file names, else its only `.index`.
 * A named prefix is looked up inside the folder only (an absolute one by its base name).
 */
export function indexFileInFolder(folder: string): string {
  const found = indexFilesIn(folder);
  const listing = found.length ? `; .index files in the folder: ${found.join(', ')}` : '';
  const checkpointFile = path.join(folder, CHECKPOINT_FILE);
  if (isFile(checkpointFile)) {
    const prefix = latestPrefix(checkpointFile);
    const relative = path.posix.isAbsolute(prefix) || path.win32.isAbsolute(prefix) ? prefix.split(/[\\/]/).pop()! : prefix;
    try {
      return resolveInsideFolder(checkpointFile, folder, `${relative}.index`, 'model_checkpoint_path');
    } catch (err) {
      if (!(err instanceof CkptError) || err.exitCode !== ExitCode.io) throw err;
      throw ioError(checkpointFile, 'model_checkpoint_path', `names '${prefix}' but '${relative}.index' is not in the folder${listing}; open an .index file directly`);
    }
  }
  if (found.length !== 1) {
    throw invalidInput(folder, undefined, `expected one TensorFlow checkpoint (.index file) or a 'checkpoint' file${listing || '; found none'}`);
  }
  return path.join(folder, found[0]!);
}

function latestPrefix(checkpointFile: string): string {
  let text: string;
  try {
    if (fs.statSync(checkpointFile).size > MAX_CHECKPOINT_FILE) throw invalidInput(checkpointFile, undefined, `larger than ${MAX_CHECKPOINT_FILE} bytes; expected a short text file`);
    text = readTextFile(checkpointFile);
  } catch (err) {
    throw fromSystemError(checkpointFile, undefined, err);
  }
  const m = /^\s*model_checkpoint_path:\s*"((?:[^"\\\n]|\\.)*)"/m.exec(text);
  if (!m) throw invalidInput(checkpointFile, undefined, 'expected a line model_checkpoint_path: "<prefix>"');
  return m[1]!.replace(/\\(.)/g, '$1');
}

/** `P.index` → the name of shard `id` of `count`: `P.data-SSSSS-of-NNNNN`. */
export function shardName(indexFile: string, id: number, count: number): string {
  const base = path.basename(indexFile);
  if (!base.endsWith('.index')) {
    throw invalidInput(indexFile, undefined, "expected a name ending in '.index': the data shards are named after the checkpoint prefix");
  }
  const pad = (n: number) => String(n).padStart(5, '0');
  return `${base.slice(0, -'.index'.length)}.data-${pad(id)}-of-${pad(count)}`;
}
