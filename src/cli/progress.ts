import type { StateDict } from '../core/statedict.js';
import { formatBytes, formatInt } from './format.js';

export interface Progress {
  /** `amount` items or bytes more are done (one by default). */
  tick(amount?: number): void;
  /** Clears the bar. */
  done(): void;
}

/** What a bar is drawn on: stderr, or a stand-in in tests. */
export interface ProgressStream {
  readonly isTTY?: boolean;
  write(text: string): unknown;
}

const BAR_WIDTH = 24;
/** Redraws at most this often: a bar must not cost the read it reports. */
const REDRAW_MS = 100;

/**
 * A progress bar on stderr for long reads (hashing, statistics, value diffs, conversions), drawn
 * only when stderr is a terminal: nothing when piped, logged or in CI, so outputs stay clean.
 */
export function progress(label: string, total: number, unit: 'items' | 'bytes' = 'items', stream: ProgressStream = process.stderr): Progress {
  const shown = stream.isTTY === true && total > 0;
  let count = 0;
  let last = 0;
  const amount = (n: number) => (unit === 'bytes' ? formatBytes(n) : formatInt(n));
  return {
    tick(step = 1) {
      count += step;
      const now = Date.now();
      if (!shown || (now - last < REDRAW_MS && count < total)) return;
      last = now;
      const fraction = Math.min(1, count / total);
      const filled = Math.round(fraction * BAR_WIDTH);
      stream.write(`\r${label} ${'█'.repeat(filled)}${'░'.repeat(BAR_WIDTH - filled)} ${Math.floor(fraction * 100)}% ${amount(count)}/${amount(total)}\x1b[K`);
    },
    done() {
      if (shown) stream.write('\r\x1b[K');
    },
  };
}

/**
 * A bar fed by an API call's `onProgress(done, total)` (bytes so far, of a total known only once
 * the call starts): drawn from the first report; `done()` clears it, whether or not any came.
 */
export function reportedProgress(label: string, unit: 'items' | 'bytes' = 'bytes'): { onProgress(done: number, total: number): void; done(): void } {
  let bar: Progress | undefined;
  let seen = 0;
  return {
    onProgress(done, total) {
      (bar ??= progress(label, total, unit)).tick(done - seen);
      seen = done;
    },
    done: () => bar?.done(),
  };
}

/**
 * A bar for work that reads a checkpoint through code that reports no progress of its own (a
 * writer converting it): the reader's byte count, polled. Nothing runs when stderr is not a terminal.
 */
export function readProgress(label: string, dict: Pick<StateDict, 'tensors' | 'bytesRead'>, stream: ProgressStream = process.stderr): Progress {
  const read = dict.bytesRead;
  if (stream.isTTY !== true || !read) return { tick() {}, done() {} };
  const bar = progress(label, dict.tensors.reduce((n, t) => n + t.byteLength, 0), 'bytes', stream);
  const start = read.call(dict);
  let seen = start;
  const timer = setInterval(() => {
    const now = read.call(dict);
    bar.tick(now - seen);
    seen = now;
  }, REDRAW_MS);
  timer.unref();
  return {
    tick() {},
    done() {
      clearInterval(timer);
      bar.done();
    },
  };
}
