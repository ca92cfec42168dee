import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as net from 'node:net';
import * as path from 'node:path';
import { CkptError, open } from '../src/index.js';
import { CORPUS, HAS_CORPUS, ROOT, SAMPLES, runCli, tempDir } from './helpers.js';

const require = createRequire(import.meta.url);
const Ajv2020 = require('ajv/dist/2020.js');
const validateError = new Ajv2020({ allErrors: true }).compile(JSON.parse(fs.readFileSync(path.join(ROOT, 'schemas', 'error.schema.json'), 'utf8')));

const CKPT = path.join(ROOT, 'bin', 'ckpt.js');

/** The CLI with a deadline: a run that waits on a pipe fails the test instead of hanging it. */
function runBounded(args: string[]) {
  const r = spawnSync(process.execPath, [CKPT, ...args], { encoding: 'utf8', timeout: 20_000 });
  assert.equal(r.error, undefined, `ckpt ${args.join(' ')} did not finish: ${r.error?.message}`);
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** The one-line JSON error document a failing `--json` run writes on stdout. */
function errorDocument(stdout: string) {
  assert.equal(stdout.split('\n').length, 2, `one line: ${stdout}`);
  const doc = JSON.parse(stdout);
  assert.ok(validateError(doc), JSON.stringify(validateError.errors));
  return doc.error as { code: string; message: string; file: string | null; where: string | null; exitCode: number };
}

describe('inputs that are not regular files are refused at once (exit 4), never waited on', () => {
  test('a FIFO with no writer: the CLI and open() return promptly, naming the file and what it is', async () => {
    const fifo = path.join(tempDir(), 'model.onnx');
    assert.equal(spawnSync('mkfifo', [fifo]).status, 0);
    const r = runBounded(['inspect', fifo]);
    assert.equal(r.status, 4, r.stderr);
    assert.equal(r.stderr, `ckpt: ${fifo}: is a FIFO (named pipe); ckpt reads checkpoints by random access: save it to a regular file first\n`);
    await assert.rejects(open(fifo), (err) => err instanceof CkptError && err.exitCode === 4 && err.code === 'not-a-regular-file');
    const plan = runBounded(['apply', fifo, '-o', path.join(tempDir(), 'out.onnx')]);
    assert.equal(plan.status, 4, plan.stderr);
    assert.match(plan.stderr, /is a FIFO/);
  });

  test('a FIFO in place of the model.json of a TF.js folder is refused, not waited on', () => {
    const folder = path.join(tempDir(), 'model');
    fs.cpSync(path.join(SAMPLES, 'detector-90-tfjs'), folder, { recursive: true });
    fs.rmSync(path.join(folder, 'model.json'));
    assert.equal(spawnSync('mkfifo', [path.join(folder, 'model.json')]).status, 0);
    const r = runBounded(['inspect', folder]);
    assert.equal(r.status, 4, r.stderr);
    assert.match(r.stderr, /model\.json: is a FIFO \(named pipe\)/);
  });

  test('a socket and a device node are refused before they are opened', async () => {
    const dir = tempDir();
    const socket = path.join(dir, 'model.sock');
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(socket, resolve));
    try {
      const r = runBounded(['inspect', socket]);
      assert.equal(r.status, 4, r.stderr);
      assert.match(r.stderr, /model\.sock: is a socket;/);
    } finally {
      server.close();
    }
    // A node of the null device in a temp folder (root only); nothing ever opens it.
    const device = path.join(dir, 'null');
    if (spawnSync('mknod', [device, 'c', '1', '3']).status === 0) {
      const r = runBounded(['inspect', device]);
      assert.equal(r.status, 4, r.stderr);
      assert.match(r.stderr, /null: is a character device;/);
    }
  });

  test('a read error (/proc/self/mem: EIO) is an I/O error, exit 4, not an unrecognized format', { skip: !fs.existsSync('/proc/self/mem') && 'no /proc' }, () => {
    const r = runBounded(['inspect', '--json', '/proc/self/mem']);
    assert.equal(r.status, 4, r.stderr);
    assert.match(r.stderr, /^ckpt: \/proc\/self\/mem: offset 0: input\/output error/);
    assert.equal(errorDocument(r.stdout).code, 'io');
    const pseudo = runBounded(['inspect', '/proc/self/status']);
    assert.equal(pseudo.status, 4, pseudo.stderr);
    assert.match(pseudo.stderr, /reports a size of 0 but has content/);
  });
});

describe('with --json, an error is also a JSON document on stdout', () => {
  test('usage, not found, unknown format and invalid input each have their code, the exit code and the stderr line', () => {
    const dir = tempDir();
    const empty = path.join(dir, 'empty.bin');
    fs.writeFileSync(empty, '');
    const truncated = path.join(dir, 'cut.onnx');
    fs.writeFileSync(truncated, fs.readFileSync(path.join(SAMPLES, 'detector-90.onnx')).subarray(0, 200));
    const missing = path.join(dir, 'missing.onnx');
    const cases: [string[], string, number, string | null][] = [
      [['inspect', '--json', '--no-such-option', empty], 'usage', 2, null],
      [['diff', '--json', empty], 'usage', 2, null],
      [['inspect', '--json', missing], 'not-found', 4, missing],
      [['inspect', '--json', empty], 'unknown-format', 3, empty],
      [['inspect', '--json', truncated], 'invalid-input', 3, truncated],
      [['plan', '--json', truncated, empty], 'invalid-input', 3, truncated],
    ];
    for (const [args, code, exitCode, file] of cases) {
      const r = runCli(args);
      assert.equal(r.status, exitCode, `${args.join(' ')}: ${r.stderr}`);
      const error = errorDocument(r.stdout);
      assert.deepEqual({ code: error.code, exitCode: error.exitCode, file: error.file }, { code, exitCode, file }, args.join(' '));
      assert.equal(`ckpt: ${error.message}`, r.stderr.split('\n')[0], 'the same message as on stderr');
    }
    const plain = runCli(['inspect', missing]);
    assert.equal(plain.stdout, '', 'without --json, stdout stays empty');
  });
});

