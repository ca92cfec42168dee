import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { open, CkptError } from '../src/index.js';
import { float32Tensor, tensorProto } from '../src/formats/onnx/build.js';
import { encodeRaw, f32, mlpModel, modelWith, writeModel } from './onnx-fixtures.js';
import { tempDir } from './helpers.js';

const sha = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');
const bytesOf = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

async function openBytes(bytes: Uint8Array, name = 'model.onnx', dir = tempDir()) {
  return open(writeModel(dir, name, bytes));
}

describe('ONNX reader: where tensors live', () => {
  test('initializers are listed in file order with canonical names, dtypes, shapes and sizes', async () => {
    const dict = await openBytes(mlpModel());
    assert.equal(dict.format, 'onnx');
    assert.deepEqual(dict.tensors.map((t) => [t.name, t.dtype, t.shape, t.byteLength, t.origin]), [
      ['fc1.weight', 'float32', [3, 2], 24, 'initializer'],
      ['fc1.bias', 'float32', [3], 12, 'initializer'],
      ['head.weight', 'float32', [3, 2], 24, 'initializer'],
      ['head.bias', 'float32', [2], 8, 'initializer'],
    ]);
    assert.deepEqual(await dict.tensors[0]!.read(), bytesOf(f32(1, 2, 3, 4, 5, 6)));
    await dict.close();
  });

  test('layout hints come from the consuming node: Gemm transB=1 is OI, transB=0 is IO', async () => {
    const dict = await openBytes(mlpModel());
    assert.equal(dict.tensors.find((t) => t.name === 'fc1.weight')!.layout, 'OI');
    assert.equal(dict.tensors.find((t) => t.name === 'head.weight')!.layout, 'IO');
    assert.equal(dict.tensors.find((t) => t.name === 'head.bias')!.layout, undefined);
    await dict.close();
  });

  test('metadata: producer, IR version, opsets, graph inputs without initializers', async () => {
    const dict = await openBytes(mlpModel());
    assert.equal(dict.metadata.irVersion, 8);
    assert.equal(dict.metadata.producerName, 'ckpt');
    assert.deepEqual(dict.metadata.opsetImport, { '': 17 });
    assert.deepEqual(dict.metadata.inputs, [{ name: 'x', dtype: 'float32', shape: ['batch', 2] }]);
    await dict.close();
  });

  test('Constant nodes in every form: value, value_float(s), value_int(s), value_string(s)', async () => {
    const T = 1; // AttributeProto.AttributeType.FLOAT etc. are set by the builder from the value
    void T;
    const model = encodeRaw({
      irVersion: 8,
      opsetImport: [{ domain: '', version: 17 }],
      graph: {
        name: 'constants',
        node: [
          { opType: 'Constant', output: ['c.tensor'], attribute: [{ name: 'value', type: 4, t: float32Tensor('ignored', [2], f32(1, 2)) }] },
          { opType: 'Constant', output: ['c.float'], attribute: [{ name: 'value_float', type: 1, f: 0.5 }] },
          { opType: 'Constant', output: ['c.floats'], attribute: [{ name: 'value_floats', type: 6, floats: [1, 2, 3] }] },
          { opType: 'Constant', output: ['c.int'], attribute: [{ name: 'value_int', type: 2, i: -7 }] },
          { opType: 'Constant', output: ['c.ints'], attribute: [{ name: 'value_ints', type: 7, ints: [1, -2, 300] }] },
          { opType: 'Constant', output: ['c.string'], attribute: [{ name: 'value_string', type: 3, s: new TextEncoder().encode('hi') }] },
          { opType: 'Constant', output: ['c.strings'], attribute: [{ name: 'value_strings', type: 8, strings: [new TextEncoder().encode('a'), new TextEncoder().encode('bc')] }] },
        ],
      },
    });
    const dict = await openBytes(model);
    const by = Object.fromEntries(dict.tensors.map((t) => [t.source, t]));
    assert.deepEqual(dict.tensors.map((t) => [t.source, t.dtype, t.shape, t.origin]), [
      ['c.tensor', 'float32', [2], 'constant'],
      ['c.float', 'float32', [], 'constant'],
      ['c.floats', 'float32', [3], 'constant'],
      ['c.int', 'int64', [], 'constant'],
      ['c.ints', 'int64', [3], 'constant'],
      ['c.string', 'string', [], 'constant'],
      ['c.strings', 'string', [2], 'constant'],
    ]);
    assert.deepEqual(await by['c.tensor']!.read(), bytesOf(f32(1, 2)));
    assert.deepEqual(await by['c.float']!.read(), bytesOf(f32(0.5)));
    assert.deepEqual(await by['c.floats']!.read(), bytesOf(f32(1, 2, 3)));
    assert.deepEqual(await by['c.int']!.read(), bytesOf(new BigInt64Array([-7n])));
    assert.deepEqual(await by['c.ints']!.read(), bytesOf(new BigInt64Array([1n, -2n, 300n])));
    assert.deepEqual((await by['c.strings']!.readStrings()).map((b) => new TextDecoder().decode(b)), ['a', 'bc']);
    await assert.rejects(by['c.strings']!.read(), CkptError);
    await dict.close();
  });

  test('tensors inside nested If branches at any depth; equal names in sibling branches stay apart', async () => {
    const branch = (value: number, inner?: object) => ({
      name: `branch_${value}`,
      initializer: [float32Tensor('w', [1], f32(value))],
      node: inner ? [inner] : [],
      output: [{ name: 'w' }],
    });
    const innerIf = { opType: 'If', name: 'inner_if', input: ['cond'], output: ['z'], attribute: [
      { name: 'then_branch', type: 5, g: { name: 'deep', initializer: [float32Tensor('deep.w', [1], f32(9))] } },
    ] };
    const model = encodeRaw({
      irVersion: 8,
      opsetImport: [{ domain: '', version: 17 }],
      graph: {
        name: 'outer',
        initializer: [float32Tensor('top', [1], f32(0))],
        node: [{ opType: 'If', name: 'if0', input: ['cond'], output: ['y'], attribute: [
          { name: 'then_branch', type: 5, g: branch(1, innerIf) },
          { name: 'else_branch', type: 5, g: branch(2) },
        ] }],
      },
    });
    const dict = await openBytes(model);
    assert.deepEqual(dict.tensors.map((t) => [t.name, t.source]), [
      ['top', 'top'],
      ['w', 'w'],
      ['deep.w', 'deep.w'],
      ['if0.else_branch.w', 'w'],
    ]);
    assert.deepEqual(await dict.tensors[3]!.read(), bytesOf(f32(2)));
    await dict.close();
  });

  test('sparse initializers are listed with their dense shape and read densified', async () => {
    const model = encodeRaw({
      irVersion: 8,
      opsetImport: [{ domain: '', version: 17 }],
      graph: {
        name: 'sparse',
        sparseInitializer: [{
          values: float32Tensor('sp', [2], f32(5, 7)),
          indices: tensorProto('sp_idx', 'int64', [2, 2], bytesOf(new BigInt64Array([0n, 1n, 2n, 0n]))),
          dims: [3, 2],
        }],
      },
    });
    const dict = await openBytes(model);
    const [t] = dict.tensors;
    assert.deepEqual([t!.name, t!.dtype, t!.shape, t!.byteLength, t!.origin], ['sp', 'float32', [3, 2], 24, 'sparse_initializer']);
    assert.deepEqual(await t!.read(), bytesOf(f32(0, 5, 0, 0, 7, 0)));
    await dict.close();
  });

  test('Constants inside functions are listed', async () => {
    const model = encodeRaw({
      irVersion: 8,
      opsetImport: [{ domain: '', version: 17 }],
      graph: { name: 'g' },
      functions: [{ name: 'scale', domain: 'local', node: [
        { opType: 'Constant', output: ['scale.k'], attribute: [{ name: 'value', type: 4, t: float32Tensor('k', [1], f32(3)) }] },
      ] }],
    });
    const dict = await openBytes(model);
    assert.deepEqual(dict.tensors.map((t) => t.source), ['scale.k']);
    await dict.close();
  });
});

