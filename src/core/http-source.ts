import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Worker } from 'node:worker_threads';
import { startWorker } from './worker.js';
import { CkptError, invalidInput, ioError } from './errors.js';
import { CONTROL_BYTES, readResult, type HttpRequest, type HttpResult } from './http-protocol.js';
import { ByteSource } from './source.js';
import { RangeCache } from './range-cache.js';
import { envNumber, hubEndpoint, hubToken, remoteOptions, transfer } from './remote-settings.js';

/**
 * Remote files read by HTTP range requests, synchronously: readers are synchronous, so the
 * requests run in a worker thread and the reader blocks on shared memory until they are answered.
 */
let worker: Worker | undefined;
function httpWorker(): Worker {
  if (!worker) {
    worker = startWorker(new URL('./http-worker.js', import.meta.url));
    // The worker never keeps the process alive; requests are waited for by the caller.
    worker.unref();
  }
  return worker;
}

/** One request to the worker, waited for; errors become CkptErrors naming the URL. */
function call(request: Omit<HttpRequest, 'control' | 'data' | 'timeoutMs' | 'retries' | 'backoffMs' | 'parallel'>, data: SharedArrayBuffer, label: string, remote = true): HttpResult {
  const control = new SharedArrayBuffer(CONTROL_BYTES);
  const timeoutMs = remoteOptions().timeoutMs ?? envNumber('CKPT_HTTP_TIMEOUT_MS', 30_000);
  const full: HttpRequest = {
    ...request,
    ...(remote ? authFor(request.url) : {}),
    timeoutMs,
    retries: envNumber('CKPT_HTTP_RETRIES', 3),
    backoffMs: envNumber('CKPT_HTTP_BACKOFF_MS', 250),
    parallel: 4,
    control,
    data,
  };
  httpWorker().postMessage(full);
  Atomics.wait(new Int32Array(control, 0, 2), 0, 0);
  const result = readResult(control);
  transfer.requests += result.requests ?? 0;
  transfer.bytes += result.bytes ?? 0;
  if (!result.ok) throw remote ? remoteError(label, result) : invalidInput(label, undefined, result.error ?? 'failed');
  return result;
}

function authFor(url: string): { authorization?: string; authOrigin?: string } {
  const endpoint = new URL(hubEndpoint()).origin;
  const secret = new URL(url).origin === endpoint ? hubToken() : undefined;
  return secret ? { authorization: `Bearer ${secret}`, authOrigin: endpoint } : {};
}

function remoteError(label: string, result: HttpResult): CkptError {
  const code = result.kind === 'denied' ? 'permission-denied' : result.kind === 'not-found' ? 'not-found' : 'io';
  return ioError(label, undefined, result.error ?? 'request failed', code);
}

/** URLs shown in messages without their query (signed CDN parameters). */
export function displayUrl(url: string): string {
  const u = new URL(url);
  return `${u.origin}${u.pathname}`;
}

const FIRST_FETCH = 64 * 1024;
/** What the first answer for a URL said: opening it again (a shard per read, external data) costs no request. */
const opened = new Map<string, { size: number; validator: { etag?: string; lastModified?: string }; finalUrl: string; head: Uint8Array }>();

export class HttpSource extends ByteSource {
  private url: string;
  private readonly cache: RangeCache | undefined;

  private constructor(original: string, size: number, private readonly validator: { etag?: string; lastModified?: string }, finalUrl: string) {
    // Small first blocks: a walk that jumps over payloads (ONNX initializers) fetches little at each stop.
    super(original, size, 2 * 1024, 4 << 20);
    this.url = finalUrl;
    this.cache = remoteOptions().cache === false || validator.etag === undefined ? undefined : RangeCache.open(original, validator.etag);
  }

  /**
   * Opens a URL with one range request for its first bytes, which tell its size and version
   * (ETag) and are kept as the first block. A server that ignores ranges is refused, unless
   * `--download` asks for the whole file in a temporary file.
   */
  static open(url: string): HttpSource {
    let known = opened.get(url);
    if (!known) {
      const data = new SharedArrayBuffer(FIRST_FETCH);
      const result = call({ op: 'range', url, start: 0, length: FIRST_FETCH }, data, displayUrl(url));
      known = {
        size: result.size ?? 0,
        validator: { ...(result.etag ? { etag: result.etag } : {}), ...(result.lastModified ? { lastModified: result.lastModified } : {}) },
        finalUrl: result.finalUrl ?? url,
        head: new Uint8Array(data, 0, result.received ?? 0).slice(),
      };
      opened.set(url, known);
      transfer.objects.set(url, known.size);
    }
    const source = new HttpSource(url, known.size, known.validator, known.finalUrl);
    source.keep(0, known.head);
    return source;
  }

