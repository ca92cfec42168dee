import type { RandomAccessFile } from '../../core/file.js';
import type { FormatMatch, Probe } from '../types.js';
import { fields, WIRE_BYTES, WIRE_VARINT } from './wire.js';

export const MODEL = { irVersion: 1, producerName: 2, producerVersion: 3, domain: 4, modelVersion: 5, docString: 6, graph: 7, opsetImport: 8, metadataProps: 14, trainingInfo: 20, functions: 25 } as const;

/** The wire types every known top-level ModelProto field must have. */
export const MODEL_WIRE: Record<number, number> = {
  1: WIRE_VARINT, 2: WIRE_BYTES, 3: WIRE_BYTES, 4: WIRE_BYTES, 5: WIRE_VARINT, 6: WIRE_BYTES,
  7: WIRE_BYTES, 8: WIRE_BYTES, 14: WIRE_BYTES, 20: WIRE_BYTES, 25: WIRE_BYTES, 26: WIRE_BYTES,
};

/**
 * Cheap structural test: the file starts with ModelProto's ir_version and every top-level field
 * has a number and wire type ModelProto allows. Payloads are skipped, so this reads very little.
 * A file that is cut short still counts as ONNX, so the reader can say where it ends.
 */
function looksLikeOnnx(file: RandomAccessFile): boolean {
  let count = 0;
  try {
    for (const f of fields(file, { start: 0, end: file.size }, 'model')) {
      if (count === 0 && (f.no !== MODEL.irVersion || f.wire !== WIRE_VARINT || f.varint > 100n)) return false;
      if (MODEL_WIRE[f.no] !== f.wire) return false;
      count++;
    }
    return count > 1;
  } catch {
    return count > 1;
  }
}

/** ONNX has no magic bytes: recognized by its top-level protobuf structure (open walks the rest). */
export const onnxFormat: FormatMatch = {
  name: 'onnx',
  match: (probe: Probe) => probe.file !== undefined && probe.head[0] === 0x08 && looksLikeOnnx(probe.file),
};
