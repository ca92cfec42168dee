import type { FormatMatch, Probe } from '../types.js';

export const tfliteFormat: FormatMatch = {
  name: 'tflite',
  match: (probe: Probe) => !probe.isDirectory && probe.head.length >= 8 && Buffer.from(probe.head.subarray(4, 8)).toString('latin1') === 'TFL3',
};