  close(): void {}

  /** The version the server gave (ETag, else Last-Modified), with the size: what identifies this file's content. */
  get version(): string {
    return `${this.validator.etag ?? this.validator.lastModified ?? ''}\n${this.size}`;
  }

  protected fetch(out: Uint8Array, position: number): void {
    if (this.cache?.read(position, out)) {
      transfer.cachedBytes += out.length;
      return;
    }
    const data = new SharedArrayBuffer(out.length);
    const expect = { size: this.size, ...this.validator };
    const result = call({ op: 'range', url: this.url, start: position, length: out.length, expect }, data, displayUrl(this.path));
    if (result.finalUrl) this.url = result.finalUrl;
    out.set(new Uint8Array(data));
    this.bytesRead += out.length;
    this.cache?.write(position, out);
  }
}

/** A small whole answer (a JSON listing), as text. */
export function fetchText(url: string, maxBytes: number, label = displayUrl(url)): string {
  const data = new SharedArrayBuffer(maxBytes);
  const result = call({ op: 'get', url, start: 0, length: 0 }, data, label);
  return new TextDecoder().decode(new Uint8Array(data, 0, result.received ?? 0).slice());
}

/** The size of a remote file, from a one-byte range request. */
export function remoteSize(url: string): number {
  const known = remoteKnownSize(url);
  if (known !== undefined) return known;
  const result = call({ op: 'range', url, start: 0, length: 1 }, new SharedArrayBuffer(1), displayUrl(url));
  transfer.objects.set(url, result.size ?? 0);
  return result.size ?? 0;
}

/** Sizes of many remote files, asked in parallel (a TF.js model's shards); each answer names the file that failed. */
export function remoteSizes(urls: string[]): number[] {
  const unknown = urls.filter((url) => remoteKnownSize(url) === undefined);
  if (unknown.length > 1) {
    const result = call({ op: 'sizes', url: unknown[0]!, urls: unknown, start: 0, length: 0 }, new SharedArrayBuffer(0), `${displayUrl(unknown[0]!)} (and ${unknown.length - 1} more)`);
    unknown.forEach((url, i) => transfer.objects.set(url, result.sizes![i]!));
  }
  return urls.map((url) => remoteSize(url));
}

function remoteKnownSize(url: string): number | undefined {
  return opened.get(url)?.size ?? transfer.objects.get(url);
}

let tempFolder: string | undefined;
/** A folder for downloads and inflated archive members, removed when the process exits. */
export function temporaryFolder(): string {
  if (!tempFolder) {
    tempFolder = fs.mkdtempSync(path.join(os.tmpdir(), 'ckpt-'));
    const folder = tempFolder;
    process.once('exit', () => fs.rmSync(folder, { recursive: true, force: true }));
  }
  return tempFolder;
}

/**
 * The whole remote file in a local temporary file, streamed (never held in memory), with progress
 * on a terminal; for the ONNX runtime and HDF5, which read local files, and servers without ranges.
 */
export function downloadToTemporary(url: string, label = displayUrl(url)): string {
  const name = path.basename(new URL(url).pathname) || 'download';
  const file = path.join(fs.mkdtempSync(path.join(temporaryFolder(), 'dl-')), name);
  const progress = process.stderr.isTTY === true;
  if (progress) process.stderr.write(`ckpt: ${label}: downloading to a temporary file (${file})\n`);
  const result = call({ op: 'download', url, start: 0, length: 0, file, progress, label }, new SharedArrayBuffer(0), label);
  transfer.objects.set(url, result.size ?? 0);
  return file;
}


/** Inflates compressed bytes of a local file into `out` (in the worker, streamed); an error names `label`. */
export function inflateToFile(file: string, start: number, length: number, format: 'gzip' | 'raw', out: string, label: string, maxOutput?: number): void {
  call({ op: 'inflate', url: file, start, length, format, file: out, ...(maxOutput !== undefined ? { maxOutput } : {}) }, new SharedArrayBuffer(0), label, false);
}

/** A server's refusal of range requests, which `--download` works around. */
export function isNoRangeError(err: unknown): boolean {
  return err instanceof CkptError && err.detail.includes('does not support range requests');
}
