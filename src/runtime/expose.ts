import * as fs from 'node:fs';
import * as path from 'node:path';
import { RandomAccessFile } from '../core/file.js';
import { fields, WIRE_BYTES, WIRE_VARINT, type Field } from '../formats/onnx/wire.js';
import { rewriteOnnx } from '../formats/onnx/write.js';

/**
 * A temporary copy of an ONNX model that exposes intermediate tensors as extra graph outputs, for
 * `compare --bisect`. Copying a 1 GiB model for every batch costs more than running it, so where
 * the file can be hard-linked into the temporary folder, the copy is a small graph whose large
 * initializers point into that link as external data (onnxruntime reads them in place); otherwise,
 * a full rewrite.
 */
export async function exposingModel(model: string, names: readonly string[], folder: string, stem: string): Promise<string> {
  const out = path.join(folder, `${stem}.onnx`);
  const link = `${stem}.weights`;
  if (linked(model, path.join(folder, link))) {
    const graph = externalizedGraph(model, link, names);
    if (graph) {
      fs.writeFileSync(out, graph);
      return out;
    }
  }
  await rewriteOnnx(model, new Map(), out, { extraOutputs: names });
  return out;
}

/** A hard link (onnxruntime refuses external data outside the model's folder, symlinks included). */
function linked(model: string, link: string): boolean {
  if (fs.existsSync(link)) return true;
  try {
    fs.linkSync(model, link);
    return true;
  } catch {
    return false; // another file system, or hard links not allowed: rewrite instead
  }
}

const MODEL_GRAPH = 7;
const GRAPH = { initializer: 5, output: 12 };
const TENSOR = { rawData: 9, externalData: 13, dataLocation: 14 };
/** Initializers smaller than this stay inline: pointing at them saves nothing. */
const INLINE_BELOW = 4096;

/**
 * The model's bytes with each large raw_data initializer of the main graph replaced by a reference
 * (offset, length) into `link`, and `names` added as graph outputs; undefined when the model
 * already keeps data outside (its references would not resolve from the temporary folder).
 */
function externalizedGraph(model: string, link: string, names: readonly string[]): Uint8Array | undefined {
  const file = RandomAccessFile.open(model);
  try {
    const parts: Uint8Array[] = [];
    for (const f of fields(file, { start: 0, end: file.size }, 'model')) {
      if (f.no !== MODEL_GRAPH || f.wire !== WIRE_BYTES) {
        parts.push(file.read(f.at, f.end - f.at));
        continue;
      }
      const graph: Uint8Array[] = [];
      for (const g of fields(file, f, 'graph')) {
        const tensor = g.no === GRAPH.initializer && g.wire === WIRE_BYTES ? externalTensor(file, g, link) : file.read(g.at, g.end - g.at);
        if (!tensor) return undefined;
        graph.push(tensor);
      }
      for (const name of names) graph.push(lengthDelimited(GRAPH.output, lengthDelimited(1, Buffer.from(name))));
      parts.push(lengthDelimited(MODEL_GRAPH, Buffer.concat(graph)));
    }
    return Buffer.concat(parts);
  } finally {
    file.close();
  }
}

/** The initializer field, with its raw_data as an external reference when large; undefined when already external. */
function externalTensor(file: RandomAccessFile, initializer: Field, link: string): Uint8Array | undefined {
  const kept: Uint8Array[] = [];
  let raw: Field | undefined;
  for (const t of fields(file, initializer, 'initializer')) {
    if (t.no === TENSOR.dataLocation && t.varint === 1n) return undefined;
    if (t.no === TENSOR.rawData && t.wire === WIRE_BYTES) raw = t;
    else kept.push(file.read(t.at, t.end - t.at));
  }
  if (!raw || raw.end - raw.start < INLINE_BELOW) return file.read(initializer.at, initializer.end - initializer.at);
  const entry = (key: string, value: string) => lengthDelimited(TENSOR.externalData, Buffer.concat([lengthDelimited(1, Buffer.from(key)), lengthDelimited(2, Buffer.from(value))]));
  const tensor = Buffer.concat([
    ...kept,
    entry('location', link), entry('offset', String(raw.start)), entry('length', String(raw.end - raw.start)),
    varint(TENSOR.dataLocation * 8 + WIRE_VARINT), varint(1),
  ]);
  return lengthDelimited(GRAPH.initializer, tensor);
}

function lengthDelimited(field: number, payload: Uint8Array): Uint8Array {
  return Buffer.concat([varint(field * 8 + WIRE_BYTES), varint(payload.length), payload]);
}

function varint(value: number): Uint8Array {
  const out: number[] = [];
  let v = value;
  while (v >= 0x80) {
    out.push((v % 0x80) | 0x80);
    v = Math.floor(v / 0x80);
  }
  out.push(v);
  return Uint8Array.from(out);
}
