import { Command, CommanderError, Option } from 'commander';
import { CkptError, ExitCode, type ErrorCode } from '../core/errors.js';
import { setOpenDefaults } from '../open.js';
import { addRemoteOptions, reportTransfer } from './remote-options.js';
import { addWriteOptions } from './write-options.js';

const EXIT_CODES_HELP = `
Exit codes:
  0  ok
  1  differences found, or a threshold not met
  2  usage error (bad option or argument)
  3  invalid or unsupported input (the message names the file and the place in it)
  4  I/O error (missing file, permission denied, a pipe or device where a file is needed)
  5  internal error (a bug: please report it; CKPT_DEBUG=1 shows the stack)`;

const collect = (value: string, previous: string[] = []) => [...previous, value];

/** Each action reports its exit code here; errors are thrown and mapped in main(). */
let commandExitCode: number = ExitCode.ok;
function run<A extends unknown[]>(action: (...args: A) => Promise<number | void> | number | void) {
  return async (...args: A) => {
    commandExitCode = (await action(...args)) ?? ExitCode.ok;
  };
}

type Action = (...args: never[]) => Promise<number | void> | number | void;

/** A command's module, loaded when the command runs: start-up pays only for the command used. */
function later<M extends Record<K, Action>, K extends keyof M>(load: () => Promise<M>, name: K) {
  return async (...args: Parameters<M[K]>) => (await load())[name](...args);
}

const SELECTION_HELP = `
Patterns: a regular expression matched at the START of the name (cls_score matches cls_score_w);
re:REGEX searched anywhere; part:REGEX at the start of any dotted part (part:yolo_output matches
yolo_head.yolo_output.0.weight; presets match this way); glob:GLOB over the whole name (* within a
dotted part, ** across); =NAME exactly. One pattern per option: repeat the option for several (a
comma is part of the pattern, as in re:\\d{2,2} or a name with ", " in it).`;

