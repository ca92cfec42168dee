import { onDemand } from '../../core/on-demand.js';
import type { FormatMatch, Probe } from '../types.js';

/** The structure test and walk, loaded once a file starts like a ModelProto. */
const model = onDemand<typeof import('./model.js')>(new URL('./model.js', import.meta.url));

/** ONNX has no magic bytes: recognized by its protobuf structure (ir_version first), whose walk goes on to open. */
export const onnxFormat: FormatMatch = {
  name: 'onnx',
  match: (probe: Probe) => {
    if (probe.file === undefined || probe.head[0] !== 0x08 || !model().looksLikeOnnx(probe.file)) return false;
    try {
      probe.detection.onnxModel = model().walkModel(probe.file);
    } catch {
      // open walks it again and says what is wrong
    }
    return true;
  },
};
