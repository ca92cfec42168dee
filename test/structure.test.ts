import { test, describe, before } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createRequire } from 'node:module';
import { moduleOrder } from '../src/ops/structure.js';
import { CORPUS, HAS_CORPUS, ROOT, runCli, tempDir } from './helpers.js';
import { python, pythonHas } from './python.js';

const require = createRequire(import.meta.url);
const Ajv2020 = require('ajv/dist/2020.js');
const validate = new Ajv2020({ allErrors: true }).compile(JSON.parse(fs.readFileSync(path.join(ROOT, 'schemas', 'plan.schema.json'), 'utf8')));

const PTH = path.join(CORPUS, 'pytorch/ultraface-rfb320/version-RFB-320.pth');
const SIMPLIFIED = path.join(CORPUS, 'onnx/ultraface-rfb320-simplified/version-RFB-320_simplified.onnx');
const KERAS = path.join(CORPUS, 'keras-v3/keras311-mlp-15cls-small/your_model2.keras');
const HAS_TORCH = pythonHas('torch') && pythonHas('onnx');

function plan(args: string[]): { status: number; plan: any; stdout: string; stderr: string; file: string } {
  const file = path.join(tempDir(), 'plan.json');
  const r = runCli(['plan', ...args, '-o', file]);
  const written = fs.existsSync(file) ? JSON.parse(fs.readFileSync(file, 'utf8')) : undefined;
  if (written) assert.ok(validate(written), JSON.stringify(validate.errors));
  return { status: r.status, plan: written, stdout: r.stdout, stderr: r.stderr, file };
}

/** Folds with numpy from torch.load of the .pth, and compares with the applied ONNX, tensor by tensor. */
const CHECK_FOLDS = `
import json, sys, numpy as np, onnx, torch
from onnx import numpy_helper
plan = json.load(open(sys.argv[1]))
sd = {k: v.double().numpy() for k, v in torch.load(sys.argv[2], map_location='cpu').items()}
applied = {t.name: numpy_helper.to_array(t) for t in onnx.load(sys.argv[3]).graph.initializer}
exported = {t.name: numpy_helper.to_array(t) for t in onnx.load(sys.argv[4]).graph.initializer}
exact, worst = 0, 0.0
for e in plan['entries']:
    if e['action'] != 'fold':
        continue
    f = e['fold']
    k = sd[f['scale']] / np.sqrt(sd[f['variance']] + 1e-5)
    if f['part'] == 'weight':
        want = sd[f['weight']] * k.reshape(-1, *[1] * (sd[f['weight']].ndim - 1))
    else:
        b = sd[f['bias']] if 'bias' in f else 0
        want = (b - sd[f['mean']]) * k + sd[f['shift']]
    got = applied[e['targetInFile']]
    exact += int(np.array_equal(got, want.astype(np.float32)))
    worst = max(worst, float(np.abs(got.astype(np.float64) - exported[e['targetInFile']]).max()))
print(json.dumps({'exact': exact, 'worstAgainstExporter': worst}))
`;

