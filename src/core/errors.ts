/**
 * Every failure a user can cause is a CkptError: it carries the exit code of the CLI contract, a
 * stable machine-readable code (the JSON error document's `code`), and renders as one line
 * `ckpt: <file>: <where>: <what was expected>`.
 */
export const ExitCode = {
  ok: 0,
  /** Differences found or a threshold not met (diff, check). */
  differs: 1,
  usage: 2,
  invalidInput: 3,
  io: 4,
  internal: 5,
  /** check, compare: the file is a model in another format; they run ONNX models. */
  notOnnx: 6,
} as const;

export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

/**
 * What went wrong, for programs: stable names that never change meaning (new ones may be added).
 * Each belongs to one exit code; README lists them.
 */
export type ErrorCode =
  | 'refused'
  | 'usage'
  | 'invalid-input'
  | 'unknown-format'
  | 'io'
  | 'not-found'
  | 'permission-denied'
  | 'is-a-directory'
  | 'not-a-directory'
  | 'not-a-regular-file'
  | 'not-onnx'
  | 'internal';

/** The code of an error whose helper knows nothing more specific than its exit code. */
function defaultCode(exitCode: ExitCodeValue): ErrorCode {
  switch (exitCode) {
    case ExitCode.differs: return 'refused';
    case ExitCode.usage: return 'usage';
    case ExitCode.invalidInput: return 'invalid-input';
    case ExitCode.io: return 'io';
    case ExitCode.notOnnx: return 'not-onnx';
    default: return 'internal';
  }
}

export class CkptError extends Error {
  readonly code: ErrorCode;

  constructor(
    readonly exitCode: ExitCodeValue,
    readonly file: string | undefined,
    readonly where: string | undefined,
    readonly detail: string,
    code?: ErrorCode,
  ) {
    super([file, where, detail].filter((part) => part !== undefined && part !== '').join(': '));
    this.name = 'CkptError';
    this.code = code ?? defaultCode(exitCode);
  }
}

/** The file is readable but its content is not what the format requires. */
export function invalidInput(file: string, where: string | undefined, detail: string, code: ErrorCode = 'invalid-input'): CkptError {
  return new CkptError(ExitCode.invalidInput, file, where, detail, code);
}

/** The file (or a file it refers to) could not be read or written. */
export function ioError(file: string, where: string | undefined, detail: string, code: ErrorCode = 'io'): CkptError {
  return new CkptError(ExitCode.io, file, where, detail, code);
}

export function usageError(detail: string): CkptError {
  return new CkptError(ExitCode.usage, undefined, undefined, detail);
}

const SYSTEM_ERRORS: Record<string, { reason: string; code: ErrorCode }> = {
  ENOENT: { reason: 'no such file', code: 'not-found' },
  EACCES: { reason: 'permission denied', code: 'permission-denied' },
  EPERM: { reason: 'permission denied', code: 'permission-denied' },
  EISDIR: { reason: 'is a directory', code: 'is-a-directory' },
  ENOTDIR: { reason: 'not a directory', code: 'not-a-directory' },
  EIO: { reason: 'input/output error (a failing disk, or a file that cannot be read)', code: 'io' },
};

/** Maps a Node.js system error (ENOENT, EACCES, EIO…) to a one-line I/O error. */
export function fromSystemError(file: string, where: string | undefined, err: unknown): CkptError {
  if (err instanceof CkptError) return err;
  const e = err as NodeJS.ErrnoException;
  const known = e?.code === undefined ? undefined : SYSTEM_ERRORS[e.code];
  return known ? ioError(file, where, known.reason, known.code) : ioError(file, where, e?.message ?? String(err));
}

/** An error as a worker thread posts it back: plain data, so a CkptError keeps its exit code, code and place. */
export interface PostedError { exitCode: number; code?: ErrorCode; file?: string; where?: string; detail: string }

export function postableError(err: unknown): PostedError {
  if (err instanceof CkptError) return { exitCode: err.exitCode, code: err.code, file: err.file, where: err.where, detail: err.detail };
  return { exitCode: ExitCode.internal, detail: String((err as Error)?.stack ?? err) };
}

export function fromPostedError(e: PostedError): CkptError {
  return new CkptError(e.exitCode as ExitCodeValue, e.file, e.where, e.detail, e.code);
}
