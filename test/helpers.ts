import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CkptError, open, type OpenOptions } from '../src/index.js';

/** The repository root (tests run from dist/test/). */
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const SAMPLES = path.join(ROOT, 'samples');
/** The shared corpus of real checkpoints, beside the checkout; tests skip when it is absent. */
export const CORPUS = path.resolve(ROOT, '..', 'shared', 'corpus');
export const HAS_CORPUS = fs.existsSync(path.join(CORPUS, 'expected'));

export interface CliResult {
  status: number;
  stdout: string;
  stderr: string;
}

/** Runs the real `ckpt` command, as a user would. */
export function runCli(args: string[], env: Record<string, string> = {}): CliResult {
  const r = spawnSync(process.execPath, [path.join(ROOT, 'bin', 'ckpt.js'), ...args], {
    encoding: 'utf8',
    env: { ...process.env, ...env },
    timeout: 60_000,
  });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

const tempDirs: string[] = [];
process.on('exit', () => {
  // A browser killed a moment ago may still be writing its profile there: retry, as rm -rf would.
  for (const dir of tempDirs) fs.rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 });
});

/** A fresh temporary folder, removed when the process exits. */
export function tempDir(prefix = 'ckpt-test-'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  tempDirs.push(dir);
  return dir;
}

/** Expected listings written by independent readers: `corpus/expected/<family>/<case>/<file>.json`. */
export interface ExpectedListing {
  model: string;
  format_family: string;
  reference: string;
  tensors: { source: string; dtype: string; shape: number[]; sha256?: string }[];
}

export function expectedListings(): ExpectedListing[] {
  const root = path.join(CORPUS, 'expected');
  if (!fs.existsSync(root)) return [];
  const out: ExpectedListing[] = [];
  for (const family of fs.readdirSync(root).sort()) {
    for (const name of fs.readdirSync(path.join(root, family)).sort()) {
      for (const file of fs.readdirSync(path.join(root, family, name)).sort()) {
        out.push(JSON.parse(fs.readFileSync(path.join(root, family, name, file), 'utf8')) as ExpectedListing);
      }
    }
  }
  return out;
}

/**
 * Opens a file and reads every tensor, as a user's `inspect --hash` would: 'ok', or the exit code
 * of the CkptError it raised. Any other exception is a bug and fails the calling test.
 */
export async function loadOutcome(file: string, options: OpenOptions = {}): Promise<'ok' | number> {
  let dict;
  try {
    dict = await open(file, options);
    for (const t of dict.tensors) {
      if (t.dtype === 'string') await t.readStrings();
      else await t.read();
    }
    return 'ok';
  } catch (err) {
    if (err instanceof CkptError) return err.exitCode;
    throw new Error(`${file}: not a CkptError: ${(err as Error).stack}`);
  } finally {
    await dict?.close();
  }
}

/**
 * SHA-256 of each tensor's values as `read()` gives them — for an encoded tensor (TF.js uint8
 * affine, float16 storage) the dequantized float view, not the stored bytes `inspect --hash`
 * hashes — by source name. What listings made by readers that decode the values compare with.
 */
export async function valueHashes(file: string): Promise<Map<string, string>> {
  const dict = await open(file);
  try {
    const out = new Map<string, string>();
    for (const t of dict.tensors) if (t.dtype !== 'string') out.set(t.source, createHash('sha256').update(await t.read()).digest('hex'));
    return out;
  } finally {
    await dict.close();
  }
}