export function buildProgram(): Command {
  const program = new Command();
  program
    .name('ckpt')
    .description('Inspect, compare and transform neural-network checkpoints (ONNX, Keras HDF5, TensorFlow.js, PyTorch, TorchScript, PaddlePaddle, safetensors, TensorFlow checkpoints, NumPy, TFLite, GGUF, Darknet, OpenVINO IR).')
    .version('0.1.0')
    .showHelpAfterError()
    .addHelpText('after', EXIT_CODES_HELP)
    .exitOverride()
    .configureOutput({ outputError: (text, write) => write(`ckpt: ${text.replace(/^error: /, '')}`) })
    .option('--strict-pickle', 'pickle-based files (PyTorch, Paddle): refuse any global outside the tensor and container types, as torch.load(weights_only=True) does, instead of reading it as an opaque value')
    .hook('preAction', (command) => setOpenDefaults({ strictPickle: Boolean(command.opts().strictPickle) }));
  addRemoteOptions(program);

  program
    .command('inspect')
    .description('List the tensors of a checkpoint: name, dtype, shape, parameters, bytes.')
    .argument('<path>', 'model file (or folder, for formats that have one)')
    .option('--json', 'print one JSON object: {format, metadata, totals, tensors:[{name, source, dtype, shape, byteLength, …}]}')
    .option('--hash', 'add the SHA-256 of each tensor (little-endian bytes of its dtype, row-major); reads every tensor')
    .option('--tree', 'group tensors by dotted name prefix with parameter counts per group')
    .option('--stats', 'per tensor: min, max, mean, std, fraction of zeros, NaN/±Inf/subnormal counts and a 32-bin histogram; reads every tensor')
    .option('--html <file>', 'also write a self-contained HTML report (treemap by dtype, a table that filters and sorts, histograms with --stats)')
    .addOption(new Option('--filter <pattern>', 'only tensors whose name matches (repeatable; regex at the start, re:, glob:, =exact)').argParser(collect))
    .option('--all', 'also list optimizer state and other non-model tensors')
    .addHelpText('after', EXIT_CODES_HELP)
    .action(run(later(() => import('./inspect.js'), 'inspectCommand')));

  program
    .command('diff')
    .description('Compare two checkpoints (any formats): missing, unexpected, shape/dtype mismatches, and with --values value differences. Exit 0 when equal, 1 when different.')
    .argument('<a>', 'first checkpoint')
    .argument('<b>', 'second checkpoint')
    .option('--values', 'compare values of matched tensors: max and mean |A−B|, cosine, bit-identical')
    .option('--atol <x>', 'absolute tolerance for --values (default 0)')
    .option('--rtol <x>', 'relative tolerance for --values (default 0): equal when |A−B| ≤ atol + rtol·|B|')
    .option('--json', 'print the full report as JSON')
    .option('--all', 'include optimizer state and other non-model tensors')
    .option('--html <file>', 'also write a self-contained HTML report: treemap colored by |Δ|/|A|, a table that filters and sorts, overlaid histograms of A and B (reads both files)')
    .addHelpText('after', EXIT_CODES_HELP)
    .action(run(later(() => import('./diff.js'), 'diffCommand')));

  for (const mode of ['strip', 'filter'] as const) {
    const option = mode === 'strip' ? 'exclude' : 'include';
    addWriteOptions(program.command(mode))
      .description(mode === 'strip'
        ? 'Write the checkpoint without the selected tensors (ONNX: removed weights become graph inputs).'
        : 'Write the checkpoint with only the selected tensors (ONNX: removed weights become graph inputs).')
      .argument('<in>', 'input checkpoint')
      .addOption(new Option(`--${option} <pattern>`, `tensors to ${mode === 'strip' ? 'remove' : 'keep'} (repeatable)`).argParser(collect))
      .option('--preset <name>', "add a preset's patterns (see `ckpt presets`)")
      .option('--match-source', "match patterns against the file's own names instead of canonical names")
      .option('--strict', 'a pattern that matches nothing is an error (exit 2), not a warning')
      .option('--allow-empty', 'write the output even when no tensor is left in it (otherwise exit 1)')
      .option('--dry-run', 'only report what would be removed')
      .option('-o, --output <out>', 'output file (written atomically)')
      .option('--to <format>', "output format (default: from OUT's extension, else the input's)")
      .option('--json', 'print the report as JSON')
      .addHelpText('after', `${SELECTION_HELP}
${EXIT_CODES_HELP}`)
      .action(run(async (input: string, options: object) => (await import('./select.js')).selectCommand(mode, input, options)));
  }

  addWriteOptions(program.command('rename'))
    .description('Write the checkpoint with renamed tensors; shows old → new. Rules apply to the canonical names (as inspect shows them, and strip and filter match them). Two tensors ending with one name is an error.')
    .argument('<in>', 'input checkpoint')
    .addOption(new Option('--rename <rule>', "'FROM=>TO': FROM a regular expression, TO may use $1 groups (repeatable, applied in order)").argParser(collect))
    .addOption(new Option('--strip-prefix <prefix>', 'remove this prefix where present, e.g. module. (repeatable)').argParser(collect))
    .option('--add-prefix <prefix>', 'prepend this to every name')
    .option('-o, --output <out>', 'output file (written atomically)')
    .option('--to <format>', "output format (default: from OUT's extension, else the input's)")
    .option('--strict', 'a rule that renames nothing is an error (exit 1), not a warning')
    .option('--dry-run', 'only show the renaming')
    .option('--json', 'print the report as JSON')
    .addHelpText('after', EXIT_CODES_HELP)
    .action(run(later(() => import('./write-commands.js'), 'renameCommand')));

  addWriteOptions(program.command('convert'))
    .description('Write the checkpoint in another format, or put its weights into an existing ONNX model (--graph).')
    .argument('<in>', 'input checkpoint')
    .argument('<out>', 'output file (written atomically)')
    .option('--to <format>', "output format (default: from OUT's extension)")
    .option('--graph <model.onnx>', 'replace the initializers of this ONNX model with the matching input tensors (layout transposes applied)')
    .option('--json', 'print the report as JSON')
    .addHelpText('after', EXIT_CODES_HELP)
    .action(run(later(() => import('./write-commands.js'), 'convertCommand')));

  program
    .command('plan')
    .description('Plan a partial load: for every tensor of TARGET (the model to train), load it from SOURCE (pretrained), expand it (a bigger head), or skip it, and why.')
    .argument('<source>', 'pretrained checkpoint (any readable format)')
    .argument('<target>', 'the model to be trained (ONNX, or any checkpoint)')
    .option('-o, --output <plan.json>', 'write the plan (versioned JSON; schemas/plan.schema.json)')
    .option('--mode <mode>', 'auto (default): load, expand or skip; full: everything must load (exit 1 otherwise); detection: all but class-count dependent heads; classification: the backbone only', 'auto')
    .addOption(new Option('--exclude <pattern>', 'never load these target tensors (repeatable)').argParser(collect))
    .option('--preset <name>', "exclude a preset's heads (see `ckpt presets`)")
    .addOption(new Option('--backbone <pattern>', 'classification mode: the tensors of the feature extractor (repeatable)').argParser(collect))
    .option('--match-by-order', 'pair every tensor not paired by name by its graph position (op, order, weight shape); generated names always are')
    .option('--expand-classes <old:new>', 'class counts of a grown head when they cannot be inferred, e.g. 90:92')
    .addOption(new Option('--head <name=layout>', 'the layout of class-dependent tensors matching NAME: classes, background-first, background-last, anchors:A, yolo:A, box-per-class, or anchors:A+background-first/-last (repeatable)').argParser(collect))
    .option('--classes <labels...>', 'SOURCE_LABELS TARGET_LABELS (labels.txt, JSON list, or COCO JSON): copy shared classes to their new index by name, initialize new ones (after SOURCE and TARGET)')
    .option('--init <kind>', 'values of the new positions of an expanded head: target (its own, default), zeros or normal', 'target')
    .option('--load-constants', "also load graph constants (shapes, indices, anchor priors) from SOURCE; by default TARGET keeps its own")
    .option('--html <file>', 'also write a self-contained HTML report: treemap colored by load/expand/fold/skip/keep, a table that filters and sorts')
    .option('--json', 'print the plan as JSON')
    .addHelpText('after', `${SELECTION_HELP}
${EXIT_CODES_HELP}`)
    .action(run(later(() => import('./plan.js'), 'planCommand')));

  addWriteOptions(program.command('apply'))
    .description('Write the plan\'s TARGET with the planned weights in place (refuses a stale plan).')
    .argument('<plan>', 'plan.json from ckpt plan')
    .option('-o, --output <out>', 'output file (written atomically)')
    .option('--force', 'apply a plan made with --mode full even though some tensors do not load (refused otherwise, exit 1)')
    .option('--json', 'print the report as JSON')
    .addHelpText('after', EXIT_CODES_HELP)
    .action(run(later(() => import('./plan.js'), 'applyCommand')));

  // check and compare feed models the same way.
  const inputOption = () => new Option('--input <name=value>', 'input values: NAME=VALUE (a scalar filling the input), NAME=V1,V2,… or NAME=FILE.npy (repeatable)').argParser(collect);
  const shapeOption = () => new Option('--shape <name=dims>', 'input shape for dynamic dims, e.g. images=1x3x320x320 (repeatable)').argParser(collect);
  const INPUTS_HELP = `
Inputs: generated from a fixed seed (floats uniform in [0, 1), integers 0 or 1, booleans), unless
given with --input; dynamic dims are 1 unless set with --shape or fixed by another input sharing
the dim's name. bfloat16 inputs cannot be fed (onnxruntime-node has no bfloat16 tensors).`;

  program
    .command('check')
    .description('Pre-flight: the values of any checkpoint (or a plan applied to its target, its expanded rows too) are healthy: finite, within --max-abs, weights of 2+ dims not all zero or constant, BatchNorm variances > 0. An ONNX model also loads in onnxruntime-node and one forward pass gives finite outputs; for a plan whose source is an ONNX model of the same graph, the old classes\' outputs must equal the source\'s.')
    .argument('<model>', 'a checkpoint (MODEL.onnx: also run), or plan.json')
    .option('--ep <provider>', 'execution provider: cpu, cuda or auto (CUDA when it loads)', 'auto')
    .addOption(shapeOption())
    .addOption(inputOption())
    .option('--min-loaded <fraction>', 'for a plan: fail (exit 1) below this fraction of parameters loaded (default 0.9)')
    .option('--atol <x>', 'for a plan: absolute tolerance of the output comparison with the source (default 1e-5)')
    .option('--rtol <x>', 'for a plan: relative tolerance of the output comparison (default 1e-4)')
    .option('--class-map <old:new|plan.json>', "for a plan: where the old classes are in grown outputs (default: the head layout ckpt plan infers for the two models, not the plan's own entries)")
    .option('--max-abs <x>', 'fail when a float weight or buffer holds a value beyond ±X (default 1e10: catches uninitialized memory such as 1e37)')
    .option('--verbose', "show onnxruntime's own log")
    .option('--json', 'print the report as JSON')
    .addHelpText('after', `${INPUTS_HELP}
${EXIT_CODES_HELP}`)
    .action(run(later(() => import('./check.js'), 'checkCommand')));

  program
    .command('compare')
    .description('Run two ONNX models in onnxruntime-node on the same inputs and compare their outputs: max and mean |A−B|, cosine. Exit 0 when equal within the tolerance, 1 when different.')
    .argument('<a>', 'first model (A.onnx)')
    .argument('<b>', 'second model (B.onnx; rtol scales with its values)')
    .option('--atol <x>', 'absolute tolerance (default 1e-5)')
    .option('--rtol <x>', 'relative tolerance (default 1e-4): equal when |A−B| ≤ atol + rtol·|B|')
    .addOption(inputOption())
    .addOption(shapeOption())
    .option('--seed <n>', 'seed of the generated inputs (default 0)')
    .option('--class-map <old:new|plan.json>', "compare a grown class head on the old classes only: OLD:NEW class counts (e.g. 90:92; packed heads such as YOLO's 3 × (5 + C) are split in blocks), or a plan's expansions")
    .option('--bisect', 'when outputs differ, name the first node whose output diverges (both graphs must have the same op sequence)')
    .option('--bisect-batch <n>', 'intermediate outputs exposed per run while bisecting (default 32; bounds memory)')
    .option('--ep <provider>', 'execution provider: cpu, cuda or auto (CUDA when it loads)', 'auto')
    .option('--verbose', "show onnxruntime's own log")
    .option('--html <file>', 'also write a self-contained HTML report: outputs colored by divergence, a table that filters and sorts')
    .option('--json', 'print the report as JSON')
    .addHelpText('after', `${INPUTS_HELP}
${EXIT_CODES_HELP}
  6  compare: a file is not an ONNX model (convert it first)`)
    .action(run(later(() => import('./compare.js'), 'compareCommand')));

  program
    .command('finetune')
    .description('Train the dense layers that end an ONNX model (a new classifier on frozen features, or the top layers) with onnxruntime-node, CUDA when it loads.')
    .argument('<model>', 'MODEL.onnx (e.g. the output of ckpt apply)')
    .option('--data <file>', '.npz with arrays x and y, .npy (with --labels y.npy), or CSV (label column + features; .csv.gz too)')
    .option('--labels <file>', 'labels for .npy features')
    .option('--label-column <name|index>', 'CSV label column (default: label/target/y/class, else the first)')
    .option('-o, --output <out.onnx>', 'the model with the trained weights (written atomically)')
    .option('--train-last <k>', 'train the last K dense layers (default 1: a new linear classifier on frozen features)')
    .addOption(new Option('--train <pattern>', 'train the dense layers from the first whose weight matches (repeatable)').argParser(collect))
    .option('--train-all', 'train every layer, through a backward pass written for the model\'s ops (Conv, Gemm/MatMul, Relu, pooling, BatchNorm…; an unsupported op is named)')
    .option('--loss <loss>', 'cross-entropy (default) or mse')
    .option('--optimizer <name>', 'adam (default) or sgd (with --momentum)')
    .option('--momentum <m>', 'SGD momentum (default 0.9)')
    .option('--epochs <n>', 'epochs (default 10)')
    .option('--batch <n>', 'minibatch size (default 32)')
    .option('--lr <x>', 'learning rate (default 0.001 for adam, 0.01 for sgd)')
    .option('--weight-decay <x>', 'L2 weight decay on weights (default 0)')
    .option('--seed <n>', 'seed of the split and shuffles (default 0)')
    .option('--val-split <fraction>', 'held out for validation (default 0.2)')
    .option('--old-classes <n>', 'labels below N are the pretrained classes: accuracy is reported for old and new apart')
    .option('--freeze-old-classes', "keep the head's rows of the old classes fixed (needs --old-classes)")
    .option('--ep <provider>', 'execution provider: cpu, cuda or auto', 'auto')
    .option('--steps-per-call <n>', 'optimizer steps per onnxruntime call, inside one ONNX Loop (default 64)')
    .option('--json', 'JSON lines (the default when stdout is not a terminal): start, one per epoch, then a summary')
    .option('--html <file>', 'also write a self-contained HTML report: loss and accuracy per epoch (old and new classes apart), the epochs as a table')
    .addHelpText('after', EXIT_CODES_HELP)
    .action(run(later(() => import('./finetune.js'), 'finetuneCommand')));

  program
    .command('scan')
    .description('List every global and module a pickle (PyTorch, Paddle, NumPy object arrays), TorchScript archive or Keras model would import or run when loaded, with a verdict: safe to load with torch.load(weights_only=True) or not, and why. Reads without running anything. Exit 0 safe, 1 otherwise.')
    .argument('<path>', 'the file to scan')
    .addOption(new Option('--allow <global>', 'trust this global, as torch.serialization.add_safe_globals does (repeatable; module.Name)').argParser(collect))
    .option('--allow-data', 'exit 0 when the only globals beyond torch\'s are plain data types (numpy arrays, argparse Namespace…)')
    .option('--json', 'print the report as JSON: {path, kind, pickles, globals:[{name, category, count, where, why}], code, incomplete, verdict, reason}')
    .addHelpText('after', EXIT_CODES_HELP)
    .action(run(later(() => import('./scan.js'), 'scanCommand')));

  program
    .command('doctor')
    .description('Node and onnxruntime-node versions, the execution providers that load, the GPU, and what to do when CUDA is not usable.')
    .option('--json', 'print as JSON')
    .action(run(later(() => import('./doctor.js'), 'doctorCommand')));

  program
    .command('presets')
    .description("List the --preset names: PaddleDetection's heads to exclude when the dataset changes.")
    .option('--json', 'print as JSON')
    .action(run(later(() => import('./select.js'), 'presetsCommand')));

  return program;
}

