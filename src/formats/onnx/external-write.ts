import * as path from 'node:path';
import { writeAll, yieldToSignals } from '../../core/atomic.js';
import { chunkBuffer, storedChunks } from '../../core/chunks.js';
import type { SetMember } from '../../core/fileset.js';
import type { StoredBytes } from '../../core/statedict.js';

/** Bytes per read when a stored tensor is copied into external data. */
const COPY_CHUNK = 8 << 20;

/** Where a tensor's bytes go in external data: the TensorProto's `location`, `offset` and `length`. */
export interface ExternalPlace {
  location: string;
  offset: number;
  length: number;
}

/** A tensor written to external data, under its name in the output. */
export interface ExternalTensor {
  readonly name: string;
  readonly byteLength: number;
  read(): Promise<Uint8Array>;
  /** Where its bytes lie as they go out, when a file holds them so: copied in chunks instead of read whole. */
  readonly stored?: StoredBytes;
}

/** onnx's `save_model(..., size_threshold=1024)`: smaller tensors stay inline. */
export const EXTERNAL_SIZE_THRESHOLD = 1024;
/** onnxruntime's alignment for tensors over 1 MiB (mmap-able at page boundaries); smaller ones follow each other. */
const ALIGN_ABOVE = 1 << 20;
const ALIGNMENT = 4096;

/** A file name onnx accepts for a per-tensor file (its `_is_valid_filename`), else the name with those characters replaced. */
function tensorFileName(name: string, taken: Set<string>): string {
  let base = name.replace(/[<>:;,?"*|/\\\x00-\x1f]/g, '_');
  if (base === '' || base === '.' || base === '..') base = `tensor_${base.length}`;
  let candidate = base;
  for (let n = 1; taken.has(candidate.toLowerCase()); n++) candidate = `${base}_${n}`;
  taken.add(candidate.toLowerCase());
  return candidate;
}

/**
 * Places each tensor's bytes: all in `<model>.data` one after another (tensors over 1 MiB at
 * 4096-byte offsets, zero-padded between), or each in a file named after the tensor at offset 0,
 * as onnx's `save_model(save_as_external_data=True, all_tensors_to_one_file=…)` does.
 */
export function placeExternalData(out: string, tensors: readonly ExternalTensor[], layout: 'one-file' | 'per-tensor'): ExternalPlace[] {
  if (layout === 'per-tensor') {
    const taken = new Set([path.basename(out).toLowerCase()]);
    return tensors.map((t) => ({ location: tensorFileName(t.name, taken), offset: 0, length: t.byteLength }));
  }
  const location = `${path.basename(out)}.data`;
  let end = 0;
  return tensors.map((t) => {
    const length = t.byteLength;
    const offset = length > ALIGN_ABOVE ? Math.ceil(end / ALIGNMENT) * ALIGNMENT : end;
    end = offset + length;
    return { location, offset, length };
  });
}

/** The external data files as members of the output set, streamed one tensor at a time. */
export function externalDataFiles(out: string, tensors: readonly ExternalTensor[], places: readonly ExternalPlace[]): SetMember[] {
  const folder = path.dirname(out);
  const byFile = new Map<string, number[]>();
  places.forEach((p, i) => byFile.set(p.location, [...(byFile.get(p.location) ?? []), i]));
  return [...byFile].map(([location, indices]) => ({
    path: path.join(folder, location),
    write: async (fd: number) => {
      let end = 0;
      let buffer: Buffer | undefined;
      for (const i of indices) {
        await yieldToSignals();
        const place = places[i]!;
        if (place.offset > end) writeAll(fd, new Uint8Array(place.offset - end));
        const tensor = tensors[i]!;
        if (tensor.stored) {
          buffer ??= chunkBuffer(COPY_CHUNK);
          for (const chunk of storedChunks(tensor.stored, place.length, buffer, `tensor '${tensor.name}'`)) writeAll(fd, chunk);
        } else {
          const bytes = await tensor.read();
          if (bytes.length !== place.length) throw new Error(`'${tensor.name}' read ${bytes.length} bytes, expected ${place.length}`);
          writeAll(fd, bytes);
        }
        end = place.offset + place.length;
      }
    },
  }));
}
