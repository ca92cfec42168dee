import type { FormatMatch, Probe } from '../types.js';

const HDF5_SIGNATURE = [0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a];

function hasHdf5Signature(bytes: Uint8Array, at = 0): boolean {
  return HDF5_SIGNATURE.every((b, i) => bytes[at + i] === b);
}

export const kerasFormat: FormatMatch = {
  name: 'keras',
  match: (probe: Probe) => {
    if (hasHdf5Signature(probe.head)) return true;
    // HDF5 allows the signature after a user block of 512, 1024, 2048… bytes.
    if (probe.file) {
      for (let at = 512; at + 8 <= Math.min(probe.size, 1 << 20); at *= 2) {
        if (hasHdf5Signature(probe.file.read(at, 8, 'HDF5 signature'))) return true;
      }
    }
    if (!probe.zipDirectory) return false;
    try {
      const names = probe.zipDirectory().map((e) => e.name);
      return names.includes('model.weights.h5') && names.includes('config.json');
    } catch {
      return false;
    }
  },
};
