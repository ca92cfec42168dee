// ckpt as a library: grow a digit classifier pretrained on 8 classes into a 10-class one and
// fine-tune its new head — diff, plan, apply, check and finetune, each one typed function.
// Run: node library.js SAMPLES_FOLDER OUTPUT_FOLDER (the repository's samples/ has the files).
import * as path from 'node:path';
import { applyPlan, check, CkptError, diff, finetune, open, plan } from 'ckpt';

const [samples = 'samples', out = '.'] = process.argv.slice(2);
const pretrained = path.join(samples, 'digits', 'cnn-8.onnx');
const target = path.join(samples, 'digits', 'cnn-10.onnx');

try {
  const difference = await diff(pretrained, target);
  console.log(`diff: ${difference.matched.length} tensors matched, ${difference.shapeMismatches.length} shape mismatches`);

  const planned = await plan(pretrained, target);
  console.log(`plan: ${planned.summary.loaded} loaded, ${planned.summary.expanded} expanded, ${planned.summary.skipped} skipped`);

  const applied = await applyPlan(planned, path.join(out, 'cnn-10-init.onnx'));
  const checked = await check(applied.output, { shape: ['pixels=16x1x8x8'], provider: 'cpu' });
  const outputs = checked.outputs?.map((o) => `${o.name} [${o.shape.join(',')}]`).join(', ') ?? checked.notRun;
  console.log(`check: ${checked.ok ? 'ok' : 'FAILED'}, ${checked.health.checked} weights and buffers read, outputs ${outputs}`);

  const trained = await finetune(applied.output, path.join(samples, 'digits', 'finetune.csv.gz'), {
    output: path.join(out, 'cnn-10.onnx'), oldClasses: 8, freezeOldClasses: true, epochs: 3, provider: 'cpu',
    onEvent: (event) => {
      if (event.event === 'epoch') console.log(`epoch ${event.epoch}: train loss ${event.trainLoss.toFixed(4)}`);
    },
  });
  console.log(`finetune: trained ${trained.trained.join(', ')}; held-out accuracy ${trained.accuracy?.toFixed(3)}`);

  // A state dict closes itself at the end of the block.
  await using model = await open(trained.output);
  console.log(`wrote ${model.path}: ${model.tensors.length} tensors`);
} catch (err) {
  if (!(err instanceof CkptError)) throw err;
  console.error(`ckpt: ${err.message} (${err.code})`);
  process.exitCode = err.exitCode;
}
