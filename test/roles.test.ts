import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { open } from '../src/index.js';
import { encodeModel, float32Tensor, tensorProto } from '../src/formats/onnx/build.js';
import { isGeneratedName } from '../src/core/names.js';
import { graphRole, roleFromName, type GraphUse, type GraphView } from '../src/core/roles.js';
import { alignTensors } from '../src/ops/align.js';
import type { TensorInfo } from '../src/core/statedict.js';
import { createRequire } from 'node:module';
import { CORPUS, HAS_CORPUS, ROOT, runCli, tempDir } from './helpers.js';
import { python, pythonHas } from './python.js';

const ULTRAFACE_ONNX = path.join(CORPUS, 'onnx', 'ultraface-rfb320-simplified', 'version-RFB-320_simplified.onnx');
const ULTRAFACE_PTH = path.join(CORPUS, 'pytorch', 'ultraface-rfb320', 'version-RFB-320.pth');
const PPOCR_ONNX = path.join(CORPUS, 'onnx', 'ppocr-cls-paddle2onnx', 'ch_ppocr_mobile_v2.0_cls_infer.onnx');
const require = createRequire(import.meta.url);
const Ajv2020 = require('ajv/dist/2020.js');
const validatePlan = new Ajv2020({ allErrors: true }).compile(JSON.parse(fs.readFileSync(path.join(ROOT, 'schemas', 'plan.schema.json'), 'utf8')));

/** `ckpt plan … --json`, checked against the plan schema. */
function planJson(args: string[]): any {
  const r = runCli(['plan', ...args, '--json']);
  assert.equal(r.status, 0, r.stderr);
  const plan = JSON.parse(r.stdout);
  assert.ok(validatePlan(plan), JSON.stringify(validatePlan.errors));
  return plan;
}

const corpus = { skip: HAS_CORPUS ? false : 'corpus not present' };
const withOnnxPython = { skip: !HAS_CORPUS ? 'corpus not present' : pythonHas('onnx') ? false : 'python3 onnx not installed' };

interface TensorJson { name: string; dtype: string; shape: number[]; role?: string; roleFrom?: string }

function inspectJson(file: string): { totals: { parameters: number; roles: Record<string, { tensors: number; elements: number }> }; tensors: TensorJson[] } {
  const r = runCli(['inspect', '--json', file]);
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout);
}

const numel = (shape: readonly number[]) => shape.reduce((n, d) => n * d, 1);
const rolesOf = (tensors: TensorJson[], role: string) => tensors.filter((t) => t.role === role).map((t) => t.name).sort();

/**
 * Which initializers / Constant outputs python's onnx sees consumed by which op input, so roles
 * are checked against an independent reading of the graph.
 */
function consumersByPython(file: string): Record<string, [string, number][]> {
  return JSON.parse(python(`
import onnx, json, sys, collections
g = onnx.load(sys.argv[1]).graph
uses = collections.defaultdict(list)
for n in g.node:
    for k, i in enumerate(n.input):
        uses[i].append((n.op_type, k))
names = [i.name for i in g.initializer] + [n.output[0] for n in g.node if n.op_type == 'Constant']
print(json.dumps({name: uses[name] for name in names}))
`, file));
}