describe('UltraFace RFB-320: the .pth (BatchNorm unfolded) and its simplified ONNX export (BatchNorm folded, numeric names)', { skip: !HAS_CORPUS && 'no ../shared/corpus' }, () => {
  test('diff --values: equal after folding 35 BatchNorm layers, exit 0, tolerance reported; both directions', () => {
    for (const [a, b] of [[PTH, SIMPLIFIED], [SIMPLIFIED, PTH]] as const) {
      const r = runCli(['diff', '--values', a, b]);
      assert.equal(r.status, 0, r.stdout);
      assert.match(r.stdout, /matched 104 \(34 by name, 70 by graph position\); 0 only in A; 0 only in B; .*35 integer tensors in one only .*0 value differences → equal after folding 35 BatchNorm layers, max \|Δ\| [0-9.e-]+ \(folded tensors compared with rtol 1e-5, atol 1e-6\)/);
    }
    const json = JSON.parse(runCli(['diff', '--values', '--json', PTH, SIMPLIFIED]).stdout);
    const first = json.matched.find((p: any) => p.b === '487');
    assert.equal(first.a, 'base_net.0.0.weight');
    assert.deepEqual(first.fold, { side: 'a', part: 'weight', batchNorm: 'base_net.0.1', epsilon: 1e-5, epsilonFrom: 'PyTorch default (not stored in the state dict)' });
    assert.ok(first.values.maxAbsDiff > 0 && first.values.maxAbsDiff < 1e-6);
  });

  test('without folding the values differ: a tight --atol makes the same diff fail', () => {
    const r = runCli(['diff', '--values', '--atol', '0', '--rtol', '0', PTH, SIMPLIFIED]);
    assert.equal(r.status, 1);
    assert.match(r.stdout, /→ different; folded 35 BatchNorm layers/);
  });

  test('plan folds every BatchNorm into the numeric-named convs; apply computes what numpy computes from torch.load', { skip: !HAS_TORCH && 'no python3 torch/onnx' }, () => {
    const r = plan([PTH, SIMPLIFIED]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^loaded 104\/112 tensors \(100\.0% of parameters; 70 by folding 35 BatchNorm layers\)/);
    const byTarget = Object.fromEntries(r.plan.entries.map((e: any) => [e.target, e]));
    assert.equal(byTarget['487'].source, 'base_net.0.0.weight');
    assert.deepEqual(byTarget['489'].fold, {
      part: 'bias', weight: 'base_net.0.0.weight', scale: 'base_net.0.1.weight', shift: 'base_net.0.1.bias',
      mean: 'base_net.0.1.running_mean', variance: 'base_net.0.1.running_var', epsilon: 1e-5,
      epsilonFrom: 'PyTorch default (not stored in the state dict)', axis: 0,
    });
    // base_net.9 before base_net.10: module order takes numeric components as numbers.
    assert.equal(byTarget['595'].source, 'base_net.9.0.weight');
    assert.equal(byTarget['603'].source, 'base_net.10.0.weight');
    assert.match(byTarget['595'].why, /^graph position: Conv \+ BatchNorm base_net\.9\.0 \(module 28\/35\) ↔ Conv node → \d+ \(graph layer 28\/35\); compared op, order, weight shape \[128,1,3,3\]$/);
    const out = path.join(tempDir(), 'applied.onnx');
    const applied = runCli(['apply', r.file, '-o', out]);
    assert.equal(applied.status, 0, applied.stderr);
    const check = JSON.parse(python(CHECK_FOLDS, r.file, PTH, out, SIMPLIFIED));
    assert.equal(check.exact, 70, 'every folded tensor equals numpy\'s float64 fold cast to float32');
    assert.ok(check.worstAgainstExporter < 1e-6, `against the exporter's own fold: ${check.worstAgainstExporter}`);
    assert.equal(runCli(['check', out]).status, 0);
  });
});

