import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { encodeModel, float32Tensor, tensorProto, type NodeSpec } from '../src/formats/onnx/build.js';
import { blockRows, formatRows, growingMap, inferClassCounts, layoutName, layoutsFitting, parseLayout } from '../src/ops/heads.js';
import { CORPUS, HAS_CORPUS, runCli, tempDir } from './helpers.js';
import { plan } from './plan-helpers.js';
import { python, pythonHas } from './python.js';
import { loadOrt, openSession } from '../src/runtime/session.js';

const HAS_ONNX = pythonHas('onnx');
const HAS_TORCH = pythonHas('torch');

const entryOf = (p: any, name: string) => p.entries.find((e: any) => e.target === name);

/**
 * One head layer `name` with `rows` output rows over 4 inputs: Gemm (transB=1, weight [rows, 4]),
 * or Conv 1×1 whose NHWC output is reshaped to [1, -1, k] (SSD style) or to the dims `reshapeTo` gives.
 * Row r of the weight holds (sign · (r + 1)) · 100 + column, the bias sign · (r + 1): every row is recognisable.
 */
function headModel(dir: string, file: string, name: string, rows: number, sign: number, reshapeTo?: number | number[]): string {
  const weight = Float32Array.from({ length: rows * 4 }, (_, i) => sign * (Math.floor(i / 4) + 1) * 100 + (i % 4));
  const bias = Float32Array.from({ length: rows }, (_, r) => sign * (r + 1));
  const conv = reshapeTo !== undefined;
  const nodes: NodeSpec[] = conv
    ? [
      { op: 'Conv', inputs: ['x', `${name}.weight`, `${name}.bias`], outputs: ['h'] },
      { op: 'Transpose', inputs: ['h'], outputs: ['t'], attributes: { perm: [0, 2, 3, 1] } },
      { op: 'Reshape', inputs: ['t', 'shape'], outputs: ['y'] },
    ]
    : [{ op: 'Gemm', inputs: ['x', `${name}.weight`, `${name}.bias`], outputs: ['y'], attributes: { transB: 1 } }];
  const dims = Array.isArray(reshapeTo) ? reshapeTo : [1, -1, reshapeTo ?? 0];
  const shape = BigInt64Array.from(dims, BigInt);
  fs.writeFileSync(path.join(dir, file), encodeModel({
    graphName: 'head',
    nodes,
    initializers: [
      float32Tensor(`${name}.weight`, conv ? [rows, 4, 1, 1] : [rows, 4], weight),
      float32Tensor(`${name}.bias`, [rows], bias),
      ...(conv ? [tensorProto('shape', 'int64', [dims.length], new Uint8Array(shape.buffer))] : []),
    ],
    inputs: [{ name: 'x', dtype: 'float32', shape: conv ? [1, 4, 2, 2] : [1, 4] }],
    outputs: [{ name: 'y', dtype: 'float32', shape: conv ? dims.map((d) => (d < 0 ? rows * 4 / dims[dims.length - 1]! : d)) : [1, rows] }],
  }));
  return path.join(dir, file);
}

/** Rows (along axis 0) of every float initializer, read by python's onnx package: the independent reader. */
function onnxRows(file: string): Record<string, number[][]> {
  return JSON.parse(python(`
import json, sys, onnx
from onnx import numpy_helper
out = {}
for t in onnx.load(sys.argv[1]).graph.initializer:
    a = numpy_helper.to_array(t)
    if a.dtype.kind == 'f':
        out[t.name] = a.reshape(a.shape[0], -1).tolist()
print(json.dumps(out))`, file));
}

/** Applies the plan and checks every row of `names`: row i is source row map[i], or the target's own row where map[i] is -1. */
function assertApplied(planFile: string, source: string, target: string, expected: Record<string, number[]>): string {
  const out = path.join(tempDir(), 'applied.onnx');
  const r = runCli(['apply', planFile, '-o', out]);
  assert.equal(r.status, 0, r.stderr);
  const [from, into, applied] = [source, target, out].map(onnxRows);
  for (const [name, map] of Object.entries(expected)) {
    assert.equal(applied![name]!.length, map.length, name);
    map.forEach((m, i) => assert.deepEqual(applied![name]![i], m >= 0 ? from![name]![m] : into![name]![i], `${name} row ${i} ← ${m >= 0 ? `source row ${m}` : 'target'}`));
  }
  return out;
}

