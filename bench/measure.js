// Runs a Node snippet (ESM, from the repository root) in a child process and reports its wall
// time and peak resident memory, so each measurement starts from a fresh process.
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

export function measure(code, args) {
  const wrapped = `${code}\nprocess.on('exit', () => { const u = process.resourceUsage(); process.stderr.write('\\nMAXRSS ' + u.maxRSS + ' CPU ' + (u.userCPUTime + u.systemCPUTime) + '\\n'); });`;
  const start = process.hrtime.bigint();
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', wrapped, ...args], { cwd: root, encoding: 'utf8', maxBuffer: 256 << 20 });
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  const rss = Number(/MAXRSS (\d+)/.exec(r.stderr)?.[1] ?? 0) * 1024;
  // CPU time (user + system) of the child: on a shared machine, wall time also counts the wait for a core.
  const cpuMs = Number(/ CPU (\d+)/.exec(r.stderr)?.[1] ?? 0) / 1000;
  return { ms, cpuMs, rss, status: r.status, stdout: r.stdout, stderr: r.stderr };
}
