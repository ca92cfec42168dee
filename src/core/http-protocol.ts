/** What the main thread and the HTTP worker say to each other through shared memory. */
export interface HttpRequest {
  op: 'range' | 'get' | 'download' | 'inflate' | 'sizes';
  /** sizes: the files to size. */
  urls?: string[];
  url: string;
  /** `Bearer …`, sent only to `authOrigin`, never after a redirect to another host. */
  authorization?: string;
  authOrigin?: string;
  start: number;
  length: number;
  /** What the first answer said: later answers must agree, or the file changed mid-read. */
  expect?: { size?: number; etag?: string; lastModified?: string };
  timeoutMs: number;
  retries: number;
  backoffMs: number;
  parallel: number;
  /** download: the file to write, and whether to show progress (a terminal). */
  file?: string;
  progress?: boolean;
  label?: string;
  /** inflate: the compressed bytes [start, start + length) of `url` (a local file) to `file`, at most `maxOutput` bytes. */
  format?: 'gzip' | 'raw';
  maxOutput?: number;
  control: SharedArrayBuffer;
  data: SharedArrayBuffer;
}

export interface HttpResult {
  ok: boolean;
  received?: number;
  size?: number;
  etag?: string;
  lastModified?: string;
  finalUrl?: string;
  error?: string;
  status?: number | undefined;
  kind?: 'no-range' | 'denied' | 'not-found' | 'changed' | 'bad-range' | undefined;
  requests?: number;
  sizes?: number[];
  bytes?: number;
}

/** Int32 state (0 waiting, 1 answered), Int32 length of the JSON answer that follows. */
export const CONTROL_HEADER = 8;
export const CONTROL_BYTES = 64 * 1024;

export function writeResult(control: SharedArrayBuffer, result: HttpResult): void {
  const json = new TextEncoder().encode(JSON.stringify(result));
  const state = new Int32Array(control, 0, 2);
  new Uint8Array(control, CONTROL_HEADER).set(json.subarray(0, CONTROL_BYTES - CONTROL_HEADER));
  state[1] = Math.min(json.length, CONTROL_BYTES - CONTROL_HEADER);
  Atomics.store(state, 0, 1);
  Atomics.notify(state, 0);
}

export function readResult(control: SharedArrayBuffer): HttpResult {
  const state = new Int32Array(control, 0, 2);
  const bytes = new Uint8Array(control, CONTROL_HEADER, state[1]).slice();
  return JSON.parse(new TextDecoder().decode(bytes)) as HttpResult;
}
