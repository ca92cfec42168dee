import { onDemand } from '../../core/on-demand.js';
import type { FormatMatch, Probe } from '../types.js';

/** model.json's reader, loaded for folders and for files that start like JSON. */
const modelJson = onDemand<typeof import('./model-json.js')>(new URL('./model-json.js', import.meta.url));

export const tfjsFormat: FormatMatch = {
  name: 'tfjs',
  match: (probe: Probe) => (probe.isDirectory || /^\s*[[{]/.test(new TextDecoder().decode(probe.head.subarray(0, 64)))) && modelJson().looksLikeTfjs(probe),
};
