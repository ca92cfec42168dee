// `npm run demo`: the main job of ckpt on the samples in samples/, command by command, as a user
// would type them. Each step prints the command, then its output.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const samples = path.join(root, 'samples');
const exists = (name) => fs.existsSync(path.join(samples, name));

const steps = [
  ['inspect', 'samples/detector-90.onnx'],
  ['inspect', '--tree', 'samples/detector-92.onnx'],
  ['inspect', '--filter', 'yolo_output', '--hash', 'samples/detector-92.onnx'],
  ...(exists('detector-90.h5') ? [['inspect', 'samples/detector-90.h5']] : []),
  ...(exists('detector-90-tfjs') ? [['inspect', 'samples/detector-90-tfjs/model.json']] : []),
];

let failed = 0;
for (const args of steps) {
  console.log(`\n$ ckpt ${args.join(' ')}`);
  const r = spawnSync(process.execPath, [path.join(root, 'bin', 'ckpt.js'), ...args], { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) failed++;
}
process.exitCode = failed ? 1 : 0;
