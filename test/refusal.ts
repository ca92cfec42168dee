import { open } from '../src/index.js';
import { CkptError } from '../src/core/errors.js';

/**
 * The CkptError opening `file` and reading every tensor ends in, as its exit code and one-line
 * message; a file that opens is a failure of the calling test, and so is any other exception.
 */
export async function refusal(file: string): Promise<{ status: number; message: string }> {
  try {
    const dict = await open(file);
    try {
      for (const t of dict.tensors) await t.read();
    } finally {
      await dict.close();
    }
  } catch (err) {
    if (err instanceof CkptError) return { status: err.exitCode, message: err.message };
    throw err;
  }
  throw new Error(`${file} opened`);
}