describe('ONNX reader: dtypes', () => {
  // Every TensorProto data type, through raw_data, with the bytes read back unchanged.
  const cases: [number, string, number[], number[]][] = [
    [1, 'float32', [2], [0, 0, 128, 63, 0, 0, 0, 64]],
    [2, 'uint8', [3], [1, 2, 255]],
    [3, 'int8', [2], [0xff, 1]],
    [4, 'uint16', [1], [1, 2]],
    [5, 'int16', [1], [0xfe, 0xff]],
    [6, 'int32', [1], [1, 0, 0, 0]],
    [7, 'int64', [1], [1, 0, 0, 0, 0, 0, 0, 0]],
    [9, 'bool', [2], [1, 0]],
    [10, 'float16', [2], [0x00, 0x3c, 0x00, 0xc0]],
    [11, 'float64', [1], [0, 0, 0, 0, 0, 0, 0xf0, 0x3f]],
    [12, 'uint32', [1], [1, 0, 0, 0]],
    [13, 'uint64', [1], [1, 0, 0, 0, 0, 0, 0, 0]],
    [14, 'complex64', [1], [0, 0, 128, 63, 0, 0, 0, 64]],
    [15, 'complex128', [1], [0, 0, 0, 0, 0, 0, 0xf0, 0x3f, 0, 0, 0, 0, 0, 0, 0, 0x40]],
    [16, 'bfloat16', [2], [0x80, 0x3f, 0x00, 0x40]],
    [17, 'float8e4m3fn', [2], [0x38, 0x40]],
    [18, 'float8e4m3fnuz', [1], [0x40]],
    [19, 'float8e5m2', [1], [0x3c]],
    [20, 'float8e5m2fnuz', [1], [0x40]],
    [21, 'uint4', [3], [0x21, 0x03]],
    [22, 'int4', [4], [0xf1, 0x7e]],
    [23, 'float4e2m1', [2], [0x21]],
    [24, 'float8e8m0', [1], [127]],
    [25, 'uint2', [5], [0b11100100, 0b01]],
    [26, 'int2', [4], [0b11011000]],
  ];
  for (const [number, dtype, shape, raw] of cases) {
    test(`data_type ${number} is ${dtype}, ${raw.length} raw bytes for shape [${shape}]`, async () => {
      const dict = await openBytes(modelWith([{ name: 't', dataType: number, dims: shape, rawData: new Uint8Array(raw) }]));
      const [t] = dict.tensors;
      assert.equal(t!.dtype, dtype);
      assert.equal(t!.byteLength, raw.length);
      assert.deepEqual(await t!.read(), new Uint8Array(raw));
      await dict.close();
    });
  }

  test('typed fields decode to the same bytes as raw_data', async () => {
    const dict = await openBytes(modelWith([
      { name: 'f32', dataType: 1, dims: [2], floatData: [1, 2] },
      { name: 'f16', dataType: 10, dims: [2], int32Data: [0x3c00, 0xc000] },
      { name: 'i8', dataType: 3, dims: [2], int32Data: [-1, 1] },
      { name: 'i4', dataType: 22, dims: [3], int32Data: [0xf1, 0x07] },
      { name: 'i64', dataType: 7, dims: [2], int64Data: [-2, 3] },
      { name: 'u32', dataType: 12, dims: [1], uint64Data: [4000000000] },
      { name: 'f64', dataType: 11, dims: [1], doubleData: [1] },
      { name: 'c64', dataType: 14, dims: [1], floatData: [1, 2] },
      { name: 'b', dataType: 9, dims: [2], int32Data: [1, 0] },
      { name: 's', dataType: 8, dims: [2], stringData: [new TextEncoder().encode('x'), new TextEncoder().encode('yz')] },
    ]));
    const read = async (name: string) => [...(await dict.tensors.find((t) => t.name === name)!.read())];
    assert.deepEqual(await read('f32'), [...bytesOf(f32(1, 2))]);
    assert.deepEqual(await read('f16'), [0x00, 0x3c, 0x00, 0xc0]);
    assert.deepEqual(await read('i8'), [0xff, 0x01]);
    assert.deepEqual(await read('i4'), [0xf1, 0x07]);
    assert.deepEqual(await read('i64'), [...bytesOf(new BigInt64Array([-2n, 3n]))]);
    assert.deepEqual(await read('u32'), [...bytesOf(new Uint32Array([4000000000]))]);
    assert.deepEqual(await read('f64'), [...bytesOf(new Float64Array([1]))]);
    assert.deepEqual(await read('c64'), [...bytesOf(f32(1, 2))]);
    assert.deepEqual(await read('b'), [1, 0]);
    const s = dict.tensors.find((t) => t.name === 's')!;
    assert.equal(s.byteLength, 3);
    await dict.close();
  });

  test('an empty tensor (dims [0]) without any data field is valid, as paddle2onnx writes it', async () => {
    const dict = await openBytes(modelWith([{ name: 'empty', dataType: 7, dims: [0] }]));
    assert.deepEqual([dict.tensors[0]!.shape, dict.tensors[0]!.byteLength], [[0], 0]);
    await dict.close();
  });
});

