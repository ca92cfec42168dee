import { Worker, type WorkerOptions } from 'node:worker_threads';

/**
 * This process's Node options without `--input-type`: it describes the main script
 * (`node --input-type=module -e …`), and a worker thread that inherits it fails at start.
 */
function workerExecArgv(): string[] {
  const kept: string[] = [];
  for (let i = 0; i < process.execArgv.length; i++) {
    const arg = process.execArgv[i]!;
    if (arg === '--input-type') i++; // and its value
    else if (!arg.startsWith('--input-type=')) kept.push(arg);
  }
  return kept;
}

/** A worker thread running the module at `url`, with this process's Node options where a worker can take them. */
export function startWorker(url: URL, options: WorkerOptions = {}): Worker {
  return new Worker(url, { execArgv: workerExecArgv(), ...options });
}
