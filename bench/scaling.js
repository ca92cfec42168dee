// Benchmark: how cost grows with the number of tensors and with one tensor's size. Lists and
// hashes a model of many small tensors (per-tensor overhead) against `openssl dgst -sha256` of
// the same bytes, then a single multi-GiB tensor, hashed, compared and its statistics taken in
// chunks with bounded memory.
// Usage: npm run build && node bench/scaling.js [tensors, 10000] [GiB of the single tensor, 3]
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { writeSafetensors } from './safetensors-pair.js';
import { timeCommand } from './measure.js';

const count = Number(process.argv[2] ?? 10000);
const gib = Number(process.argv[3] ?? 3);
// CKPT_BENCH_BIN=/other/checkout/bin/ckpt.js measures another build (before/after figures).
const ckpt = (...args) => [process.execPath, [process.env.CKPT_BENCH_BIN ?? 'bin/ckpt.js', ...args]];
const mib = (n) => `${(n / 1048576).toFixed(0)} MiB`;
const line = (label, r, extra = '') => console.log(`${label.padEnd(44)} ${r.wall.toFixed(2)} s wall, ${r.cpu.toFixed(2)} s cpu, peak RSS ${mib(r.rss)}${extra} (load ${os.loadavg()[0].toFixed(1)})`);

const free = (dir) => {
  const df = spawnSync('df', ['-k', '--output=avail', dir], { encoding: 'utf8' }).stdout.trim().split('\n').pop();
  return Number(df) * 1024;
};

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ckpt-bench-'));
try {
  // Many small tensors: 4 KiB each.
  const many = path.join(dir, 'many.safetensors');
  writeSafetensors(many, Array.from({ length: count }, (_, i) => ({ name: `blocks.${i >> 4}.t${i & 15}`, bytes: 4096 })), (i, out) => out.fill(i));
  console.log(`${count} tensors of 4 KiB (${mib(fs.statSync(many).size)})`);
  const node0 = timeCommand(process.execPath, ['-e', '0']);
  line('node -e 0', node0);
  line('ckpt inspect --json', timeCommand(...ckpt('inspect', '--json', many)));
  line('ckpt inspect --hash --json', timeCommand(...ckpt('inspect', '--hash', '--json', many)));
  line('openssl dgst -sha256 (whole file)', timeCommand('openssl', ['dgst', '-sha256', many]));
  fs.rmSync(many);

  // One big tensor, in a file and a nudged copy; needs room for both.
  const bytes = Math.round(gib * 2 ** 30 / 4) * 4;
  if (free(dir) < 2 * bytes + (1 << 30)) {
    console.log(`\nsingle ${gib} GiB tensor: skipped, ${mib(free(dir))} free in ${dir}`);
  } else {
    const [a, b] = [path.join(dir, 'a.safetensors'), path.join(dir, 'b.safetensors')];
    const ramp = (nudge) => (_, out, from) => {
      for (let i = 0; i < out.length; i++) out[i] = ((from + i) % 1000) / 1000 + nudge;
    };
    writeSafetensors(a, [{ name: 'huge', bytes }], ramp(0));
    writeSafetensors(b, [{ name: 'huge', bytes }], ramp(1e-3));
    console.log(`\none float32 tensor of ${mib(bytes)}`);
    line('ckpt inspect', timeCommand(...ckpt('inspect', a)));
    line('ckpt inspect --hash', timeCommand(...ckpt('inspect', '--hash', '--json', a)));
    // Beyond 64 MiB a tensor is read twice for its statistics, a chunk at a time, rather than held.
    line('ckpt inspect --stats', timeCommand(...ckpt('inspect', '--stats', '--json', a)));
    line('openssl dgst -sha256', timeCommand('openssl', ['dgst', '-sha256', a]));
    line('ckpt diff --values', timeCommand(...ckpt('diff', '--values', '--json', a, b), { okStatus: [1] }));
  }
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