/** The `scores` and `boxes` outputs of one onnxruntime run (CPU) on one float input. */
async function runModel(file: string, input: string, values: Float32Array, shape: number[]): Promise<{ scores: Float32Array; boxes: Float32Array }> {
  const ort = await loadOrt();
  const { session } = await openSession(file, 'cpu', file);
  try {
    const outputs = await session.run({ [input]: new ort.Tensor('float32', values, shape) });
    return { scores: outputs.scores!.data as Float32Array, boxes: outputs.boxes!.data as Float32Array };
  } finally {
    await session.release();
  }
}

function labels(dir: string, file: string, content: string): string {
  fs.writeFileSync(path.join(dir, file), content);
  return path.join(dir, file);
}

describe('head layouts: names, fits and row maps', () => {
  test('every layout name parses and prints back; bad ones are usage errors', () => {
    for (const name of ['classes', 'background-first', 'background-last', 'anchors:3', 'yolo:3', 'box-per-class', 'anchors:6+background-first', 'box-per-class+background-last']) {
      assert.equal(layoutName(parseLayout(name)), name);
    }
    assert.equal(layoutName(parseLayout('anchors:1')), 'classes');
    for (const bad of ['anchors', 'anchors:0', 'yolo:3+background-first', 'rows', 'classes+anchors:3']) assert.throws(() => parseLayout(bad), /head layout/);
  });

  test('row maps: old classes to their new index, background rows to the background row, YOLO prefix rows kept', () => {
    assert.deepEqual(blockRows(parseLayout('classes'), 2, growingMap(2, 4)), [0, 1, -1, -1]);
    assert.deepEqual(blockRows(parseLayout('background-first'), 2, growingMap(2, 3)), [0, 1, 2, -1]);
    assert.deepEqual(blockRows(parseLayout('background-last'), 2, growingMap(2, 3)), [0, 1, -1, 2]);
    assert.deepEqual(blockRows(parseLayout('yolo:3'), 2, [1, -1]), [0, 1, 2, 3, 4, 6, -1]);
    assert.deepEqual(blockRows(parseLayout('box-per-class'), 2, [1, 0, -1]), [4, 5, 6, 7, 0, 1, 2, 3, -1, -1, -1, -1]);
    assert.deepEqual(blockRows(parseLayout('box-per-class+background-first'), 1, [0, -1]), [0, 1, 2, 3, 4, 5, 6, 7, -1, -1, -1, -1]);
    assert.equal(formatRows([0, 1, 2, -1, -1, 5, 3]), '0..2,new×2,5,3');
  });

  test('layouts that fit both row counts for OLD → NEW classes', () => {
    const names = (s: number, t: number, from: number, to: number) => layoutsFitting(s, t, from, to).map(layoutName).sort();
    assert.deepEqual(names(6, 9, 2, 3), ['anchors:3']);
    assert.deepEqual(names(81, 83, 80, 82), ['background-first', 'background-last']);
    assert.deepEqual(names(255, 258, 80, 81), ['yolo:3']);
    assert.deepEqual(names(8, 12, 2, 3), ['anchors:4', 'box-per-class']);
    assert.deepEqual(names(90, 92, 90, 92), ['classes']);
    assert.deepEqual(names(5, 7, 2, 3), []);
  });

  test('class counts are inferred when grown heads of different sizes agree (anchors × classes), never from one head', () => {
    assert.deepEqual(inferClassCounts([[[6, 64, 1, 1], [9, 64, 1, 1]], [[4, 128, 1, 1], [6, 128, 1, 1]], [[6], [9]], [[16, 3], [16, 3]]]), { from: 2, to: 3 });
    assert.equal(inferClassCounts([[[1024, 90], [1024, 92]]]), undefined, 'one head: nothing to agree on');
    assert.equal(inferClassCounts([[[6], [9]], [[4], [5]]]), undefined, 'heads that disagree');
    assert.equal(inferClassCounts([[[1000], [1002]], [[500], [501]]]), undefined, 'one block each is not a packed head');
  });
});

