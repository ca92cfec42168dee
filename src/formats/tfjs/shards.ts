import { RandomAccessFile } from '../../core/file.js';
import { fromSystemError, ioError } from '../../core/errors.js';
import { locationSize } from '../../core/location.js';

export interface Shard {
  /** As written in the manifest. */
  readonly name: string;
  /** Resolved inside the model folder. */
  readonly path: string;
  readonly size: number;
}

/**
 * A group's shard files seen as one buffer, the way tfjs concatenates them. Only stat()ed when
 * listed; each read opens just the files its range touches (a weight may span two), so a model
 * with thousands of shards never holds thousands of descriptors.
 */
export class ShardGroup {
  readonly size: number;
  private readonly starts: number[] = [];

  constructor(
    readonly shards: readonly Shard[],
    private readonly counter: { bytesRead: number },
  ) {
    let at = 0;
    for (const shard of shards) {
      this.starts.push(at);
      at += shard.size;
    }
    this.size = at;
  }

  /** `'a.bin', 'b.bin'`, for messages. */
  get names(): string {
    return this.shards.map((s) => `'${s.name}'`).join(', ');
  }

  /** The shard holding byte `offset` of the group (the last one for the end). */
  shardAt(offset: number): number {
    let i = 0;
    while (i + 1 < this.shards.length && this.starts[i + 1]! <= offset) i++;
    return i;
  }

  /** Bytes `[offset, offset + length)` of the concatenated shards; `what` names them in errors. */
  read(offset: number, length: number, what: string): Uint8Array {
    const out = new Uint8Array(length);
    let done = 0;
    for (let i = this.shardAt(offset); i < this.shards.length && done < length; i++) {
      const shard = this.shards[i]!;
      const from = offset + done - this.starts[i]!;
      const n = Math.min(length - done, shard.size - from);
      if (n <= 0) continue;
      const file = RandomAccessFile.open(shard.path);
      try {
        out.set(file.read(from, n, `${what} in shard '${shard.name}'`), done);
      } finally {
        this.counter.bytesRead += file.bytesRead;
        file.close();
      }
      done += n;
    }
    if (done !== length) throw ioError(this.shards.at(-1)?.path ?? '', what, `shards end at byte ${this.size} of the group, before byte ${offset + length}`);
    return out;
  }

  /**
   * Little-endian uint32s, for walking string lengths while listing: keeps the shard of the last
   * offset open and reads it through a small block cache, as the walk moves forward. Call `close` when done.
   */
  uint32Reader(): { at(offset: number, what: string): number; close(): void } {
    let index = -1;
    let file: RandomAccessFile | undefined;
    const close = () => {
      if (!file) return;
      this.counter.bytesRead += file.bytesRead;
      file.close();
      file = undefined;
      index = -1;
    };
    return {
      at: (offset, what) => {
        const i = this.shardAt(offset);
        const local = offset - this.starts[i]!;
        // A length split across two shards is rare: read it the general way.
        if (local + 4 > this.shards[i]!.size) return littleEndianUint32(this.read(offset, 4, what));
        if (i !== index) {
          close();
          file = RandomAccessFile.open(this.shards[i]!.path);
          index = i;
        }
        return littleEndianUint32(file!.bytesAt(local, 4, `${what} in shard '${this.shards[i]!.name}'`));
      },
      close,
    };
  }
}

function littleEndianUint32(bytes: Uint8Array): number {
  return (bytes[0]! | (bytes[1]! << 8) | (bytes[2]! << 16) | (bytes[3]! << 24)) >>> 0;
}

/** A shard's size without reading it. */
export function shardSize(real: string, where: string): number {
  try {
    return locationSize(real);
  } catch (err) {
    throw fromSystemError(real, where, err);
  }
}