/** A failed run as both the stderr line and the JSON error document describe it. */
interface Failure {
  exitCode: number;
  code: ErrorCode;
  message: string;
  file?: string | undefined;
  where?: string | undefined;
}

function failureOf(err: unknown): Failure {
  if (err instanceof CommanderError) return { exitCode: ExitCode.usage, code: 'usage', message: err.message.replace(/^error: /, '') };
  if (err instanceof CkptError) return { exitCode: err.exitCode, code: err.code, message: err.message, file: err.file, where: err.where };
  return { exitCode: ExitCode.internal, code: 'internal', message: `internal error: ${(err as Error)?.message ?? String(err)}` };
}

/**
 * `--json` anywhere among the options (before `--`): usage errors happen before commander has
 * parsed it, and every command's JSON output has the error document's place.
 */
function wantsJson(argv: string[]): boolean {
  const end = argv.indexOf('--');
  return (end === -1 ? argv : argv.slice(0, end)).includes('--json');
}

/**
 * Runs the CLI and returns the exit code; errors become one line on stderr and, with `--json`,
 * also `{"error": {code, message, file, where, exitCode}}` on stdout (one line, so that JSON-lines
 * output stays JSON lines).
 */
export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    commandExitCode = ExitCode.ok;
    await program.parseAsync(argv, { from: 'user' });
    reportTransfer();
    return commandExitCode;
  } catch (err) {
    if (err instanceof CommanderError && (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.exitCode === 0)) {
      return ExitCode.ok;
    }
    const failure = failureOf(err);
    // Commander has already written its usage errors (with the help that follows them).
    if (!(err instanceof CommanderError)) {
      const hint = err instanceof CkptError ? '' : ' (set CKPT_DEBUG=1 for details)';
      process.stderr.write(`ckpt: ${failure.message}${hint}\n`);
      if (process.env.CKPT_DEBUG === '1') process.stderr.write(`${(err as Error)?.stack}\n`);
    }
    if (wantsJson(argv)) {
      const { code, message, file, where, exitCode } = failure;
      process.stdout.write(`${JSON.stringify({ error: { code, message, file: file ?? null, where: where ?? null, exitCode } })}\n`);
    }
    return failure.exitCode;
  }
}
