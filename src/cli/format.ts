import Table from 'cli-table3';

/** Small helpers for the human-readable output. */
export function formatInt(n: number): string {
  return n.toLocaleString('en-US');
}

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${n} B` : `${value.toFixed(value >= 100 ? 0 : 1)} ${units[unit]}`;
}

export function formatShape(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}

/** Progress on stderr, only when a person is watching (a TTY); silent in CI and pipes. */
export function progress(label: string, total: number): { tick(): void; done(): void } {
  const tty = process.stderr.isTTY === true && total > 0;
  let count = 0;
  let last = 0;
  return {
    tick() {
      count++;
      const now = Date.now();
      if (tty && (now - last > 100 || count === total)) {
        last = now;
        process.stderr.write(`\r${label} ${count}/${total}`);
      }
    },
    done() {
      if (tty) process.stderr.write('\r\x1b[K');
    },
  };
}

/** The one table style of the CLI: compact, no colours (output is often piped or logged). */
export function newTable(head: string[]): Table.Table {
  return new Table({
    head,
    style: { head: [], border: [] },
    chars: { mid: '', 'left-mid': '', 'mid-mid': '', 'right-mid': '' },
  });
}
