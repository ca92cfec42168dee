import type { FormatMatch, Probe } from '../types.js';

/** True when a text's first section is `[net]` or `[network]`: a darknet cfg. */
function looksLikeCfg(head: string): boolean {
  for (const raw of head.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    return /^\[(net|network)\]$/i.test(line);
  }
  return false;
}

/** A cfg is a small text file; anything larger is not one. */
export const MAX_CFG_BYTES = 16 << 20;

/** Darknet: the model is opened by its `.cfg`. */
export const darknetFormat: FormatMatch = {
  name: 'darknet',
  match: (probe: Probe) => !probe.isDirectory && probe.size <= MAX_CFG_BYTES && looksLikeCfg(new TextDecoder().decode(probe.head)),
};
