import * as path from 'node:path';
import { RandomAccessFile, resolveInsideFolder } from '../../core/file.js';
import { fromSystemError, invalidInput } from '../../core/errors.js';
import { byteLengthOf, numelOf, type DType } from '../../core/dtype.js';
import type { OpenOptions, StateDict, TensorInfo } from '../../core/statedict.js';
import type { FormatReader } from '../types.js';
import { tfCheckpointFormat } from './match.js';
import { decodeEntry, decodeHeader, type BundleEntry } from './bundle.js';
import { crc32c, maskCrc } from './crc32c.js';
import { indexFileInFolder, shardName } from './locate.js';
import { canonicalNames, fullNamesOf, isTrainingState, OBJECT_GRAPH_KEY } from './names.js';
import type { Fail } from './proto.js';
import { printable, readTable } from './sstable.js';
import { decodeStrings, stringLayout, type StringLayout } from './strings.js';
import { locationIsFolder, locationSize } from '../../core/location.js';
import { roleByName } from '../../core/roles.js';

/**
 * TensorFlow checkpoints (TensorBundle V2, tf.train.Saver and tf.train.Checkpoint): opened by
 * their `.index` file, or by a folder with a `checkpoint` file or a single `.index`. The index
 * is read whole (it is small); each tensor's bytes are read from its data shard on `read()` and
 * checked against their CRC32C.
 */
export const tfCheckpointReader: FormatReader = { ...tfCheckpointFormat, open: openTfCheckpoint };

/** The object graph is read at open for the variables' own names; a larger one is left unread. */
const MAX_OBJECT_GRAPH = 64 << 20;

interface Located {
  readonly key: string;
  readonly entry: BundleEntry;
  readonly dtype: DType;
  readonly byteLength: number;
  readonly strings?: StringLayout;
}

/** The data shards, resolved inside the index's folder and opened on first read. */
class Shards {
  readonly paths: string[] = [];
  readonly sizes: number[] = [];
  private readonly files = new Map<number, RandomAccessFile>();

  constructor(private readonly indexFile: string) {}

  /** Finds and sizes every shard; one by one, so a corrupt shard count stops at the first missing file. */
  resolve(count: number): void {
    const folder = path.dirname(this.indexFile);
    for (let id = 0; id < count; id++) {
      const shard = resolveInsideFolder(this.indexFile, folder, shardName(this.indexFile, id, count), `data shard ${id}`);
      try {
        this.sizes.push(locationSize(shard));
      } catch (err) {
        throw fromSystemError(shard, undefined, err);
      }
      this.paths.push(shard);
    }
  }

  file(id: number): RandomAccessFile {
    let file = this.files.get(id);
    if (!file) {
      file = RandomAccessFile.open(this.paths[id]!);
      this.files.set(id, file);
    }
    return file;
  }

  bytesRead(): number {
    return [...this.files.values()].reduce((n, f) => n + f.bytesRead, 0);
  }

