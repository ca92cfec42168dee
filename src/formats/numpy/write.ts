import { writeAll, writeAtomic, yieldToSignals } from '../../core/atomic.js';
import { usageError } from '../../core/errors.js';
import { ZipWriter } from '../../core/zip.js';
import type { FormatWriter, OutputTensor } from '../writers.js';
import { descrOf, encodeNpyHeader } from './header.js';

function checkStorable(tensors: readonly OutputTensor[]): void {
  const bad = tensors.find((t) => !descrOf(t.tensor.dtype));
  if (bad) throw usageError(`NumPy cannot store '${bad.name}' (${bad.tensor.dtype}); numpy has no such dtype`);
}

/** `.npz`: one stored `.npy` member per tensor, data 64-byte aligned, written one tensor at a time. */
export async function writeNpz(out: string, tensors: readonly OutputTensor[]): Promise<void> {
  checkStorable(tensors);
  await writeAtomic(out, async (fd) => {
    const zip = new ZipWriter((bytes) => writeAll(fd, bytes), 64);
    for (const t of tensors) {
      await yieldToSignals();
      zip.add(`${t.name}.npy`, [encodeNpyHeader(t.tensor.dtype, t.tensor.shape), await t.tensor.read()]);
    }
    zip.finish();
  });
}

/** `.npy`: exactly one tensor. */
export async function writeNpy(out: string, tensors: readonly OutputTensor[]): Promise<void> {
  checkStorable(tensors);
  if (tensors.length !== 1) throw usageError(`a .npy file holds one array; ${tensors.length} tensors to write (use .npz)`);
  const [t] = tensors;
  await writeAtomic(out, async (fd) => {
    writeAll(fd, encodeNpyHeader(t!.tensor.dtype, t!.tensor.shape));
    await yieldToSignals();
    writeAll(fd, await t!.tensor.read());
  });
}

export const numpyWriter: FormatWriter = {
  format: 'numpy',
  extensions: ['.npz', '.npy'],
  async write(out, tensors) {
    if (out.toLowerCase().endsWith('.npy')) await writeNpy(out, tensors);
    else await writeNpz(out, tensors);
    return { format: 'numpy', notes: [] };
  },
};