describe('roles from the ONNX graph (real exports)', () => {
  test('UltraFace RFB-320: Reshape shape arguments are constants, every Conv input a weight; parameters leave the constants out', withOnnxPython, () => {
    const listing = inspectJson(ULTRAFACE_ONNX);
    const consumers = consumersByPython(ULTRAFACE_ONNX);
    const reshapeArgs = Object.keys(consumers).filter((n) => consumers[n]!.every(([op, k]) => op === 'Reshape' && k === 1)).sort();
    const convInputs = Object.keys(consumers).filter((n) => consumers[n]!.some(([op, k]) => op === 'Conv' && k >= 1)).sort();
    assert.ok(reshapeArgs.length > 0 && convInputs.length > 0);
    assert.deepEqual(rolesOf(listing.tensors, 'constant'), reshapeArgs);
    assert.deepEqual(rolesOf(listing.tensors, 'weight'), convInputs);
    assert.ok(listing.tensors.every((t) => t.roleFrom === 'graph'));
    const all = listing.tensors.reduce((n, t) => n + numel(t.shape), 0);
    const constants = listing.tensors.filter((t) => t.role === 'constant').reduce((n, t) => n + numel(t.shape), 0);
    assert.equal(listing.totals.parameters, all - constants);
    const text = runCli(['inspect', ULTRAFACE_ONNX]).stdout;
    assert.match(text, new RegExp(`${listing.tensors.length} tensors \\(${convInputs.length} weights, ${reshapeArgs.length} constants\\)`));
  });

  test('PP-OCR (paddle2onnx): weights carried by Constant nodes get their roles from their consumers', withOnnxPython, () => {
    const listing = inspectJson(PPOCR_ONNX);
    const consumers = consumersByPython(PPOCR_ONNX);
    const byInput = (pred: (op: string, k: number) => boolean) => Object.keys(consumers).filter((n) => consumers[n]!.some(([op, k]) => pred(op, k))).sort();
    assert.deepEqual(rolesOf(listing.tensors, 'buffer'), byInput((op, k) => op === 'BatchNormalization' && k >= 3));
    const weights = rolesOf(listing.tensors, 'weight');
    for (const name of byInput((op, k) => (op === 'Conv' && k >= 1) || (op === 'BatchNormalization' && (k === 1 || k === 2)) || (op === 'MatMul' && k === 1))) {
      assert.ok(weights.includes(name), `${name} should be a weight`);
    }
    // fc_0.b_0 is the bias Add right after the classifier's MatMul.
    assert.ok(weights.includes('fc_0.b_0'));
    const constants = rolesOf(listing.tensors, 'constant');
    assert.ok(constants.length > 0 && constants.every((n) => n.startsWith('p2o.helper.') || listing.tensors.find((t) => t.name === n)!.dtype !== 'float32'), constants.join(', '));
    // The same model's Paddle inference params hold 213 values: exactly its weights and buffers.
    assert.equal(weights.length + rolesOf(listing.tensors, 'buffer').length, 213);
  });
});

/** A role graph from `[op, inputs, outputs]` nodes. */
function graphOf(nodes: [string, string[], string[]][]): GraphView {
  const uses = new Map<string, GraphUse[]>();
  const producers = new Map<string, { opType: string; inputs: string[] }>();
  for (const [opType, inputs, outputs] of nodes) {
    for (const o of outputs) producers.set(o, { opType, inputs });
    inputs.forEach((input, inputIndex) => uses.set(input, [...(uses.get(input) ?? []), { opType, inputIndex, inputs, outputs }]));
  }
  return { usesOf: (n) => uses.get(n) ?? [], producerOf: (n) => producers.get(n) };
}

describe('graphRole: what a consumer makes of a tensor', () => {
  const graph = graphOf([
    ['MatMul', ['x', 'W'], ['xw']], ['Add', ['xw', 'b'], ['h']], // Linear without Gemm
    ['Mul', ['h', 'half'], ['g']], // GELU's 0.5
    ['ReduceMean', ['g'], ['mu']], ['Sub', ['g', 'mu'], ['d']], ['Div', ['d', 'sigma'], ['n']],
    ['Mul', ['n', 'gamma'], ['s']], ['Add', ['s', 'beta'], ['ln']], // decomposed LayerNorm
    ['Slice', ['ln', 'starts', 'ends'], ['loc']], ['Mul', ['loc', 'priors'], ['boxes']], // anchor decoding
    ['Identity', ['Wc'], ['Wc_id']], ['Conv', ['x', 'Wc_id'], ['c']], // weights behind an Identity
    ['BatchNormalization', ['c', 'scale', 'bias', 'mean', 'var'], ['bn']],
    ['QLinearConv', ['x', 'xs', 'xz', 'wq', 'ws', 'wz', 'ys', 'yz'], ['q']],
  ]);
  const role = (name: string, dtype: 'float32' | 'int64' | 'int8' = 'float32', shape = [4]) => graphRole(name, { dtype, shape }, graph);

  test('learned inputs are weights, BatchNorm statistics buffers', () => {
    assert.deepEqual(['W', 'b', 'gamma', 'beta', 'Wc', 'scale', 'bias'].map((n) => role(n)), Array(7).fill('weight'));
    assert.deepEqual([role('mean'), role('var')], ['buffer', 'buffer']);
    assert.equal(role('wq', 'int8'), 'weight');
  });

  test('structural arguments, scalars and arithmetic on outputs are constants', () => {
    assert.equal(role('half', 'float32', []), 'constant');
    assert.equal(role('priors', 'float32', [1, 4420, 2]), 'constant');
    assert.equal(role('starts', 'int64'), 'constant');
    assert.equal(role('xz', 'int8'), 'constant');
    assert.equal(role('unused'), undefined);
  });
});

