import * as fs from 'node:fs';
import { ioError } from './errors.js';

/**
 * The settings of remote reads and what they fetched, apart from the HTTP machinery
 * (http-source.ts, a worker thread and a range cache), which loads with the first remote location.
 */
export interface RemoteOptions {
  /** Fetch a whole file to a temporary file when its server ignores ranges. */
  download?: boolean;
  /** A file holding the Hugging Face token (else HF_TOKEN). */
  tokenFile?: string;
  /** The Hugging Face endpoint (else HF_ENDPOINT, else https://huggingface.co). */
  endpoint?: string;
  cache?: boolean;
  timeoutMs?: number;
}

let options: RemoteOptions = {};

/** The settings of this run (the CLI's global options). */
export function remoteOptions(): Readonly<RemoteOptions> {
  return options;
}

export function configureRemote(next: RemoteOptions): void {
  options = { ...next };
  token = undefined;
}

export function envNumber(name: string, fallback: number): number {
  const value = Number(process.env[name]);
  return Number.isFinite(value) && value >= 0 ? value : fallback;
}

export function hubEndpoint(): string {
  return (options.endpoint ?? process.env.HF_ENDPOINT ?? 'https://huggingface.co').replace(/\/+$/, '');
}

let token: string | undefined;
export function hubToken(): string | undefined {
  if (token === undefined) {
    if (options.tokenFile) {
      try {
        token = fs.readFileSync(options.tokenFile, 'utf8').trim();
      } catch (err) {
        throw ioError(options.tokenFile, undefined, `cannot read the token file (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
      }
    } else {
      token = process.env.HF_TOKEN?.trim() ?? '';
    }
  }
  return token || undefined;
}

/** What every remote command reports: requests made, bytes fetched, of how much. */
export const transfer = { requests: 0, bytes: 0, cachedBytes: 0, objects: new Map<string, number>() };

/** What `--json` output carries as `transfer`: requests made, bytes fetched and taken from the cache, of the remote files' total size. */
export interface TransferFigures { requests: number; bytesFetched: number; bytesFromCache: number; remoteBytes: number }

/** The figures so far, or undefined when nothing remote was read. */
export function transferFigures(): TransferFigures | undefined {
  if (transfer.objects.size === 0) return undefined;
  const remoteBytes = [...transfer.objects.values()].reduce((a, b) => a + b, 0);
  return { requests: transfer.requests, bytesFetched: transfer.bytes, bytesFromCache: transfer.cachedBytes, remoteBytes };
}

let summaryShown = false;
/** `read 34 KiB of 13.5 GiB in 3 requests`, once (the first caller shows it), or undefined when nothing remote was read. */
export function transferSummary(): string | undefined {
  const figures = transferFigures();
  if (!figures || summaryShown) return undefined;
  summaryShown = true;
  const cached = figures.bytesFromCache ? ` (+${humanBytes(figures.bytesFromCache)} from the cache)` : '';
  return `read ${humanBytes(figures.bytesFetched)} of ${humanBytes(figures.remoteBytes)} in ${figures.requests} request${figures.requests === 1 ? '' : 's'}${cached}`;
}

function humanBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${i === 0 ? n : n.toFixed(n < 10 ? 1 : 0)} ${units[i]}`;
}

export function downloadWanted(): boolean {
  return options.download === true;
}