/** The CLI on a pseudo-terminal of `columns` columns (util-linux `script`), its output without carriage returns. */
function runOnTerminal(args: string[], columns: number, status = 0): string {
  const quoted = [process.execPath, CKPT, ...args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
  const r = spawnSync('script', ['-qec', `stty cols ${columns} rows 50; ${quoted}`, '/dev/null'], { encoding: 'utf8', timeout: 60_000, stdio: ['ignore', 'pipe', 'pipe'] });
  assert.equal(r.status, status, r.stdout + r.stderr);
  return r.stdout.replace(/\r/g, '');
}

const HAS_SCRIPT = spawnSync('script', ['--version']).status === 0;

describe('tables fit the terminal, and stay whole when piped', { skip: !HAS_SCRIPT && 'util-linux script is not installed' }, () => {
  const assertFits = (output: string, columns: number) => {
    for (const line of output.split('\n')) assert.ok([...line].length <= columns, `${[...line].length} columns: ${line}`);
  };
  const plan = ['plan', path.join(SAMPLES, 'detector-90.onnx'), path.join(SAMPLES, 'detector-92.onnx')];

  test('plan and diff at 80 columns: every line fits, names whole where they fit, the rest wrapped', () => {
    const planned = runOnTerminal(plan, 80);
    assertFits(planned, 80);
    assert.match(planned, /│ backbone\.conv1\.weight │ load +│ backbone\.conv1\.weight │ exact name/);
    const diffed = runOnTerminal(['diff', path.join(SAMPLES, 'detector-90.onnx'), path.join(SAMPLES, 'detector-92.h5')], 80, 1);
    assertFits(diffed, 80);
    assert.match(diffed, /│ backbone\.conv1\.weight │ \[8, 3, 3, 3\] +│ \[3, 3, 3, 8\]/);
  });

  test('Keras inspect of the corpus at 80 columns', { skip: !HAS_CORPUS && 'no corpus' }, () => {
    const folder = path.join(CORPUS, 'keras-h5');
    for (const name of fs.readdirSync(folder)) {
      for (const file of fs.readdirSync(path.join(folder, name)).filter((f) => f.endsWith('.h5'))) {
        const listed = runOnTerminal(['inspect', path.join(folder, name, file)], 80);
        assertFits(listed, 80);
        // Names stay whole where they are short: a column that does not fit beside them is left out, and said so.
        const names = JSON.parse(runCli(['inspect', '--json', path.join(folder, name, file)]).stdout).tensors.map((t: { name: string }) => t.name);
        for (const short of names.filter((n: string) => n.length <= 20)) assert.ok(listed.includes(`│ ${short} `), short);
        if (!/│ source /.test(listed)) assert.match(listed, /not shown, to fit the terminal: source/);
      }
    }
  });

  test('elided names keep their end and the part that tells them apart', () => {
    const dir = tempDir();
    const long = (tag: string) => `model.backbone.stages_3.blocks_${tag}.attention.query_key_value.weight`;
    const file = path.join(dir, 'long.safetensors');
    const header = JSON.stringify(Object.fromEntries(['0', '1'].map((tag, i) => [long(tag), { dtype: 'F32', shape: [1], data_offsets: [4 * i, 4 * i + 4] }])));
    const padded = header.padEnd(Math.ceil(header.length / 8) * 8, ' ');
    const size = Buffer.alloc(8);
    size.writeBigUInt64LE(BigInt(padded.length));
    fs.writeFileSync(file, Buffer.concat([size, Buffer.from(padded), Buffer.alloc(8)]));
    const listed = runOnTerminal(['inspect', file], 70);
    assertFits(listed, 70);
    const rows = listed.split('\n').filter((line) => line.includes('…'));
    assert.equal(rows.length, 2, listed);
    assert.ok(rows.every((row) => /…[\w.]*\.weight /.test(row)), listed);
    assert.match(rows[0]!, /blocks_0|ks_0/);
    assert.match(rows[1]!, /blocks_1|ks_1/);
  });

  test('piped, nothing is elided or wrapped', () => {
    const r = runCli(plan);
    assert.match(r.stdout, /exact name; layout yolo:3 inferred from the name and shape \(3 anchors × \(5 \+ classes\)\); axis 0: 285 → 291 in 3 blocks of 95 → 97; rows per block 0\.\.94,new×2 \(new: target\); \[285, 16, 1, 1\] → \[291, 16, 1, 1\]/);
    assert.doesNotMatch(r.stdout, /…/);
  });
});
