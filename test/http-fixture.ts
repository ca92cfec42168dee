/**
 * HTTP servers on 127.0.0.1 for the remote-reading tests and benchmarks. Each runs in a worker
 * thread: ckpt blocks its thread while it waits for an answer, and tests run the CLI with
 * spawnSync, so a server on the test's own thread could never answer.
 */
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';

export interface ServerConfig {
  /** The folder served at /. */
  root: string;
  /** 'ranges' (default), 'none' (no Accept-Ranges; answers 416 to ranges), 'ignore' (sends the whole file with 200). */
  ranges?: 'ranges' | 'none' | 'ignore';
  /** Delay before each answer. */
  latencyMs?: number;
  /** Paths (a regular expression) answered with these statuses. */
  statuses?: Record<string, number>;
  /** Paths whose range answers stop half way (a cut connection). */
  truncate?: string;
  /** Paths whose range answers name another range in Content-Range. */
  wrongRange?: string;
  /** After this many answers the ETag changes (the file was replaced). */
  etagChangesAfter?: number;
  /** Paths answered this long after the request (to test timeouts). */
  slow?: { path: string; ms: number };
  /** Every request but the API's answered with a redirect to the same path under this base URL (a CDN). */
  redirectTo?: string;
  /** The Hugging Face API: /api/models/{repo}/tree/{rev} lists files under root/{repo}; /{repo}/resolve/{rev}/{file} serves them. */
  hub?: boolean;
}

export interface LoggedRequest {
  method: string;
  url: string;
  range?: string;
  authorization?: string;
  /** Body bytes the server got to write before the client stopped reading. */
  sent?: number;
  /** The client's port: requests on one kept-alive connection share it. */
  clientPort?: number;
}

export interface TestServer {
  url: string;
  requests(): Promise<LoggedRequest[]>;
  stop(): Promise<void>;
}

export async function startServer(config: ServerConfig): Promise<TestServer> {
  const worker = new Worker(fileURLToPath(import.meta.url), { workerData: config });
  const port = await new Promise<number>((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
  });
  return {
    url: `http://127.0.0.1:${port}`,
    requests: () => new Promise((resolve) => {
      worker.once('message', resolve);
      worker.postMessage('log');
    }),
    stop: async () => {
      await worker.terminate();
    },
  };
}

