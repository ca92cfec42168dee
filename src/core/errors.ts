/**
 * Every failure a user can cause is a CkptError: it carries the exit code of the CLI contract and
 * renders as one line `ckpt: <file>: <where>: <what was expected>`.
 */
export const ExitCode = {
  ok: 0,
  /** Differences found or a threshold not met (diff, check). */
  differs: 1,
  usage: 2,
  invalidInput: 3,
  io: 4,
  /** check, compare: the file is a model in another format; they run ONNX models. */
  notOnnx: 6,
} as const;

export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

export class CkptError extends Error {
  constructor(
    readonly exitCode: ExitCodeValue,
    readonly file: string | undefined,
    readonly where: string | undefined,
    readonly detail: string,
  ) {
    super([file, where, detail].filter((part) => part !== undefined && part !== '').join(': '));
    this.name = 'CkptError';
  }
}

/** The file is readable but its content is not what the format requires. */
export function invalidInput(file: string, where: string | undefined, detail: string): CkptError {
  return new CkptError(ExitCode.invalidInput, file, where, detail);
}

/** The file (or a file it refers to) could not be read or written. */
export function ioError(file: string, where: string | undefined, detail: string): CkptError {
  return new CkptError(ExitCode.io, file, where, detail);
}

export function usageError(detail: string): CkptError {
  return new CkptError(ExitCode.usage, undefined, undefined, detail);
}

/** Maps a Node.js system error (ENOENT, EACCES…) to a one-line I/O error. */
export function fromSystemError(file: string, where: string | undefined, err: unknown): CkptError {
  if (err instanceof CkptError) return err;
  const e = err as NodeJS.ErrnoException;
  const reason =
    e?.code === 'ENOENT' ? 'no such file' :
    e?.code === 'EACCES' || e?.code === 'EPERM' ? 'permission denied' :
    e?.code === 'EISDIR' ? 'is a directory' :
    e?.code === 'ENOTDIR' ? 'not a directory' :
    e?.message ?? String(err);
  return ioError(file, where, reason);
}
