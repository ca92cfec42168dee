// Benchmark: ckpt against a reference tool on the same bytes, measured side by side in one run
// (interleaved rounds, medians; warm page cache): `diff --values` against numpy over memmaps
// (safetensors) and numpy after onnx.load (ONNX; `cat` of both files where the onnx module is
// missing), `inspect --stats` against numpy, `inspect --hash` against `openssl dgst -sha256`,
// start-up against `node -e 0`, `convert`, `strip` and `apply` against `cp` + `sync` (and `strip` against
// `dd`, the copy through user space that cp's in-kernel copy avoids); peak RSS of the
// writes against the largest tensor; GiB/s of input for the reads; the same for a Keras .h5 of the
// same size (hashing, converting, and HDF5's fixed cost beyond start-up).
// Usage: npm run build && node bench/speed.js [MiB per model, 1088] [rounds, 3]
//        CKPT_BENCH_CASES=strip,apply (only the cases whose label holds one of these words)
//        CKPT_BENCH_WRITE_DIR=/dev/shm (where the writes go; the benchmark's temporary folder by default)
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { writeSafetensors, writeSafetensorsPair } from './safetensors-pair.js';
import { writeOnnxPair } from './big-onnx.js';
import { compareSideBySide, median } from './measure.js';
import { writeKerasH5 } from './keras-h5.js';

