import { constants as bufferConstants } from 'node:buffer';
import { invalidInput, ioError } from './errors.js';

const MAX_BUFFER = bufferConstants.MAX_LENGTH;
/** A few recent blocks stay cached: header walkers step back (a list's length, then its items) without a new read. */
const CACHED_BLOCKS = 16;

/**
 * The bytes of a checkpoint, wherever they are (a local file, an HTTP object, an archive member),
 * read by ranges. `read` fetches exact ranges (tensor values); `byteAt`/`bytesAt` go through a
 * small block cache for header walkers. The block size grows while reads move forward, so a walk
 * over a long sequential structure (a protobuf graph, a pickle) takes a handful of fetches, and
 * falls back to `minBlock` after a jump, so skipping tensor payloads fetches little.
 * Counts the bytes it fetches, which commands and benchmarks report.
 */
export abstract class ByteSource {
  private blocks: { start: number; bytes: Uint8Array }[] = [];
  private nextBlock: number;
  private lastEnd = -1;
  bytesRead = 0;

  protected constructor(
    readonly path: string,
    readonly size: number,
    private readonly minBlock: number,
    private readonly maxBlock: number,
  ) {
    this.nextBlock = minBlock;
  }

  /** Fills `out` with the bytes at `position` (within the size); counts what it fetched. */
  protected abstract fetch(out: Uint8Array, position: number): void;
  abstract close(): void;

  /** Exactly `length` bytes at `offset`, or an error naming `what` when the source is shorter. */
  read(offset: number, length: number, what = 'data'): Uint8Array {
    if (offset < 0 || length < 0 || offset + length > this.size) throw this.pastEnd(offset, length, what);
    if (length > MAX_BUFFER) {
      throw invalidInput(this.path, `offset ${offset}`, `${what} is ${length} bytes; ckpt reads one tensor at a time and Node.js holds at most ${MAX_BUFFER} bytes in one buffer`);
    }
    // Not pooled, so `out.buffer` holds exactly these bytes for callers that view it.
    const out = Buffer.allocUnsafeSlow(length);
    return this.readInto(offset, new Uint8Array(out.buffer, out.byteOffset, length), what);
  }

  /**
   * Fills `target` with the bytes at `offset` (exactly `target.length` of them), or an error naming
   * `what` when the source is shorter: `read` without a fresh buffer, for streaming through a reused one.
   */
  readInto<T extends Uint8Array>(offset: number, target: T, what = 'data'): T {
    const length = target.length;
    if (!Number.isSafeInteger(offset) || offset < 0 || offset + length > this.size) throw this.pastEnd(offset, length, what);
    const cached = this.cached(offset, length);
    if (cached) target.set(cached);
    else if (length > 0) this.fetch(target, offset);
    return target;
  }

  /** One byte through the block cache; for header walkers (the newest block first, without a view). */
  byteAt(offset: number): number {
    const newest = this.blocks[0];
    if (newest && offset >= newest.start && offset < newest.start + newest.bytes.length) return newest.bytes[offset - newest.start]!;
    return this.bytesAt(offset, 1)[0]!;
  }

  /** A short range through the block cache (a direct read when larger than the largest block). */
  bytesAt(offset: number, length: number, what = 'data'): Uint8Array {
    const cached = this.cached(offset, length);
    if (cached) return cached;
    if (length > this.maxBlock) return this.read(offset, length, what);
    if (offset < 0 || offset + length > this.size) {
      if (length === 1) throw invalidInput(this.path, `offset ${offset}`, `unexpected end of file (size ${this.size}; truncated?)`);
      throw this.pastEnd(offset, length, what);
    }
    const block = this.fill(offset, length);
    return block.subarray(0, length);
  }

  /** The error for a range that does not lie within the source. */
  private pastEnd(offset: number, length: number, what: string): Error {
    return invalidInput(this.path, `offset ${offset}`, `${what} needs ${length} bytes but the file ends at ${this.size} (truncated?)`);
  }

  private cached(offset: number, length: number): Uint8Array | undefined {
    for (const block of this.blocks) {
      if (offset >= block.start && offset + length <= block.start + block.bytes.length) {
        return block.bytes.subarray(offset - block.start, offset - block.start + length);
      }
    }
    return undefined;
  }

  /** Bytes already fetched (the answer that opened a remote file), kept as a block. */
  protected keep(start: number, bytes: Uint8Array): void {
    this.blocks.unshift({ start, bytes });
    this.lastEnd = start + bytes.length;
  }

  private fill(offset: number, atLeast: number): Uint8Array {
    // Reading on from where the last block ended: fetch more ahead next time.
    this.nextBlock = offset === this.lastEnd ? Math.min(this.maxBlock, this.nextBlock * 2) : this.minBlock;
    const length = Math.min(Math.max(this.nextBlock, atLeast), this.size - offset);
    const bytes = new Uint8Array(length);
    this.fetch(bytes, offset);
    this.blocks.unshift({ start: offset, bytes });
    if (this.blocks.length > CACHED_BLOCKS) this.blocks.pop();
    this.lastEnd = offset + length;
    return bytes;
  }
}

/** The unread part of a read that came back short, as an error naming where. */
export function shortRead(path: string, position: number): Error {
  return ioError(path, `offset ${position}`, 'unexpected end of file while reading');
}
