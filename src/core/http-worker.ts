/**
 * The network side of HttpSource: runs in a worker thread so that readers, which are synchronous,
 * can block on a SharedArrayBuffer (Atomics.wait) while this thread fetches ranges with keep-alive
 * connections, follows redirects, retries, and checks that the object does not change.
 */
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { parentPort } from 'node:worker_threads';
import * as zlib from 'node:zlib';
import type { HttpRequest, HttpResult } from './http-protocol.js';
import { writeResult } from './http-protocol.js';

const MAX_REDIRECTS = 10;
/** A large read is fetched as parts of this size, several at once. */
const PART = 8 << 20;

const agents = new Map<string, http.Agent>();
function agentFor(url: URL, parallel: number): http.Agent {
  const key = `${url.protocol}${parallel}`;
  let agent = agents.get(key);
  if (!agent) {
    const options = { keepAlive: true, maxSockets: parallel };
    agent = url.protocol === 'https:' ? new https.Agent(options) : new http.Agent(options);
    agents.set(key, agent);
  }
  return agent;
}

/** A failure that the next try may not have (a reset, a 5xx, a cut body, a timeout). */
class Transient extends Error {}
/** A failure that stops the read, with the HTTP status when there is one. */
class Final extends Error {
  constructor(message: string, readonly status?: number, readonly kind?: HttpResult['kind']) {
    super(message);
  }
}

interface Counters { requests: number; bytes: number }

interface Validator { size?: number; etag?: string; lastModified?: string }

/** One GET, redirects followed; credentials go only to the origin they were given for. */
async function get(req: HttpRequest, url: string, headers: Record<string, string>, counters: Counters): Promise<{ res: http.IncomingMessage; url: string }> {
  let current = new URL(url);
  for (let hop = 0; hop <= MAX_REDIRECTS; hop++) {
    const sendAuth = req.authorization !== undefined && current.origin === req.authOrigin;
    const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
      const client = current.protocol === 'https:' ? https : http;
      counters.requests++;
      const r = client.get(current, {
        agent: agentFor(current, req.parallel),
        headers: { ...headers, ...(sendAuth ? { authorization: req.authorization! } : {}), 'user-agent': 'ckpt' },
      }, resolve);
      r.setTimeout(req.timeoutMs, () => r.destroy(new Transient(`no answer within ${req.timeoutMs} ms`)));
      r.on('error', (err) => reject(err instanceof Transient ? err : new Transient(err.message)));
    });
    const status = res.statusCode ?? 0;
    if (status >= 300 && status < 400 && res.headers.location) {
      res.resume();
      current = new URL(res.headers.location, current);
      if (current.protocol !== 'http:' && current.protocol !== 'https:') throw new Final(`redirected to ${current.protocol} URL, which ckpt does not follow`);
      continue;
    }
    return { res, url: current.href };
  }
  throw new Final(`more than ${MAX_REDIRECTS} redirects`);
}

function statusError(status: number, url: string): Error {
  if (status === 401 || status === 403) return new Final(`HTTP ${status}: access denied; a private or gated repository needs a token (HF_TOKEN or --token-file)`, status, 'denied');
  if (status === 404 || status === 410) return new Final(`HTTP ${status}: not found (check the URL, repository, revision and file name)`, status, 'not-found');
  if (status >= 500 || status === 429) return new Transient(`HTTP ${status} from ${new URL(url).host}`);
  return new Final(`HTTP ${status}`, status);
}

function checkUnchanged(res: http.IncomingMessage, expect: Validator): Validator {
  const etag = header(res, 'etag');
  const lastModified = header(res, 'last-modified');
  if ((expect.etag !== undefined && etag !== undefined && etag !== expect.etag)
    || (expect.etag === undefined && expect.lastModified !== undefined && lastModified !== undefined && lastModified !== expect.lastModified)) {
    throw new Final(`the file changed on the server while being read (ETag ${expect.etag ?? expect.lastModified} became ${etag ?? lastModified}); run again`, undefined, 'changed');
  }
  return { ...(etag !== undefined ? { etag } : {}), ...(lastModified !== undefined ? { lastModified } : {}) };
}