const totalMiB = Number(process.argv[2] ?? 1088);
const rounds = Number(process.argv[3] ?? 3);
// CKPT_BENCH_BIN=/other/checkout/bin/ckpt.js measures another build (before/after figures).
const ckpt = (...args) => [process.execPath, [process.env.CKPT_BENCH_BIN ?? 'bin/ckpt.js', ...args]];
const mib = (n) => `${(n / 1048576).toFixed(0)} MiB`;
const hasPython = (modules) => spawnSync('/usr/bin/python3', ['-c', `import ${modules}`], { stdio: 'ignore' }).status === 0;
const hasNumpy = hasPython('numpy');
const hasOnnx = hasPython('numpy, onnx');
/** The input read per second, from the median wall time of a case's ckpt runs. */
const rate = (r, bytes) => `${(bytes / 2 ** 30 / median(r.ckpt.map((x) => x.wall))).toFixed(2)} GiB/s of input`;

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ckpt-bench-'));
// CKPT_BENCH_WRITE_DIR=/dev/shm: the writes go to a memory file system, where neither side
// meets the disk (on a virtual disk, the first write to a block can cost several times more).
const outDir = process.env.CKPT_BENCH_WRITE_DIR ? fs.mkdtempSync(path.join(process.env.CKPT_BENCH_WRITE_DIR, 'ckpt-bench-')) : dir;
try {
  const { a, b, tensors } = writeSafetensorsPair(dir, totalMiB);
  const largest = Math.max(...tensors.map((t) => t.bytes));
  const tiny = path.join(dir, 'tiny.safetensors');
  writeSafetensors(tiny, [{ name: 'weight', bytes: 1024 }, { name: 'bias', bytes: 64 }], (_, out) => out.fill(0.5));
  const onnx = writeOnnxPair(dir, totalMiB);
  const inputBytes = fs.statSync(a).size + fs.statSync(b).size;
  const onnxBytes = fs.statSync(onnx.a).size + fs.statSync(onnx.b).size;
  const h5 = path.join(dir, 'keras.h5');
  const { largest: largestH5 } = await writeKerasH5(h5, totalMiB);
  // Warm: every measurement below reads from the page cache.
  for (const f of [a, b, onnx.a, onnx.b, h5]) spawnSync('cat', [f], { stdio: ['ignore', 'ignore', 'ignore'] });
  const rssReport = (largestTensor) => (r) => {
    const rss = median(r.ckpt.map((x) => x.rss));
    console.log(`  peak RSS ${mib(rss)}: ${(rss / largestTensor).toFixed(2)}× the largest tensor (goal ≤ 2× + 100 MiB = ${mib(2 * largestTensor + 100 * 1048576)})`);
  };
  const out = path.join(outDir, 'out.safetensors');
  const removeOut = () => fs.rmSync(out, { force: true });
  // Each write starts with nothing waiting to go to disk, so neither side pays the other's flush.
  const flush = () => spawnSync('sync');
  const removeAndFlush = () => { removeOut(); flush(); };
  const plan = path.join(dir, 'plan.json');
  const planned = spawnSync(process.execPath, [process.env.CKPT_BENCH_BIN ?? 'bin/ckpt.js', 'plan', a, b, '-o', plan], { encoding: 'utf8' });
  if (planned.status !== 0) throw new Error(planned.stderr);
  // The same plan without the files' identities: apply then hashes both files as it writes.
  const hashingPlan = path.join(dir, 'plan-hashing.json');
  const { source: { identity: _s, ...source }, target: { identity: _t, ...target }, ...rest } = JSON.parse(fs.readFileSync(plan, 'utf8'));
  fs.writeFileSync(hashingPlan, JSON.stringify({ ...rest, source, target }));
  if (!_s || !_t) console.log('note: the plan has no file identities (files changed within 2 s of planning): both apply rows hash');
  console.log(`two float32 safetensors models of ${mib(fs.statSync(a).size)}, ${tensors.length} tensors each (largest ${mib(largest)}); ${os.availableParallelism()} cores, load ${os.loadavg()[0].toFixed(1)}; ${rounds} rounds`);

  const cases = [
    ...(hasNumpy ? [{
      label: 'diff --values (safetensors)', goal: 1.0,
      ckpt: [...ckpt('diff', '--values', '--json', a, b), { okStatus: [1] }],
      reference: ['/usr/bin/python3', ['bench/diff-reference.py', a, b]], referenceNote: 'numpy over memmaps',
      report: (r) => console.log(`  ckpt diff --values reads ${rate(r, inputBytes)} (goal ≥ 2), peak RSS ${mib(median(r.ckpt.map((x) => x.rss)))}; numpy's ${mib(median(r.reference.map((x) => x.rss)))}`),
    }] : []),
    {
      label: 'diff --values (ONNX)', goal: hasOnnx ? 1.0 : '(I/O floor)',
      ckpt: [...ckpt('diff', '--values', '--json', onnx.a, onnx.b), { okStatus: [1] }],
      reference: hasOnnx ? ['/usr/bin/python3', ['bench/diff-reference.py', onnx.a, onnx.b]] : ['sh', ['-c', 'cat "$0" "$1" > /dev/null', onnx.a, onnx.b]],
      referenceNote: hasOnnx ? 'numpy incl. onnx.load' : 'cat A B (no onnx module for the numpy reference)',
      report: (r) => console.log(`  ckpt diff --values reads ${rate(r, onnxBytes)} (goal ≥ 2)`),
    },
    ...(hasNumpy ? [{
      label: 'inspect --stats (safetensors)', goal: 1.0,
      ckpt: ckpt('inspect', '--stats', '--json', a),
      reference: ['/usr/bin/python3', ['bench/stats-reference.py', a]], referenceNote: 'numpy over a memmap',
      report: (r) => console.log(`  ckpt inspect --stats reads ${rate(r, fs.statSync(a).size)} (goal ≥ 2), peak RSS ${mib(median(r.ckpt.map((x) => x.rss)))}`),
    }] : []),
    { label: 'inspect --hash (safetensors)', goal: 1.2, ckpt: ckpt('inspect', '--hash', '--json', a), reference: ['openssl', ['dgst', '-sha256', a]] },
    { label: 'start-up: inspect tiny safetensors', goal: 2.0, ckpt: ckpt('inspect', tiny), reference: [process.execPath, ['-e', '0']] },
    { label: 'start-up: inspect tiny ONNX', goal: 2.0, ckpt: ckpt('inspect', 'samples/detector-90.onnx'), reference: [process.execPath, ['-e', '0']] },
    {
      label: 'Keras HDF5 listing (tiny .h5)', goal: '(fixed cost ≤ 0.1 s)',
      ckpt: ckpt('inspect', 'samples/detector-90.h5'), reference: ckpt('inspect', 'samples/detector-90.onnx'), referenceNote: 'the same listing of ONNX',
      report: (r) => console.log(`  HDF5 fixed cost beyond start-up: ${(median(r.ckpt.map((x) => x.wall)) - median(r.reference.map((x) => x.wall))).toFixed(3)} s wall, ${(median(r.ckpt.map((x) => x.cpu)) - median(r.reference.map((x) => x.cpu))).toFixed(3)} s cpu`),
    },
    ...[
      ['convert', a, out],
      ['strip', a, '--exclude', '=layers.0.bias', '-o', out],
      // B with A's values; the files' identities vouch that they are as planned.
      ['apply', plan, '-o', out],
      // The same, hashing both files (2.3 GiB) on other threads while writing.
      ['apply', hashingPlan, '-o', out],
    ].map((args) => ({
      label: `${args[0]}${args[1] === hashingPlan ? ' (hashing both)' : ''} → safetensors`, goal: 2.0,
      ckpt: ckpt(...args),
      before: flush,
      between: removeAndFlush,
      reference: ['sh', ['-c', 'cp "$0" "$1" && sync "$1"', a, out]], referenceNote: 'cp + sync',
      after: removeOut,
      report: rssReport(largest),
    })),
    // cp copies in the kernel (copy_file_range); a writer that reads, rewrites a header and writes
    // its tensors pays the copy through user space, as dd does: this row shows that floor.
    {
      label: 'strip → safetensors vs dd', goal: 2.0,
      ckpt: ckpt('strip', a, '--exclude', '=layers.0.bias', '-o', out), before: flush, between: removeAndFlush,
      reference: ['dd', [`if=${a}`, `of=${out}`, 'bs=4M', 'conv=fsync', 'status=none']], referenceNote: 'dd bs=4M conv=fsync: copy through user space',
      after: removeOut,
    },
    {
      label: 'inspect --hash (Keras .h5)', goal: 1.2, ckpt: ckpt('inspect', '--hash', '--json', h5), reference: ['openssl', ['dgst', '-sha256', h5]],
      report: rssReport(largestH5),
    },
    {
      label: 'convert Keras .h5 → safetensors', goal: 2.0, ckpt: ckpt('convert', h5, out), before: flush, between: removeAndFlush,
      reference: ['sh', ['-c', 'cp "$0" "$1" && sync "$1"', h5, out]], referenceNote: 'cp + sync', after: removeOut,
      report: rssReport(largestH5),
    },
  ];
  if (!hasNumpy) console.log('diff --values (safetensors), inspect --stats: skipped, /usr/bin/python3 has no numpy');
  // CKPT_BENCH_CASES=strip,apply: only the cases whose label holds one of these words.
  const only = process.env.CKPT_BENCH_CASES?.split(',');
  compareSideBySide(only ? cases.filter((c) => only.some((word) => c.label.includes(word))) : cases, rounds);
} finally {
  for (const folder of new Set([dir, outDir])) fs.rmSync(folder, { recursive: true, force: true });
}
