import { open } from '../open.js';
import { ExitCode, invalidInput, usageError } from '../core/errors.js';
import { dtypeBits, sameShape } from '../core/dtype.js';
import { transposeBytes } from '../core/decode.js';
import type { TensorInfo } from '../core/statedict.js';
import { alignTensors } from '../ops/align.js';
import { rewriteOnnx, type TensorEdit } from '../formats/onnx/write.js';
import { newTable } from '../cli/format.js';

/**
 * Puts the weights of `input` into the ONNX model `graph`, writing `output`: tensors are aligned
 * as `diff` aligns them, layout transposes (Keras [in,out] → ONNX [out,in], HWIO → OIHW) are
 * applied, and graph weights with no counterpart keep their values. Dtypes must agree.
 */
export async function convertIntoOnnx(input: string, graph: string, output: string, json: boolean): Promise<number> {
  const source = await open(input);
  const target = await open(graph);
  try {
    if (target.format !== 'onnx') throw usageError(`--graph ${graph}: expected an ONNX model, found ${target.format}`);
    const alignment = alignTensors(source.tensors, target.tensors);
    const edits = new Map<TensorInfo, TensorEdit>();
    const rows: { target: string; source: string; note: string }[] = [];
    for (const pair of alignment.pairs) {
      const { a, b, permutation } = pair;
      if (!sameShape(a.shape, b.shape) && !permutation) continue;
      if (a.dtype !== b.dtype) throw invalidInput(input, a.source, `dtype ${a.dtype} does not match ${b.dtype} of '${b.source}' in ${graph}`);
      const width = dtypeBits(a.dtype) / 8;
      edits.set(b, {
        kind: 'replace', dtype: b.dtype, shape: b.shape,
        read: async () => (permutation ? transposeBytes(await a.read(), a.shape, permutation, width) : a.read()),
      });
      rows.push({ target: b.name, source: a.name, note: permutation ? `transposed (${permutation.join(',')})` : '' });
    }
    if (edits.size === 0) throw invalidInput(input, undefined, `no tensor matches a weight of ${graph}`);
    await rewriteOnnx(target.path, edits, output);
    const kept = target.tensors.filter((t) => !edits.has(t)).map((t) => t.name);
    const unused = source.tensors.filter((t) => !rows.some((r) => r.source === t.name)).map((t) => t.name);
    if (json) process.stdout.write(`${JSON.stringify({ input, graph, output, replaced: rows, keptFromGraph: kept, unusedFromInput: unused, ambiguous: alignment.ambiguous }, null, 2)}\n`);
    else {
      const table = newTable(['ONNX weight', 'from', 'note']);
      table.push(...rows.map((r) => [r.target, r.source, r.note]));
      const lines = [`convert: ${input} → ${output} (weights of ${graph}): replaced ${rows.length} of ${target.tensors.length}`, table.toString()];
      if (kept.length) lines.push(`kept from the graph (no match): ${kept.join(', ')}`);
      if (unused.length) lines.push(`unused from the input: ${unused.join(', ')}`);
      process.stdout.write(`${lines.join('\n')}\n`);
    }
    return ExitCode.ok;
  } finally {
    await source.close();
    await target.close();
  }
}
