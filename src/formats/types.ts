import type { RandomAccessFile } from '../core/file.js';
import type { ZipEntry } from '../core/zip.js';
import type { OpenOptions, StateDict } from '../core/statedict.js';

/** What format detection may look at: the first bytes, the size, and the open file. */
export interface Probe {
  readonly path: string;
  readonly isDirectory: boolean;
  readonly size: number;
  /** Up to the first 4 KiB. */
  readonly head: Uint8Array;
  /** Positioned reads for readers that must walk structure to decide (ONNX has no magic). */
  readonly file?: RandomAccessFile;
  /** A ZIP's central directory, read once for all the readers that decide by member names; throws for a damaged one. */
  readonly zipDirectory?: () => readonly ZipEntry[];
}

/** One module per format: a cheap content test and an opener. */
export interface FormatReader {
  readonly name: string;
  match(probe: Probe): boolean;
  open(path: string, options: OpenOptions): Promise<StateDict>;
}
