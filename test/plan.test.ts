import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { pathToFileURL } from 'node:url';
import { open } from '../src/index.js';
import { encodeModel, float32Tensor } from '../src/formats/onnx/build.js';
import { CORPUS, HAS_CORPUS, ROOT, SAMPLES, runCli, tempDir } from './helpers.js';
import { plan } from './plan-helpers.js';

const sample = (n: number) => path.join(SAMPLES, `detector-${n}.onnx`);

async function floats(file: string, name: string): Promise<Float32Array> {
  const dict = await open(file);
  const bytes = await dict.tensors.find((t) => t.name === name)!.read();
  await dict.close();
  return new Float32Array(Uint8Array.from(bytes).buffer);
}

describe('ckpt plan: the 90-class detector into the 92-class one', () => {
  test('backbone loads by name; the YOLO head expands anchor by anchor (3 × (5+90) → 3 × (5+92))', () => {
    const r = plan([sample(90), sample(92)]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^loaded 4\/6 tensors \(98\.4% of parameters\), 2 expanded, 0 skipped\n/);
    const byName = Object.fromEntries(r.plan.entries.map((e: any) => [e.target, e]));
    assert.equal(byName['backbone.conv1.weight'].action, 'load');
    assert.equal(byName['backbone.conv1.weight'].why, 'exact name');
    const { rows, ...expand } = byName['yolo_output.weight'].expand;
    assert.deepEqual(expand, { axis: 0, sourceSize: 285, targetSize: 291, blocks: 3, init: 'target', layout: 'yolo:3', sourceClasses: 90, targetClasses: 92 });
    assert.deepEqual(rows, [...Array.from({ length: 95 }, (_, i) => i), -1, -1]);
    assert.match(r.plan.source.sha256, /^[0-9a-f]{64}$/);
  });

  test('apply copies each anchor block to its new place and keeps the new classes; the result runs', async () => {
    const { file } = plan([sample(90), sample(92)]);
    const out = path.join(tempDir(), 'applied.onnx');
    const r = runCli(['apply', file, '-o', out]);
    assert.equal(r.status, 0, r.stderr);
    const [source, target, applied] = await Promise.all([sample(90), sample(92), out].map((f) => floats(f, 'yolo_output.weight')));
    const row = 16; // 16 input channels × 1 × 1 per output channel
    for (let anchor = 0; anchor < 3; anchor++) {
      for (let c = 0; c < 97; c++) {
        const got = applied.subarray((anchor * 97 + c) * row, (anchor * 97 + c + 1) * row);
        const want = c < 95
          ? source.subarray((anchor * 95 + c) * row, (anchor * 95 + c + 1) * row)
          : target.subarray((anchor * 97 + c) * row, (anchor * 97 + c + 1) * row);
        assert.deepEqual(got, want, `anchor ${anchor} channel ${c}`);
      }
    }
    assert.deepEqual(await floats(out, 'backbone.conv2.weight'), await floats(sample(90), 'backbone.conv2.weight'));
    const check = runCli(['check', '--json', out]);
    assert.equal(check.status, 0, check.stderr);
    assert.deepEqual(JSON.parse(check.stdout).outputs.map((o: any) => [o.name, o.shape, o.finite]), [['yolo_output', [1, 291, 16, 16], true]]);
  });

  test('--init zeros fills the new classes with zeros', async () => {
    const { file } = plan([sample(90), sample(92), '--init', 'zeros']);
    const out = path.join(tempDir(), 'zeros.onnx');
    assert.equal(runCli(['apply', file, '-o', out]).status, 0);
    const bias = await floats(out, 'yolo_output.bias');
    const source = await floats(sample(90), 'yolo_output.bias');
    for (let anchor = 0; anchor < 3; anchor++) {
      assert.deepEqual(bias.subarray(anchor * 97, anchor * 97 + 95), source.subarray(anchor * 95, anchor * 95 + 95));
      assert.deepEqual([...bias.subarray(anchor * 97 + 95, anchor * 97 + 97)], [0, 0]);
    }
  });

  test('--preset yolov3 skips the head, and the headline says why', () => {
    const r = plan([sample(90), sample(92), '--preset', 'yolov3']);
    assert.match(r.stdout, /^loaded 4\/6 tensors \(22\.0% of parameters\), 0 expanded, 2 skipped \(2 excluded by part:yolo_output\)/);
    assert.deepEqual(r.plan.unusedSource, ['yolo_output.weight', 'yolo_output.bias']);
  });

  test('check plan.json gates on --min-loaded (exit 1 below it)', () => {
    const { file } = plan([sample(90), sample(92), '--preset', 'yolov3']);
    const low = runCli(['check', file, '--min-loaded', '0.9']);
    assert.equal(low.status, 1);
    assert.match(low.stdout, /22\.0% of parameters loaded \(minimum 90\.0%\) — BELOW THE MINIMUM/);
    assert.equal(runCli(['check', file, '--min-loaded', '0.2']).status, 0);
  });

  test('--mode full fails listing what cannot load; --mode detection skips the class-dependent head', () => {
    const full = plan([sample(90), sample(92), '--mode', 'full']);
    assert.equal(full.status, 1);
    assert.match(full.stderr, /--mode full: 2 target tensor\(s\) cannot load: yolo_output\.weight, yolo_output\.bias/);
    const detection = plan([sample(90), sample(92), '--mode', 'detection']);
    assert.equal(detection.status, 0);
    assert.deepEqual(detection.plan.summary.skippedBy, { head: 2 });
  });

  test('--mode classification loads the backbone only (up to the first head layer, or --backbone)', () => {
    const r = plan([sample(90), sample(92), '--mode', 'classification']);
    assert.deepEqual(r.plan.entries.map((e: any) => e.action), ['load', 'load', 'load', 'load', 'skip', 'skip']);
    assert.equal(r.plan.entries[4].skip.reason, 'not-backbone');
    const explicit = plan([sample(90), sample(92), '--mode', 'classification', '--backbone', 'backbone.conv1']);
    assert.deepEqual(explicit.plan.entries.map((e: any) => e.action), ['load', 'load', 'skip', 'skip', 'skip', 'skip']);
  });

  test('a stale plan is refused', () => {
    const dir = tempDir();
    const target = path.join(dir, 'target.onnx');
    fs.copyFileSync(sample(92), target);
    const { file } = plan([sample(90), target]);
    fs.appendFileSync(target, Buffer.from([0x08, 0x01])); // still a valid model, different bytes
    const r = runCli(['apply', file, '-o', path.join(dir, 'out.onnx')]);
    assert.equal(r.status, 3);
    assert.match(r.stderr, /target: .*target\.onnx changed since the plan was made/);
  });
});

