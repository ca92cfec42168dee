import { test, describe, before } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ZipWriter } from '../src/core/zip.js';
import { scanFile } from '../src/formats/scan.js';
import { CkptError } from '../src/core/errors.js';
import { seededRandom } from '../src/core/random.js';
import { runCli, tempDir } from './helpers.js';
import { python, pythonHas } from './python.js';
import { bytes, f32, op, pickleFile, statePickle, tensorCall, torchLegacy, torchZip } from './pickle-fixtures.js';

interface Report {
  kind: string;
  pickles: number;
  globals: { name: string; category: string; count: number; where: string }[];
  code: { where: string; what: string }[];
  incomplete: string[];
  verdict: string;
  reason: string;
}

/** The CLI's exit code and JSON report: what a CI gate sees. */
function scanCli(file: string, ...options: string[]): { status: number | null; report: Report } {
  const r = runCli(['scan', '--json', ...options, file]);
  return { status: r.status, report: JSON.parse(r.stdout) as Report };
}

/** The same report in-process (the CLI prints it as it is). */
async function scan(file: string, allow: string[] = []): Promise<{ report: Report }> {
  return { report: (await scanFile(file, { allow })) as unknown as Report };
}

const categories = (report: Report) => Object.fromEntries(report.globals.map((g) => [g.name, g.category]));
const weight = tensorCall({ key: '0', numel: 2 }, 0, [2], [1]);

