import * as path from 'node:path';
import { RandomAccessFile, readTextFile, resolveInsideFolder } from '../../core/file.js';
import { invalidInput } from '../../core/errors.js';
import type { StateDict } from '../../core/statedict.js';
import type { FormatReader } from '../types.js';
import { darknetFormat, MAX_CFG_BYTES } from './match.js';
import { rangeTensor } from '../range-tensor.js';
import { layoutOf, parseCfg, type DarknetNetwork } from './cfg.js';

/**
 * Darknet: the model is opened by its `.cfg`; the weights are the `.weights` file of the same stem
 * beside it (MANIFEST). The file holds a header, then every weighted layer's float32 arrays in the
 * order the cfg implies, and nothing else.
 */


export interface DarknetHeader {
  readonly version: readonly [number, number, number];
  readonly seen: number;
  /** 8 (uint64 `seen`, version 0.2 and later) or 4. */
  readonly seenBytes: 4 | 8;
}

/** major, minor, revision: three int32 before `seen`. */
export const VERSION_BYTES = 12;

export const darknetReader: FormatReader = { ...darknetFormat, open: openDarknet };

/** The cfg's network: every array of its `.weights`, in file order. */
export function readNetwork(cfg: string): DarknetNetwork {
  const text = readTextFile(cfg);
  if (text.length > MAX_CFG_BYTES) throw invalidInput(cfg, undefined, `a ${text.length}-byte cfg is not a darknet network definition`);
  return layoutOf(cfg, parseCfg(cfg, text));
}

/** How wide `seen` is for a header version: a size_t (8 bytes) from 0.2 on, an int before. */
export function seenBytesOf(major: number, minor: number): 4 | 8 {
  return major * 10 + minor >= 2 ? 8 : 4;
}

/** `major.minor.revision` then `seen`: a size_t (8 bytes) from version 0.2 on, as darknet's load_weights reads it. */
export function readHeader(raf: RandomAccessFile): DarknetHeader {
  const head = raf.read(0, VERSION_BYTES, 'header');
  const view = new DataView(head.buffer, head.byteOffset, head.byteLength);
  const version = [view.getInt32(0, true), view.getInt32(4, true), view.getInt32(8, true)] as const;
  const [major, minor] = version;
  if (major > 1000 || minor > 1000) throw invalidInput(raf.path, 'header', `version ${version.join('.')} marks transposed connected weights, which are not supported`);
  if (major < 0 || minor < 0) throw invalidInput(raf.path, 'header', `version ${version.join('.')} is not a darknet weights header`);
  const seenBytes = seenBytesOf(major, minor);
  const seenView = new DataView(raf.read(VERSION_BYTES, seenBytes, 'header seen').slice().buffer);
  const seen = seenBytes === 8 ? Number(seenView.getBigUint64(0, true)) : seenView.getUint32(0, true);
  return { version, seen, seenBytes };
}

async function openDarknet(cfg: string): Promise<StateDict> {
  const network = readNetwork(cfg);
  const stem = path.basename(cfg).replace(/\.[^.]*$/, '');
  const weightsPath = resolveInsideFolder(cfg, path.dirname(cfg), `${stem}.weights`, 'weights file');
  const raf = RandomAccessFile.open(weightsPath);
  try {
    const header = readHeader(raf);
    let offset = VERSION_BYTES + header.seenBytes;
    const tensors = network.arrays.map((a) => {
      const t = rangeTensor(raf, { name: a.name, source: a.name, dtype: 'float32', shape: a.shape, offset, origin: 'weight', role: a.role, roleFrom: 'config', ...(a.layout ? { layout: a.layout } : {}) });
      if (offset + t.byteLength > raf.size) {
        throw invalidInput(weightsPath, `tensor '${a.name}' at offset ${offset}`, `needs ${t.byteLength} bytes but the file ends at ${raf.size} (truncated, or weights of another cfg than ${path.basename(cfg)}?)`);
      }
      offset += t.byteLength;
      return t;
    });
    if (offset < raf.size) throw invalidInput(weightsPath, `offset ${offset}`, `${raf.size - offset} bytes after the last array ${path.basename(cfg)} implies (weights of another cfg?)`);
    const metadata = {
      darknet: { seen: header.seen, version: header.version, layers: network.layers, yolo_heads: network.yoloHeads },
      weightsFile: path.basename(weightsPath),
    };
    return { format: 'darknet', path: cfg, metadata, tensors, close: async () => raf.close(), bytesRead: () => raf.bytesRead };
  } catch (err) {
    raf.close();
    throw err;
  }
}
