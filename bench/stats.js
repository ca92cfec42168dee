// Benchmark: `ckpt inspect --stats` of a ≥1 GiB safetensors checkpoint against reading the file
// once (throughput, peak RSS against the largest tensor, 64 MiB), and the HTML report of a
// 10,000-tensor checkpoint opened in headless Chromium (load, filter and sort times).
// Usage: npm run build && node bench/stats.js [MiB]
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { measure } from './measure.js';

const totalMiB = Number(process.argv[2] ?? 1088);
const TENSOR = 64 << 20;

/** A safetensors file of `count` float32 tensors of `bytes` each, values spread like trained weights. */
function writeSafetensors(file, count, bytes, name = (i) => `layers.${i}.weight`) {
  const entries = Array.from({ length: count }, (_, i) => `${JSON.stringify(name(i))}:{"dtype":"F32","shape":[${bytes / 4}],"data_offsets":[${i * bytes},${(i + 1) * bytes}]}`);
  let header = Buffer.from(`{${entries.join(',')}}`);
  header = Buffer.concat([header, Buffer.alloc((8 - (header.length % 8)) % 8, 0x20)]);
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(header.length));
  const values = new Float32Array(bytes / 4);
  let state = 12345;
  for (let i = 0; i < values.length; i++) {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    values[i] = (state / 2 ** 32 - 0.5) * 0.1;
  }
  const fd = fs.openSync(file, 'w');
  fs.writeSync(fd, length);
  fs.writeSync(fd, header);
  for (let i = 0; i < count; i++) fs.writeSync(fd, new Uint8Array(values.buffer));
  fs.closeSync(fd);
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ckpt-bench-'));
const mib = (n) => (n / 1048576).toFixed(0);
try {
  const big = path.join(dir, 'big.safetensors');
  writeSafetensors(big, Math.ceil(totalMiB / 64), TENSOR);
  const size = fs.statSync(big).size;
  const readOnce = measure(`
    import * as fs from 'node:fs';
    const buf = Buffer.allocUnsafe(16 << 20);
    const fd = fs.openSync(process.argv[1], 'r'); while (fs.readSync(fd, buf, 0, buf.length, null) > 0); fs.closeSync(fd);`, [big]);
  const stats = measure(`
    import { main } from './dist/src/cli/main.js';
    process.exitCode = await main(['inspect', '--stats', '--json', process.argv[1]]);`, [big]);
  if (stats.status !== 0) throw new Error(`inspect exited ${stats.status}: ${stats.stderr}`);
  const rate = (ms) => `${(size / 1048576 / (ms / 1000)).toFixed(0)} MiB/s`;
  console.log(`safetensors, ${mib(size)} MiB (${Math.ceil(totalMiB / 64)} float32 tensors of 64 MiB)`);
  const line = (what, m) => `${what} ${m.ms.toFixed(0)} ms wall (${rate(m.ms)}), ${m.cpuMs.toFixed(0)} ms CPU (${rate(m.cpuMs)}), peak RSS ${mib(m.rss)} MiB`;
  console.log(line('read the file once:  ', readOnce));
  console.log(line('ckpt inspect --stats:', stats));
  console.log(`throughput ratio (stats / plain read): ${(readOnce.ms / stats.ms).toFixed(2)} wall, ${(readOnce.cpuMs / stats.cpuMs).toFixed(2)} CPU`);

  // The report of 10,000 tensors: written by inspect --stats --html, opened in Chromium.
  const many = path.join(dir, 'many.safetensors');
  writeSafetensors(many, 10_000, 4096, (i) => `blocks.${Math.floor(i / 100)}.layer.${Math.floor(i / 10) % 10}.w${i % 10}`);
  const html = path.join(dir, 'many.html');
  const made = measure(`
    import { main } from './dist/src/cli/main.js';
    process.exitCode = await main(['inspect', '--stats', '--json', '--html', process.argv[1], process.argv[2]]);`, [html, many]);
  if (made.status !== 0) throw new Error(`inspect --html exited ${made.status}: ${made.stderr}`);
  console.log(`\n10,000 tensors: inspect --stats --json --html ${made.ms.toFixed(0)} ms, report ${mib(fs.statSync(html).size)} MiB`);
  let Browser;
  try {
    ({ Browser } = await import('../dist/test/browser.js'));
  } catch {
    Browser = undefined;
  }
  const browser = Browser && await Browser.launch();
  if (!browser) {
    console.log('report load: chromium is not installed or cannot start; skipped');
  } else {
    try {
      const page = await browser.page();
      const start = performance.now();
      await page.open(`file://${html}`);
      const loaded = performance.now() - start;
      const script = await page.evaluate('Number(document.documentElement.dataset.loadMs)');
      const timed = (action) => page.evaluate(`(() => { const t = performance.now(); ${action}; return performance.now() - t; })()`);
      const filter = await timed("const f = document.getElementById('filter'); f.value = 'blocks.5'; f.dispatchEvent(new Event('input'))");
      const sort = await timed("document.querySelector('th[data-key=mean] button').click()");
      console.log(`report load in Chromium: ${loaded.toFixed(0)} ms to the load event (its script ${script} ms: parse, treemap, first page)`);
      console.log(`filter as one types: ${filter.toFixed(1)} ms; sort by mean: ${sort.toFixed(1)} ms; console messages: ${page.messages.length}`);
    } finally {
      browser.close();
    }
  }
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
