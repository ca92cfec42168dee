import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { open } from '../src/index.js';
import { seededRandom } from '../src/core/random.js';
import { loadOutcome, runCli, tempDir } from './helpers.js';
import { refusal } from './refusal.js';

/**
 * OpenVINO IR: Const layers of the .xml located in the .bin. The fixture is a convolution whose
 * int8 weights are dequantized by Convert + Multiply, a float16 bias, a Reshape with an i64 shape
 * constant, and constants of the other element types, two of them sharing one range.
 */
interface Const { id: number; name: string; type: string; shape: number[]; offset: number; size: number }

const CONSTS: Const[] = [
  { id: 1, name: 'conv.weight', type: 'i8', shape: [2, 3, 1, 1], offset: 0, size: 6 },
  { id: 2, name: 'conv.scale', type: 'f32', shape: [2, 1, 1, 1], offset: 8, size: 8 },
  { id: 5, name: 'conv.bias', type: 'f16', shape: [1, 2, 1, 1], offset: 16, size: 4 },
  { id: 7, name: 'shape', type: 'i64', shape: [2], offset: 24, size: 16 },
  { id: 9, name: 'table', type: 'u8', shape: [4], offset: 40, size: 4 },
  { id: 10, name: 'table_again', type: 'u8', shape: [4], offset: 40, size: 4 },
  { id: 11, name: 'brain', type: 'bf16', shape: [], offset: 44, size: 2 },
];
const BIN_BYTES = 46;

function xml(consts: readonly Const[] = CONSTS, extra = ''): string {
  const layer = (id: number, name: string, type: string, inputs: number, data = '') => `
    <layer id="${id}" name="${name}" type="${type}" version="opset1">${data}
      ${inputs ? `<input>${Array.from({ length: inputs }, (_, i) => `<port id="${i}"/>`).join('')}</input>` : ''}
      <output><port id="${inputs}" precision="FP32"><dim>1</dim></port></output>
    </layer>`;
  const edge = (from: number, fromPort: number, to: number, toPort: number) => `<edge from-layer="${from}" from-port="${fromPort}" to-layer="${to}" to-port="${toPort}"/>`;
  return `<?xml version="1.0" ?>
<!-- written by hand for ckpt's tests -->
<net name="fixture" version="11">
  <layers>
    ${layer(0, 'input', 'Parameter', 0, '<data shape="1,3,4,4" element_type="f32"/>')}
    ${consts.map((c) => layer(c.id, c.name, 'Const', 0, `<data element_type="${c.type}" shape="${c.shape.join(',')}" offset="${c.offset}" size="${c.size}"/>`)).join('')}
    ${layer(3, 'dequantize/convert', 'Convert', 1)}
    ${layer(4, 'dequantize/scale', 'Multiply', 2)}
    ${layer(6, 'conv', 'Convolution', 2)}
    ${layer(8, 'bias_add &amp; reshape', 'Add', 2)}
    ${layer(12, 'reshape', 'Reshape', 2)}
    ${extra}
  </layers>
  <edges>
    ${edge(1, 0, 3, 0)}${edge(3, 1, 4, 0)}${edge(2, 0, 4, 1)}
    ${edge(0, 0, 6, 0)}${edge(4, 2, 6, 1)}
    ${edge(6, 2, 8, 0)}${edge(5, 0, 8, 1)}
    ${edge(8, 2, 12, 0)}${edge(7, 0, 12, 1)}
  </edges>
</net>
`;
}

function bin(): Buffer {
  return Buffer.from(Array.from({ length: BIN_BYTES }, (_, i) => (i * 37) & 0xff));
}

function model(text = xml(), data = bin(), dir = tempDir()): string {
  const file = path.join(dir, 'model.xml');
  fs.writeFileSync(file, text);
  fs.writeFileSync(path.join(dir, 'model.bin'), data);
  return file;
}


test('every Const is listed with its element type, shape and bytes; shared ranges read the same bytes', async () => {
  const dict = await open(model());
  try {
    assert.equal(dict.format, 'openvino');
    assert.deepEqual(dict.tensors.map((t) => [t.source, t.dtype, t.shape]), [
      ['conv.weight', 'int8', [2, 3, 1, 1]], ['conv.scale', 'float32', [2, 1, 1, 1]], ['conv.bias', 'float16', [1, 2, 1, 1]],
      ['shape', 'int64', [2]], ['table', 'uint8', [4]], ['table_again', 'uint8', [4]], ['brain', 'bfloat16', []],
    ]);
    const data = bin();
    for (const [i, t] of dict.tensors.entries()) assert.deepEqual([...await t.read()], [...data.subarray(CONSTS[i]!.offset, CONSTS[i]!.offset + CONSTS[i]!.size)], t.source);
    assert.deepEqual((dict.metadata.openvino as { sharedRanges: number }).sharedRanges, 1);
  } finally {
    await dict.close();
  }
});

