import type { ZipEntry } from '../../core/zip.js';
import type { FormatMatch, Probe } from '../types.js';

/** Pickle 1 of a legacy file: the magic number 0x1950a86a20f9469cfc6c as protocol-2 LONG1. */
const LEGACY_HEAD = [0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19];

export const hasLegacyMagic = (head: Uint8Array) => LEGACY_HEAD.every((b, i) => head[i] === b);
/** torch < 0.4 wrote a tar archive (`sys_info`, `pickle`, `storages`, `tensors` members). */
export const isTar = (head: Uint8Array) => head.length > 262 && new TextDecoder().decode(head.subarray(257, 262)) === 'ustar';

export function dataPickles(entries: readonly ZipEntry[]): ZipEntry[] {
  return entries.filter((e) => e.name === 'data.pkl' || /^[^/]+\/data\.pkl$/.test(e.name));
}

export function isTorchScript(entries: readonly ZipEntry[], prefix: string): boolean {
  return entries.some((e) => e.name === `${prefix}constants.pkl` || e.name.startsWith(`${prefix}code/`));
}

export const pytorchFormat: FormatMatch = {
  name: 'pytorch',
  match: (probe: Probe) => {
    if (probe.isDirectory) return false;
    if (hasLegacyMagic(probe.head)) return true;
    if (isTar(probe.head)) return ['sys_info', 'pickle', 'storages', 'tensors'].includes(new TextDecoder().decode(probe.head.subarray(0, 100)).replace(/\0.*$/s, ''));
    if (!probe.zipDirectory) return false;
    try {
      return dataPickles(probe.zipDirectory()).length > 0;
    } catch {
      return false;
    }
  },
};

/** TorchScript archives (torch.jit.save): the state dict of the scripted module, read like torch.save zips. */
export const torchscriptFormat: FormatMatch = {
  name: 'torchscript',
  match: (probe: Probe) => {
    if (probe.isDirectory || !probe.zipDirectory) return false;
    try {
      const entries = probe.zipDirectory();
      const pickles = dataPickles(entries);
      return pickles.length === 1 && isTorchScript(entries, pickles[0]!.name.slice(0, -'data.pkl'.length));
    } catch {
      return false;
    }
  },
};
