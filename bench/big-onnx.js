// Writes ONNX models of a given size for the benchmarks, by hand (streaming, never in memory):
// 64 MiB float32 initializers `layers.N.weight` plus 200 small `layers.N.bias`.
import * as fs from 'node:fs';
import * as path from 'node:path';

const CHUNK = 64 * 1024 * 1024;

export function varint(n) {
  const out = [];
  let v = BigInt(n);
  while (v >= 0x80n) {
    out.push(Number(v & 0x7fn) | 0x80);
    v >>= 7n;
  }
  out.push(Number(v));
  return Buffer.from(out);
}
export const tag = (field, wire) => varint(field * 8 + wire);
export const bytesField = (field, payloadLength) => Buffer.concat([tag(field, 2), varint(payloadLength)]);
export const stringField = (field, text) => Buffer.concat([bytesField(field, Buffer.byteLength(text)), Buffer.from(text)]);

/** TensorProto header (dims, data_type, name) and the raw_data field header; the payload follows. */
function tensorHead(name, elements) {
  const head = Buffer.concat([tag(1, 0), varint(elements), tag(2, 0), varint(1), stringField(8, name), bytesField(9, elements * 4)]);
  return { head, length: head.length + elements * 4 };
}

export function writeBigOnnx(file, totalMiB, fill = 0x3f) {
  const tensors = [];
  for (let i = 0; i * 64 < totalMiB; i++) tensors.push({ name: `layers.${i}.weight`, elements: CHUNK / 4 });
  for (let i = 0; i < 200; i++) tensors.push({ name: `layers.${i}.bias`, elements: 256 });
  const heads = tensors.map((t) => tensorHead(t.name, t.elements));
  const graphLength = heads.reduce((n, h) => n + bytesField(5, h.length).length + h.length, 0);
  const fd = fs.openSync(file, 'w');
  fs.writeSync(fd, Buffer.concat([tag(1, 0), varint(8), stringField(2, 'ckpt-bench'), bytesField(7, graphLength)]));
  const payload = Buffer.alloc(CHUNK, fill);
  for (const h of heads) {
    fs.writeSync(fd, Buffer.concat([bytesField(5, h.length), h.head]));
    let left = h.length - h.head.length;
    while (left > 0) left -= fs.writeSync(fd, payload, 0, Math.min(left, payload.length));
  }
  fs.writeSync(fd, Buffer.concat([tag(8, 2), varint(2), tag(2, 0), varint(17)]));
  fs.closeSync(fd);
  return tensors.length;
}

/** Two such models of the same layout, dir/a.onnx and dir/b.onnx, whose payloads differ; returns their paths. */
export function writeOnnxPair(dir, totalMiB) {
  const a = path.join(dir, 'a.onnx');
  const b = path.join(dir, 'b.onnx');
  writeBigOnnx(a, totalMiB, 0x3f);
  writeBigOnnx(b, totalMiB, 0x3e);
  return { a, b };
}

const message = (field, ...parts) => {
  const body = Buffer.concat(parts);
  return Buffer.concat([bytesField(field, body.length), body]);
};
const varintField = (field, value) => Buffer.concat([tag(field, 0), varint(value)]);
/** ValueInfoProto of a float32 [1, width] tensor. */
const floatRow = (field, name, width) => message(field, stringField(1, name), message(2, message(1, varintField(1, 1), message(2, message(1, varintField(1, 1)), message(1, varintField(1, width))))));

/**
 * A runnable model: x [1, widths[0]] through one MatMul per layer by a square widths[i] × widths[i]
 * weight named name(i), every value fill(i) (consecutive widths must be equal where a layer follows
 * another of its width: a chain of blocks). Streamed, never held in memory.
 */
export function writeMatMulChain(file, { widths, name, fill }) {
  const nodes = [];
  let x = 'x';
  widths.forEach((_, i) => {
    nodes.push(message(1, stringField(1, x), stringField(1, name(i)), stringField(2, `h${i}`), stringField(3, `layer${i}.MatMul`), stringField(4, 'MatMul')));
    x = `h${i}`;
  });
  const head = Buffer.concat([...nodes, stringField(2, 'chain'), floatRow(11, 'x', widths[0]), floatRow(12, x, widths[widths.length - 1])]);
  const initHead = (i) => Buffer.concat([varintField(1, widths[i]), varintField(1, widths[i]), varintField(2, 1), stringField(8, name(i)), bytesField(9, widths[i] * widths[i] * 4)]);
  const initLength = (i) => initHead(i).length + widths[i] * widths[i] * 4;
  const graphLength = head.length + widths.reduce((n, _, i) => n + bytesField(5, initLength(i)).length + initLength(i), 0);
  const fd = fs.openSync(file, 'w');
  fs.writeSync(fd, Buffer.concat([varintField(1, 8), stringField(2, 'ckpt-bench'), message(8, varintField(2, 17)), bytesField(7, graphLength), head]));
  widths.forEach((width, i) => {
    fs.writeSync(fd, Buffer.concat([bytesField(5, initLength(i)), initHead(i)]));
    fs.writeSync(fd, Buffer.from(new Float32Array(width * width).fill(fill(i)).buffer));
  });
  fs.closeSync(fd);
}
