import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

/**
 * Modules that only some files or locations need, loaded synchronously (detection and readers are
 * synchronous) the first time one is seen, so that start-up and other inputs never pay for them.
 */
const load = createRequire(import.meta.url);

/** The module at `url` (`new URL('./x.js', import.meta.url)`), loaded on the first call. */
export function onDemand<M>(url: URL): () => M {
  let loaded: M | undefined;
  return () => (loaded ??= load(fileURLToPath(url)) as M);
}

/** HTTP(S) and Hugging Face locations: a worker thread for the requests, a range cache. */
export const remote = onDemand<typeof import('./http-source.js')>(new URL('./http-source.js', import.meta.url));

/** `ARCHIVE!member` locations: tar and zip listings, inflating members. */
export const archives = onDemand<typeof import('./archive.js')>(new URL('./archive.js', import.meta.url));

/** Node built-ins that only rarely taken paths use: ZIP checksums and inflating, hashing remote locations. */
export const zlib = (): typeof import('node:zlib') => load('node:zlib');
export const crypto = (): typeof import('node:crypto') => load('node:crypto');
