import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { LocalFile, RandomAccessFile } from '../../core/file.js';
import { invalidInput } from '../../core/errors.js';
import { byteLengthOf, numelOf, type DType } from '../../core/dtype.js';
import { canonicalName, uniqueNames } from '../../core/names.js';
import type { OpenOptions, StateDict, StoredBytes, TensorInfo } from '../../core/statedict.js';
import { checkZipCrc, crc32Of, isSafeMemberName, isZip, readZipDirectory, readZipEntry, verifyStoredMember, zipDataOffset, type ZipEntry } from '../../core/zip.js';
import type { Detection, FormatReader } from '../types.js';
import { kerasFormat } from './match.js';
import { stillDetected } from '../probe.js';
import type { Worker } from 'node:worker_threads';
import { startWorker } from '../../core/worker.js';
import { CkptError, ExitCode, type ExitCodeValue } from '../../core/errors.js';
import type { DatasetInfo } from './hdf5.js';
import { hdf5Reason } from './messages.js';
import type { Reply, Request } from './worker.js';
import { localCopy } from '../../core/location.js';
import { roleFromName } from '../../core/roles.js';
import { attributeValue, Hdf5Dataset, Hdf5File, Hdf5Unsupported, type Hdf5Object } from '../hdf5/index.js';
import { listWeights, type Hdf5Tree, type Listing } from './listing.js';

/** .keras members beyond this are refused (Keras itself guards against zip bombs the same way). */
const MAX_MEMBER = 64 * 1024 * 1024 * 1024;

export const kerasReader: FormatReader = { ...kerasFormat, open: openKeras };

async function openKeras(file: string, options: OpenOptions, detection?: Detection): Promise<StateDict> {
  const raf = RandomAccessFile.open(file);
  let zipEntries: ZipEntry[] | undefined;
  let config: unknown;
  let kerasMeta: Record<string, unknown> = {};
  let weights: ZipEntry | undefined;
  try {
    if (isZip(raf.read(0, Math.min(4, raf.size), 'header'))) zipEntries = [...(stillDetected(detection, raf)?.zipDirectory ?? readZipDirectory(raf))];
    if (zipEntries) {
      for (const e of zipEntries) if (!isSafeMemberName(e.name)) throw invalidInput(file, `member '${e.name}'`, 'member name is absolute or contains ..');
      const member = (name: string) => zipEntries!.find((e) => e.name === name);
      weights = member('model.weights.h5');
      if (!weights) throw invalidInput(file, 'zip', 'a .keras file must hold model.weights.h5');
      config = parseJsonMember(raf, member('config.json'), file);
      kerasMeta = (parseJsonMember(raf, member('metadata.json'), file) as Record<string, unknown> | undefined) ?? {};
    }
  } catch (err) {
    raf.close();
    throw err;
  }
  try {
    return openNative(file, raf, weights, options, config, kerasMeta);
  } catch (err) {
    if (!(err instanceof Hdf5Unsupported)) throw err;
    // Valid HDF5 that ckpt's reader does not implement (szip, shared messages…): h5wasm reads it.
    return openWithH5wasm(file, weights, options, config, kerasMeta);
  }
}

/** The weights through ckpt's own HDF5 reader: positioned reads of the file (or of the stored .keras member), nothing copied. */
function openNative(file: string, raf: RandomAccessFile, member: ZipEntry | undefined, options: OpenOptions, config: unknown, kerasMeta: Record<string, unknown>): StateDict {
  let h5: Hdf5File | undefined;
  let temp: string | undefined;
  try {
    if (member && member.method !== 0) {
      // A deflated member cannot be read by ranges: it is inflated to a private temporary file.
      temp = fs.mkdtempSync(path.join(os.tmpdir(), 'ckpt-keras-'));
      const inflated = path.join(temp, 'model.weights.h5');
      extractMember(raf, member, inflated, file);
      raf.close();
      h5 = new Hdf5File(LocalFile.open(inflated), file);
    } else {
      h5 = member ? new Hdf5File(raf, file, zipDataOffset(raf, member), member.size) : new Hdf5File(raf, file);
    }
    const opened = h5;
    const listing = listWeights(nativeTree(opened), options, config);
    const datasets = listing.found.map((f) => {
      const object = opened.get(f.datasetPath);
      if (!object?.isDataset()) throw invalidInput(file, `/${f.datasetPath}`, 'weight names a dataset that is not in the file');
      return new Hdf5Dataset(object);
    });
    // A stored .keras member's CRC is checked once, on the first read of its values.
    let memberChecked = !member || member.method !== 0;
    const checkMember = () => {
      if (!memberChecked) verifyStoredMember(raf, member!, opened.start);
      memberChecked = true;
    };
    const cleanup = () => {
      opened.close();
      if (temp) fs.rmSync(temp, { recursive: true, force: true });
    };
    return stateDict(file, listing, datasets, kerasMeta, {
      read: async (i) => {
        checkMember();
        return guarded(file, listing.found[i]!.datasetPath, () => datasets[i]!.read());
      },
      stored: (i) => {
        const offset = member ? undefined : datasets[i]!.storedOffset;
        return offset === undefined ? undefined : { file: opened.source, offset };
      },
      close: async () => cleanup(),
      bytesRead: () => opened.source.bytesRead,
    });
  } catch (err) {
    if (h5) h5.close();
    else raf.close();
    if (temp) fs.rmSync(temp, { recursive: true, force: true });
    throw err instanceof CkptError ? err : invalidInput(file, 'HDF5', `cannot be read: ${(err as Error).message}`);
  }
}