describe('ckpt plan/apply: heads copied through their layout (values checked with python onnx)', { skip: !HAS_ONNX && 'python3 onnx missing' }, () => {
  test('background-last (Detectron2 cls_score): the old background row goes to the new last row', () => {
    const dir = tempDir();
    const [source, target] = [headModel(dir, 's.onnx', 'cls_score', 4, 1), headModel(dir, 't.onnx', 'cls_score', 6, -1)];
    const r = plan([source, target, '--head', 'cls_score=background-last']);
    assert.equal(r.status, 0, r.stderr);
    const weight = entryOf(r.plan, 'cls_score.weight');
    assert.deepEqual([weight.action, weight.expand.layout, weight.expand.rows], ['expand', 'background-last', [0, 1, 2, -1, -1, 3]]);
    assert.match(weight.why, /layout background-last \(--head cls_score=background-last\)/);
    assert.match(r.stdout, /rows 0\.\.2,new×2,3 \(new: target\)/);
    assertApplied(r.file, source, target, { 'cls_score.weight': [0, 1, 2, -1, -1, 3], 'cls_score.bias': [0, 1, 2, -1, -1, 3] });
  });

  test('--expand-classes with a background row at an unknown end is refused, naming both flags', () => {
    const dir = tempDir();
    const r = plan([headModel(dir, 's.onnx', 'cls_score', 4, 1), headModel(dir, 't.onnx', 'cls_score', 6, -1), '--expand-classes', '3:5']);
    assert.equal(r.status, 0, r.stderr);
    const skip = entryOf(r.plan, 'cls_score.weight').skip;
    assert.equal(skip.reason, 'head');
    assert.match(skip.detail, /--head 'cls_score=background-first' or --head 'cls_score=background-last'/);
  });

  test('background-first with --classes: reorder, subset and a new class; the background row stays row 0', () => {
    const dir = tempDir();
    const [source, target] = [headModel(dir, 's.onnx', 'cls', 5, 1), headModel(dir, 't.onnx', 'cls', 4, -1)];
    const sourceLabels = labels(dir, 'source.txt', 'cat\ndog\nbird\nfish\n');
    const targetLabels = labels(dir, 'target.json', '["bird", "cat", "horse"]');
    const r = plan([source, target, '--head', 'cls=background-first', '--classes', sourceLabels, targetLabels]);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(r.plan.options.classes.map, [2, 0, -1]);
    assert.deepEqual(entryOf(r.plan, 'cls.bias').expand.rows, [0, 3, 1, -1]);
    assertApplied(r.file, source, target, { 'cls.weight': [0, 3, 1, -1], 'cls.bias': [0, 3, 1, -1] });
  });

  test('anchor-packed SSD head, one head only: the graph (Reshape to [1, -1, C]) gives the anchors', () => {
    const dir = tempDir();
    const [source, target] = [headModel(dir, 's.onnx', 'head', 6, 1, 2), headModel(dir, 't.onnx', 'head', 9, -1, 3)];
    const r = plan([source, target]);
    assert.equal(r.status, 0, r.stderr);
    const weight = entryOf(r.plan, 'head.weight');
    assert.equal(weight.expand.layout, 'anchors:3');
    assert.match(weight.why, /layout anchors:3 inferred from the target graph \(Reshape to \[\.\.\., 3\] after the head\)/);
    const perAnchor = [0, 1, -1, 2, 3, -1, 4, 5, -1];
    assertApplied(r.file, source, target, { 'head.weight': perAnchor, 'head.bias': perAnchor });
  });

  test('YOLO-style head reshaped to [N, H, W, A, 5 + C]: the graph gives the anchors, each block keeps its 5 box rows', () => {
    const dir = tempDir();
    const [source, target] = [headModel(dir, 's.onnx', 'det', 3 * 7, 1, [1, 2, 2, 3, 7]), headModel(dir, 't.onnx', 'det', 3 * 8, -1, [1, 2, 2, 3, 8])];
    const r = plan([source, target]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(entryOf(r.plan, 'det.bias').expand.layout, 'anchors:3');
    const perAnchor = [0, 1, 2, 3, 4, 5, 6, -1, 7, 8, 9, 10, 11, 12, 13, -1, 14, 15, 16, 17, 18, 19, 20, -1];
    assertApplied(r.file, source, target, { 'det.weight': perAnchor, 'det.bias': perAnchor });
  });

  test('a packed head of unknown layout is refused with the flag that fixes it; the flag grows it per anchor', () => {
    const dir = tempDir();
    // A Conv head with no Reshape after it: nothing says whether 6 → 9 rows are one block or 3 anchors.
    const conv = (file: string, rows: number, sign: number) => {
      const weight = Float32Array.from({ length: rows * 4 }, (_, i) => sign * (Math.floor(i / 4) + 1) * 100 + (i % 4));
      fs.writeFileSync(path.join(dir, file), encodeModel({
        graphName: 'head',
        nodes: [{ op: 'Conv', inputs: ['x', 'head.weight', 'head.bias'], outputs: ['y'] }],
        initializers: [float32Tensor('head.weight', [rows, 4, 1, 1], weight), float32Tensor('head.bias', [rows], Float32Array.from({ length: rows }, (_, r) => sign * (r + 1)))],
        inputs: [{ name: 'x', dtype: 'float32', shape: [1, 4, 2, 2] }], outputs: [{ name: 'y', dtype: 'float32', shape: [1, rows, 2, 2] }],
      }));
      return path.join(dir, file);
    };
    const [source, target] = [conv('s.onnx', 6, 1), conv('t.onnx', 9, -1)];
    const refused = plan([source, target]);
    assert.equal(refused.status, 0, refused.stderr);
    for (const name of ['head.weight', 'head.bias']) {
      const e = entryOf(refused.plan, name);
      assert.equal(e.action, 'skip');
      assert.equal(e.skip.reason, 'head');
      assert.match(e.skip.detail, /packed class head of unknown layout: 6 → 9 rows .*not grown as one block\. State it with --head 'head=anchors:3' \(3 × 2 → 3\), or --expand-classes OLD:NEW/);
    }
    const stated = plan([source, target, '--head', 'head=anchors:3']);
    const perAnchor = [0, 1, -1, 2, 3, -1, 4, 5, -1];
    assert.deepEqual(entryOf(stated.plan, 'head.weight').expand.rows, [0, 1, -1]);
    assertApplied(stated.file, source, target, { 'head.weight': perAnchor, 'head.bias': perAnchor });
    assert.deepEqual(entryOf(plan([source, target, '--expand-classes', '2:3']).plan, 'head.bias').expand.layout, 'anchors:3');
  });

  test('YOLO A × (5 + C), equal shapes: --classes reorders within every anchor; without --head it is refused', () => {
    const dir = tempDir();
    const [source, target] = [headModel(dir, 's.onnx', 'yolo_out', 16, 1), headModel(dir, 't.onnx', 'yolo_out', 16, -1)];
    const [sourceLabels, targetLabels] = [labels(dir, 's.txt', 'a\nb\nc\n'), labels(dir, 't.txt', 'c\na\nnew\n')];
    const r = plan([source, target, '--head', 'yolo_out=yolo:2', '--classes', sourceLabels, targetLabels]);
    assert.equal(r.status, 0, r.stderr);
    const expected = [0, 1, 2, 3, 4, 7, 5, -1, 8, 9, 10, 11, 12, 15, 13, -1];
    assertApplied(r.file, source, target, { 'yolo_out.weight': expected, 'yolo_out.bias': expected });
    const unnamed = runCli(['plan', source, target, '--classes', sourceLabels, targetLabels]);
    assert.equal(unnamed.status, 2);
    assert.match(unnamed.stderr, /no class-dependent tensor was found to remap; name the heads with --head NAME=LAYOUT/);
  });

  test('box-per-class (4 rows per class, class-major): grown and reordered; ambiguous with anchors:4 unless stated', () => {
    const dir = tempDir();
    const [source, target] = [headModel(dir, 's.onnx', 'bbox_pred', 8, 1), headModel(dir, 't.onnx', 'bbox_pred', 12, -1)];
    const ambiguous = entryOf(plan([source, target, '--expand-classes', '2:3']).plan, 'bbox_pred.weight');
    assert.match(ambiguous.skip.detail, /--head 'bbox_pred=anchors:4' or --head 'bbox_pred=box-per-class'/);
    const grown = plan([source, target, '--expand-classes', '2:3', '--head', 'bbox_pred=box-per-class']);
    assertApplied(grown.file, source, target, { 'bbox_pred.weight': [0, 1, 2, 3, 4, 5, 6, 7, -1, -1, -1, -1] });
    const remapped = plan([source, target, '--head', 'bbox_pred=box-per-class', '--classes', labels(dir, 's.txt', 'a\nb\n'), labels(dir, 't.txt', 'b\na\nc\n')]);
    assertApplied(remapped.file, source, target, { 'bbox_pred.weight': [4, 5, 6, 7, 0, 1, 2, 3, -1, -1, -1, -1], 'bbox_pred.bias': [4, 5, 6, 7, 0, 1, 2, 3, -1, -1, -1, -1] });
  });

  test('a dense head with exporter-numbered names: the bias follows its weight through the graph (Gemm), as plain rows', () => {
    const dir = tempDir();
    const gemm = (file: string, rows: number, sign: number) => {
      fs.writeFileSync(path.join(dir, file), encodeModel({
        graphName: 'head',
        nodes: [{ op: 'Gemm', inputs: ['x', '626', '627'], outputs: ['y'], attributes: { transB: 1 } }],
        initializers: [
          float32Tensor('626', [rows, 4], Float32Array.from({ length: rows * 4 }, (_, i) => sign * i)),
          float32Tensor('627', [rows], Float32Array.from({ length: rows }, (_, r) => sign * (r + 1))),
        ],
        inputs: [{ name: 'x', dtype: 'float32', shape: [1, 4] }], outputs: [{ name: 'y', dtype: 'float32', shape: [1, rows] }],
      }));
      return path.join(dir, file);
    };
    const [source, target] = [gemm('s.onnx', 4, 1), gemm('t.onnx', 6, -1)];
    const r = plan([source, target]);
    for (const name of ['626', '627']) {
      const e = entryOf(r.plan, name);
      assert.equal(e.action, 'expand', JSON.stringify(e.skip));
      assert.match(e.why, /layout classes \(a dense layer: one row per class\)/);
    }
    assertApplied(r.file, source, target, { 626: [0, 1, 2, 3, -1, -1], 627: [0, 1, 2, 3, -1, -1] });
  });

  test('a stated layout that does not fit the class lists is refused for that head', () => {
    const dir = tempDir();
    const r = plan([headModel(dir, 's.onnx', 'cls', 4, 1), headModel(dir, 't.onnx', 'cls', 6, -1), '--head', 'cls=classes',
      '--classes', labels(dir, 's.txt', 'a\nb\nc\n'), labels(dir, 't.txt', 'a\nb\nc\nd\ne\n')]);
    assert.match(entryOf(r.plan, 'cls.weight').skip.detail, /layout classes \(--head cls=classes\) gives 4 → 6 classes; --classes lists 3 → 5/);
  });
});

describe('--classes label files', () => {
  const dir = tempDir();
  const [source, target] = [headModel(dir, 's.onnx', 'cls', 3, 1), headModel(dir, 't.onnx', 'cls', 3, -1)];
  const run = (sourceLabels: string, targetLabels: string) => runCli(['plan', source, target, '--head', 'cls=classes', '--classes', sourceLabels, targetLabels]);

  test('COCO JSON categories are ordered by id', () => {
    const coco = labels(dir, 'coco.json', JSON.stringify({ categories: [{ id: 7, name: 'c' }, { id: 1, name: 'a' }, { id: 3, name: 'b' }] }));
    const r = plan([source, target, '--head', 'cls=classes', '--classes', labels(dir, 'l.txt', 'c\nb\na\n'), coco]);
    assert.deepEqual(r.plan.options.classes.map, [2, 1, 0]);
  });

  test('duplicate, empty or malformed labels name the file (exit 3); a missing file is an I/O error (exit 4)', () => {
    const good = labels(dir, 'good.txt', 'a\nb\nc\n');
    const cases: [string, RegExp][] = [
      [labels(dir, 'dup.txt', 'a\nb\na\n'), /dup\.txt: class 2: duplicate label 'a' \(also class 0\)/],
      [labels(dir, 'gap.txt', 'a\n\nb\n'), /gap\.txt: line 2: empty label/],
      [labels(dir, 'bad.json', '{"categories": [{"id": 1}]}'), /bad\.json: categories: every category needs an integer id and a string name/],
      [labels(dir, 'broken.json', '["a", '), /broken\.json: not valid JSON/],
    ];
    for (const [file, message] of cases) {
      const r = run(good, file);
      assert.equal(r.status, 3, r.stderr);
      assert.match(r.stderr, message);
      assert.doesNotMatch(r.stderr, /at .*\.js:\d+/);
    }
    assert.equal(run(good, path.join(dir, 'absent.txt')).status, 4);
    assert.equal(runCli(['plan', source, target, '--classes', good]).status, 2, 'one file is a usage error');
  });
});

describe('UltraFace RFB-320 2 classes → masked-face 3 classes (corpus .pth, values checked with torch)', { skip: (!HAS_CORPUS && 'no ../shared/corpus') || (!HAS_TORCH && 'python3 torch missing') }, () => {
  const source = path.join(CORPUS, 'pytorch/ultraface-rfb320/version-RFB-320.pth');
  const target = path.join(CORPUS, 'pytorch/ultraface-rfb320-masked/RFB-320-masked_face-v2.pth');
  const heads = ['classification_headers.0.2', 'classification_headers.1.2', 'classification_headers.2.2', 'classification_headers.3'];
  const torchRows = (file: string) => JSON.parse(python(`
import json, sys, torch
sd = torch.load(sys.argv[1], map_location='cpu')
print(json.dumps({k: v.reshape(v.shape[0], -1).tolist() for k, v in sd.items() if k.startswith('classification_headers') or k.startswith('regression_headers')}))`, file));

  function checkApplied(planFile: string, perAnchor: number[]): void {
    const out = path.join(tempDir(), 'applied.pth');
    const r = runCli(['apply', planFile, '-o', out]);
    assert.equal(r.status, 0, r.stderr);
    const [from, into, applied] = [source, target, out].map(torchRows);
    for (const head of heads) {
      for (const name of [`${head}.weight`, `${head}.bias`]) {
        const anchors = into[name].length / 3;
        for (let row = 0; row < into[name].length; row++) {
          const m = perAnchor[row % 3]!;
          const want = m >= 0 ? from[name][Math.floor(row / 3) * 2 + m] : into[name][row];
          assert.deepEqual(applied[name][row], want, `${name} row ${row} (${anchors} anchors)`);
        }
      }
    }
    assert.deepEqual(applied['regression_headers.3.weight'], from['regression_headers.3.weight'], 'box regressors load unchanged');
  }

  test('grown per anchor, layout inferred from the 4 grown heads agreeing on 2 → 3 classes', () => {
    const r = plan([source, target]);
    assert.equal(r.status, 0, r.stderr);
    for (const head of heads) {
      const e = entryOf(r.plan, `${head}.weight`);
      assert.equal(e.action, 'expand');
      assert.match(e.why, /layout anchors:[23] inferred from 4 grown heads agreeing on 2 → 3 classes/);
    }
    checkApplied(r.file, [0, 1, -1]);
  });

  test('--classes BACKGROUND,face → BACKGROUND,masked_face,face: face moves to row 2 of every anchor', () => {
    const dir = tempDir();
    const r = plan([source, target, '--classes', labels(dir, 'voc.txt', 'BACKGROUND\nface\n'), labels(dir, 'masked.txt', 'BACKGROUND\nmasked_face\nface\n')]);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(entryOf(r.plan, 'classification_headers.3.bias').expand.rows, [0, -1, 1]);
    checkApplied(r.file, [0, -1, 1]);
  });
});

describe('UltraFace RFB-320 ONNX (corpus): --classes swapping face and background, run in onnxruntime', { skip: !HAS_CORPUS && 'no ../shared/corpus' }, () => {
  test('every anchor\'s two score columns swap, the boxes stay', async () => {
    const model = path.join(CORPUS, 'onnx/ultraface-rfb320-simplified/version-RFB-320_simplified.onnx');
    const dir = tempDir();
    // Equal class counts: nothing grows, so the heads are named; the first rule whose anchor count fits wins.
    const r = plan([model, model, '--head', 'classification_headers=anchors:3', '--head', 'classification_headers=anchors:2',
      '--classes', labels(dir, 'voc.txt', 'BACKGROUND\nface\n'), labels(dir, 'swapped.txt', 'face\nBACKGROUND\n')]);
    assert.equal(r.status, 0, r.stderr);
    const expanded = Object.fromEntries(r.plan.entries.filter((e: any) => e.action === 'expand').map((e: any) => [e.target, `${e.expand.layout} ${e.expand.rows}`]));
    const expected = Object.fromEntries([['0.2', 3], ['1.2', 2], ['2.2', 2], ['3', 3]]
      .flatMap(([head, anchors]) => ['weight', 'bias'].map((p) => [`classification_headers.${head}.${p}`, `anchors:${anchors} 1,0`])));
    assert.deepEqual(expanded, expected);
    const out = path.join(dir, 'swapped.onnx');
    assert.equal(runCli(['apply', r.file, '-o', out]).status, 0);
    const input = Float32Array.from({ length: 3 * 240 * 320 }, (_, i) => ((i * 7919) % 255) / 255);
    const [before, after] = [await runModel(model, 'input', input, [1, 3, 240, 320]), await runModel(out, 'input', input, [1, 3, 240, 320])];
    assert.deepEqual(after.boxes, before.boxes);
    for (let i = 0; i < before.scores.length; i += 2) {
      assert.ok(Math.abs(after.scores[i]! - before.scores[i + 1]!) < 1e-6 && Math.abs(after.scores[i + 1]! - before.scores[i]!) < 1e-6, `anchor ${i / 2}`);
    }
  });
});

describe('torchvision-style box predictor exported by torch.onnx (background first, boxes per class)', { skip: (!HAS_TORCH || !HAS_ONNX) && 'python3 torch/onnx missing' }, () => {
  test('--classes: the old classes\' scores and boxes of the applied model equal the source model\'s, in their new columns', async () => {
    const dir = tempDir();
    const exportPredictor = (file: string, classes: number, seed: number) => {
      python(`
import sys, torch
class Predictor(torch.nn.Module):
    def __init__(self, classes):
        super().__init__()
        self.cls_score = torch.nn.Linear(8, classes + 1)
        self.bbox_pred = torch.nn.Linear(8, 4 * (classes + 1))
    def forward(self, x):
        return self.cls_score(x), self.bbox_pred(x)
torch.manual_seed(int(sys.argv[3]))
torch.onnx.export(Predictor(int(sys.argv[2])), torch.zeros(2, 8), sys.argv[1], input_names=['x'], output_names=['scores', 'boxes'])`,
      path.join(dir, file), String(classes), String(seed));
      return path.join(dir, file);
    };
    const [source, target] = [exportPredictor('s.onnx', 3, 1), exportPredictor('t.onnx', 4, 2)];
    const r = plan([source, target, '--head', 'cls_score=background-first', '--head', 'bbox_pred=box-per-class+background-first',
      '--classes', labels(dir, 's.txt', 'cat\ndog\nbird\n'), labels(dir, 't.txt', 'bird\ncat\nhorse\nzebra\n')]);
    assert.equal(r.status, 0, r.stderr);
    const classRows = [0, 3, 1, -1, -1];
    const boxRows = [0, 1, 2, 3, 12, 13, 14, 15, 4, 5, 6, 7, -1, -1, -1, -1, -1, -1, -1, -1];
    const out = assertApplied(r.file, source, target, { 'cls_score.weight': classRows, 'cls_score.bias': classRows, 'bbox_pred.weight': boxRows, 'bbox_pred.bias': boxRows });
    const x = Float32Array.from({ length: 16 }, (_, i) => Math.sin(i));
    const [before, after] = [await runModel(source, 'x', x, [2, 8]), await runModel(out, 'x', x, [2, 8])];
    for (let n = 0; n < 2; n++) {
      classRows.forEach((m, j) => m >= 0 && assert.equal(after.scores[n * 5 + j], before.scores[n * 4 + m], `sample ${n} class column ${j}`));
      boxRows.forEach((m, j) => m >= 0 && assert.equal(after.boxes[n * 20 + j], before.boxes[n * 16 + m], `sample ${n} box column ${j}`));
    }
  });
});