describe('pairs made with python3-torch (scripts/make-bn-pairs.py)', { skip: !HAS_TORCH && 'no python3 torch/onnx' }, () => {
  let dir = '';
  const at = (name: string) => path.join(dir, name);
  before(() => {
    dir = tempDir();
    python(`import runpy, sys; sys.argv = ['make-bn-pairs.py', sys.argv[1]]; runpy.run_path(${JSON.stringify(path.join(ROOT, 'scripts', 'make-bn-pairs.py'))})`, dir);
  });

  test('diff of a .pth and its folded export: equal after folding 11 BatchNorm layers; of its unfolded export: equal by name', () => {
    const folded = runCli(['diff', '--values', at('det2.pth'), at('det2-folded.onnx')]);
    assert.equal(folded.status, 0, folded.stdout);
    assert.match(folded.stdout, /matched 26 \(4 by name, 22 by graph position\).* → equal after folding 11 BatchNorm layers/);
    const unfolded = runCli(['diff', '--values', at('det2.pth'), at('det2-unfolded.onnx')]);
    assert.equal(unfolded.status, 0, unfolded.stdout);
    assert.match(unfolded.stdout, /matched 59 \(59 by name\); 0 only in A; 0 only in B; .*11 integer tensors in one only .*→ equal\n/);
    assert.doesNotMatch(unfolded.stdout, /folding/);
  });

  test('two folded exports of different class counts, numbered apart: numeric names pair by graph position, never by name', async () => {
    const r = plan([at('det2-folded.onnx'), at('det3-folded.onnx')]);
    assert.equal(r.status, 0, r.stderr);
    const byTarget = Object.fromEntries(r.plan.entries.map((e: any) => [e.target, e]));
    assert.equal(byTarget['onnx::Conv_109'].source, 'onnx::Conv_107', 'the first conv, numbered 107 in the source and 109 in the target');
    const convs = r.plan.entries.filter((e: any) => e.target.startsWith('onnx::'));
    assert.equal(convs.length, 22);
    for (const e of convs) {
      assert.equal(e.action, 'load', e.target);
      assert.match(e.why, /^graph position: Conv \/base_net\/base_net\.(\d+)\/base_net\.\1\.0\/Conv \(graph layer (\d+)\/11\) ↔ Conv \/base_net\/base_net\.\1\/base_net\.\1\.0\/Conv \(graph layer \2\/11\)/);
    }
    const out = at('applied.onnx');
    assert.equal(runCli(['apply', r.file, '-o', out]).status, 0);
    const same = python(`
import sys, onnx, numpy as np
from onnx import numpy_helper
def load(f):
    m = onnx.load(f)
    weights = {t.name: numpy_helper.to_array(t) for t in m.graph.initializer}
    return [[weights[i] for i in n.input[1:] if i in weights] for n in m.graph.node if n.op_type == 'Conv']
src, out = load(sys.argv[1]), load(sys.argv[2])
print(all(np.array_equal(a, b) for s, o in zip(src[:11], out[:11]) for a, b in zip(s, o)))
`, at('det2-folded.onnx'), out);
    assert.equal(same.trim(), 'True', 'the 11 backbone convs of the applied model are the source\'s, conv by conv');
  });

  test('an unfolded ONNX export into the folded one: ε from the BatchNormalization attribute; applied = the exporter\'s fold', () => {
    const diff = runCli(['diff', '--values', at('det2-unfolded.onnx'), at('det2-folded.onnx')]);
    assert.equal(diff.status, 0, diff.stdout);
    assert.match(diff.stdout, /→ equal after folding 11 BatchNorm layers/);
    const r = plan([at('det2-unfolded.onnx'), at('det2-folded.onnx')]);
    assert.match(r.stdout, /^loaded 26\/26 tensors \(100\.0% of parameters; 22 by folding 11 BatchNorm layers\)/);
    const fold = r.plan.entries.find((e: any) => e.action === 'fold').fold;
    assert.equal(fold.epsilonFrom, 'attribute of BatchNormalization /base_net/base_net.0/base_net.0.1/BatchNormalization');
    assert.equal(fold.epsilon, Math.fround(1e-5));
    const out = at('unfolded-into-folded.onnx');
    assert.equal(runCli(['apply', r.file, '-o', out]).status, 0);
    const worst = python(`
import sys, onnx, numpy as np
from onnx import numpy_helper
a, b = [{t.name: numpy_helper.to_array(t) for t in onnx.load(f).graph.initializer} for f in sys.argv[1:3]]
print(max(float(np.abs(a[n].astype(np.float64) - b[n]).max()) for n in b))
`, out, at('det2-folded.onnx'));
    assert.ok(Number(worst) < 1e-6, worst);
  });

  test('a .pth into a folded export of another class count: the plan folds; a packed head of unknown layout is not grown as one block', () => {
    const r = plan([at('det2.pth'), at('det3-folded.onnx')]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^loaded 24\/27 tensors \(98\.7% of parameters; 22 by folding 11 BatchNorm layers\), 0 expanded, 1 kept \(constants\), 2 skipped \(2 head\)/);
    assert.match(r.stdout, /not grown as one block\. State it with --head 'classification_header=anchors:3'/);
  });

  test('two BN-folded exports of 2 and 3 classes: ≥ 95% of the weights loaded, constants kept, the head grown per anchor, check passes', () => {
    const r = plan([at('det2-folded.onnx'), at('det3-folded.onnx'), '--head', 'classification_header=anchors:3']);
    assert.equal(r.status, 0, r.stderr);
    const { summary, entries } = r.plan;
    assert.ok(summary.fractionLoaded >= 0.95, String(summary.fractionLoaded));
    assert.equal(summary.skipped, 0);
    assert.ok(entries.filter((e: any) => e.role === 'constant').every((e: any) => e.action === 'keep'));
    const grown = entries.filter((e: any) => e.action === 'expand');
    assert.deepEqual(grown.map((e: any) => [e.target, e.expand.blocks, e.expand.rows]), [
      ['classification_header.weight', 3, [0, 1, -1]], ['classification_header.bias', 3, [0, 1, -1]],
    ]);
    const out = at('det2-into-det3.onnx');
    assert.equal(runCli(['apply', r.file, '-o', out]).status, 0);
    assert.equal(runCli(['check', r.file]).status, 0);
    // Each anchor's two old class rows land at the start of its three-row block (python onnx reads).
    const copied = python(`
import sys, onnx, numpy as np
from onnx import numpy_helper
a, b = [{t.name: numpy_helper.to_array(t) for t in onnx.load(f).graph.initializer} for f in sys.argv[1:3]]
print(all(np.array_equal(b['classification_header.weight'][k * 3:k * 3 + 2], a['classification_header.weight'][k * 2:k * 2 + 2]) for k in range(3)))
`, at('det2-folded.onnx'), out);
    assert.equal(copied.trim(), 'True');
  });

  test('one more block of equal shapes: which one is new is ambiguous, reported with candidates, never guessed', () => {
    const r = plan([at('det2-folded.onnx'), at('det2-deeper-folded.onnx')]);
    const ambiguous = r.plan.entries.filter((e: any) => e.skip?.reason === 'ambiguous');
    assert.equal(ambiguous.length, 22);
    assert.ok(ambiguous.every((e: any) => e.skip.candidates.length >= 1 && /^ambiguous graph position/.test(e.skip.detail)));
    assert.equal(r.plan.entries.filter((e: any) => e.action === 'load' && e.target.startsWith('onnx::')).length, 2, 'only the first conv, whose shape is unique, pairs');
  });
});

