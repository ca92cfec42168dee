import type { FormatMatch, Probe } from '../types.js';

export const safetensorsFormat: FormatMatch = {
  name: 'safetensors',
  // `{` after a little-endian length whose top bytes are zero (no text file has NUL bytes there).
  // A length that is too large or runs past the end is reported by open, not left unrecognized.
  match: (probe: Probe) => !probe.isDirectory && probe.head.length >= 9 && probe.head[8] === 0x7b && probe.head[6] === 0 && probe.head[7] === 0,
};
