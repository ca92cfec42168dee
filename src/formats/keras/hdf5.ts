import { resolve } from 'node:path';
import h5wasm from 'h5wasm/node';
import { invalidInput } from '../../core/errors.js';
import type { DType } from '../../core/dtype.js';
import { hdf5Reason } from './messages.js';
import type { Hdf5Tree } from './listing.js';

/**
 * h5wasm, wrapped for a reader: HDF5's error stack becomes one exception (not a dump on stderr),
 * datasets are read as raw little-endian bytes (h5wasm's `.value` cannot read float16), and every
 * failure names the file and the object.
 */
type Module = Awaited<typeof h5wasm.ready>;
let module: Module | undefined;

/** The only files HDF5 may open in this thread: the model files opened through openHdf5. */
const allowedFiles = new Set<string>();

async function ready(): Promise<Module> {
  if (!module) {
    module = await h5wasm.ready;
    module.activate_throwing_error_handler();
    // HDF5 opens other files by itself (external links, external raw storage): in this reading
    // thread, every open of a file that is not the model is refused at the file-system layer.
    const fsLayer = (module as unknown as { FS: { open: (path: string, flags: unknown, ...rest: unknown[]) => unknown } }).FS;
    const open = fsLayer.open.bind(fsLayer);
    fsLayer.open = (path: string, flags: unknown, ...rest: unknown[]) => {
      if (allowedFiles.has(resolve(path)) || isErrorStackFile(path, flags)) return open(path, flags, ...rest);
      if (PLUGIN_FOLDER.test(path)) throw new Error('needs an HDF5 plugin (a compression filter or file driver) that ckpt does not have; the file is corrupt or was written with that plugin');
      throw new Error(`refusing to open '${path}': not the model file`);
    };
  }
  return module;
}

/** Where HDF5 looks for plugins (filters, file drivers): a folder of the machine that built h5wasm (`/__w/libhdf5-wasm/…/lib/plugin`). */
const PLUGIN_FOLDER = /\/lib\/plugin(\/|$)/;
const O_CREAT = 0o100;
const O_EXCL = 0o200;

/**
 * h5wasm turns HDF5's error stack into an exception through a file from tmpfile(): a new file
 * created exclusively (so it cannot be an existing file's content) under the fixed name pattern.
 */
function isErrorStackFile(path: string, flags: unknown): boolean {
  return /^\/tmp\/tmpfile_\w{6}$/.test(path) && typeof flags === 'number' && (flags & (O_CREAT | O_EXCL)) === (O_CREAT | O_EXCL);
}


export type H5Group = InstanceType<typeof h5wasm.Group>;
export type H5Dataset = InstanceType<typeof h5wasm.Dataset>;
export type H5File = InstanceType<typeof h5wasm.File>;

export interface H5 {
  file: H5File;
  path: string;
  /** `path` as the user knows it (the .keras, not its extracted member). */
  label: string;
}

export async function openHdf5(path: string, label: string): Promise<H5> {
  await ready();
  allowedFiles.add(resolve(path));
  try {
    return { file: new h5wasm.File(path, 'r'), path, label };
  } catch (err) {
    throw invalidInput(label, 'HDF5', `cannot be opened: ${hdf5Reason(err)}`);
  }
}

export function closeHdf5(h5: H5): void {
  try {
    h5.file.close();
  } catch {
    // Closing a file whose open failed half-way: nothing left to release.
  }
}

/** The object at `path`, or undefined; HDF5 errors (corrupt headers) are invalid input. */
export function getObject(h5: H5, path: string): H5Group | H5Dataset | undefined {
  refuseExternalLinks(h5, path);
  try {
    const obj = h5.file.get(path);
    return obj instanceof h5wasm.Group || obj instanceof h5wasm.Dataset ? obj : undefined;
  } catch (err) {
    throw invalidInput(h5.label, `/${path}`, `cannot be read: ${hdf5Reason(err)}`);
  }
}

/**
 * HDF5 follows external links into other files by itself: refuse any on the way to `path`, so
 * nothing outside the model file is opened through it.
 */
function refuseExternalLinks(h5: H5, path: string): void {
  const parts = path.split('/').filter(Boolean);
  for (let i = 1; i <= parts.length; i++) {
    const prefix = `/${parts.slice(0, i).join('/')}`;
    let link: { filename?: string } | undefined;
    try {
      link = module!.get_external_link(h5.file.file_id, prefix) as { filename?: string };
    } catch {
      return; // not there: the caller reports what is missing
    }
    if (link?.filename) {
      throw invalidInput(h5.label, prefix, `is an external link to '${link.filename}'; ckpt does not follow links out of the model file`);
    }
  }
}

/** An object's path as messages show it: h5wasm's paths already start with '/'. */
function placeOf(obj: H5Group | H5Dataset): string {
  return obj.path.startsWith('/') ? obj.path : `/${obj.path}`;
}

export function isGroup(obj: unknown): obj is H5Group {
  return obj instanceof h5wasm.Group;
}

