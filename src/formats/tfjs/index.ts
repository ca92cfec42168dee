import * as fs from 'node:fs';
import * as path from 'node:path';
import { RandomAccessFile, resolveInsideFolder } from '../../core/file.js';
import { fromSystemError, invalidInput, ioError } from '../../core/errors.js';
import { numelOf } from '../../core/dtype.js';
import { halfToNumber } from '../../core/decode.js';
import { canonicalName, uniqueNames } from '../../core/names.js';
import type { OpenOptions, StateDict, TensorInfo } from '../../core/statedict.js';
import type { FormatReader, Probe } from '../types.js';
import { STORED_BYTES, TFJS_DTYPES, type ManifestEntry, type ManifestGroup } from './manifest.js';
import { KERNEL_LAYOUTS, layerClasses } from '../keras-layers.js';

/** model.json files are read whole: cap them so a huge or hostile file is refused, not loaded. */
export const MAX_MODEL_JSON = 256 * 1024 * 1024;

function looksLikeTfjsJson(head: Uint8Array): boolean {
  const text = new TextDecoder().decode(head).trimStart();
  if (text.startsWith('[')) return /"paths"/.test(text) && /"weights"/.test(text);
  return text.startsWith('{');
}

export const tfjsReader: FormatReader = {
  name: 'tfjs',
  match: (probe: Probe) => {
    if (probe.isDirectory) return fs.existsSync(path.join(probe.path, 'model.json'));
    if (!looksLikeTfjsJson(probe.head) || probe.size > MAX_MODEL_JSON) return false;
    if (new TextDecoder().decode(probe.head).trimStart().startsWith('[')) return true;
    try {
      const json = JSON.parse(fs.readFileSync(probe.path, 'utf8')) as Record<string, unknown>;
      return typeof json === 'object' && json !== null && ('weightsManifest' in json || 'modelTopology' in json);
    } catch {
      // Unparsable: it is ours if it says so in its first bytes, so the reader can say what is wrong.
      return /"(weightsManifest|modelTopology)"/.test(new TextDecoder().decode(probe.head));
    }
  },
  open: openTfjs,
};

interface Located {
  entry: ManifestEntry;
  group: number;
  /** Offset of this weight in its group's concatenated shards, and its stored byte count. */
  offset: number;
  storedBytes: number;
}

interface Shard { path: string; name: string; size: number }

function readJson(file: string): unknown {
  let text: string;
  try {
    const size = fs.statSync(file).size;
    if (size > MAX_MODEL_JSON) throw invalidInput(file, undefined, `${size} bytes is more than the ${MAX_MODEL_JSON} a model.json may have`);
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw fromSystemError(file, undefined, err);
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw invalidInput(file, undefined, `not valid JSON (${(err as Error).message})`);
  }
}