/** A failure that is not already a CkptError (an allocation a corrupt size asked for) as invalid input naming the dataset. */
function guarded<T>(file: string, datasetPath: string, read: () => T): T {
  try {
    return read();
  } catch (err) {
    throw err instanceof CkptError ? err : invalidInput(file, `/${datasetPath}`, `cannot be read: ${(err as Error).message}`);
  }
}

/** The file as listing.ts walks it, through ckpt's reader. */
function nativeTree(h5: Hdf5File): Hdf5Tree<Hdf5Object> {
  return {
    label: h5.label,
    get: (p) => h5.get(p),
    isGroup: (node): node is Hdf5Object => node?.isGroup() ?? false,
    isDataset: (node) => node?.isDataset() ?? false,
    keys: (group) => group.links().map((l) => l.name),
    attribute: (node, name) => attributeValue(node, name),
    identity: (node) => node.address,
    pathOf: (node) => node.path,
  };
}

interface DatasetShape { dtype: DType; shape: readonly number[] }

/** The state dict both HDF5 readers give: names, roles and Keras metadata from the listing, values through `access`. */
function stateDict(
  file: string, listed: Listing, infos: readonly DatasetShape[], kerasMeta: Record<string, unknown>,
  access: { read: (i: number) => Promise<Uint8Array>; stored?: (i: number) => StoredBytes | undefined; close: () => Promise<void>; bytesRead?: () => number },
): StateDict {
  const found = listed.found;
  const names = uniqueNames(found.map((f) => ({ name: canonicalName(f.name) })));
  const tensors: TensorInfo[] = found.map((f, i) => {
    const info = infos[i]!;
    const numel = numelOf(info.shape);
    if (numel === undefined) throw invalidInput(file, `/${f.datasetPath}`, `shape [${info.shape.join(',')}] has too many elements`);
    const stored = access.stored?.(i);
    return {
      name: names[i]!,
      source: f.datasetPath,
      dtype: info.dtype,
      shape: [...info.shape],
      byteLength: byteLengthOf(info.dtype, numel),
      origin: 'dataset',
      ...(f.group === 'optimizer' ? { group: 'optimizer' as const } : {}),
      ...(f.layout && f.layout.length === info.shape.length ? { layout: f.layout } : {}),
      role: roleFromName(names[i]!, info.dtype),
      roleFrom: f.configured ? 'config' : 'names',
      ...(stored ? { stored } : {}),
      read: () => access.read(i),
      readStrings: async () => {
        throw invalidInput(file, `/${f.datasetPath}`, `is ${info.dtype}, not strings`);
      },
    };
  });
  const kerasVersion = listed.kerasVersion ?? kerasMeta.keras_version;
  const metadata = {
    layout: listed.kind,
    ...(kerasVersion ? { kerasVersion } : {}),
    ...(listed.backend ? { backend: listed.backend } : {}),
    ...(listed.modelClass ? { modelClass: listed.modelClass } : {}),
    layerCount: listed.layerCount,
    ...(listed.optimizerTensors ? { optimizerTensors: listed.optimizerTensors } : {}),
  };
  const kerasModel = listed.modelConfig
    ? {
        config: listed.modelConfig as Record<string, unknown>,
        ...(listed.trainingConfig ? { trainingConfig: listed.trainingConfig } : {}),
        ...(typeof kerasVersion === 'string' ? { kerasVersion } : {}),
        ...(typeof listed.backend === 'string' ? { backend: listed.backend } : {}),
      }
    : undefined;
  return {
    format: 'keras', path: file, metadata, tensors, ...(kerasModel ? { kerasModel } : {}),
    close: access.close,
    ...(access.bytesRead ? { bytesRead: access.bytesRead } : {}),
  };
}

/** The h5wasm path, in its worker: for files that use HDF5 features ckpt's reader does not implement. */
async function openWithH5wasm(file: string, member: ZipEntry | undefined, options: OpenOptions, config: unknown, kerasMeta: Record<string, unknown>): Promise<StateDict> {
  let temp: string | undefined;
  let h5File: string;
  if (member) {
    // h5wasm reads from a path: the member goes to a private temporary file, removed on close.
    temp = fs.mkdtempSync(path.join(os.tmpdir(), 'ckpt-keras-'));
    h5File = path.join(temp, 'model.weights.h5');
    const raf = RandomAccessFile.open(file);
    try {
      extractMember(raf, member, h5File, file);
    } catch (err) {
      fs.rmSync(temp, { recursive: true, force: true });
      throw err;
    } finally {
      raf.close();
    }
  } else {
    // h5wasm reads local files only: a remote .h5 is copied to a temporary file first.
    h5File = localCopy(file, 'HDF5 (h5wasm)');
  }
  const cleanup = () => {
    if (temp) fs.rmSync(temp, { recursive: true, force: true });
  };
  const worker = new Hdf5Worker(file);
  try {
    const { found, infos, metadata: listed } = await worker.open(h5File, options, config);
    return stateDict(file, { ...(listed as Omit<Listing, 'found'>), found }, infos, kerasMeta, {
      read: (i) => worker.read(found[i]!.datasetPath, infos[i]!),
      close: async () => {
        await worker.close();
        cleanup();
      },
    });
  } catch (err) {
    await worker.close();
    cleanup();
    throw err;
  }
}