describe('apply checks its files on other threads while it writes', () => {
  /** Two 72 MiB safetensors models with the same tensors (large enough to be hashed on worker threads). */
  async function bigPair(dir: string): Promise<{ source: string; target: string }> {
    const { writeSafetensors } = await import(pathToFileURL(path.join(ROOT, 'bench', 'safetensors-pair.js')).href);
    const tensors = [{ name: 'body.weight', bytes: 64 << 20 }, { name: 'head.weight', bytes: 8 << 20 }];
    const source = path.join(dir, 'source.safetensors');
    const target = path.join(dir, 'target.safetensors');
    writeSafetensors(source, tensors, (index: number, out: Float32Array, from: number) => out.forEach((_, i) => { out[i] = index + (from + i) * 1e-6; }));
    writeSafetensors(target, tensors, (_: number, out: Float32Array) => out.fill(0));
    return { source, target };
  }
  const sha256 = (file: string) => createHash('sha256').update(fs.readFileSync(file)).digest('hex');

  test('the plan records each file\'s SHA-256, and apply writes the source\'s values streamed into the target', async () => {
    const dir = tempDir();
    const { source, target } = await bigPair(dir);
    const { file, plan: p } = plan([source, target]);
    assert.equal(p.source.sha256, sha256(source));
    assert.equal(p.target.sha256, sha256(target));
    const out = path.join(dir, 'out.safetensors');
    const r = runCli(['apply', file, '-o', out]);
    assert.equal(r.status, 0, r.stderr);
    const [a, b] = [await open(source), await open(out)];
    for (const name of ['body.weight', 'head.weight']) {
      assert.ok(Buffer.from(await a.tensors.find((t) => t.name === name)!.read()).equals(await b.tensors.find((t) => t.name === name)!.read()), name);
    }
    await Promise.all([a.close(), b.close()]);
  });

  test('hashing a large file on its worker stops when aborted (a usage error need not wait for it)', async () => {
    const { localSha256 } = await import('../src/core/file-sha256.js');
    const { source } = await bigPair(tempDir());
    const stop = new AbortController();
    const hashing = localSha256(source, stop.signal);
    stop.abort();
    await assert.rejects(hashing);
    await assert.rejects(localSha256(source, AbortSignal.abort()), { name: 'AbortError' });
    assert.equal(await localSha256(source), sha256(source));
  });

  test('the files a model\'s tensors are stored in count too: changed ONNX external data makes the plan stale', () => {
    const dir = tempDir();
    const target = path.join(dir, 'target.onnx');
    assert.equal(runCli(['convert', sample(92), target, '--external-data']).status, 0);
    const data = `${target}.data`;
    const { file, plan: p } = plan([sample(90), target]);
    assert.deepEqual(p.target.companions.map((c: any) => [c.path, c.sha256]), [[data, sha256(data)]]);
    assert.equal(runCli(['apply', file, '-o', path.join(tempDir(), 'out.onnx')]).status, 0);
    const bytes = fs.readFileSync(data);
    bytes[bytes.length - 1] ^= 1; // same size, one bit of one weight
    fs.writeFileSync(data, bytes);
    const r = runCli(['apply', file, '-o', path.join(tempDir(), 'out.onnx')]);
    assert.equal(r.status, 3);
    assert.match(r.stderr, /target: .*target\.onnx\.data changed since the plan was made/);
  });

  test('a source cut short after planning: the stale plan is the error, and OUT is left as it was', async () => {
    const dir = tempDir();
    const { source, target } = await bigPair(dir);
    const { file } = plan([source, target]);
    fs.truncateSync(source, fs.statSync(source).size - (4 << 20));
    const out = path.join(dir, 'out.safetensors');
    fs.writeFileSync(out, 'previous');
    const r = runCli(['apply', file, '-o', out, '--json']);
    assert.equal(r.status, 3, r.stderr);
    assert.match(JSON.parse(r.stdout).error.message, /source: .*source\.safetensors changed since the plan was made/);
    assert.equal(fs.readFileSync(out, 'utf8'), 'previous');
    assert.deepEqual(fs.readdirSync(dir).sort(), ['out.safetensors', 'source.safetensors', 'target.safetensors']);
  });
});