async function openTfjs(input: string, options: OpenOptions): Promise<StateDict> {
  const file = fs.statSync(input).isDirectory() ? path.join(input, 'model.json') : input;
  const folder = path.dirname(file);
  const json = readJson(file);
  const isManifest = Array.isArray(json);
  if (!isManifest && (typeof json !== 'object' || json === null)) throw invalidInput(file, undefined, 'expected a JSON object (model.json) or array (weights manifest)');
  const model = (isManifest ? {} : json) as Record<string, unknown>;
  const manifest = isManifest ? json : model.weightsManifest;
  if (manifest === undefined) throw invalidInput(file, 'weightsManifest', 'the model has no weightsManifest');
  const groups = validateManifest(file, manifest);
  const topology = model.modelTopology as Record<string, unknown> | undefined;
  const kind = isManifest ? 'weights-manifest'
    : typeof model.format === 'string' ? model.format
    : topology && Array.isArray(topology.node) ? 'graph-model' : 'layers-model';

  // Shards: resolved inside the folder and sized, never read to list.
  const shards = groups.map((g, gi) => g.paths.map((p, pi): Shard => {
    if (typeof p !== 'string' || /^[a-z][a-z0-9+.-]*:/i.test(p) || p.includes('\\')) {
      throw invalidInput(file, `weightsManifest[${gi}].paths[${pi}]`, `shard path ${JSON.stringify(p)} must be a plain relative path`);
    }
    const where = `weightsManifest[${gi}].paths[${pi}] (shard '${p}')`;
    const real = resolveInsideFolder(file, folder, p, where);
    return { path: real, name: p, size: fs.statSync(real).size };
  }));

  const located: Located[] = [];
  groups.forEach((g, gi) => {
    let offset = 0;
    const groupSize = shards[gi]!.reduce((n, s) => n + s.size, 0);
    for (const entry of g.weights) {
      const storedBytes = entry.dtype === 'string' ? stringBytes(file, shards[gi]!, offset, entry, groupSize) : fixedBytes(file, entry);
      located.push({ entry, group: gi, offset, storedBytes });
      offset += storedBytes;
      if (offset > groupSize) {
        throw invalidInput(file, `weight '${entry.name}'`, `needs bytes up to ${offset} but the shards of group ${gi} (${shards[gi]!.map((s) => s.name).join(', ')}) hold ${groupSize}`);
      }
    }
    if (offset !== groupSize) {
      throw invalidInput(file, `weightsManifest[${gi}]`, `its weights need ${offset} bytes but the shards ${shards[gi]!.map((s) => `'${s.name}'`).join(', ')} hold ${groupSize}`);
    }
  });

  const classes = layerClasses(topology);
  const listed = located.filter((l) => options.all || (l.entry.group ?? 'model') === 'model');
  const names = uniqueNames(listed.map((l) => ({ name: canonicalName(l.entry.name) })));
  const tensors: TensorInfo[] = listed.map((l, i) => {
    const dtype = TFJS_DTYPES[l.entry.dtype]!;
    const numel = numelOf(l.entry.shape)!;
    const layer = l.entry.name.split('/').slice(-2)[0] ?? '';
    const layout = l.entry.name.endsWith('/kernel') || l.entry.name.endsWith('/depthwise_kernel') ? KERNEL_LAYOUTS[classes.get(layer) ?? ''] : undefined;
    const stored = () => readRange(shards[l.group]!, l.offset, l.storedBytes, l.entry.name);
    return {
      name: names[i]!,
      source: l.entry.name,
      dtype,
      shape: l.entry.shape,
      byteLength: dtype === 'string' ? l.storedBytes - 4 * numel : numel * (dtype === 'complex64' ? 8 : dtype === 'bool' ? 1 : 4),
      origin: 'weight',
      ...(l.entry.group && l.entry.group !== 'model' ? { group: 'optimizer' as const } : {}),
      ...(layout ? { layout } : {}),
      read: async () => {
        if (dtype === 'string') throw invalidInput(file, `weight '${l.entry.name}'`, 'is a string tensor; use readStrings()');
        return decodeWeight(l.entry, stored(), numel);
      },
      readStrings: async () => {
        if (dtype !== 'string') throw invalidInput(file, `weight '${l.entry.name}'`, `is ${dtype}, not strings`);
        return splitStrings(file, l.entry, stored(), numel);
      },
    };
  });
  const metadata: Record<string, unknown> = {
    kind,
    ...(typeof model.generatedBy === 'string' ? { generatedBy: model.generatedBy } : {}),
    ...(typeof model.convertedBy === 'string' ? { convertedBy: model.convertedBy } : {}),
    ...(topology && typeof topology.keras_version === 'string' ? { kerasVersion: topology.keras_version } : {}),
    ...(topology && typeof topology.backend === 'string' ? { backend: topology.backend } : {}),
    shards: shards.flat().map((s) => s.name),
    weights: located.length,
  };
  return { format: 'tfjs', path: input, metadata, tensors, close: async () => {} };
}

function validateManifest(file: string, manifest: unknown): ManifestGroup[] {
  if (!Array.isArray(manifest)) throw invalidInput(file, 'weightsManifest', 'must be an array of {paths, weights} groups');
  return manifest.map((g, gi) => {
    const where = `weightsManifest[${gi}]`;
    if (typeof g !== 'object' || g === null || !Array.isArray(g.paths) || !Array.isArray(g.weights)) {
      throw invalidInput(file, where, 'expected {paths: [...], weights: [...]}');
    }
    g.weights.forEach((w: ManifestEntry, wi: number) => {
      const at = `${where}.weights[${wi}]${typeof w?.name === 'string' ? ` '${w.name}'` : ''}`;
      if (typeof w !== 'object' || w === null || typeof w.name !== 'string') throw invalidInput(file, at, 'expected a weight with a string name');
      if (!Array.isArray(w.shape) || !w.shape.every((d) => Number.isSafeInteger(d) && d >= 0) || numelOf(w.shape) === undefined) {
        throw invalidInput(file, at, `shape ${JSON.stringify(w.shape)} must be a list of non-negative integers`);
      }
      if (!(w.dtype in TFJS_DTYPES)) throw invalidInput(file, at, `unknown dtype ${JSON.stringify(w.dtype)} (expected float32, int32, bool, string or complex64)`);
      const q = w.quantization;
      if (q !== undefined) {
        if (typeof q !== 'object' || q === null || !['uint8', 'uint16', 'float16'].includes(q.dtype)) {
          throw invalidInput(file, at, `quantization dtype ${JSON.stringify(q?.dtype)} is not uint8, uint16 or float16`);
        }
        if (q.dtype === 'float16' && w.dtype !== 'float32') throw invalidInput(file, at, `float16 quantization of a ${w.dtype} weight; only float32 can be`);
        if (q.dtype !== 'float16' && (typeof q.min !== 'number' || typeof q.scale !== 'number')) {
          throw invalidInput(file, at, `${q.dtype} quantization without numeric min and scale`);
        }
        if (q.dtype !== 'float16' && w.dtype !== 'float32' && w.dtype !== 'int32') throw invalidInput(file, at, `a ${w.dtype} weight cannot be quantized`);
      }
    });
    return g as ManifestGroup;
  });
}