describe('generated names in graphs wired the same way', { skip: !HAS_CORPUS && 'no ../shared/corpus' }, () => {
  test('a plan from a model into itself loads every weight, numeric names and If-branch weights included, and keeps its constants', () => {
    const silero = path.join(CORPUS, 'onnx/silero-vad-v4/silero_vad_legacy.onnx');
    assert.match(plan([silero, silero]).stdout, /^loaded 92\/259 tensors \(100\.0% of parameters\), 0 expanded, 167 kept \(constants\), 0 skipped/);
  });
});

describe('Keras 3 .keras files of one script: layer names drift, layer paths do not', { skip: !HAS_CORPUS && 'no ../shared/corpus' }, () => {
  test('diff --values pairs by the Keras layer path and finds them equal', () => {
    const renamed = path.join(tempDir(), 'renamed.keras');
    // The same weights under the auto layer names another run of the script gives (dense_8 …).
    python(`
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, zipfile.ZipFile(sys.argv[2], 'w') as out:
    for item in z.infolist():
        data = z.read(item.filename)
        if item.filename == 'config.json':
            text = data.decode()
            for old, new in [('dense_31', 'dense_8'), ('dense_32', 'dense_9'), ('dense_33', 'dense_10'), ('dense_34', 'dense_11')]:
                text = text.replace(old, new)
            data = text.encode()
        out.writestr(item, data)
`, KERAS, renamed);
    const r = runCli(['diff', '--values', KERAS, renamed]);
    assert.equal(r.status, 0, r.stdout);
    assert.match(r.stdout, /matched 8 \(8 by graph position\); 0 only in A; 0 only in B;.* 0 value differences;.* → equal\n/);
    assert.match(r.stdout, /dense_32\.kernel │ dense_9\.kernel +│ graph position: same Keras layer path layers\/dense_1\/vars\/0/);
  });
});

/** A safetensors file as HF writes it: keys sorted. */
function writeSafetensors(file: string, tensors: [string, number[]][]): void {
  const sorted = [...tensors].sort(([a], [b]) => (a < b ? -1 : 1));
  let offset = 0;
  const header: Record<string, unknown> = {};
  const chunks: Buffer[] = [];
  for (const [name, shape] of sorted) {
    const count = shape.reduce((n, d) => n * d, 1);
    const values = Float32Array.from({ length: count }, (_, i) => Math.sin(i + name.length));
    header[name] = { dtype: 'F32', shape, data_offsets: [offset, offset + 4 * count] };
    chunks.push(Buffer.from(values.buffer));
    offset += 4 * count;
  }
  const json = Buffer.from(JSON.stringify(header));
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(json.length));
  fs.writeFileSync(file, Buffer.concat([length, json, ...chunks]));
}