describe('a plan records each file\'s identity, and apply trusts it while it holds', () => {
  const editPlan = (file: string, edit: (p: any) => void) => {
    const p = JSON.parse(fs.readFileSync(file, 'utf8'));
    edit(p);
    fs.writeFileSync(file, JSON.stringify(p));
  };

  test('device, inode, size and timestamps of files last changed a while ago (the shipped samples)', () => {
    const { plan: p } = plan([sample(90), sample(92)]);
    const stat = fs.statSync(sample(90), { bigint: true });
    assert.deepEqual(p.source.identity, { device: String(stat.dev), inode: String(stat.ino), size: Number(stat.size), mtimeNs: String(stat.mtimeNs), ctimeNs: String(stat.ctimeNs) });
  });

  test('while the identity holds, the file is not read again: apply takes the recorded hash', () => {
    const { file } = plan([sample(90), sample(92)]);
    editPlan(file, (p) => { p.source.sha256 = '0'.repeat(64); });
    const r = runCli(['apply', file, '-o', path.join(tempDir(), 'out.onnx')]);
    assert.equal(r.status, 0, r.stderr);
  });

  test('once it differs (another inode), the file is hashed: the same bytes pass, other bytes are a stale plan', () => {
    const { file } = plan([sample(90), sample(92)]);
    editPlan(file, (p) => { p.target.identity.inode = '1'; });
    assert.equal(runCli(['apply', file, '-o', path.join(tempDir(), 'out.onnx')]).status, 0);
    editPlan(file, (p) => { p.target.sha256 = '0'.repeat(64); });
    const r = runCli(['apply', file, '-o', path.join(tempDir(), 'out.onnx')]);
    assert.equal(r.status, 3);
    assert.match(r.stderr, /target: .*detector-92\.onnx changed since the plan was made/);
  });

  test('a file changed moments ago gets no identity: a change in the same clock tick could keep its timestamps', () => {
    const dir = tempDir();
    const target = path.join(dir, 'target.onnx');
    fs.copyFileSync(sample(92), target);
    const { plan: p } = plan([sample(90), target]);
    assert.equal(p.target.identity, undefined);
    assert.ok(p.source.identity);
  });
});

