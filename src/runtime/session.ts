import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createRequire } from 'node:module';
import { CkptError, ExitCode, invalidInput } from '../core/errors.js';
import { detectFormat } from '../open.js';
import { localCopy } from '../core/location.js';
import type * as Ort from 'onnxruntime-node';

/**
 * onnxruntime-node sessions with an explicit execution-provider choice. onnxruntime-node does
 * not fall back from CUDA by itself: `auto` tries CUDA and then the CPU, and says which ran.
 */
export type ProviderChoice = 'cpu' | 'cuda' | 'auto';

let ortModule: typeof Ort | undefined;
/** onnxruntime's own log (multi-line, with timestamps) reaches stderr only with --verbose. */
let ortVerbose = false;

export function setOrtVerbose(verbose: boolean): void {
  ortVerbose = verbose;
  if (ortModule) ortModule.env.logLevel = verbose ? 'warning' : 'fatal';
}

/** Options of every session.run: onnxruntime logs a failing kernel's error itself unless told not to. */
export function runOptions(): Ort.InferenceSession.RunOptions {
  return { logSeverityLevel: ortVerbose ? 2 : 4 };
}

/** Loaded on first use: commands that never run a model do not pay for the native module. */
export async function loadOrt(): Promise<typeof Ort> {
  if (!ortModule) {
    ortModule = (await import('onnxruntime-node')).default as unknown as typeof Ort;
    // ckpt reports failures itself, with their reason; onnxruntime's own log only adds noise.
    ortModule.env.logLevel = ortVerbose ? 'warning' : 'fatal';
  }
  return ortModule;
}

export const CUDA_HELP =
  'the CUDA execution provider could not be loaded: onnxruntime-node 1.29.0 needs ' +
  'libonnxruntime_providers_cuda.so and libonnxruntime_providers_shared.so of ONNX Runtime 1.29.0 next to its ' +
  'libonnxruntime.so.1 (`npm run setup:cuda`), and CUDA 13 and cuDNN 9 on LD_LIBRARY_PATH; `ckpt doctor` checks it';

/** Where onnxruntime-node keeps libonnxruntime.so.1, and where the CUDA provider must be put. */
export function ortLibraryFolder(): string {
  const main = createRequire(import.meta.url).resolve('onnxruntime-node');
  const root = main.slice(0, main.lastIndexOf(`${path.sep}onnxruntime-node${path.sep}`) + '/onnxruntime-node'.length);
  return path.join(root, 'bin', 'napi-v6', process.platform, process.arch);
}

/** The CUDA provider library is present (whether its CUDA dependencies load is another matter). */
export function cudaProviderInstalled(): boolean {
  return fs.existsSync(path.join(ortLibraryFolder(), 'libonnxruntime_providers_cuda.so'));
}

/**
 * The shared libraries the CUDA provider needs that the dynamic loader cannot find (from `ldd`),
 * or undefined when that cannot be told. onnxruntime only says "Failed to load shared library".
 */
export function missingCudaLibraries(): string[] | undefined {
  try {
    const out = execFileSync('ldd', [path.join(ortLibraryFolder(), 'libonnxruntime_providers_cuda.so')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 10_000 });
    return out.split('\n').filter((l) => l.includes('not found')).map((l) => l.trim().split(/\s+/)[0]!);
  } catch {
    return undefined;
  }
}

export interface OpenedSession {
  session: Ort.InferenceSession;
  provider: 'cpu' | 'cuda';
}

export function parseProvider(text: string | undefined): ProviderChoice {
  const choice = text ?? 'auto';
  if (choice !== 'cpu' && choice !== 'cuda' && choice !== 'auto') {
    throw new CkptError(ExitCode.usage, undefined, undefined, `--ep must be cpu, cuda or auto, got '${choice}'`);
  }
  return choice;
}

export async function openSession(model: string | Uint8Array, choice: ProviderChoice, label: string): Promise<OpenedSession> {
  const ort = await loadOrt();
  if (typeof model === 'string') model = localCopy(model, 'onnxruntime');
  const create = (provider: 'cpu' | 'cuda') => {
    // Fatal only: ckpt reports a failure itself, in one line; a failed CUDA attempt under `auto` is no error at all.
    const options: Ort.InferenceSession.SessionOptions = { executionProviders: [provider], logSeverityLevel: ortVerbose ? 2 : 4 };
    return typeof model === 'string' ? ort.InferenceSession.create(model, options) : ort.InferenceSession.create(model, options);
  };
  // Without the provider library, trying CUDA only makes onnxruntime print an error: skip it.
  if (choice === 'cuda' && !cudaProviderInstalled()) {
    throw new CkptError(ExitCode.io, label, 'execution provider', `${CUDA_HELP} (libonnxruntime_providers_cuda.so is not in ${ortLibraryFolder()})`);
  }
  if (choice === 'cuda' || (choice === 'auto' && cudaProviderInstalled())) {
    try {
      return { session: await create('cuda'), provider: 'cuda' };
    } catch (err) {
      if (choice === 'cuda') {
        const missing = missingCudaLibraries();
        const reason = missing?.length ? `not found: ${missing.join(', ')}` : firstLine(err);
        throw new CkptError(ExitCode.io, label, 'execution provider', `${CUDA_HELP} (${reason})`);
      }
    }
  }
  try {
    return { session: await create('cpu'), provider: 'cpu' };
  } catch (err) {
    const reason = firstLine(err);
    // ONNX type 16 is bfloat16: onnxruntime-node has no tensor type for it.
    const hint = /Unsupported data type: 16\b/.test(reason) ? ' (bfloat16: onnxruntime-node takes no bfloat16 graph inputs or outputs; cast them to float32 or float16 in the graph)' : '';
    throw invalidInput(label, 'onnxruntime', `the model does not load: ${reason}${hint}`);
  }
}

export function firstLine(err: unknown): string {
  return String((err as Error)?.message ?? err).split('\n')[0]!.trim();
}

/**
 * onnxruntime runs ONNX models only: a checkpoint in another format is refused with its own exit
 * code and the ways to get an ONNX model, instead of "Protobuf parsing failed".
 */
export function requireOnnxModel(file: string, command: string): void {
  const format = detectFormat(file);
  if (format === undefined || format === 'onnx') return;
  throw new CkptError(ExitCode.notOnnx, file, undefined,
    `a ${format} checkpoint; ${command} runs ONNX models: put its weights into an ONNX export of the same network ` +
    `(ckpt convert ${file} OUT.onnx --graph MODEL.onnx), or export one (torch.onnx.export, tf2onnx, paddle2onnx)`);
}