describe('ONNX reader: external data', () => {
  const external = (location: string, extra: Record<string, string> = {}) => ({
    name: 'w', dataType: 1, dims: [4], dataLocation: 1,
    externalData: [{ key: 'location', value: location }, ...Object.entries(extra).map(([key, value]) => ({ key, value }))],
  });

  test('is resolved relative to the model folder, with offset and length', async () => {
    const dir = tempDir();
    const values = f32(1, 2, 3, 4);
    fs.writeFileSync(path.join(dir, 'w.bin'), Buffer.concat([Buffer.alloc(64), bytesOf(values)]));
    const dict = await openBytes(modelWith([external('w.bin', { offset: '64', length: '16' })]), 'm.onnx', dir);
    assert.equal(sha(await dict.tensors[0]!.read()), sha(bytesOf(values)));
    await dict.close();
  });

  test('streams from the data file, held open while the model is (chunked reads, hashing and worker threads take it)', async () => {
    const dir = tempDir();
    const values = f32(1, 2, 3, 4);
    const data = path.join(dir, 'w.bin');
    fs.writeFileSync(data, Buffer.concat([Buffer.alloc(64), bytesOf(values)]));
    const dict = await openBytes(modelWith([external('w.bin', { offset: '64', length: '16' })]), 'm.onnx', dir);
    const stored = dict.tensors[0]!.stored!;
    assert.deepEqual([stored.file.path, stored.offset], [data, 64]);
    assert.equal(sha(stored.file.read(stored.offset, 16, 'w')), sha(bytesOf(values)));
    const open = () => fs.readdirSync('/proc/self/fd').filter((fd) => { try { return fs.readlinkSync(`/proc/self/fd/${fd}`) === data; } catch { return false; } }).length;
    if (fs.existsSync('/proc/self/fd')) assert.equal(open(), 1);
    await dict.close();
    if (fs.existsSync('/proc/self/fd')) assert.equal(open(), 0, 'closed with the model');
  });

  test('rewritten into another folder, its external tensors are copied from the data file, which is closed afterwards', async () => {
    const { rewriteOnnx } = await import('../src/formats/onnx/write.js');
    const dir = tempDir();
    const values = f32(1, 2, 3, 4);
    const data = path.join(dir, 'w.bin');
    fs.writeFileSync(data, Buffer.concat([Buffer.alloc(64), bytesOf(values)]));
    const source = writeModel(dir, 'm.onnx', modelWith([external('w.bin', { offset: '64', length: '16' })]));
    const out = path.join(tempDir(), 'out.onnx');
    await rewriteOnnx(source, new Map(), out, { externalData: 'one-file', inlineLimit: 0 });
    const written = await open(out);
    assert.equal(sha(await written.tensors[0]!.read()), sha(bytesOf(values)));
    await written.close();
    if (fs.existsSync('/proc/self/fd')) {
      const held = fs.readdirSync('/proc/self/fd').filter((fd) => { try { return fs.readlinkSync(`/proc/self/fd/${fd}`) === data; } catch { return false; } });
      assert.deepEqual(held, [], 'the data file is closed once the model is written');
    }
  });

  const rejects = async (dir: string, tensor: object, code: number, message: RegExp) => {
    const file = writeModel(dir, 'm.onnx', modelWith([tensor]));
    await assert.rejects(open(file), (err: unknown) => {
      assert.ok(err instanceof CkptError, String(err));
      assert.equal(err.exitCode, code);
      assert.match(err.message, message);
      assert.ok(err.message.includes(file), 'the error names the model file');
      return true;
    });
  };

  test('absolute paths, .. escapes and symlinks leaving the folder are refused', async () => {
    const outside = tempDir();
    fs.writeFileSync(path.join(outside, 'secret.bin'), Buffer.alloc(16));
    const dir = tempDir();
    fs.symlinkSync(path.join(outside, 'secret.bin'), path.join(dir, 'link.bin'));
    fs.mkdirSync(path.join(dir, 'sub'));
    fs.symlinkSync(outside, path.join(dir, 'sub', 'out'));
    await rejects(dir, external(path.join(outside, 'secret.bin')), 3, /is absolute/);
    await rejects(dir, external('../secret.bin'), 3, /contains '\.\.'/);
    await rejects(dir, external('sub/../../secret.bin'), 3, /contains '\.\.'/);
    await rejects(dir, external('link.bin'), 3, /symbolic link/);
    await rejects(dir, external('sub/out/secret.bin'), 3, /outside the model folder/);
  });

  test('a missing file, a range past the end and a wrong length are clear errors naming the tensor', async () => {
    const dir = tempDir();
    fs.writeFileSync(path.join(dir, 'w.bin'), Buffer.alloc(16));
    await rejects(dir, external('missing.bin'), 4, /no such file/);
    await rejects(dir, external('w.bin', { offset: '8', length: '16' }), 3, /initializer 'w': external range 8\+16 is past the end of w\.bin/);
    await rejects(dir, external('w.bin', { length: '12' }), 3, /external length 12 bytes, expected 16/);
    await rejects(dir, external('w.bin', { offset: 'x' }), 3, /offset 'x' is not a non-negative integer/);
    await rejects(dir, { ...external('w.bin'), rawData: new Uint8Array(16) }, 3, /external data mixed with raw_data/);
  });
});

