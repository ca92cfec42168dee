import type { FormatMatch, Probe } from '../types.js';

export const GGUF_MAGIC = 0x46554747; // 'GGUF' little-endian

export const ggufFormat: FormatMatch = {
  name: 'gguf',
  match: (probe: Probe) => !probe.isDirectory && probe.head.length >= 4 && new DataView(probe.head.buffer, probe.head.byteOffset, 4).getUint32(0, true) === GGUF_MAGIC,
};
