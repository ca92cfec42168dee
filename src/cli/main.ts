import { Command, CommanderError, Option } from 'commander';
import { CkptError, ExitCode } from '../core/errors.js';
import { inspectCommand } from './inspect.js';

const EXIT_CODES_HELP = `
Exit codes:
  0  ok
  1  differences found, or a threshold not met
  2  usage error (bad option or argument)
  3  invalid or unsupported input (the message names the file and the place in it)
  4  I/O error (missing file, permission denied)
  5  internal error (a bug: please report it; CKPT_DEBUG=1 shows the stack)`;

const collect = (value: string, previous: string[] = []) => [...previous, value];

export function buildProgram(): Command {
  const program = new Command();
  program
    .name('ckpt')
    .description('Inspect, compare and transform neural-network checkpoints (ONNX, Keras HDF5, TensorFlow.js).')
    .version('0.1.0')
    .showHelpAfterError()
    .addHelpText('after', EXIT_CODES_HELP)
    .exitOverride()
    .configureOutput({ outputError: (text, write) => write(`ckpt: ${text.replace(/^error: /, '')}`) });

  program
    .command('inspect')
    .description('List the tensors of a checkpoint: name, dtype, shape, parameters, bytes.')
    .argument('<path>', 'model file (or folder, for formats that have one)')
    .option('--json', 'print one JSON object: {format, metadata, totals, tensors:[{name, source, dtype, shape, byteLength, …}]}')
    .option('--hash', 'add the SHA-256 of each tensor (little-endian bytes of its dtype, row-major); reads every tensor')
    .option('--tree', 'group tensors by dotted name prefix with parameter counts per group')
    .addOption(new Option('--filter <pattern>', 'only tensors whose name matches (repeatable; regex at the start, re:, glob:, =exact)').argParser(collect))
    .option('--all', 'also list optimizer state and other non-model tensors')
    .addHelpText('after', EXIT_CODES_HELP)
    .action(inspectCommand);

  return program;
}

/** Runs the CLI and returns the exit code; errors become one line on stderr. */
export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv, { from: 'user' });
    return ExitCode.ok;
  } catch (err) {
    if (err instanceof CommanderError) {
      return err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.exitCode === 0
        ? ExitCode.ok
        : ExitCode.usage;
    }
    if (err instanceof CkptError) {
      process.stderr.write(`ckpt: ${err.message}\n`);
      if (process.env.CKPT_DEBUG === '1') process.stderr.write(`${err.stack}\n`);
      return err.exitCode;
    }
    const e = err as Error;
    process.stderr.write(`ckpt: internal error: ${e?.message ?? String(err)} (set CKPT_DEBUG=1 for details)\n`);
    if (process.env.CKPT_DEBUG === '1') process.stderr.write(`${e?.stack}\n`);
    return 5;
  }
}
