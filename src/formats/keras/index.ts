import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { RandomAccessFile } from '../../core/file.js';
import { invalidInput } from '../../core/errors.js';
import { byteLengthOf, numelOf } from '../../core/dtype.js';
import { canonicalName, uniqueNames } from '../../core/names.js';
import type { OpenOptions, StateDict, TensorInfo } from '../../core/statedict.js';
import { checkZipCrc, crc32Of, isSafeMemberName, isZip, readZipDirectory, readZipEntry, zipDataOffset, type ZipEntry } from '../../core/zip.js';
import type { Detection, FormatReader } from '../types.js';
import { kerasFormat } from './match.js';
import { stillDetected } from '../probe.js';
import { Worker } from 'node:worker_threads';
import { CkptError, ExitCode, type ExitCodeValue } from '../../core/errors.js';
import type { DatasetInfo } from './hdf5.js';
import { hdf5Reason } from './messages.js';
import type { Reply, Request } from './worker.js';
import { localCopy } from '../../core/location.js';
import { roleFromName } from '../../core/roles.js';

/** .keras members beyond this are refused (Keras itself guards against zip bombs the same way). */
const MAX_MEMBER = 64 * 1024 * 1024 * 1024;

export const kerasReader: FormatReader = { ...kerasFormat, open: openKeras };

async function openKeras(file: string, options: OpenOptions, detection?: Detection): Promise<StateDict> {
  const raf = RandomAccessFile.open(file);
  let zipEntries: ZipEntry[] | undefined;
  try {
    if (isZip(raf.read(0, Math.min(4, raf.size), 'header'))) zipEntries = [...(stillDetected(detection, raf)?.zipDirectory ?? readZipDirectory(raf))];
  } finally {
    if (!zipEntries) raf.close();
  }
  let h5File = file;
  let temp: string | undefined;
  let config: unknown;
  let kerasMeta: Record<string, unknown> = {};
  if (zipEntries) {
    try {
      for (const e of zipEntries) if (!isSafeMemberName(e.name)) throw invalidInput(file, `member '${e.name}'`, 'member name is absolute or contains ..');
      const member = (name: string) => zipEntries!.find((e) => e.name === name);
      const weights = member('model.weights.h5');
      if (!weights) throw invalidInput(file, 'zip', 'a .keras file must hold model.weights.h5');
      config = parseJsonMember(raf, member('config.json'), file);
      kerasMeta = (parseJsonMember(raf, member('metadata.json'), file) as Record<string, unknown> | undefined) ?? {};
      // h5wasm reads from a path: the member goes to a private temporary file, removed on close.
      temp = fs.mkdtempSync(path.join(os.tmpdir(), 'ckpt-keras-'));
      h5File = path.join(temp, 'model.weights.h5');
      extractMember(raf, weights, h5File, file);
    } catch (err) {
      if (temp) fs.rmSync(temp, { recursive: true, force: true });
      throw err;
    } finally {
      raf.close();
    }
  }
  // h5wasm reads local files only: a remote .h5 is copied to a temporary file first (HDF5's
  // metadata is scattered through the file, so reading it by ranges would take many requests).
  if (!zipEntries) h5File = localCopy(file, 'HDF5 (h5wasm)');
  const cleanup = () => {
    if (temp) fs.rmSync(temp, { recursive: true, force: true });
  };
  const worker = new Hdf5Worker(file);
  try {
    const { found, infos, metadata: listed } = await worker.open(h5File, options, config);
    const names = uniqueNames(found.map((f) => ({ name: canonicalName(f.name) })));
    const tensors: TensorInfo[] = found.map((f, i) => {
      const info = infos[i]!;
      const numel = numelOf(info.shape);
      if (numel === undefined) throw invalidInput(file, `/${f.datasetPath}`, `shape [${info.shape.join(',')}] has too many elements`);
      return {
        name: names[i]!,
        source: f.datasetPath,
        dtype: info.dtype,
        shape: info.shape,
        byteLength: byteLengthOf(info.dtype, numel),
        origin: 'dataset',
        ...(f.group === 'optimizer' ? { group: 'optimizer' as const } : {}),
        ...(f.layout && f.layout.length === info.shape.length ? { layout: f.layout } : {}),
        role: roleFromName(names[i]!, info.dtype),
        roleFrom: f.configured ? 'config' : 'names',
        read: () => worker.read(f.datasetPath, info),
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
      close: async () => {
        await worker.close();
        cleanup();
      },
    };
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
    this.worker = new Worker(new URL('./worker.js', import.meta.url));
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

