// With CKPT_BENCH_COLD=1 (as root), benchmarks drop the page cache before each measurement, so
// "read the whole file" and "list it" both start from the disk, as with a file not yet touched.
import { execSync } from 'node:child_process';
import * as fs from 'node:fs';

export const COLD = process.env.CKPT_BENCH_COLD === '1';

export function dropCaches() {
  if (!COLD) return;
  execSync('sync');
  fs.writeFileSync('/proc/sys/vm/drop_caches', '3');
}
