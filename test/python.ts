import { spawnSync } from 'node:child_process';

/**
 * Debian's python3 with numpy / h5py / torch as independent reference readers. Tests that need
 * them skip cleanly where they are missing.
 */
const PYTHON = '/usr/bin/python3';

export function pythonHas(module: string): boolean {
  const r = spawnSync(PYTHON, ['-c', `import ${module}`], { encoding: 'utf8' });
  return r.status === 0;
}

/** Runs a Python snippet; argv holds the extra arguments. Returns stdout, throws on failure. */
export function python(code: string, ...args: string[]): string {
  const r = spawnSync(PYTHON, ['-c', code, ...args], { encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`python failed: ${r.stderr}`);
  return r.stdout;
}