describe('roles from names and configs (files without a graph)', () => {
  test('PyTorch running statistics are buffers by name; the headline splits weights and buffers', corpus, () => {
    const listing = inspectJson(ULTRAFACE_PTH);
    const buffers = listing.tensors.filter((t) => /\.(running_mean|running_var|num_batches_tracked)$/.test(t.name));
    assert.ok(buffers.length > 0);
    assert.deepEqual(rolesOf(listing.tensors, 'buffer'), buffers.map((t) => t.name).sort());
    assert.ok(listing.tensors.every((t) => t.roleFrom === 'names'));
    const weights = listing.tensors.length - buffers.length;
    assert.match(runCli(['inspect', ULTRAFACE_PTH]).stdout, new RegExp(`${listing.tensors.length} tensors \\(${weights} weights, ${buffers.length} buffers\\)`));
  });

  test('Keras BatchNormalization moving statistics are buffers, read from the layers-model config', corpus, () => {
    const listing = inspectJson(path.join(CORPUS, 'tfjs', 'nsfwjs-mobilenet_v2', 'model.json'));
    const moving = listing.tensors.filter((t) => /\.moving_(mean|variance)$/.test(t.name)).map((t) => t.name).sort();
    assert.ok(moving.length > 0);
    assert.deepEqual(rolesOf(listing.tensors, 'buffer'), moving);
    assert.ok(listing.tensors.every((t) => t.roleFrom === 'config'));
  });

  test('TF.js graph model: the Reshape shape and Pad paddings are constants from the GraphDef', corpus, () => {
    const file = path.join(CORPUS, 'tfjs', 'human-blazeface', 'blazeface.json');
    const graph = JSON.parse(fs.readFileSync(file, 'utf8'));
    const structural = new Set<string>();
    for (const node of graph.modelTopology.node) {
      if (node.op === 'Reshape' || node.op === 'Pad') structural.add(node.input[1].replace(/:\d+$/, ''));
    }
    const listing = inspectJson(file);
    const constants = listing.tensors.filter((t) => t.role === 'constant');
    assert.ok(constants.length > 0);
    assert.ok(constants.every((t) => t.roleFrom === 'graph'));
    assert.deepEqual(constants.map((t) => t.name).sort(), [...structural].map((n) => n.replace(/\//g, '.')).sort());
  });

  test('naming conventions: Paddle _mean/_variance and batch_norm_N.w_1/w_2, integers, the rest weights', () => {
    assert.equal(roleFromName('bn1._mean', 'float32'), 'buffer');
    assert.equal(roleFromName('conv10_depthwise_bn_variance', 'float32'), 'buffer');
    assert.equal(roleFromName('batch_norm_3.w_2', 'float32'), 'buffer');
    assert.equal(roleFromName('bn.num_batches_tracked', 'int64'), 'buffer');
    assert.equal(roleFromName('embeddings.position_ids', 'int64'), 'constant');
    assert.equal(roleFromName('fc.qweight', 'int8'), 'weight');
    assert.equal(roleFromName('batch_norm_3.w_0', 'float32'), 'weight');
  });
});

/**
 * An UltraFace-like detector: a Conv head whose output is reshaped (int64 shape `322`) and
 * scaled by anchor priors `467` [1, anchors, 2] — a float constant that is not a weight.
 */
function detector(anchors: number, seed: number): Uint8Array {
  const values = (n: number) => Float32Array.from({ length: n }, (_, i) => seed + i / 100);
  return encodeModel({
    graphName: 'detector',
    nodes: [
      { op: 'Conv', inputs: ['x', 'head.weight', 'head.bias'], outputs: ['c'] },
      { op: 'Reshape', inputs: ['c', '322'], outputs: ['r'] },
      { op: 'Mul', inputs: ['r', '467'], outputs: ['y'] },
    ],
    initializers: [
      float32Tensor('head.weight', [2, 3, 1, 1], values(6)),
      float32Tensor('head.bias', [2], values(2)),
      tensorProto('322', 'int64', [3], new Uint8Array(new BigInt64Array([1n, BigInt(anchors), 2n]).buffer)),
      float32Tensor('467', [1, anchors, 2], values(anchors * 2)),
    ],
    inputs: [{ name: 'x', dtype: 'float32', shape: [1, 3, 1, anchors] }],
    outputs: [{ name: 'y', dtype: 'float32', shape: [1, anchors, 2] }],
  });
}

describe('plans keep graph constants', () => {
  const dir = tempDir();
  const source = path.join(dir, 'rfb320.onnx');
  const target = path.join(dir, 'rfb640.onnx');
  fs.writeFileSync(source, detector(8, 1));
  fs.writeFileSync(target, detector(32, 5));

  test('anchor priors and Reshape shapes are kept from the target, not expanded from the source', () => {
    const plan = planJson([source, target]);
    const byName = Object.fromEntries(plan.entries.map((e: { target: string }) => [e.target, e]));
    assert.equal(byName['467'].action, 'keep');
    assert.equal(byName['467'].role, 'constant');
    assert.match(byName['467'].keep.detail, /^kept: graph constant; source differs \(float32 \[1,8,2\]\)$/);
    assert.equal(byName['322'].action, 'keep');
    assert.equal(byName['head.weight'].action, 'load');
    assert.equal(plan.summary.kept, 2);
    // Only the head's weights count as parameters: all of them come from the source.
    assert.equal(plan.summary.targetParameters, 8);
    assert.equal(plan.summary.fractionLoaded, 1);
    assert.deepEqual(plan.unusedSource.sort(), ['322', '467']);
    const text = runCli(['plan', source, target]).stdout;
    assert.match(text, /^loaded 2\/4 tensors \(100\.0% of parameters\), 0 expanded, 2 kept \(constants\), 0 skipped\n/);
    assert.match(text, /2 target constants kept as they are \(--load-constants loads them from the source\)/);
  });

  test('apply leaves kept constants untouched; check --min-loaded passes on weights alone', async () => {
    const file = path.join(dir, 'plan.json');
    assert.equal(runCli(['plan', source, target, '-o', file]).status, 0);
    const out = path.join(dir, 'applied.onnx');
    const applied = runCli(['apply', file, '-o', out]);
    assert.equal(applied.status, 0, applied.stderr);
    const read = async (f: string, name: string) => {
      const dict = await open(f);
      try {
        return Buffer.from(await dict.tensors.find((t) => t.name === name)!.read());
      } finally {
        await dict.close();
      }
    };
    assert.ok((await read(out, '467')).equals(await read(target, '467')));
    assert.ok((await read(out, '322')).equals(await read(target, '322')));
    assert.ok((await read(out, 'head.weight')).equals(await read(source, 'head.weight')));
    assert.match(runCli(['check', file, '--min-loaded', '0.9']).stdout, /100\.0% of parameters loaded/);
  });

  test('--load-constants matches constants too: generated names of two different exports still do not pair', () => {
    const plan = planJson([source, target, '--load-constants']);
    const byName = Object.fromEntries(plan.entries.map((e: { target: string }) => [e.target, e]));
    assert.equal(plan.options.loadConstants, true);
    assert.equal(byName['467'].action, 'skip');
    assert.equal(byName['467'].skip.reason, 'generated-name');
    // The same export on both sides shares its generated names: then they load by name.
    const same = planJson([target, target, '--load-constants']);
    assert.deepEqual(same.entries.map((e: { action: string }) => e.action), ['load', 'load', 'load', 'load']);
  });

  test('a real export planned into itself loads every weight and keeps its Reshape constants', corpus, () => {
    const plan = planJson([ULTRAFACE_ONNX, ULTRAFACE_ONNX]);
    const constants = plan.entries.filter((e: { role: string }) => e.role === 'constant');
    assert.ok(constants.length > 0);
    assert.ok(constants.every((e: { action: string; keep: { detail: string } }) => e.action === 'keep' && /values not compared/.test(e.keep.detail)));
    assert.equal(plan.summary.loaded + plan.summary.kept, plan.summary.targetTensors);
    assert.equal(plan.summary.fractionLoaded, 1);
  });
});

/**
 * An SSD-like detector exported by torch.onnx (python3-torch): anchor priors computed in forward()
 * become `/Constant_N_output_0` initializers, as in UltraFace's exports.
 */
const TORCH_DETECTOR = `
import sys, torch, torch.nn as nn
out, size, classes = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
torch.manual_seed(classes)
class Det(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, stride=2, padding=1), nn.ReLU())
        self.regression = nn.Conv2d(8, 2 * 2, 1)
        self.classification = nn.Conv2d(8, 2 * classes, 1)
    def forward(self, x):
        f = self.backbone(x)
        loc = self.regression(f).permute(0, 2, 3, 1).reshape(x.shape[0], -1, 2)
        conf = self.classification(f).permute(0, 2, 3, 1).reshape(x.shape[0], -1, classes)
        anchors = (size // 2) ** 2 * 2
        priors = torch.linspace(0, 1, anchors * 2).reshape(1, anchors, 2)
        return torch.softmax(conf, dim=2), loc * 0.1 * priors + priors
m = Det().eval()
torch.save(m.state_dict(), out + '.pth')
torch.onnx.export(m, torch.zeros(1, 3, size, size), out + '.onnx', opset_version=11)
`;

describe('a torch export with anchor priors (python3-torch)', { skip: pythonHas('torch') && pythonHas('onnx') ? false : 'python3 torch/onnx not installed' }, () => {
  const dir = tempDir();
  const small = path.join(dir, 'det320');
  const large = path.join(dir, 'det640');
  python(TORCH_DETECTOR, small, '8', '2');
  python(TORCH_DETECTOR, large, '16', '3');

  test('the .pth and its ONNX export are equal: the export\'s shapes and priors are constants apart', () => {
    const r = runCli(['diff', '--values', `${small}.pth`, `${small}.onnx`]);
    assert.equal(r.status, 0, r.stdout);
    assert.match(r.stdout, /0 only in A; 0 only in B; .*→ equal \(constants apart, not model tensors: A 0, B 5, 0 only in A, 5 only in B, 0 differing\)/);
  });

  test('a plan into the larger export keeps its priors, grows the head per anchor, and check passes', () => {
    const file = path.join(dir, 'plan.json');
    const r = runCli(['plan', `${small}.onnx`, `${large}.onnx`, '-o', file]);
    assert.equal(r.status, 0, r.stderr);
    const plan = JSON.parse(fs.readFileSync(file, 'utf8'));
    assert.ok(validatePlan(plan), JSON.stringify(validatePlan.errors));
    const priors = plan.entries.filter((e: { shape: number[] }) => e.shape.length === 3 && e.shape[1] === 128);
    assert.equal(priors.length, 2);
    assert.ok(priors.every((e: { action: string; keep: { detail: string } }) => e.action === 'keep' && /source differs \(float32 \[1,32,2\]\)/.test(e.keep.detail)));
    assert.equal(plan.entries.find((e: { target: string }) => e.target === 'classification.weight').action, 'expand');
    const check = runCli(['check', file, '--min-loaded', '0.9']);
    assert.equal(check.status, 0, check.stdout + check.stderr);
    const applied = path.join(dir, 'applied.onnx');
    assert.equal(runCli(['apply', file, '-o', applied]).status, 0);
    // python's onnx reads the applied model: the priors are the target's, byte for byte.
    const same = python(`
import onnx, sys
from onnx import numpy_helper
def values(f):
    g = onnx.load(f).graph
    found = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    found.update({n.output[0]: numpy_helper.to_array(n.attribute[0].t) for n in g.node if n.op_type == 'Constant'})
    return found
a, t = values(sys.argv[1]), values(sys.argv[2])
print(all((a[n] == t[n]).all() for n in sys.argv[3:]))
`, applied, `${large}.onnx`, ...priors.map((e: { targetInFile: string }) => e.targetInFile));
    assert.equal(same.trim(), 'True');
  });
});

describe('diff reports constants apart', () => {
  test('the same weights with and without an exporter\'s graph constants are equal; the constants are listed', corpus, () => {
    const dir = tempDir();
    const weightsOnly = path.join(dir, 'weights.safetensors');
    const constants = inspectJson(ULTRAFACE_ONNX).tensors.filter((t) => t.role === 'constant').map((t) => t.name).sort();
    const stripped = runCli(['strip', ULTRAFACE_ONNX, ...constants.flatMap((name) => ['--exclude', `=${name}`]), '-o', weightsOnly]);
    assert.equal(stripped.status, 0, stripped.stderr);
    const r = runCli(['diff', '--json', weightsOnly, ULTRAFACE_ONNX]);
    const report = JSON.parse(r.stdout);
    assert.equal(r.status, 0, r.stdout);
    assert.equal(report.equal, true);
    assert.deepEqual(report.onlyInB, []);
    assert.deepEqual(report.constants.onlyInB.map((t: { name: string }) => t.name).sort(), constants);
    const text = runCli(['diff', weightsOnly, ULTRAFACE_ONNX]).stdout;
    assert.match(text, new RegExp(`→ same names, shapes and dtypes; values not compared \\(--values\\) \\(constants apart, not model tensors: A 0, B ${constants.length}, 0 only in A, ${constants.length} only in B, 0 differing\\)`));
  });
});

describe('exporter-generated names', () => {
  test('isGeneratedName: exporter and framework numbering, not names people give', () => {
    for (const name of ['322', 'onnx::Conv_123', 'Constant_output_0', 'model.conv1.Conv_output_0', 'p2o.helper.constant.4', 'conv2d_107.b_0',
      'batch_norm_3.w_1', 'linear_0.w_0', 'fill_constant_1.tmp_0', 'dense_14.kernel', 'sequential.conv2d_3.bias', 'unknown_135', 'val_20', 'arr_0']) {
      assert.equal(isGeneratedName(name), true, name);
    }
    for (const name of ['backbone.conv1.weight', 'classification_headers.0.2.bias', 'conv1_weights', 'yolo_head.yolo_output.0.weight', 'fc.bias', 'classes4.kernel', 'base_net.0.1.running_mean']) {
      assert.equal(isGeneratedName(name), false, name);
    }
  });

  const fake = (name: string, shape: number[]): TensorInfo => ({
    name, source: name, dtype: 'float32', shape, byteLength: 4 * numel(shape), origin: 'weight',
    read: async () => new Uint8Array(0), readStrings: async () => [],
  });

  test('two different models\' auto names are not paired; the same names and shapes on both sides are', () => {
    const a = [fake('conv2d_0.w_0', [8, 3, 3, 3]), fake('conv2d_1.w_0', [16, 8, 3, 3]), fake('head.weight', [2, 16])];
    const b = [fake('conv2d_0.w_0', [8, 3, 3, 3]), fake('conv2d_1.w_0', [32, 8, 3, 3]), fake('head.weight', [2, 16])];
    const different = alignTensors(a, b);
    assert.deepEqual(different.pairs.map((p) => p.a.name), ['head.weight']);
    assert.deepEqual(different.onlyInA.map((t) => t.name), ['conv2d_0.w_0', 'conv2d_1.w_0']);
    assert.ok(different.onlyInB.every((t) => different.generated.has(t)));
    const same = alignTensors(a, a.map((t) => fake(t.name, [...t.shape])));
    assert.deepEqual(same.pairs.map((p) => p.reason), ['name', 'name', 'name']);
  });

  test('plan: PP-OCR\'s Paddle auto names pair with its own export only, with the reason when they do not', corpus, () => {
    const dir = tempDir();
    // The same export with the classifier replaced: a different model under the same numbering.
    const other = path.join(dir, 'other.onnx');
    const stripped = runCli(['strip', PPOCR_ONNX, '--exclude', '=fc_0.w_0', '-o', other]);
    assert.equal(stripped.status, 0, stripped.stderr);
    const self = planJson([PPOCR_ONNX, PPOCR_ONNX]);
    assert.equal(self.summary.skipped, 0);
    assert.equal(self.summary.fractionLoaded, 1);
    const plan = planJson([PPOCR_ONNX, other]);
    // The stripped copy numbers its tensors the same way but is another file: its Paddle auto
    // names are no evidence, so its layers pair by their place in the graph, never by name.
    const loaded = plan.entries.filter((e: { action: string }) => e.action === 'load' || e.action === 'fold');
    assert.ok(loaded.length > 0);
    for (const e of loaded) {
      assert.ok(isGeneratedName(e.target), e.target);
      assert.match(e.why, /^graph position/, e.target);
    }
  });
});

describe('presets match nested heads', () => {
  test('--preset yolov3 removes PaddleDetection 2.x yolo_head.yolo_output.N from a .pdparams checkpoint', () => {
    const dir = tempDir();
    const onnx = path.join(dir, 'yolov3.onnx');
    fs.writeFileSync(onnx, encodeModel({
      graphName: 'yolov3',
      nodes: [
        { op: 'Conv', inputs: ['x', 'backbone.conv.weight'], outputs: ['f'] },
        { op: 'Conv', inputs: ['f', 'yolo_head.yolo_output.0.weight', 'yolo_head.yolo_output.0.bias'], outputs: ['y'] },
      ],
      initializers: [
        float32Tensor('backbone.conv.weight', [4, 3, 1, 1], new Float32Array(12)),
        float32Tensor('yolo_head.yolo_output.0.weight', [255, 4, 1, 1], new Float32Array(1020)),
        float32Tensor('yolo_head.yolo_output.0.bias', [255], new Float32Array(255)),
      ],
      inputs: [{ name: 'x', dtype: 'float32', shape: [1, 3, 8, 8] }],
      outputs: [{ name: 'y', dtype: 'float32', shape: [1, 255, 8, 8] }],
    }));
    const pdparams = path.join(dir, 'yolov3.pdparams');
    assert.equal(runCli(['convert', onnx, pdparams]).status, 0);
    const r = runCli(['strip', pdparams, '--preset', 'yolov3', '--dry-run', '--json']);
    assert.equal(r.status, 0, r.stderr);
    const body = JSON.parse(r.stdout);
    assert.deepEqual(body.removed.map((t: { name: string }) => t.name), ['yolo_head.yolo_output.0.weight', 'yolo_head.yolo_output.0.bias']);
    // An explicit pattern keeps matching at the start of the name only, as documented.
    assert.deepEqual(JSON.parse(runCli(['strip', pdparams, '--exclude', 'yolo_output', '--dry-run', '--json']).stdout).removed, []);
  });
});