describe('--mode classification without a graph: module order, not file order', () => {
  test('sorted safetensors keys put the classifier first; the backbone (features.0 … features.13) still loads', () => {
    const dir = tempDir();
    const model = (classes: number) => {
      const file = path.join(dir, `cls-${classes}.safetensors`);
      writeSafetensors(file, [
        ...Array.from({ length: 14 }, (_, i): [string, number[]][] => [[`features.${i}.weight`, [8, i === 0 ? 3 : 8, 3, 3]], [`features.${i}.bias`, [8]]]).flat(),
        ['classifier.weight', [classes, 8]], ['classifier.bias', [classes]],
      ]);
      return file;
    };
    const r = plan([model(10), model(5), '--mode', 'classification']);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.plan.entries[0].target, 'classifier.bias', 'file order: the classifier first');
    assert.match(r.stdout, /^loaded 28\/30 tensors .*2 skipped \(2 not-backbone\)/);
  });

  test('in a numbered sequence the head is the last by number (net.10 after net.9), though sorted text puts it third', () => {
    const dir = tempDir();
    const model = (classes: number) => {
      const file = path.join(dir, `seq-${classes}.safetensors`);
      writeSafetensors(file, [
        ...Array.from({ length: 10 }, (_, i): [string, number[]][] => [[`net.${i}.weight`, [8, 8]], [`net.${i}.bias`, [8]]]).flat(),
        ['net.10.weight', [classes, 8]], ['net.10.bias', [classes]], ['net.11.weight', [4, classes]],
      ]);
      return file;
    };
    const r = plan([model(10), model(5), '--mode', 'classification']);
    const skipped = r.plan.entries.filter((e: any) => e.action === 'skip').map((e: any) => e.target).sort();
    assert.deepEqual(skipped, ['net.10.bias', 'net.10.weight', 'net.11.weight']);
  });
});

describe('diff pairs by graph position only where names are generated', () => {
  test('a renamed tensor with a real name stays a difference', () => {
    const renamed = path.join(tempDir(), 'renamed.onnx');
    const sample = path.join(ROOT, 'samples', 'detector-90.onnx');
    assert.equal(runCli(['rename', sample, '-o', renamed, '--rename', 'backbone.conv2.weight=>backbone.conv2.kernel_renamed']).status, 0);
    const r = runCli(['diff', sample, renamed]);
    assert.equal(r.status, 1);
    assert.match(r.stdout, /1 only in A; 1 only in B/);
  });
});

describe('structure building blocks', () => {
  test('module order: numeric components as numbers; siblings of unknown order (sorted file) are never "after"', () => {
    const names = ['base_net.0.weight', 'base_net.1.weight', 'base_net.10.weight', 'base_net.9.weight', 'head.weight'];
    const order = moduleOrder(names);
    assert.deepEqual([...order.rank].sort((a, b) => a[1] - b[1]).map(([n]) => n), ['base_net.0.weight', 'base_net.1.weight', 'base_net.9.weight', 'base_net.10.weight', 'head.weight']);
    assert.equal(order.isAfter('base_net.10.weight', 'base_net.9.weight'), true);
    const sorted = moduleOrder(['classifier.weight', 'features.0.weight', 'features.10.weight', 'features.2.weight']);
    assert.equal(sorted.isAfter('features.0.weight', 'classifier.weight'), false);
    assert.equal(sorted.isAfter('features.10.weight', 'features.2.weight'), true);
  });
});

describe('a generated name no layer covers', () => {
  test('a PRelu slope of one name, read at the same place in two different exports, pairs; elsewhere it does not', async () => {
    const { encodeModel, float32Tensor } = await import('../src/formats/onnx/build.js');
    const dir = tempDir();
    const model = (convWeight: string, slopeReader: 'PRelu' | 'Mul') => encodeModel({
      graphName: 'prelu',
      nodes: [
        { op: 'Conv', inputs: ['x', convWeight], outputs: ['c'] },
        { op: slopeReader, inputs: ['c', '55'], outputs: ['y'] },
      ],
      initializers: [float32Tensor(convWeight, [4, 3, 1, 1], new Float32Array(12).fill(1)), float32Tensor('55', [4, 1, 1], new Float32Array(4).fill(0.25))],
      inputs: [{ name: 'x', dtype: 'float32', shape: [1, 3, 2, 2] }],
      outputs: [{ name: 'y', dtype: 'float32', shape: [1, 4, 2, 2] }],
    });
    const [a, b, c] = ['a.onnx', 'b.onnx', 'c.onnx'].map((f) => path.join(dir, f));
    fs.writeFileSync(a, model('12', 'PRelu'));
    fs.writeFileSync(b, model('13', 'PRelu'));
    fs.writeFileSync(c, model('13', 'Mul'));
    const slope = (r: ReturnType<typeof plan>) => r.plan.entries.find((e: any) => e.target === '55');
    const same = slope(plan([a, b]));
    assert.equal(same.action, 'load');
    assert.match(same.why, /^graph position: same name, read by PRelu#1 as input 1 in both graphs/);
    assert.notEqual(slope(plan([a, c])).action, 'load');
  });
});
