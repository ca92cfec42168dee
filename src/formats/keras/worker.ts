import './quiet-console.js';
import { parentPort } from 'node:worker_threads';
import { CkptError, type ErrorCode } from '../../core/errors.js';
import type { OpenOptions } from '../../core/statedict.js';
import { closeHdf5, datasetInfo, getObject, h5wasmTree, isDataset, openHdf5, readDataset, type DatasetInfo, type H5 } from './hdf5.js';
import { listWeights, type Found } from './listing.js';
import { invalidInput } from '../../core/errors.js';

/**
 * The HDF5 library (h5wasm) runs here, in a worker thread: a corrupt file can send it into an
 * endless loop that nothing inside the thread can stop, so the reader keeps a deadline on every
 * request and terminates the worker when it passes.
 */
export type Request =
  | { id: number; kind: 'open'; path: string; label: string; options: OpenOptions; config: unknown }
  | { id: number; kind: 'read'; path: string; info: DatasetInfo };

export type Reply =
  | { id: number; ok: true; listing?: { found: Found[]; infos: DatasetInfo[]; metadata: Record<string, unknown> }; bytes?: Uint8Array }
  | { id: number; ok: false; error: { exitCode: number; code?: ErrorCode; file?: string; where?: string; detail: string } };

let h5: H5 | undefined;

async function handle(request: Request): Promise<Reply> {
  if (request.kind === 'open') {
    h5 = await openHdf5(request.path, request.label);
    const listing = listWeights(h5wasmTree(h5), request.options, request.config);
    const infos = listing.found.map((f) => {
      const dataset = getObject(h5!, f.datasetPath);
      if (!isDataset(dataset)) throw invalidInput(request.label, `/${f.datasetPath}`, 'weight names a dataset that is not in the file');
      return datasetInfo(h5!, dataset);
    });
    const { found, ...metadata } = listing;
    return { id: request.id, ok: true, listing: { found, infos, metadata } };
  }
  if (!h5) throw new Error('no file open');
  return { id: request.id, ok: true, bytes: await readDataset(h5, request.path, request.info) };
}

parentPort!.on('message', (request: Request) => {
  handle(request).then(
    (reply) => parentPort!.postMessage(reply, reply.ok && reply.bytes ? [reply.bytes.buffer as ArrayBuffer] : []),
    (err: unknown) => {
      const e = err instanceof CkptError ? err : undefined;
      parentPort!.postMessage({
        id: request.id, ok: false,
        error: e ? { exitCode: e.exitCode, code: e.code, file: e.file, where: e.where, detail: e.detail } : { exitCode: 5, detail: String((err as Error)?.stack ?? err) },
      } satisfies Reply);
    },
  );
});

process.on('exit', () => {
  if (h5) closeHdf5(h5);
});