describe('expansion rules', () => {
  test('UltraFace .pth 2 → 3 classes (corpus): each anchor\'s classes move to their new place', { skip: !HAS_CORPUS && 'no ../shared/corpus' }, async () => {
    const source = path.join(CORPUS, 'pytorch/ultraface-rfb320/version-RFB-320.pth');
    const target = path.join(CORPUS, 'pytorch/ultraface-rfb320-masked/RFB-320-masked_face-v2.pth');
    const { file, plan: p } = plan([source, target]);
    const head = p.entries.find((e: any) => e.target === 'classification_headers.0.2.bias');
    assert.deepEqual(head.expand, { axis: 0, sourceSize: 6, targetSize: 9, blocks: 3, init: 'target', layout: 'anchors:3', sourceClasses: 2, targetClasses: 3, rows: [0, 1, -1] });
    const out = path.join(tempDir(), 'out.pth');
    assert.equal(runCli(['apply', file, '-o', out]).status, 0);
    const [from, into, result] = await Promise.all([source, target, out].map((f) => floats(f, 'classification_headers.0.2.bias')));
    for (let anchor = 0; anchor < 3; anchor++) {
      assert.deepEqual([result[anchor * 3], result[anchor * 3 + 1]], [from[anchor * 2], from[anchor * 2 + 1]], `anchor ${anchor}: the old classes`);
      assert.equal(result[anchor * 3 + 2], into[anchor * 3 + 2], `anchor ${anchor}: the new class keeps the target's value`);
    }
  });

  test('a plain classifier head 16×90 → 16×92 (Gemm, transB=0) expands along its output axis', async () => {
    const dir = tempDir();
    const make = (classes: number, seed: number) => {
      const file = path.join(dir, `cls-${classes}.onnx`);
      fs.writeFileSync(file, encodeModel({
        graphName: 'cls',
        nodes: [{ op: 'Gemm', inputs: ['x', 'head.weight', 'head.bias'], outputs: ['y'] }],
        initializers: [
          float32Tensor('head.weight', [16, classes], Float32Array.from({ length: 16 * classes }, (_, i) => i + seed)),
          float32Tensor('head.bias', [classes], Float32Array.from({ length: classes }, (_, i) => -i - seed)),
        ],
        inputs: [{ name: 'x', dtype: 'float32', shape: [1, 16] }], outputs: [{ name: 'y', dtype: 'float32', shape: [1, classes] }],
      }));
      return file;
    };
    const { file } = plan([make(90, 0), make(92, 100000)]);
    const out = path.join(dir, 'out.onnx');
    assert.equal(runCli(['apply', file, '-o', out]).status, 0);
    const w = await floats(out, 'head.weight');
    assert.equal(w[0], 0);
    assert.equal(w[89], 89);
    assert.equal(w[90], 100000 + 90, 'new class columns keep the target values');
    assert.equal(w[92], 90, 'row 1 starts with source row 1');
    assert.equal(runCli(['check', out]).status, 0);
  });
});

