// Runs a Node snippet (ESM, from the repository root) in a child process and reports its wall
// time and peak resident memory, so each measurement starts from a fresh process.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
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

/** measure() of a snippet that must succeed: throws its stderr when it exits otherwise. */
export function measureOk(code, args) {
  const r = measure(code, args);
  if (r.status !== 0) throw new Error(r.stderr);
  return r;
}

/** Copying `source` to `target` (removed after), the floor a command that rewrites the file is compared with. */
export function measureCopy(source, target) {
  const r = measureOk(`import * as fs from 'node:fs'; fs.copyFileSync(process.argv[1], process.argv[2]);`, [source, target]);
  fs.rmSync(target);
  return r;
}

/**
 * Runs a command under /usr/bin/time: wall seconds, CPU seconds (user + system) and peak RSS in
 * bytes. CPU time says how much work a command does even on a busy machine, where wall time
 * also counts waiting for a core or the disk.
 */
export function timeCommand(command, args, { okStatus = [0] } = {}) {
  const start = process.hrtime.bigint();
  const r = spawnSync('/usr/bin/time', ['-f', 'TIMED %U %S %M', command, ...args], { cwd: root, encoding: 'utf8', maxBuffer: 256 << 20 });
  const wall = Number(process.hrtime.bigint() - start) / 1e9;
  if (!okStatus.includes(r.status)) throw new Error(`${command} ${args.join(' ')} exited ${r.status}: ${r.stderr.slice(-2000)}`);
  const [, user, system, rssKiB] = /TIMED (\S+) (\S+) (\d+)/.exec(r.stderr) ?? [];
  return { wall, cpu: Number(user) + Number(system), rss: Number(rssKiB) * 1024, stdout: r.stdout };
}

export const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

/**
 * Times each case's ckpt command and its reference `rounds` times, interleaved (ckpt, reference;
 * reference, ckpt, …) so both see the same machine, and prints medians and the ckpt ÷ reference ratios,
 * with the median 1-minute load average at the start of each round (other work on the machine).
 */
export function compareSideBySide(cases, rounds) {
  const results = cases.map(() => ({ ckpt: [], reference: [], load: [] }));
  for (let round = 0; round < rounds; round++) {
    cases.forEach((c, i) => {
      // Odd rounds run the reference first: whatever one run leaves the next (a file system still
      // settling the blocks a deleted output freed, seen here to make every other write slow) then
      // falls on both sides alike. `before`, `between` and `after` are hooks around the two runs.
      const sides = round % 2 ? ['reference', 'ckpt'] : ['ckpt', 'reference'];
      c.before?.();
      results[i].load.push(os.loadavg()[0]);
      results[i][sides[0]].push(timeCommand(...c[sides[0]]));
      c.between?.();
      results[i][sides[1]].push(timeCommand(...c[sides[1]]));
      c.after?.();
    });
  }
  const pad = (s, n) => String(s).padEnd(n);
  const s = (x) => `${x.toFixed(2)} s`;
  console.log(`${pad('case', 34)} ${pad('ckpt wall (cpu)', 20)} ${pad('reference wall (cpu)', 22)} ratio wall  ratio cpu  load  goal`);
  cases.forEach((c, i) => {
    const pick = (runs, key) => median(runs.map((r) => r[key]));
    const [cw, cc, rw, rc] = [pick(results[i].ckpt, 'wall'), pick(results[i].ckpt, 'cpu'), pick(results[i].reference, 'wall'), pick(results[i].reference, 'cpu')];
    console.log(`${pad(c.label, 34)} ${pad(`${s(cw)} (${s(cc)})`, 20)} ${pad(`${s(rw)} (${s(rc)})`, 22)} ${pad(`${(cw / rw).toFixed(2)}×`, 11)} ${pad(`${(cc / rc).toFixed(2)}×`, 10)} ${pad(median(results[i].load).toFixed(1), 5)} ${typeof c.goal === 'number' ? `≤ ${c.goal}×` : c.goal}  [${c.reference[0]}${c.referenceNote ? `: ${c.referenceNote}` : ''}]`);
    c.report?.(results[i]);
  });
  return results;
}
