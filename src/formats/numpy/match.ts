import type { FormatMatch, Probe } from '../types.js';

export const NPY_MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY

export function hasNpyMagic(bytes: Uint8Array): boolean {
  return NPY_MAGIC.every((b, i) => bytes[i] === b);
}

/** NumPy `.npy` (one array, named after the file) and `.npz` (a ZIP of `.npy` members). */
export const numpyFormat: FormatMatch = {
  name: 'numpy',
  match: (probe: Probe) => {
    if (hasNpyMagic(probe.head)) return true;
    if (!probe.zipDirectory) return false;
    try {
      const entries = probe.zipDirectory();
      return entries.length > 0 && entries.every((e) => e.name.endsWith('.npy'));
    } catch {
      // A damaged archive (truncated, no directory): say what is wrong rather than "unrecognized".
      return true;
    }
  },
};