test('roles come from the consuming layers: dequantized int8 weights, their scale and the bias after the convolution are weights, the Reshape shape a constant', async () => {
  const dict = await open(model());
  const roles = Object.fromEntries(dict.tensors.map((t) => [t.source, `${t.role}/${t.roleFrom}`]));
  await dict.close();
  assert.equal(roles['conv.weight'], 'weight/graph');
  assert.equal(roles['conv.scale'], 'weight/graph');
  assert.equal(roles['conv.bias'], 'weight/graph');
  assert.equal(roles['shape'], 'constant/graph');
});

test('bad IR is refused naming the file, the line or Const, and what was expected', async () => {
  const cases: [string, Buffer, RegExp][] = [
    [xml(CONSTS.map((c) => (c.name === 'shape' ? { ...c, size: 15 } : c))), bin(), /line \d+, Const 'shape': size 15 does not match int64 \[2\] \(16 bytes\)/],
    [xml(CONSTS.map((c) => (c.name === 'brain' ? { ...c, offset: 45 } : c))), bin(), /model\.bin: line \d+, Const 'brain' of model\.xml: range \[45, 47\) lies past the end of the file at 46/],
    [xml(), bin().subarray(0, 40), /range \[40, 44\) lies past the end of the file at 40 \(truncated\?\)/],
    [xml(CONSTS.map((c) => (c.name === 'table' ? { ...c, type: 'u1' } : c))), bin(), /Const 'table': element_type 'u1' is not supported/],
    [xml(CONSTS.map((c) => (c.name === 'table' ? { ...c, shape: [-4] } : c))), bin(), /shape '-4' is not a list of non-negative integers/],
    [xml().replace('<?xml version="1.0" ?>', '<?xml version="1.0" ?><!DOCTYPE net [<!ENTITY x "y">]>'), bin(), /DOCTYPE and entity declarations are not allowed/],
    [xml().slice(0, -40), bin(), /is not closed \(truncated\?\)/],
    [xml().replace('version="11"', 'version="7"'), bin(), /IR version '7' is not supported/],
    [xml().replace('from-layer="7"', 'from-layer="70"'), bin(), /edge 70 → 12 names a layer that does not exist/],
    [xml().replace('name="conv.bias"', 'name="conv.bias" name="again"'), bin(), /attribute name given twice/],
  ];
  for (const [text, data, message] of cases) {
    const r = await refusal(model(text, data));
    assert.equal(r.status, 3, r.message);
    assert.match(r.message, message);
  }
});

test('the .bin must be a regular file inside the model folder', async () => {
  const outside = model();
  const dir = tempDir();
  fs.writeFileSync(path.join(dir, 'model.xml'), xml());
  fs.symlinkSync(path.join(path.dirname(outside), 'model.bin'), path.join(dir, 'model.bin'));
  const linked = await refusal(path.join(dir, 'model.xml'));
  assert.equal(linked.status, 3);
  assert.match(linked.message, /weights file: file path 'model\.bin' is a symbolic link/);
  fs.rmSync(path.join(dir, 'model.bin'));
  assert.equal((await refusal(path.join(dir, 'model.xml'))).status, 4);
});

test('through the CLI: inspect lists it, convert writes the values, diff --values finds them equal', () => {
  const file = model();
  const out = path.join(tempDir(), 'model.safetensors');
  const r = runCli(['convert', file, out]);
  assert.equal(r.status, 0, r.stderr);
  const diff = runCli(['diff', '--values', file, out]);
  assert.equal(diff.status, 0, diff.stdout + diff.stderr);
});

test('mutated IR files each open or fail with exit 3/4, never a crash (fixed seed)', async () => {
  const next = seededRandom(11);
  const text = xml();
  for (let i = 0; i < 150; i++) {
    const chars = [...text];
    for (let e = 0; e < 1 + Math.floor(next() * 3); e++) {
      const at = Math.floor(next() * chars.length);
      const kind = next();
      if (kind < 0.4) chars.splice(at, 1 + Math.floor(next() * 10));
      else if (kind < 0.7) chars[at] = '<>"/=&0123456789-,'[Math.floor(next() * 18)]!;
      else chars.splice(at, 0, ...chars.slice(Math.floor(next() * chars.length), Math.floor(next() * chars.length)));
    }
    const file = model(chars.join(''), bin().subarray(0, Math.floor(next() * (BIN_BYTES + 1))));
    const outcome = await loadOutcome(file);
    assert.ok(outcome === 'ok' || outcome === 3 || outcome === 4, `${file}: ${outcome}`);
  }
});