export function isDataset(obj: unknown): obj is H5Dataset {
  return obj instanceof h5wasm.Dataset;
}

export function keysOf(h5: H5, group: H5Group): string[] {
  try {
    return group.keys();
  } catch (err) {
    throw invalidInput(h5.label, placeOf(group), `cannot list: ${hdf5Reason(err)}`);
  }
}

/** An attribute's value: strings, lists of strings, numbers; undefined when absent. */
export function attribute(h5: H5, obj: H5Group | H5Dataset, name: string): unknown {
  try {
    const attrs = obj.attrs as Record<string, { value: unknown }>;
    return name in attrs ? attrs[name]!.value : undefined;
  } catch (err) {
    throw invalidInput(h5.label, `${placeOf(obj)} attribute '${name}'`, `cannot be read: ${hdf5Reason(err)}`);
  }
}

/** The file as the Keras listing walks it. */
export function h5wasmTree(h5: H5): Hdf5Tree<H5Group | H5Dataset> {
  return {
    label: h5.label,
    get: (path) => getObject(h5, path),
    isGroup: (node): node is H5Group => isGroup(node),
    isDataset: (node) => isDataset(node),
    keys: (group) => keysOf(h5, group as H5Group),
    attribute: (node, name) => attribute(h5, node, name),
    identity: (node) => placeOf(node),
    pathOf: (node) => placeOf(node),
  };
}

const DTYPES: Record<string, DType> = {
  '<f': 'float32', '<d': 'float64', '<e': 'float16', '<b': 'int8', '<h': 'int16', '<i': 'int32', '<q': 'int64',
  '<B': 'uint8', '<H': 'uint16', '<I': 'uint32', '<Q': 'uint64',
};

export interface DatasetInfo {
  dtype: DType;
  shape: number[];
  width: number;
  /** Stored in one piece (not chunked): read in slabs of rows, each as cheap as the whole. */
  contiguous: boolean;
}

/** dtype and shape of a dataset; h5py's bool (an HDF5 enum of int8) reads as bool. */
export function datasetInfo(h5: H5, dataset: H5Dataset): DatasetInfo {
  let dtype: string;
  let metadata: { type: number; size: number; littleEndian: boolean; vlen: boolean; chunks: number[] | null };
  let shape: number[];
  try {
    dtype = String(dataset.dtype);
    metadata = dataset.metadata as typeof metadata;
    shape = dataset.shape ?? [];
  } catch (err) {
    throw invalidInput(h5.label, placeOf(dataset), `cannot be read: ${hdf5Reason(err)}`);
  }
  const where = placeOf(dataset);
  if (metadata.vlen) throw invalidInput(h5.label, where, 'variable-length datasets are not weights');
  const contiguous = metadata.chunks === null;
  if (metadata.type === 8 && metadata.size === 1) return { dtype: 'bool', shape, width: 1, contiguous };
  const key = dtype.replace(/^>/, '<');
  const known = DTYPES[key];
  if (!known) throw invalidInput(h5.label, where, `dataset type ${dtype} (HDF5 class ${metadata.type}) is not a numeric weight`);
  return { dtype: known, shape, width: metadata.size, contiguous };
}

const SLAB_BYTES = 4 << 20;

/** The dataset's values as little-endian bytes, read raw (h5wasm's `.value` cannot read float16). */
export async function readDataset(h5: H5, path: string, info: DatasetInfo): Promise<Uint8Array> {
  const m = await ready();
  const count = info.shape.reduce((n, d) => n * d, 1);
  const bytes = count * info.width;
  if (bytes === 0) return new Uint8Array(0);
  // A contiguous dataset comes in slabs of rows through one small buffer on the WASM heap, which
  // would otherwise grow to the largest tensor (and never shrink) beside the copy handed out.
  const rows = info.contiguous && info.shape.length > 0 ? info.shape[0]! : 1;
  const rowBytes = bytes / rows;
  const step = Math.max(1, Math.floor(SLAB_BYTES / rowBytes));
  const pointer = m._malloc(Math.min(rows, step) * rowBytes);
  try {
    if (rows === 1) {
      m.get_dataset_data(h5.file.file_id, path, null, null, null, BigInt(pointer));
      // HDF5 converts to the native (little-endian) order on read, big-endian datasets included.
      return m.HEAPU8.slice(pointer, pointer + bytes);
    }
    const out = new Uint8Array(bytes);
    const rest = info.shape.slice(1).map(BigInt);
    for (let row = 0; row < rows; row += step) {
      const count = Math.min(step, rows - row);
      m.get_dataset_data(h5.file.file_id, path, [BigInt(count), ...rest], [BigInt(row), ...rest.map(() => 0n)], info.shape.map(() => 1n), BigInt(pointer));
      out.set(m.HEAPU8.subarray(pointer, pointer + count * rowBytes), row * rowBytes);
    }
    return out;
  } catch (err) {
    throw invalidInput(h5.label, `/${path}`, `cannot be read: ${hdf5Reason(err)}`);
  } finally {
    m._free(pointer);
  }
}