function serve(config: ServerConfig): void {
  const log: LoggedRequest[] = [];
  let answered = 0;
  const matches = (pattern: string | undefined, url: string) => pattern !== undefined && new RegExp(pattern).test(url);
  const server = http.createServer((req, res) => {
    const url = req.url ?? '/';
    const entry: LoggedRequest = { method: req.method ?? '', url, clientPort: req.socket.remotePort ?? 0, ...(req.headers.range ? { range: req.headers.range } : {}), ...(req.headers.authorization ? { authorization: req.headers.authorization } : {}) };
    log.push(entry);
    const write = res.write.bind(res);
    res.write = ((chunk: Buffer, ...rest: never[]) => {
      entry.sent = (entry.sent ?? 0) + chunk.length;
      return write(chunk, ...rest);
    }) as typeof res.write;
    const delay = (config.latencyMs ?? 0) + (config.slow && matches(config.slow.path, url) ? config.slow.ms : 0);
    setTimeout(() => answer(req, res, url), delay);
  });
  const answer = (req: http.IncomingMessage, res: http.ServerResponse, url: string) => {
    const etag = `"v${config.etagChangesAfter !== undefined && answered >= config.etagChangesAfter ? 2 : 1}"`;
    answered++;
    for (const [pattern, status] of Object.entries(config.statuses ?? {})) {
      if (new RegExp(pattern).test(url)) return void res.writeHead(status).end(`status ${status}`);
    }
    if (config.redirectTo && !url.startsWith('/api/')) return void res.writeHead(302, { location: `${config.redirectTo}${url}` }).end();
    let relative = decodeURIComponent(url.split('?')[0]!);
    if (config.hub) {
      const tree = /^\/api\/models\/([^/]+\/[^/]+)\/tree\/[^/]+\/?(.*)$/.exec(relative);
      if (tree) {
        const folder = path.join(config.root, tree[1]!, tree[2] ?? '');
        if (!fs.existsSync(folder)) return void res.writeHead(404).end('no such repo');
        const files = (fs.readdirSync(folder, { recursive: true }) as string[]).filter((f) => fs.statSync(path.join(folder, f)).isFile());
        const body = JSON.stringify(files.map((f) => ({ type: 'file', path: path.posix.join(tree[2] ?? '', f), size: fs.statSync(path.join(folder, f)).size })));
        return void res.writeHead(200, { 'content-type': 'application/json' }).end(body);
      }
      const resolve = /^\/([^/]+\/[^/]+)\/resolve\/[^/]+\/(.*)$/.exec(relative);
      if (resolve) relative = `/${resolve[1]}/${resolve[2]}`;
    }
    const file = path.join(config.root, path.normalize(relative));
    if (!file.startsWith(config.root) || !fs.existsSync(file) || !fs.statSync(file).isFile()) return void res.writeHead(404).end('not found');
    const size = fs.statSync(file).size;
    const headers = { etag, 'last-modified': 'Mon, 01 Jan 2024 00:00:00 GMT' };
    const range = /^bytes=(\d+)-(\d+)?$/.exec(req.headers.range ?? '');
    const mode = config.ranges ?? 'ranges';
    if (!range || mode === 'ignore') {
      res.writeHead(200, { ...headers, 'content-length': size });
      return void fs.createReadStream(file).pipe(res).on('error', () => res.destroy());
    }
    if (mode === 'none') return void res.writeHead(200, { ...headers, 'content-length': 0 }).end();
    const start = Number(range[1]);
    const end = Math.min(range[2] === undefined ? size - 1 : Number(range[2]), size - 1);
    if (start >= size) return void res.writeHead(416, { ...headers, 'content-range': `bytes */${size}` }).end();
    const shown = matches(config.wrongRange, url) ? `bytes ${start + 1}-${end + 1}/${size}` : `bytes ${start}-${end}/${size}`;
    res.writeHead(206, { ...headers, 'content-range': shown, 'content-length': end - start + 1, 'accept-ranges': 'bytes' });
    if (matches(config.truncate, url)) {
      const half = Math.max(0, Math.floor((end - start + 1) / 2) - 1);
      res.write(fs.readFileSync(file).subarray(start, start + half));
      return void setTimeout(() => res.destroy(), 10);
    }
    fs.createReadStream(file, { start, end }).pipe(res).on('error', () => res.destroy());
  };
  server.keepAliveTimeout = 30_000;
  server.listen(0, '127.0.0.1', () => parentPort!.postMessage((server.address() as { port: number }).port));
  parentPort!.on('message', () => parentPort!.postMessage(log));
}

if (!isMainThread && (workerData as ServerConfig | undefined)?.root) serve(workerData as ServerConfig);

/** A ustar archive of `files` (name → bytes), written without a tar program. */
export function tar(files: Record<string, Buffer>): Buffer {
  const blocks: Buffer[] = [];
  for (const [name, bytes] of Object.entries(files)) {
    const header = Buffer.alloc(512);
    header.write(name, 0, 100);
    header.write('0000644\0', 100);
    header.write(`${bytes.length.toString(8).padStart(11, '0')}\0`, 124);
    header.write('00000000000\0', 136);
    header.write('0', 156);
    header.write('ustar\x0000', 257);
    header.fill(' ', 148, 156);
    let sum = 0;
    for (const b of header) sum += b;
    header.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
    blocks.push(header, bytes, Buffer.alloc((512 - (bytes.length % 512)) % 512));
  }
  blocks.push(Buffer.alloc(1024));
  return Buffer.concat(blocks);
}
