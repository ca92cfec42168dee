import type { RandomAccessFile } from '../core/file.js';
import type { ZipEntry } from '../core/zip.js';
import type { OpenOptions, StateDict } from '../core/statedict.js';
import type { ModelWalk } from './onnx/model.js';

/**
 * What detection already parsed, handed to the reader's open so that no file is parsed twice.
 * Used only while the file still has the size it had when probed.
 */
export interface Detection {
  readonly size: number;
  /** A ZIP's central directory, when some reader's match read it. */
  zipDirectory?: readonly ZipEntry[];
  /** The ONNX reader's walk of the model's structure. */
  onnxModel?: ModelWalk;
}

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
  /** Where a match leaves what it parsed, for open. */
  readonly detection: Detection;
}

/**
 * A format's name and cheap content test, in a module of its own (`<format>/match.ts`) that imports
 * little: detection loads every format's test, and only the reader of the format found.
 */
export interface FormatMatch {
  readonly name: string;
  match(probe: Probe): boolean;
}

/** One module per format: its content test and an opener. */
export interface FormatReader extends FormatMatch {
  open(path: string, options: OpenOptions, detection?: Detection): Promise<StateDict>;
}
