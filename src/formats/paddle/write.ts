import { writeAll, writeAtomic, yieldToSignals } from '../../core/atomic.js';
import { usageError } from '../../core/errors.js';
import { PickleWriter } from '../../core/pickle-write.js';
import type { StateDict } from '../../core/statedict.js';
import { descrOf } from '../numpy/header.js';
import { nestNames, type NameTree } from '../../core/names.js';
import type { FormatWriter, OutputTensor } from '../writers.js';

/** The dict key under which Paddle keeps structured name → parameter name. */
const STRUCTURED_KEY = 'StructuredToParameterName@@';

/** The source's structured-name map, kept for the tensors written under their own names. */
function structuredNames(tensors: readonly OutputTensor[], source: StateDict): [string, string][] {
  const map = source.format === 'paddle' ? source.metadata.structuredToParameterName : undefined;
  if (typeof map !== 'object' || map === null) return [];
  const entries = map as Record<string, unknown>;
  return tensors
    .filter((t) => t.name === t.tensor.source && Object.hasOwn(entries, t.name) && typeof entries[t.name] === 'string')
    .map((t) => [t.name, entries[t.name] as string]);
}

/** `numpy.dtype(code, False, True)` with its BUILD state `(3, '<' or '|', …)`, as numpy pickles a dtype. */
function pickleDtype(p: PickleWriter, descr: string): void {
  p.global('numpy', 'dtype');
  p.value([descr.slice(1), false, true]);
  p.reduce();
  p.value([3, descr[0]!, null, null, null, -1, -1, 0]);
  p.build();
}

/**
 * `.pdparams` as `paddle.save` writes a state dict: one pickle (protocol 4, unframed) of a dict
 * name → numpy array, each array pickled as numpy does (`_reconstruct` then BUILD with the raw
 * bytes). Written piece by piece, one tensor's bytes in memory at a time.
 */
export async function writePaddle(out: string, tensors: readonly OutputTensor[], source: StateDict): Promise<void> {
  const bad = tensors.find((t) => !descrOf(t.tensor.dtype));
  if (bad) throw usageError(`Paddle cannot store '${bad.name}' (${bad.tensor.dtype}); numpy has no such dtype`);
  const structured = structuredNames(tensors, source);
  // Names with `/` (a nested source such as a training dict) go back into nested dicts.
  const tree = nestNames(tensors, (t) => t.name);
  await writeAtomic(out, async (fd) => {
    const p = new PickleWriter((bytes) => writeAll(fd, bytes));
    const array = async (t: OutputTensor) => {
      await yieldToSignals();
      const bytes = await t.tensor.read();
      if (bytes.length !== t.tensor.byteLength) throw new Error(`'${t.name}' read ${bytes.length} bytes, expected ${t.tensor.byteLength}`);
      p.global('numpy.core.multiarray', '_reconstruct');
      p.tuple(3, () => {
        p.global('numpy', 'ndarray');
        p.value([0]);
        p.bytes(Buffer.from('b'));
      });
      p.reduce();
      p.tuple(5, () => {
        p.values(1, t.tensor.shape);
        pickleDtype(p, descrOf(t.tensor.dtype)!);
        p.value(false);
        p.bytesHeader(bytes.length);
        p.raw(bytes);
      });
      p.build();
    };
    const dict = async (node: NameTree<OutputTensor>, names: [string, string][]) => {
      p.emptyDict();
      const next = p.items(node.size + (names.length ? 1 : 0));
      for (const [key, child] of node) {
        p.unicode(key);
        if (child instanceof Map) await dict(child, []);
        else await array(child.leaf);
        next();
      }
      if (names.length) {
        p.unicode(STRUCTURED_KEY);
        p.emptyDict();
        const nextName = p.items(names.length);
        for (const [name, parameter] of names) {
          p.unicode(name);
          p.unicode(parameter);
          nextName();
        }
        next();
      }
    };
    p.proto(4);
    await dict(tree, structured);
    p.stop();
  });
}

export const paddleWriter: FormatWriter = {
  format: 'paddle',
  extensions: ['.pdparams'],
  async write(out, tensors, source) {
    await writePaddle(out, tensors, source);
    return { format: 'paddle', notes: [] };
  },
};
