// `npm run demo`: ckpt's main job on the samples, command by command as a user types them.
// 1. The tiny detectors: inspect, diff 90 vs 92 classes, strip the YOLO head, plan the 90 → 92
//    expansion (anchor by anchor), apply and check it.
// 2. The same detector as PaddlePaddle and PyTorch checkpoints: strip the head of a .pdparams, diff
//    a DataParallel training checkpoint (.pth) against the ONNX model (names paired despite
//    `state_dict/module.`, values equal), plan it into the 92-class ONNX model, apply and check.
// 3. Transfer learning on real data (UCI digits): a CNN pretrained on digits 0–7 grows a 10-class
//    head, is checked, then fine-tuned — a new classifier on frozen features with the old classes
//    frozen (scenario a), then the top two layers (scenario b) — with accuracy on held-out old and
//    new digits.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'ckpt-demo-'));
const out = (name) => path.join(work, name);
const shown = (arg) => arg.replace(`${work}${path.sep}`, '$OUT/');
const exists = (name) => fs.existsSync(path.join(root, 'samples', name));

// The training checkpoint holds the ONNX model's weights: this diff is equal (exit 0).
const PTH_DIFF = ['diff', '--values', 'samples/detector-90-train.pth', 'samples/detector-90.onnx'];
const steps = [
  ['inspect', 'samples/detector-90.onnx'],
  ['inspect', '--tree', 'samples/detector-92.onnx'],
  ...(exists('detector-90.h5') ? [['inspect', 'samples/detector-90.h5']] : []),
  ...(exists('detector-90-tfjs') ? [['inspect', 'samples/detector-90-tfjs/model.json']] : []),
  ['diff', 'samples/detector-90.onnx', 'samples/detector-92.onnx'],
  ['strip', 'samples/detector-90.onnx', '--preset', 'yolov3', '-o', out('backbone.onnx')],
  ['plan', 'samples/detector-90.onnx', 'samples/detector-92.onnx', '-o', out('detector-plan.json')],
  ['apply', out('detector-plan.json'), '-o', out('detector-92-init.onnx')],
  ['check', out('detector-plan.json'), '--min-loaded', '0.9'],
  ['inspect', 'samples/detector-90-train.pth'],
  ['strip', '--exclude', 'yolo_output', 'samples/detector-90.pdparams', '-o', out('backbone.pdparams')],
  PTH_DIFF,
  ['plan', 'samples/detector-90-train.pth', 'samples/detector-92.onnx', '-o', out('pth-plan.json')],
  ['apply', out('pth-plan.json'), '-o', out('detector-92-from-pth.onnx')],
  ['check', out('pth-plan.json'), '--min-loaded', '0.9'],
  ['inspect', 'samples/digits/cnn-8.onnx'],
  ['diff', 'samples/digits/cnn-8.onnx', 'samples/digits/cnn-10.onnx'],
  ['plan', 'samples/digits/cnn-8.onnx', 'samples/digits/cnn-10.onnx', '-o', out('digits-plan.json')],
  ['apply', out('digits-plan.json'), '-o', out('cnn-10-init.onnx')],
  ['check', out('cnn-10-init.onnx'), '--shape', 'pixels=16x1x8x8'],
  ['finetune', out('cnn-10-init.onnx'), '--data', 'samples/digits/finetune.csv.gz', '--old-classes', '8', '--freeze-old-classes',
    '--epochs', '20', '--lr', '0.01', '-o', out('cnn-10-a.onnx')],
  ['finetune', out('cnn-10-a.onnx'), '--data', 'samples/digits/finetune.csv.gz', '--old-classes', '8', '--train-last', '2',
    '--epochs', '20', '--lr', '0.005', '-o', out('cnn-10-b.onnx')],
  ['check', out('cnn-10-b.onnx'), '--shape', 'pixels=16x1x8x8'],
];

// diff exits 1 when the files differ: that is the answer here, not a failure.
const expectedStatus = (args) => (args[0] === 'diff' && args !== PTH_DIFF ? 1 : 0);
let failed = 0;
try {
  for (const args of steps) {
    console.log(`\n$ ckpt ${args.map(shown).join(' ')}`);
    const r = spawnSync(process.execPath, [path.join(root, 'bin', 'ckpt.js'), ...args], { cwd: root, encoding: 'utf8' });
    const text = r.stdout.split(work + path.sep).join('$OUT/');
    // finetune prints JSON lines when not on a terminal: show the epochs briefly and the summary.
    if (args[0] === 'finetune') {
      for (const line of text.trim().split('\n').map((l) => JSON.parse(l))) {
        const pct = (v) => (v === undefined ? '–' : `${(100 * v).toFixed(1)}%`);
        if (line.event === 'epoch' && (line.epoch % 5 === 0 || line.epoch === 1)) {
          console.log(`epoch ${line.epoch}: train loss ${line.trainLoss.toFixed(4)}, held-out accuracy ${pct(line.validationAccuracy)} (old digits ${pct(line.accuracyOld)}, new digits ${pct(line.accuracyNew)})`);
        }
        if (line.event === 'summary') {
          console.log(`trained ${line.trained.join(', ')} on ${line.provider}: held-out accuracy ${pct(line.accuracy)} — old digits 0-7 ${pct(line.accuracyOld)}, new digits 8-9 ${pct(line.accuracyNew)}`);
        }
      }
    } else process.stdout.write(text);
    process.stderr.write(r.stderr);
    if (r.status !== expectedStatus(args)) {
      failed++;
      console.log(`(exit ${r.status})`);
    }
  }
} finally {
  fs.rmSync(work, { recursive: true, force: true });
}
console.log(failed ? `\ndemo: ${failed} step(s) failed` : '\ndemo: all steps ran');
process.exitCode = failed ? 1 : 0;
