import { createRequire } from 'node:module';

/**
 * Modules that only some locations need, loaded synchronously (readers are synchronous) the first
 * time such a location is seen, so that local files never pay for them.
 */
const load = createRequire(import.meta.url);

/** HTTP(S) and Hugging Face locations: a worker thread for the requests, a range cache. */
export const remote = (): typeof import('./http-source.js') => load('./http-source.js');

/** `ARCHIVE!member` locations: tar and zip listings, inflating members. */
export const archives = (): typeof import('./archive.js') => load('./archive.js');

/** A Node built-in that only a rarely taken path uses. */
export const builtin = <Name extends 'node:crypto' | 'node:zlib'>(name: Name): Name extends 'node:crypto' ? typeof import('node:crypto') : typeof import('node:zlib') => load(name);
