import type { FormatMatch, Probe } from '../types.js';

export const openvinoFormat: FormatMatch = {
  name: 'openvino',
  match: (probe: Probe) => !probe.isDirectory && /^\s*(<\?xml[^>]*\?>\s*)?(<!--[\s\S]*?-->\s*|<!DOCTYPE[^[>]*(\[[\s\S]*?\])?\s*>\s*)*<net\s[^>]*\bversion\s*=/.test(new TextDecoder().decode(probe.head)),
};