describe('ONNX reader: invalid tensors', () => {
  const rejects = async (tensor: object, message: RegExp) => {
    await assert.rejects(openBytes(modelWith([tensor as never])), (err: unknown) => {
      assert.ok(err instanceof CkptError, String(err));
      assert.equal(err.exitCode, 3);
      assert.match(err.message, message);
      return true;
    });
  };
  test('raw_data of the wrong length', () => rejects({ name: 'w', dataType: 1, dims: [2], rawData: new Uint8Array(7) }, /initializer 'w': raw_data is 7 bytes, expected 8 for float32 \[2\]/));
  test('negative dims', () => rejects({ name: 'w', dataType: 1, dims: [-1], rawData: new Uint8Array(0) }, /dim -1 is negative/));
  test('dims whose product overflows', () => rejects({ name: 'w', dataType: 1, dims: [2 ** 31, 2 ** 31, 4], rawData: new Uint8Array(0) }, /too many elements/));
  test('unknown and undefined data types', async () => {
    await rejects({ name: 'w', dataType: 99, dims: [1], rawData: new Uint8Array(1) }, /unknown data_type 99/);
    await rejects({ name: 'w', dataType: 0, dims: [1], rawData: new Uint8Array(1) }, /UNDEFINED/);
  });
  test('both raw_data and a typed field', () => rejects({ name: 'w', dataType: 1, dims: [1], rawData: new Uint8Array(4), floatData: [1] }, /both raw_data and float_data/));
  test('typed field with the wrong element count', () => rejects({ name: 'w', dataType: 1, dims: [3], floatData: [1, 2] }, /float_data has 2 elements, expected 3/));
  test('values in the wrong typed field', () => rejects({ name: 'w', dataType: 1, dims: [1], int64Data: [1] }, /float32 values in int64_data; expected float_data/));
  test('string tensor with raw_data', () => rejects({ name: 'w', dataType: 8, dims: [1], rawData: new Uint8Array(1) }, /string tensor with raw_data/));
  test('no data for a non-empty tensor', () => rejects({ name: 'w', dataType: 1, dims: [2] }, /has no data for 2 elements/));
  test('segmented tensors', () => rejects({ name: 'w', dataType: 1, dims: [1], rawData: new Uint8Array(4), segment: { begin: 0, end: 1 } }, /segmented tensors are not supported/));
  test('packed int64_data with too few elements fails when read', async () => {
    const dict = await openBytes(modelWith([{ name: 'w', dataType: 7, dims: [3], int64Data: [1, 2] }]));
    await assert.rejects(dict.tensors[0]!.read(), /int64_data has 2 elements, expected 3/);
    await dict.close();
  });
});

test('listing reads metadata only: a 64 MiB initializer is skipped, not read', async () => {
  const big = new Uint8Array(64 * 1024 * 1024);
  const dict = await openBytes(modelWith([tensorProto('big', 'uint8', [big.length], big), float32Tensor('small', [1], f32(1))]));
  assert.equal(dict.tensors[0]!.byteLength, big.length);
  const listed = dict.bytesRead!();
  assert.ok(listed < 1024 * 1024, `listing read ${listed} bytes`);
  await dict.tensors[1]!.read();
  assert.ok(dict.bytesRead!() - listed < 1024 * 1024, 'reading the small tensor does not touch the big one');
  await dict.close();
});