  close(): void {
    for (const file of this.files.values()) file.close();
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

async function openTfCheckpoint(input: string, options: OpenOptions): Promise<StateDict> {
  let indexFile = input;
  try {
    if (locationIsFolder(input)) indexFile = indexFileInFolder(input);
  } catch (err) {
    throw fromSystemError(input, undefined, err);
  }
  const raf = RandomAccessFile.open(indexFile);
  const shards = new Shards(indexFile);
  try {
    const failAt = (where: string): Fail => (what) => invalidInput(indexFile, where, what);
    const [first, ...rest] = readTable(raf);
    if (!first || first.key.length !== 0) throw invalidInput(indexFile, 'index', 'no BundleHeaderProto under the empty key; not a TensorFlow checkpoint index');
    const header = decodeHeader(first.value, failAt('header entry'));
    if (header.bigEndian) throw invalidInput(indexFile, 'header entry', 'the checkpoint was written big-endian; only little-endian checkpoints are supported');
    shards.resolve(header.numShards);
    const located: Located[] = [];
    const unsupported: { key: string; dtype: string; reason: string }[] = [];
    for (const { key: keyBytes, value } of rest) {
      // Pieces of partitioned variables have binary keys (0x00 first); their full entry is listed as unsupported.
      if (keyBytes[0] === 0) continue;
      let key: string;
      try {
        key = utf8.decode(keyBytes);
      } catch {
        throw invalidInput(indexFile, `key '${printable(keyBytes)}'`, 'is not valid UTF-8');
      }
      const entry = decodeEntry(value, failAt(`tensor '${key}'`));
      if (entry.sliced) unsupported.push({ key, dtype: entry.type.name, reason: 'a partitioned variable stored in slices' });
      else if (!entry.type.dtype) unsupported.push({ key, dtype: entry.type.name, reason: 'no ckpt dtype for it' });
      else located.push(locate(indexFile, shards, key, entry, entry.type.dtype));
    }

    const readStrings = (l: Located): Uint8Array[] => {
      const fail = failInShard(shards, l);
      if (!l.strings) throw fail(`is ${l.dtype}, not strings`);
      return decodeStrings(shards.file(l.entry.shardId).read(l.entry.offset, l.entry.size, `tensor '${l.key}'`), l.strings, l.entry.crc32c, fail);
    };
    const graph = located.find((l) => l.key === OBJECT_GRAPH_KEY && l.strings?.lengths.length === 1 && l.byteLength <= MAX_OBJECT_GRAPH);
    const fullNames = graph ? fullNamesOf(readStrings(graph)[0]!, failInShard(shards, graph)) : new Map<string, string>();
    const names = canonicalNames(located.map((l) => l.key), fullNames);

    const tensors: TensorInfo[] = [];
    let optimizerTensors = 0;
    located.forEach((l, i) => {
      const training = isTrainingState(l.key);
      if (training && !options.all) {
        optimizerTensors++;
        return;
      }
      tensors.push({
        name: names[i]!,
        source: l.key,
        dtype: l.dtype,
        shape: l.entry.shape,
        byteLength: l.byteLength,
        origin: 'weight',
        ...roleByName(names[i]!, l.dtype),
        ...(training ? { group: 'optimizer' as const } : {}),
        read: async () => readFixed(shards, l),
        readStrings: async () => readStrings(l),
      });
    });
    const metadata = { numShards: header.numShards, ...(unsupported.length ? { unsupported } : {}), ...(optimizerTensors ? { optimizerTensors } : {}) };
    return {
      format: 'tf-checkpoint',
      path: indexFile,
      metadata,
      tensors,
      close: async () => {
        raf.close();
        shards.close();
      },
      bytesRead: () => raf.bytesRead + shards.bytesRead(),
    };
  } catch (err) {
    raf.close();
    shards.close();
    throw err;
  }
}

/** Checks where an entry's bytes are and how many there must be, without reading fixed-width values. */
function locate(indexFile: string, shards: Shards, key: string, entry: BundleEntry, dtype: DType): Located {
  const where = `tensor '${key}'`;
  if (entry.shardId >= shards.paths.length) throw invalidInput(indexFile, where, `shard_id ${entry.shardId}, but the checkpoint has ${shards.paths.length} shard(s)`);
  const shardSize = shards.sizes[entry.shardId]!;
  if (entry.offset + entry.size > shardSize) {
    throw invalidInput(indexFile, where, `bytes [${entry.offset}, ${entry.offset + entry.size}) run past the end of ${path.basename(shards.paths[entry.shardId]!)} (${shardSize} bytes)`);
  }
  const numel = numelOf(entry.shape);
  if (numel === undefined) throw invalidInput(indexFile, where, `shape [${entry.shape.join(', ')}] has too many elements`);
  if (dtype === 'string') {
    // The lengths come first: at most 10 bytes each, then a 4-byte checksum.
    const head = shards.file(entry.shardId).read(entry.offset, Math.min(entry.size, numel * 10 + 4), where);
    const strings = stringLayout(head, numel, entry.size, failInShard(shards, { key, entry }));
    return { key, entry, dtype, byteLength: entry.size - strings.dataStart, strings };
  }
  const expected = byteLengthOf(dtype, numel);
  if (entry.size !== expected) {
    throw invalidInput(indexFile, where, `size ${entry.size} bytes, but ${dtype} [${entry.shape.join(', ')}] is ${expected} bytes`);
  }
  return { key, entry, dtype, byteLength: expected };
}

function failInShard(shards: Shards, l: Pick<Located, 'key' | 'entry'>): Fail {
  return (what) => invalidInput(shards.paths[l.entry.shardId]!, `tensor '${l.key}' at offset ${l.entry.offset}`, what);
}

function readFixed(shards: Shards, l: Located): Uint8Array {
  const fail = failInShard(shards, l);
  if (l.strings) throw fail('is a string tensor; use readStrings()');
  const bytes = shards.file(l.entry.shardId).read(l.entry.offset, l.entry.size, `tensor '${l.key}'`);
  const crc = maskCrc(crc32c(bytes));
  if (crc !== l.entry.crc32c) throw fail(`checksum mismatch (stored 0x${l.entry.crc32c.toString(16)}, computed 0x${crc.toString(16)}); the data file is corrupt`);
  return bytes;
}
