import type { FormatMatch, Probe } from '../types.js';
import { looksLikeCfg } from './cfg.js';

/** A cfg is a small text file; anything larger is not one. */
export const MAX_CFG_BYTES = 16 << 20;

/** Darknet: the model is opened by its `.cfg`. */
export const darknetFormat: FormatMatch = {
  name: 'darknet',
  match: (probe: Probe) => !probe.isDirectory && probe.size <= MAX_CFG_BYTES && looksLikeCfg(new TextDecoder().decode(probe.head)),
};