/**
 * Listing a file's structure must not take longer than this (CKPT_HDF5_TIMEOUT_MS, default 30 s);
 * a read gets a second more per MiB.
 */
const listTimeout = () => Number(process.env.CKPT_HDF5_TIMEOUT_MS ?? 30_000);

/**
 * The client side of worker.ts: one worker per open file, each request with a deadline. When
 * the HDF5 library does not answer in time (a corrupt file looping), the worker is terminated.
 */
class Hdf5Worker {
  private readonly worker: Worker;
  private next = 0;
  private readonly pending = new Map<number, { resolve: (r: Reply) => void; reject: (e: Error) => void }>();

  constructor(private readonly label: string) {
    this.worker = startWorker(new URL('./worker.js', import.meta.url));
    this.worker.unref();
    this.worker.on('message', (reply: Reply) => {
      this.pending.get(reply.id)?.resolve(reply);
      this.pending.delete(reply.id);
    });
    this.worker.on('error', (err) => this.failAll(err));
    this.worker.on('exit', () => this.failAll(new Error('the HDF5 worker stopped')));
  }

  async open(path: string, options: OpenOptions, config: unknown) {
    const reply = await this.request({ kind: 'open', path, label: this.label, options: { all: options.all === true }, config }, listTimeout(), 'reading its structure');
    return reply.listing!;
  }

  async read(path: string, info: DatasetInfo): Promise<Uint8Array> {
    const mib = (info.shape.reduce((n, d) => n * d, 1) * info.width) / 1048576;
    const reply = await this.request({ kind: 'read', path, info }, listTimeout() + 1000 * mib, `reading /${path}`);
    return reply.bytes!;
  }

  async close(): Promise<void> {
    await this.worker.terminate();
  }

  private request(body: DistributiveOmit<Request, 'id'>, timeout: number, what: string): Promise<Extract<Reply, { ok: true }>> {
    const id = this.next++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        void this.worker.terminate();
        reject(invalidInput(this.label, 'HDF5', `the HDF5 library did not finish ${what} within ${Math.round(timeout / 1000)} s; the file is corrupt`));
      }, timeout);
      this.pending.set(id, {
        resolve: (reply) => {
          clearTimeout(timer);
          if (reply.ok) resolve(reply);
          else reject(new CkptError(reply.error.exitCode as ExitCodeValue, reply.error.file, reply.error.where, reply.error.detail, reply.error.code));
        },
        reject: (err) => {
          clearTimeout(timer);
          reject(err);
        },
      });
      this.worker.postMessage({ ...body, id });
    });
  }

  private failAll(err: Error): void {
    for (const p of this.pending.values()) p.reject(new CkptError(ExitCode.invalidInput, this.label, 'HDF5', `the HDF5 reader failed: ${hdf5Reason(err)}`));
    this.pending.clear();
  }
}

type DistributiveOmit<T, K extends keyof T> = T extends unknown ? Omit<T, K> : never;

function parseJsonMember(raf: RandomAccessFile, entry: ZipEntry | undefined, file: string): unknown {
  if (!entry) return undefined;
  const bytes = readZipEntry(raf, entry, 64 * 1024 * 1024);
  try {
    return JSON.parse(new TextDecoder().decode(bytes));
  } catch (err) {
    throw invalidInput(file, `member '${entry.name}'`, `not valid JSON (${(err as Error).message})`);
  }
}

function extractMember(raf: RandomAccessFile, entry: ZipEntry, out: string, file: string): void {
  if (entry.size > MAX_MEMBER) throw invalidInput(file, `member '${entry.name}'`, `declares ${entry.size} bytes, more than allowed`);
  const fd = fs.openSync(out, 'wx', 0o600);
  try {
    if (entry.method === 0) {
      const start = zipDataOffset(raf, entry);
      let crc = 0;
      for (let at = 0; at < entry.size; at += 16 << 20) {
        const chunk = raf.read(start + at, Math.min(16 << 20, entry.size - at), `member '${entry.name}'`);
        crc = crc32Of([chunk], crc);
        fs.writeSync(fd, chunk);
      }
      checkZipCrc(raf, entry, crc);
    } else {
      fs.writeSync(fd, readZipEntry(raf, entry, MAX_MEMBER));
    }
  } finally {
    fs.closeSync(fd);
  }
}