describe('plans across formats and names', () => {
  test('applied into a Keras target (HWIO): loading that into the ONNX model gives what ONNX → ONNX gives', () => {
    const dir = tempDir();
    const step = (source: string, target: string, out: string) => {
      const file = path.join(dir, `${path.basename(out)}.plan.json`);
      assert.equal(runCli(['plan', source, target, '-o', file]).status, 0);
      const r = runCli(['apply', file, '-o', out]);
      assert.equal(r.status, 0, r.stderr);
    };
    step(sample(90), path.join(SAMPLES, 'detector-92.h5'), path.join(dir, 'k92.h5'));
    step(path.join(dir, 'k92.h5'), sample(92), path.join(dir, 'via-keras.onnx'));
    step(sample(90), sample(92), path.join(dir, 'direct.onnx'));
    assert.ok(fs.readFileSync(path.join(dir, 'via-keras.onnx')).equals(fs.readFileSync(path.join(dir, 'direct.onnx'))));
  });

  test('--match-by-order pairs layers by graph position (op, order, weight shape)', () => {
    const dir = tempDir();
    const make = (file: string, names: string[], seed: number) => {
      fs.writeFileSync(path.join(dir, file), encodeModel({
        graphName: 'g',
        nodes: [{ op: 'Gemm', inputs: ['x', names[0]!, names[1]!], outputs: ['h'] }, { op: 'Gemm', inputs: ['h', names[2]!, names[3]!], outputs: ['y'] }],
        initializers: [
          float32Tensor(names[0]!, [4, 3], new Float32Array(12).fill(seed)), float32Tensor(names[1]!, [3], new Float32Array(3).fill(seed)),
          float32Tensor(names[2]!, [3, 2], new Float32Array(6).fill(seed)), float32Tensor(names[3]!, [2], new Float32Array(2).fill(seed)),
        ],
        inputs: [{ name: 'x', dtype: 'float32', shape: [1, 4] }], outputs: [{ name: 'y', dtype: 'float32', shape: [1, 2] }],
      }));
      return path.join(dir, file);
    };
    const source = make('a.onnx', ['dense_Dense1/kernel', 'dense_Dense1/bias', 'dense_Dense2/kernel', 'dense_Dense2/bias'], 1);
    const target = make('b.onnx', ['dense_Dense13/kernel', 'dense_Dense13/bias', 'dense_Dense14/kernel', 'dense_Dense14/bias'], 2);
    assert.equal(plan([source, target]).plan.summary.loaded, 0);
    const byOrder = plan([source, target, '--match-by-order']).plan;
    const first = 'graph position: Gemm Gemm_0 (graph layer 1/2) ↔ Gemm Gemm_0 (graph layer 1/2); compared op, order, weight shape [4,3]';
    const second = 'graph position: Gemm Gemm_1 (graph layer 2/2) ↔ Gemm Gemm_1 (graph layer 2/2); compared op, order, weight shape [3,2]';
    assert.equal(byOrder.summary.loaded, 4);
    assert.deepEqual(byOrder.entries.map((e: any) => [e.target, e.source, e.why]), [
      ['dense_Dense13.kernel', 'dense_Dense1.kernel', first],
      ['dense_Dense13.bias', 'dense_Dense1.bias', first],
      ['dense_Dense14.kernel', 'dense_Dense2.kernel', second],
      ['dense_Dense14.bias', 'dense_Dense2.bias', second],
    ]);
  });
});
