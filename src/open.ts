import { invalidInput } from './core/errors.js';
import type { OpenOptions, StateDict } from './core/statedict.js';
import { READERS } from './formats/index.js';
import { withProbe } from './formats/probe.js';

/** Which reader recognizes this file or folder from its content; undefined when none does. */
export function detectFormat(path: string): string | undefined {
  return withProbe(path, (probe) => READERS.find((r) => r.match(probe))?.name);
}

/**
 * Opens a checkpoint and returns its normalized state dict. The format comes from the content
 * (magic bytes, structure), never from the file name. Only metadata is read here; each tensor's
 * values are read when its `read()` is called.
 */
export async function open(path: string, options: OpenOptions = {}): Promise<StateDict> {
  const reader = withProbe(path, (probe) => READERS.find((r) => r.match(probe)));
  if (!reader) {
    throw invalidInput(path, undefined, `unrecognized format; expected one of: ${READERS.map((r) => r.name).join(', ')}`, 'unknown-format');
  }
  return reader.open(path, options);
}
