import type { FormatMatch, Probe } from '../types.js';
import { hasNpyMagic } from './header.js';

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