function header(res: http.IncomingMessage, name: string): string | undefined {
  const value = res.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** Reads a body into `out` at `at`, exactly `length` bytes; a shorter or longer body is an error. */
function readBody(res: http.IncomingMessage, out: Uint8Array, at: number, length: number, counters: Counters): Promise<void> {
  return new Promise((resolve, reject) => {
    let done = 0;
    res.on('data', (chunk: Buffer) => {
      if (done + chunk.length > length) {
        res.destroy();
        reject(new Final(`the server sent more than the ${length} bytes asked for`, undefined, 'bad-range'));
        return;
      }
      out.set(chunk, at + done);
      done += chunk.length;
      counters.bytes += chunk.length;
    });
    res.on('end', () => (done === length ? resolve() : reject(new Transient(`the body ended after ${done} of ${length} bytes`))));
    res.on('error', (err) => reject(err instanceof Transient || err instanceof Final ? err : new Transient(err.message)));
    res.on('aborted', () => reject(new Transient(`the connection closed after ${done} of ${length} bytes`)));
  });
}

/** `bytes a-b/total` → its numbers; `bytes * /total` (416) has only the total. */
function contentRange(value: string | undefined): { start?: number; end?: number; total?: number } | undefined {
  const m = /^bytes\s+(?:(\d+)-(\d+)|\*)\/(\d+|\*)$/.exec(value?.trim() ?? '');
  if (!m) return undefined;
  return {
    ...(m[1] !== undefined ? { start: Number(m[1]), end: Number(m[2]) } : {}),
    ...(m[3] !== '*' ? { total: Number(m[3]) } : {}),
  };
}

/** Bytes [start, start + length) into `out` at `at`; on the first read (no size known) length may run past the end. */
async function fetchRange(req: HttpRequest, start: number, length: number, out: Uint8Array, at: number, expect: Validator, counters: Counters, state: { url: string; validator?: Validator }): Promise<number> {
  const { res, url } = await get(req, state.url, { range: `bytes=${start}-${start + length - 1}` }, counters);
  const status = res.statusCode ?? 0;
  if (status === 200) {
    // The whole object is coming: stop it here rather than read gigabytes to keep a few.
    res.destroy();
    throw new Final('the server does not support range requests (it answered 200 with the whole file); pass --download to fetch the whole file to a temporary file first', status, 'no-range');
  }
  if (status === 416) {
    res.resume();
    const range = contentRange(header(res, 'content-range'));
    if (start === 0 && range?.total === 0) {
      state.validator = { size: 0, ...checkUnchanged(res, expect) };
      return 0;
    }
    throw new Final(`HTTP 416: range ${start}-${start + length - 1} is past the end of the file`, status, 'bad-range');
  }
  if (status !== 206) {
    res.resume();
    throw statusError(status, url);
  }
  const validator = checkUnchanged(res, expect);
  const range = contentRange(header(res, 'content-range'));
  const total = range?.total ?? expect.size;
  const wantedEnd = Math.min(start + length, total ?? start + length) - 1;
  if (!range || range.start !== start || range.end !== wantedEnd || total === undefined || (expect.size !== undefined && total !== expect.size)) {
    res.destroy();
    throw new Final(`the server answered Content-Range '${header(res, 'content-range') ?? ''}' to a request for bytes ${start}-${wantedEnd}${expect.size !== undefined ? `/${expect.size}` : ''}`, status, 'bad-range');
  }
  const n = wantedEnd - start + 1;
  await readBody(res, out, at, n, counters);
  // Later requests go straight to where the redirects led (the Hub's CDN), while it answers.
  state.url = url;
  state.validator = { size: total, ...validator };
  return n;
}

async function withRetries<T>(req: HttpRequest, attempt: () => Promise<T>): Promise<T> {
  for (let tries = 0; ; tries++) {
    try {
      return await attempt();
    } catch (err) {
      if (!(err instanceof Transient) || tries >= req.retries) throw err;
      await new Promise((resolve) => setTimeout(resolve, req.backoffMs * 2 ** tries));
    }
  }
}

/** Runs `task(0 … count−1)`, at most `parallel` at once. */
async function inParallel(count: number, parallel: number, task: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const lane = async () => {
    while (next < count) await task(next++);
  };
  await Promise.all(Array.from({ length: Math.min(parallel, count) }, lane));
}

/** A GET that must answer 200 with the whole file. */
async function getWhole(req: HttpRequest, counters: Counters): Promise<http.IncomingMessage> {
  const { res, url } = await get(req, req.url, {}, counters);
  const status = res.statusCode ?? 0;
  if (status !== 200) {
    res.resume();
    throw statusError(status, url);
  }
  return res;
}

async function handleRange(req: HttpRequest, data: Uint8Array, counters: Counters): Promise<HttpResult> {
  const state: { url: string; validator?: Validator } = { url: req.url };
  const expect: Validator = req.expect ?? {};
  if (req.expect === undefined || req.length <= PART) {
    const n = await withRetries(req, () => fetchRange(req, req.start, req.length, data, 0, expect, counters, state));
    return { ok: true, received: n, ...state.validator, finalUrl: state.url };
  }
  // A large read: parts in parallel.
  await inParallel(Math.ceil(req.length / PART), req.parallel, async (i) => {
    const at = i * PART;
    await withRetries(req, () => fetchRange(req, req.start + at, Math.min(PART, req.length - at), data, at, expect, counters, state));
  });
  return { ok: true, received: req.length, ...state.validator, finalUrl: state.url };
}

/** The sizes of many files at once (TF.js shards), with one-byte range requests in parallel. */
async function handleSizes(req: HttpRequest, counters: Counters): Promise<HttpResult> {
  const sizes: number[] = new Array(req.urls!.length);
  const one = new Uint8Array(1);
  await inParallel(sizes.length, req.parallel, async (i) => {
    const state: { url: string; validator?: Validator } = { url: req.urls![i]! };
    await withRetries(req, () => fetchRange(req, 0, 1, one, 0, {}, counters, state));
    sizes[i] = state.validator!.size!;
  });
  return { ok: true, sizes };
}

/** A whole small body (a JSON listing), capped. */
async function handleGet(req: HttpRequest, data: Uint8Array, counters: Counters): Promise<HttpResult> {
  return withRetries(req, async () => {
    const res = await getWhole(req, counters);
    const declared = Number(header(res, 'content-length') ?? NaN);
    if (declared > data.length) {
      res.destroy();
      throw new Final(`the answer is ${declared} bytes, more than the ${data.length} ckpt reads`);
    }
    let done = 0;
    await new Promise<void>((resolve, reject) => {
      res.on('data', (chunk: Buffer) => {
        if (done + chunk.length > data.length) {
          res.destroy();
          reject(new Final(`the answer is more than the ${data.length} bytes ckpt reads`));
          return;
        }
        data.set(chunk, done);
        done += chunk.length;
        counters.bytes += chunk.length;
      });
      res.on('end', resolve);
      res.on('error', (err) => reject(new Transient(err.message)));
    });
    return { ok: true, received: done };
  });
}

/** The whole object streamed to a file (bounded memory), with progress on a terminal. */
async function handleDownload(req: HttpRequest, counters: Counters): Promise<HttpResult> {
  return withRetries(req, async () => {
    const res = await getWhole(req, counters);
    const validator = checkUnchanged(res, req.expect ?? {});
    const total = Number(header(res, 'content-length') ?? NaN);
    const fd = fs.openSync(req.file!, 'w', 0o600);
    let done = 0;
    let shown = 0;
    try {
      await new Promise<void>((resolve, reject) => {
        res.on('data', (chunk: Buffer) => {
          fs.writeSync(fd, chunk);
          done += chunk.length;
          counters.bytes += chunk.length;
          if (req.progress && done - shown >= 16 << 20) {
            shown = done;
            // Written straight to the terminal: the main thread is blocked while this runs.
            fs.writeSync(2, `\rckpt: downloading ${req.label ?? req.url}: ${(done / 2 ** 20).toFixed(0)} MiB${Number.isFinite(total) ? ` of ${(total / 2 ** 20).toFixed(0)} MiB` : ''}`);
          }
        });
        res.on('end', () => (Number.isFinite(total) && done !== total ? reject(new Transient(`the body ended after ${done} of ${total} bytes`)) : resolve()));
        res.on('error', (err) => reject(err instanceof Transient ? err : new Transient(err.message)));
        res.on('aborted', () => reject(new Transient(`the connection closed after ${done} bytes`)));
      });
    } finally {
      fs.closeSync(fd);
      if (req.progress && shown) fs.writeSync(2, '\n');
    }
    return { ok: true, received: done, size: done, ...validator };
  });
}

/** Compressed bytes of a local file inflated to another file, streamed; output capped (zip bombs stop there). */
async function handleInflate(req: HttpRequest): Promise<HttpResult> {
  let written = 0;
  const cap = req.maxOutput ?? Number.POSITIVE_INFINITY;
  const input = fs.createReadStream(req.url, { start: req.start, end: req.start + req.length - 1 });
  const inflate = req.format === 'gzip' ? zlib.createGunzip() : zlib.createInflateRaw();
  const limit = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      written += chunk.length;
      done(written > cap ? new Final(`inflates to more than its declared ${cap} bytes`) : null, chunk);
    },
  });
  try {
    await pipeline(input, inflate, limit, fs.createWriteStream(req.file!, { mode: 0o600 }));
  } catch (err) {
    throw new Final(err instanceof Final ? err.message : `cannot inflate: ${(err as Error).message}`);
  }
  if (req.maxOutput !== undefined && written !== req.maxOutput) throw new Final(`inflates to ${written} bytes, not the declared ${req.maxOutput}`);
  return { ok: true, received: written, size: written };
}

parentPort!.on('message', (req: HttpRequest) => {
  const control = req.control;
  const data = new Uint8Array(req.data);
  const counters: Counters = { requests: 0, bytes: 0 };
  const work = req.op === 'range' ? handleRange(req, data, counters)
    : req.op === 'get' ? handleGet(req, data, counters)
      : req.op === 'inflate' ? handleInflate(req)
        : req.op === 'sizes' ? handleSizes(req, counters)
        : handleDownload(req, counters);
  work.then(
    (result) => writeResult(control, { ...result, requests: counters.requests, bytes: counters.bytes }),
    (err: Error) => writeResult(control, {
      ok: false,
      error: err.message,
      ...(err instanceof Final ? { status: err.status, kind: err.kind } : {}),
      requests: counters.requests,
      bytes: counters.bytes,
    }),
  );
});