function fixedBytes(file: string, entry: ManifestEntry): number {
  const width = STORED_BYTES[entry.quantization?.dtype ?? entry.dtype];
  if (width === undefined) throw invalidInput(file, `weight '${entry.name}'`, `unknown dtype ${entry.dtype}`);
  return numelOf(entry.shape)! * width;
}

/** Reads a byte range of a group's concatenated shards (one weight may span two files). */
function readRange(shards: Shard[], offset: number, length: number, weight: string): Uint8Array {
  const out = new Uint8Array(length);
  let done = 0;
  let start = 0;
  for (const shard of shards) {
    const end = start + shard.size;
    if (done < length && offset + done < end) {
      const from = offset + done - start;
      const n = Math.min(length - done, shard.size - from);
      const raf = RandomAccessFile.open(shard.path);
      try {
        out.set(raf.read(from, n, `weight '${weight}' in shard '${shard.name}'`), done);
      } finally {
        raf.close();
      }
      done += n;
    }
    start = end;
  }
  if (done !== length) throw ioError(shards[0]?.path ?? '', `weight '${weight}'`, 'shards end before the weight does');
  return out;
}

/** String weights: per element a uint32 LE length then the bytes; listing walks the lengths. */
function stringBytes(file: string, shards: Shard[], offset: number, entry: ManifestEntry, groupSize: number): number {
  const numel = numelOf(entry.shape)!;
  let size = 0;
  for (let i = 0; i < numel; i++) {
    if (offset + size + 4 > groupSize) throw invalidInput(file, `weight '${entry.name}'`, `string ${i} runs past the end of its shards`);
    const length = new DataView(readRange(shards, offset + size, 4, entry.name).buffer).getUint32(0, true);
    size += 4 + length;
    if (offset + size > groupSize) throw invalidInput(file, `weight '${entry.name}'`, `string ${i} of ${length} bytes runs past the end of its shards`);
  }
  return size;
}

function splitStrings(file: string, entry: ManifestEntry, bytes: Uint8Array, numel: number): Uint8Array[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: Uint8Array[] = [];
  let pos = 0;
  for (let i = 0; i < numel; i++) {
    if (pos + 4 > bytes.length) throw invalidInput(file, `weight '${entry.name}'`, `string ${i} runs past its bytes`);
    const length = view.getUint32(pos, true);
    if (pos + 4 + length > bytes.length) throw invalidInput(file, `weight '${entry.name}'`, `string ${i} runs past its bytes`);
    out.push(bytes.slice(pos + 4, pos + 4 + length));
    pos += 4 + length;
  }
  return out;
}

/**
 * Dequantizes exactly as tfjs-core's decodeWeight: `q * scale + min` in double precision, then
 * stored in a Float32Array (or rounded into an Int32Array); float16 through a half decode.
 */
export function decodeWeight(entry: ManifestEntry, stored: Uint8Array, numel: number): Uint8Array {
  const q = entry.quantization;
  if (!q) return stored;
  const view = new DataView(stored.buffer, stored.byteOffset, stored.byteLength);
  const word = (i: number) => (q.dtype === 'uint8' ? stored[i]! : view.getUint16(i * 2, true));
  if (q.dtype === 'float16') {
    const out = new Float32Array(numel);
    for (let i = 0; i < numel; i++) out[i] = halfToNumber(word(i));
    return new Uint8Array(out.buffer);
  }
  const { scale, min } = q as { scale: number; min: number };
  if (entry.dtype === 'int32') {
    const out = new Int32Array(numel);
    for (let i = 0; i < numel; i++) out[i] = Math.round(word(i) * scale + min);
    return new Uint8Array(out.buffer);
  }
  const out = new Float32Array(numel);
  for (let i = 0; i < numel; i++) out[i] = word(i) * scale + min;
  return new Uint8Array(out.buffer);
}
