import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { open } from '../src/index.js';
import { RandomAccessFile } from '../src/core/file.js';
import { readPickle } from '../src/core/pickle.js';
import { loadOutcome, runCli, tempDir } from './helpers.js';
import { python, pythonHas } from './python.js';
import { bytes, f32, op, pickleFile, type Part, statePickle, tensorCall, torchLegacy, torchZip } from './pickle-fixtures.js';

const ITERATIONS = Number(process.env.CKPT_FUZZ_ITERATIONS ?? 300);

function rejects(file: string, message: RegExp, options: string[] = []): void {
  const r = runCli(['inspect', ...options, file]);
  assert.equal(r.status, 3, `exit ${r.status}: ${r.stderr}`);
  assert.match(r.stderr, message);
  assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
}

const weight = (offset = 0, size = [2, 2], stride = [2, 1], numel = 4) => tensorCall({ key: '0', numel }, offset, size, stride);

describe('the restricted pickle reader never runs anything from the file', () => {
  const marker = path.join(tempDir(), 'ran');
  const cases: [string, Buffer, RegExp][] = [
    ['os.system by GLOBAL', bytes(op.proto(2), op.global('os', 'system'), op.mark, op.str(`touch ${marker}`), op.tuple, op.reduce, op.stop), /pickle offset 2: global 'os\.system' comes from module 'os', which can run commands/],
    ['posix.system by STACK_GLOBAL, module and name fetched from the memo', bytes(op.proto(4), [0x8c, 5], 'posix', [0x94, 0x8c, 6], 'system', [0x94, 0x93], op.stop), /global 'posix\.system' comes from module 'posix'/],
    ['builtins.eval', bytes(op.proto(2), op.global('builtins', 'eval'), op.stop), /global 'builtins\.eval' is Python's eval\(\), which loading would call/],
    ['os.system in protocol 0 text (GLOBAL, STRING, TUPLE, REDUCE)', bytes(op.proto(2), 'cos\nsystem\n(S\'touch ', marker, "'\ntR."), /global 'os\.system' comes from module 'os'/],
  ];
  for (const [name, content, message] of cases) {
    test(`refused: ${name}`, () => {
      rejects(pickleFile(content), message);
      assert.equal(fs.existsSync(marker), false);
    });
  }
  test('a class of the saving script, called with REDUCE, is an inert opaque value; --strict-pickle refuses it', () => {
    const file = pickleFile(bytes(op.proto(2), op.emptyDict, op.str('hp'), op.global('__main__', 'Exploit'), op.emptyTuple, op.reduce, op.setitem, op.stop));
    const lenient = runCli(['inspect', file]);
    assert.equal(lenient.status, 0, lenient.stderr);
    assert.match(lenient.stderr, /read __main__\.Exploit as opaque values, without running anything/);
    rejects(file, /global '__main__\.Exploit' is not allowed/, ['--strict-pickle']);
    assert.equal(fs.existsSync(marker), false);
  });
});

describe('pickle integers and strings read the same whatever the block cache cuts', () => {
  const i32 = (n: number) => { const b = Buffer.alloc(4); b.writeInt32LE(n); return b; };
  const u32 = (n: number) => { const b = Buffer.alloc(4); b.writeUInt32LE(n); return b; };
  // BININT at its limits, BININT2, BININT1, LONG4, BINUNICODE, BINSTRING, SHORT_BINSTRING, LONG_BINPUT/LONG_BINGET, GLOBAL.
  const content = bytes(
    op.proto(2), op.emptyList, op.mark,
    'J', i32(-1), 'J', i32(-2147483648), 'J', i32(2147483647), 'J', i32(-300), 'M', [0xff, 0xff], 'M', [0x34, 0x12], 'K', [255],
    [0x8b], i32(2), [0x00, 0x80], op.str('ü€😀'), 'T', i32(3), 'abc', 'U', [2], [0xe9, 0x41], 'r', u32(70000), 'j', u32(70000),
    op.global('collections', 'OrderedDict'), op.emptyTuple, op.reduce, 'e', op.stop,
  );
  const file = pickleFile(content, 'ints.pkl');
  for (const blockSize of [1, 2, 3, 5, 7, 8192]) {
    test(`block size ${blockSize}`, () => {
      const raf = RandomAccessFile.open(file, blockSize);
      try {
        const { value, end } = readPickle(raf, 0, raf.size, { allowed: new Set(['collections.OrderedDict']) });
        assert.equal(end, content.length);
        const items = value as unknown[];
        assert.deepEqual(items.slice(0, -1), [-1, -2147483648, 2147483647, -300, 65535, 0x1234, 255, -32768, 'ü€😀', 'abc', 'éA', 'éA']);
        assert.equal(items.length, 13);
      } finally {
        raf.close();
      }
    });
  }
});

describe('malformed pickles are errors that name the file and the offset (exit 3)', () => {
  const key = op.str('w');
  const cases: [string, Buffer, RegExp][] = [
    ['an unknown opcode', bytes(op.proto(2), [0xff]), /pickle offset 2: unsupported pickle opcode 0xff/],
    ['a protocol newer than 5', bytes(op.proto(6), op.emptyDict, op.stop), /pickle protocol 6 is newer than 5/],
    ['a memo index never stored', bytes(op.proto(2), 'h', [5], op.stop), /memo index 5 was never stored/],
    ['a stack underflow', bytes(op.proto(2), op.emptyDict, op.setitem, op.stop), /pickle stack underflow/],
    ['popping through a MARK', bytes(op.proto(2), op.emptyDict, op.mark, op.stop), /pickle stack underflow/],
    ['a truncated string', bytes(op.proto(2), 'X', [0, 1, 0, 0], 'ab'), /pickle is truncated: needs 256 more bytes/],
    ['no STOP', bytes(op.proto(2), op.emptyDict), /pickle is truncated/],
    ['bytes after the STOP', bytes(op.proto(2), op.emptyDict, op.stop, 'junk'), /offset 4: 4 bytes after the end of the pickle/],
    ['a root that is not a dict', bytes(op.proto(2), op.emptyList, op.stop), /expected a dict of name → numpy array/],
    ['containers nested 100,000 deep', bytes(op.proto(2), op.emptyDict, key, op.emptyList.repeat(100_000), op.append.repeat(99_999), op.setitem, op.stop), /containers nested deeper than 100 levels/],
    ['SETITEMS with an odd count', bytes(op.proto(2), op.emptyDict, op.mark, key, op.setitems, op.stop), /SETITEMS with an odd number of values/],
    ['BUILD on a number', bytes(op.proto(2), op.int(1), op.emptyDict, op.build, op.stop), /BUILD on something that is not an object/],
  ];
  for (const [name, content, message] of cases) test(name, () => rejects(pickleFile(content), message));

  test('a set of 300,000 items (ADDITEMS) and a list of as many (APPENDS) are plain data, not a crash', async () => {
    const many = op.none.repeat(300_000);
    const content = bytes(op.proto(4), op.emptyDict, op.str('s'), [0x8f], op.mark, many, [0x90], op.setitem, op.str('l'), op.emptyList, op.mark, many, 'e', op.setitem, op.stop);
    const dict = await open(pickleFile(content));
    assert.equal(dict.tensors.length, 0);
    await dict.close();
  });

  test('shared references that would expand to 2^60 values are walked once per container', async () => {
    // DUP + TUPLE2 sixty times: each tuple holds the previous one twice.
    const content = bytes(op.proto(2), op.emptyDict, op.str('w'), op.emptyList, '2\x86'.repeat(60), op.setitem, op.stop);
    const started = Date.now();
    const dict = await open(pickleFile(content));
    assert.equal(dict.tensors.length, 0);
    await dict.close();
    assert.ok(Date.now() - started < 5000);
  });
});

describe('PyTorch zip containers: storages and views checked before any read (exit 3)', () => {
  const zipCases: [string, () => string, RegExp][] = [
    ['a storage without its member', () => torchZip(statePickle([['w', weight()]]), {}), /tensor 'w': storage '0' has no member 'archive\/data\/0'/],
    ['a storage member of the wrong size', () => torchZip(statePickle([['w', weight()]]), { 'data/0': f32([1, 2, 3]) }), /member 'archive\/data\/0': holds 12 bytes, expected 16 for 4 elements of float32/],
    ['a view reaching past its storage', () => torchZip(statePickle([['w', weight(1)]]), { 'data/0': f32([1, 2, 3, 4]) }), /tensor 'w': view \[offset 1, size \(2, 2\), stride \(2, 1\)\] reaches element 4, outside its storage '0' of 4 elements/],
    ['a negative stride', () => torchZip(statePickle([['w', tensorCall({ key: '0', numel: 4 }, 0, [2], [-1])]]), { 'data/0': f32([1, 2, 3, 4]) }), /negative stride/],
    ['stride and size of different ranks', () => torchZip(statePickle([['w', weight(0, [4], [1, 1])]]), { 'data/0': f32([1, 2, 3, 4]) }), /stride does not match the 1 dims of the size/],
    ['a persistent id that is not a storage', () => torchZip(statePickle([['w', bytes(op.global('torch._utils', '_rebuild_tensor_v2'), op.mark, op.str('module'), op.persid, op.int(0), op.ints([1]), op.ints([1]), op.tuple, op.reduce)]]), {}), /the persistent id is not a \('storage', …\) tuple/],
    ['an unknown storage type', () => torchZip(statePickle([['w', tensorCall({ key: '0', numel: 1, type: 'QuaternionStorage' }, 0, [1], [1])]]), { 'data/0': f32([1]) }), /tensor 'w': unknown storage type torch\.QuaternionStorage/],
    ['a TorchScript archive whose data.pkl is no scripted module', () => torchZip(statePickle([]), { 'constants.pkl': bytes(op.proto(2), op.emptyTuple, op.stop) }), /the root is not a scripted module/],
    ['an unknown byte order', () => torchZip(statePickle([]), { byteorder: Buffer.from('middle') }), /member 'archive\/byteorder': is 'middle', expected 'little' or 'big'/],
  ];
  for (const [name, make, message] of zipCases) test(name, () => rejects(make(), message));

  test('compressed members are refused before anything is inflated (zip bombs stop at the directory)', { skip: !pythonHas('zipfile') && 'no python3' }, () => {
    const dir = tempDir();
    const pickle = statePickle([['w', weight()]]);
    for (const [compressed, message] of [['archive/data.pkl', /member 'archive\/data\.pkl': is compressed/], ['archive/data/0', /member 'archive\/data\/0': is compressed; storages must be stored uncompressed/]] as const) {
      const file = path.join(dir, `${compressed.replace(/\W/g, '_')}.pth`);
      python(String.raw`
import sys, zipfile
out, compressed, pkl = sys.argv[1], sys.argv[2], bytes.fromhex(sys.argv[3])
with zipfile.ZipFile(out, 'w') as z:
    for name, data in [('archive/data.pkl', pkl), ('archive/data/0', bytes(16))]:
        z.writestr(name, data, zipfile.ZIP_DEFLATED if name == compressed else zipfile.ZIP_STORED)`, file, compressed, pickle.toString('hex'));
      rejects(file, message);
    }
  });

  test('canonical names drop the prefixes DataParallel (module.) and torch.compile (_orig_mod.) add; source keeps them', async () => {
    const file = torchZip(statePickle([['module._orig_mod.fc.weight', weight()]]), { 'data/0': f32([1, 2, 3, 4]) });
    const dict = await open(file);
    assert.deepEqual(dict.tensors.map((t) => [t.name, t.source]), [['fc.weight', 'module._orig_mod.fc.weight']]);
    await dict.close();
  });

  test('big-endian files (byteorder "big") read as little-endian values', async () => {
    const file = torchZip(statePickle([['w', weight()]]), { 'data/0': bigEndian([1, -2, 3.5, 0.25]), byteorder: Buffer.from('big') });
    const dict = await open(file);
    assert.deepEqual([...new Float32Array((await dict.tensors[0]!.read()).slice().buffer)], [1, -2, 3.5, 0.25]);
    await dict.close();
  });
});

function bigEndian(values: number[]): Buffer {
  const b = Buffer.alloc(values.length * 4);
  values.forEach((v, i) => b.writeFloatBE(v, i * 4));
  return b;
}

describe('legacy PyTorch files (torch < 1.6)', () => {
  const main = (spec: { key: string; numel: number; view: Part } = { key: '0', numel: 4, view: op.none }, offset = 0) => statePickle([['w', tensorCall(spec, offset, [2, 2], [2, 1])]]);
  test('a hand-made file reads: storages found by walking their counts', async () => {
    const dict = await open(torchLegacy(main(), [['0', 4, f32([1, 2, 3, 4])]]));
    assert.deepEqual(dict.metadata.container, 'legacy');
    assert.deepEqual([...new Float32Array((await dict.tensors[0]!.read()).slice().buffer)], [1, 2, 3, 4]);
    await dict.close();
  });
  test('a storage view (key, offset, size) selects part of its root storage', async () => {
    const view = bytes(op.mark, op.str('v'), op.int(2), op.int(4), op.tuple);
    const dict = await open(torchLegacy(main({ key: '0', numel: 6, view }), [['0', 6, f32([9, 9, 1, 2, 3, 4])]]));
    assert.deepEqual([...new Float32Array((await dict.tensors[0]!.read()).slice().buffer)], [1, 2, 3, 4]);
    await dict.close();
  });
  test('a big-endian file is swapped', async () => {
    const dict = await open(torchLegacy(main(), [['0', 4, bigEndian([1, 2, 3, 4])]], false));
    assert.deepEqual([...new Float32Array((await dict.tensors[0]!.read()).slice().buffer)], [1, 2, 3, 4]);
    await dict.close();
  });
  const cases: [string, () => string, RegExp][] = [
    ['a storage running past the end of the file', () => torchLegacy(main(), [['0', 4, f32([1, 2])]]), /storage '0' of 16 bytes runs past the end of the file \(truncated\?\)/],
    ['a storage count that disagrees with the pickle', () => torchLegacy(main(), [['0', 3, f32([1, 2, 3])]]), /storage '0' holds 3 elements, the pickle says 4/],
    ['a storage used but not listed', () => torchLegacy(main(), []), /storage '0' is used by a tensor but not in the storage list/],
    ['a view outside its root storage', () => torchLegacy(main({ key: '0', numel: 4, view: bytes(op.mark, op.str('v'), op.int(2), op.int(4), op.tuple) }), [['0', 4, f32([1, 2, 3, 4])]]), /storage view of '0' lies outside its 4 elements/],
    ['a wrong protocol number', () => { const f = torchLegacy(main(), [['0', 4, f32([1, 2, 3, 4])]]); const b = fs.readFileSync(f); b[b.indexOf(Buffer.from([0x4d, 0xe9, 0x03]), 15) + 1] = 0xea; fs.writeFileSync(f, b); return f; }, /legacy PyTorch protocol 1002, expected 1001/],
    ['a tar file from torch < 0.4', () => { const b = Buffer.alloc(1024); b.write('sys_info'); b.write('ustar', 257); return pickleFile(b, 'old.tar'); }, /a tar-based PyTorch checkpoint \(torch < 0\.4\) is not supported/],
  ];
  for (const [name, make, message] of cases) test(name, () => rejects(make(), message));
});

describe('mutation fuzz: PyTorch zip and legacy files, .pdparams pickles', () => {
  const bases: [string, () => string][] = [
    ['zip', () => torchZip(statePickle([['w', weight()], ['b', tensorCall({ key: '1', numel: 2, type: 'LongStorage' }, 0, [2], [1])]]), { 'data/0': f32([1, 2, 3, 4]), 'data/1': Buffer.alloc(16, 1), byteorder: Buffer.from('little') })],
    ['legacy', () => torchLegacy(statePickle([['w', tensorCall({ key: '0', numel: 4, view: op.none }, 0, [2, 2], [2, 1])]]), [['0', 4, f32([1, 2, 3, 4])]])],
    ['pickle', () => pickleFile(bytes(op.proto(4), op.emptyDict, op.str('w'), op.global('numpy.core.multiarray', '_reconstruct'), op.global('numpy', 'ndarray'), op.int(0), '\x85', 'C', [1], 'b', '\x87', op.reduce,
      op.mark, op.int(1), op.ints([2]), op.global('numpy', 'dtype'), op.str('f4'), op.false, op.true, '\x87', op.reduce, op.mark, op.int(3), op.str('<'), op.none, op.none, op.none, op.int(-1), op.int(-1), op.int(0), op.tuple, op.build,
      op.false, op.bytes(f32([1, 2])), op.tuple, op.build, op.setitem, op.stop))],
  ];
  for (const [name, make] of bases) {
    test(`${name}: ${ITERATIONS} mutated files load or fail with exit 3, never crash or hang`, async () => {
      const base = fs.readFileSync(make());
      assert.equal(await loadOutcome(make()), 'ok', 'the base file is valid');
      let seed = name.length * 7919;
      const random = () => ((seed = (seed * 48271) % 2147483647) / 2147483647);
      const target = path.join(tempDir(), `fuzz-${name}`);
      let rejected = 0;
      for (let i = 0; i < ITERATIONS; i++) {
        const b = Buffer.from(base);
        for (let k = 0; k < 1 + Math.floor(random() * 4); k++) b[Math.floor(random() * b.length)] = Math.floor(random() * 256);
        fs.writeFileSync(target, random() < 0.2 ? b.subarray(0, Math.floor(random() * b.length)) : b);
        const outcome = await loadOutcome(target);
        if (outcome !== 'ok') {
          assert.ok(outcome === 3 || outcome === 4, `exit ${outcome}`);
          rejected++;
        }
      }
      assert.ok(rejected > 0);
    });
  }
});