describe('ckpt scan: every global a pickle names, judged on an allowlist (exit 0 only when safe)', () => {
  test('a state dict of torch tensors is safe (exit 0)', () => {
    const { status, report } = scanCli(torchZip(statePickle([['w', weight]]), { 'data/0': f32([1, 2]) }));
    assert.equal(status, 0);
    assert.equal(report.verdict, 'safe');
    assert.deepEqual(categories(report), { 'collections.OrderedDict': 'torch', 'torch._utils._rebuild_tensor_v2': 'torch', 'torch.FloatStorage': 'torch' });
    assert.equal(report.pickles, 1);
  });

  test('the same in a legacy file: all five pickles are read', async () => {
    const { report } = await scan(torchLegacy(statePickle([['w', weight]]), [['0', 2, f32([1, 2])]]));
    assert.equal(report.verdict, 'safe');
    assert.equal(report.kind, 'pytorch-legacy');
    assert.equal(report.pickles, 5);
  });

  test('os.system is listed as code with where it is named, and the verdict is unsafe (exit 1), nothing run', () => {
    const marker = path.join(tempDir(), 'ran');
    const file = pickleFile(bytes(op.proto(2), op.global('os', 'system'), op.mark, op.str(`touch ${marker}`), op.tuple, op.reduce, op.stop), 'evil.pkl');
    const { status, report } = scanCli(file);
    assert.equal(status, 1);
    assert.equal(report.verdict, 'unsafe');
    assert.deepEqual(report.globals.map((g) => [g.name, g.category, g.where]), [['os.system', 'code', 'pickle offset 2']]);
    assert.match(report.reason, /loading would run os\.system/);
    assert.equal(fs.existsSync(marker), false);
  });

  test('protocol 0 text opcodes are read too (a classic exploit pickle)', async () => {
    const { report } = await scan(pickleFile(bytes("cposix\nsystem\n(S'echo hi'\ntR."), 'p0.pkl'));
    assert.equal(report.verdict, 'unsafe');
    assert.deepEqual(categories(report), { 'posix.system': 'code' });
    assert.deepEqual(report.incomplete, []);
  });

  test('every global is listed, not only the first dangerous one', async () => {
    const file = pickleFile(bytes(op.proto(2), op.mark, op.global('builtins', 'eval'), op.global('subprocess', 'Popen'), op.global('__main__', 'Model'), op.tuple, op.stop), 'many.pkl');
    assert.deepEqual(categories((await scan(file)).report), { 'builtins.eval': 'code', 'subprocess.Popen': 'code', '__main__.Model': 'unknown' });
  });

  test('numpy arrays and an argparse Namespace are plain data: verdict allowlist, exit 1 unless --allow-data', () => {
    const file = pickleFile(bytes(op.proto(2), op.emptyDict, op.str('args'), op.global('argparse', 'Namespace'), op.emptyTuple, [0x81], op.emptyDict, op.build, op.setitem, op.stop), 'hp.pkl');
    const plain = scanCli(file);
    assert.equal(plain.status, 1);
    assert.equal(plain.report.verdict, 'allowlist');
    assert.match(plain.report.reason, /refuses argparse\.Namespace until torch\.serialization\.add_safe_globals/);
    assert.equal(scanCli(file, '--allow-data').status, 0);
    const allowed = scanCli(file, '--allow', 'argparse.Namespace');
    assert.equal(allowed.report.verdict, 'safe');
    assert.equal(allowed.status, 0);
  });

  test('a pickle ckpt cannot read to the end is unsafe: what was not read cannot be called safe', async () => {
    const { report } = await scan(pickleFile(bytes(op.proto(2), op.global('collections', 'OrderedDict'), [0x82, 1], op.stop), 'ext.pkl'));
    assert.equal(report.verdict, 'unsafe');
    assert.match(report.incomplete[0]!, /unsupported pickle opcode 0x82/);
  });

  test('a .npy of Python objects is a pickle after its header; numbers are not', async () => {
    const header = (descr: string) => {
      const text = `{'descr': '${descr}', 'fortran_order': False, 'shape': (1,), }`.padEnd(117, ' ') + '\n';
      return bytes([0x93], 'NUMPY', [1, 0, text.length, 0], text);
    };
    const objects = await scan(pickleFile(bytes(header('|O'), op.proto(2), op.global('os', 'system'), op.stop), 'objects.npy'));
    assert.equal(objects.report.kind, 'npy');
    assert.deepEqual(categories(objects.report), { 'os.system': 'code' });
    const numbers = await scan(pickleFile(bytes(header('<f4'), f32([1])), 'numbers.npy'));
    assert.equal(numbers.report.verdict, 'safe');
    assert.equal(numbers.report.pickles, 0);
  });

  test('a .keras file with a Lambda layer carries code; custom classes need the user\'s code', async () => {
    const config = {
      class_name: 'Sequential', module: 'keras', config: {
        layers: [
          { class_name: 'Lambda', module: 'keras.layers', config: { name: 'scale', function: { class_name: '__lambda__', config: { code: '4wEAAAA=' } } } },
          { class_name: 'MyBlock', module: 'my_package.layers', config: { name: 'block' } },
        ],
      },
    };
    const parts: Uint8Array[] = [];
    const zip = new ZipWriter((b) => parts.push(Uint8Array.from(b)));
    zip.add('config.json', [Buffer.from(JSON.stringify(config))]);
    zip.add('metadata.json', [Buffer.from('{"keras_version": "3.3.3"}')]);
    zip.add('model.weights.h5', [Buffer.alloc(0)]);
    zip.finish();
    const file = path.join(tempDir(), 'lambda.keras');
    fs.writeFileSync(file, Buffer.concat(parts));
    const { report } = await scan(file);
    assert.equal(report.verdict, 'unsafe');
    assert.equal(report.kind, 'keras-zip');
    assert.deepEqual(report.code.map((c) => c.where), ["member 'config.json', layer 'scale'"]);
    assert.deepEqual(categories(report), { 'my_package.layers.MyBlock': 'unknown' });
  });

  test('formats without pickles are safe by construction', async () => {
    const { report } = await scan(path.join('samples', 'detector-90.onnx'));
    assert.equal(report.verdict, 'safe');
    assert.equal(report.kind, 'no-code');
    assert.match(report.reason, /onnx holds tensors and metadata only/);
  });

  test('a file no reader knows is an error (exit 3), not a verdict', () => {
    const r = runCli(['scan', pickleFile(Buffer.from('hello world'), 'notes.txt')]);
    assert.equal(r.status, 3, r.stderr);
    assert.match(r.stderr, /unrecognized format/);
  });

  const torchscript = '../shared/corpus/torchscript/asl-cnn-traced/traced_model.pt';
  test('a TorchScript archive lists its code/ files and is unsafe for torch.load', { skip: !fs.existsSync(torchscript) && 'corpus absent' }, async () => {
    const { report } = await scan(torchscript);
    assert.equal(report.verdict, 'unsafe');
    assert.equal(report.kind, 'torchscript');
    assert.ok(report.code.some((c) => /code\/__torch__\/.*\.py'$/.test(c.where)));
    assert.match(report.reason, /TorchScript archive: torch\.jit\.load compiles and runs its \d+ code\/ files/);
  });
});

describe("ckpt scan's verdict agrees with torch.load(weights_only=True) on files torch wrote", { skip: !pythonHas('torch') && 'Debian python3-torch is not installed' }, () => {
  const MAKE = String.raw`
import sys, json, argparse, collections, numpy as np, torch
out = sys.argv[1]
net = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.BatchNorm1d(2))
files = {
  'state.pth': net.state_dict(),
  'legacy.pth': (net.state_dict(), False),
  'whole.pth': net,
  'namespace.pth': {'model': net.state_dict(), 'args': argparse.Namespace(lr=0.1)},
  'numpy.pth': {'model': net.state_dict(), 'rng': np.random.get_state()},
}
loads = {}
for name, obj in files.items():
    legacy = isinstance(obj, tuple)
    torch.save(obj[0] if legacy else obj, f'{out}/{name}', _use_new_zipfile_serialization=not legacy)
    try:
        torch.load(f'{out}/{name}', weights_only=True)
        loads[name] = True
    except Exception:
        loads[name] = False
print(json.dumps(loads))
`;
  let dir = '';
  let loads: Record<string, boolean> = {};
  before(() => {
    dir = tempDir();
    loads = JSON.parse(python(MAKE, dir)) as Record<string, boolean>;
  });

  test('safe exactly where torch loads it with weights_only=True; plain data is "allowlist", modules "unsafe"', async () => {
    const verdicts: Record<string, string> = {};
    for (const name of Object.keys(loads)) verdicts[name] = (await scan(path.join(dir, name))).report.verdict;
    assert.deepEqual({ ...verdicts }, { 'state.pth': 'safe', 'legacy.pth': 'safe', 'whole.pth': 'unsafe', 'namespace.pth': 'allowlist', 'numpy.pth': 'allowlist' });
    for (const [name, loaded] of Object.entries(loads)) assert.equal(verdicts[name] === 'safe', loaded, `${name}: torch.load(weights_only=True) ${loaded ? 'loads' : 'refuses'} it`);
  });
});

describe('mutation fuzz: scan never crashes or hangs on damaged files', () => {
  const ITERATIONS = Number(process.env.CKPT_FUZZ_ITERATIONS ?? 300);
  const bases: [string, () => string][] = [
    ['zip', () => torchZip(statePickle([['w', weight], ['args', bytes(op.global('argparse', 'Namespace'), op.emptyTuple, [0x81], op.emptyDict, op.build)]]), { 'data/0': f32([1, 2]) })],
    ['legacy', () => torchLegacy(statePickle([['w', weight]]), [['0', 2, f32([1, 2])]])],
    ['protocol 0', () => pickleFile(bytes("(dp0\nS'lr'\np1\nF0.1\nsS'n'\nI3\nsS'f'\nccollections\nOrderedDict\np2\n(tRp3\ns."), 'p0.pkl')],
  ];
  for (const [name, make] of bases) {
    test(`${name}: ${ITERATIONS} mutated files give a report or an exit-3/4 error`, async () => {
      const base = fs.readFileSync(make());
      assert.deepEqual((await scan(make())).report.incomplete, [], 'the base file reads to the end');
      const random = seededRandom(name.length * 7919);
      const target = path.join(tempDir(), `fuzz-${name}`);
      for (let i = 0; i < ITERATIONS; i++) {
        const b = Buffer.from(base);
        for (let k = 0; k < 1 + Math.floor(random() * 4); k++) b[Math.floor(random() * b.length)] = Math.floor(random() * 256);
        fs.writeFileSync(target, random() < 0.2 ? b.subarray(0, Math.floor(random() * b.length)) : b);
        try {
          const { report } = await scan(target);
          assert.ok(['safe', 'allowlist', 'unsafe'].includes(report.verdict));
        } catch (err) {
          assert.ok(err instanceof CkptError && (err.exitCode === 3 || err.exitCode === 4), String(err));
        }
      }
    });
  }
});
