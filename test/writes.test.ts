import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { CkptError, open } from '../src/index.js';
import { chooseWriter } from '../src/formats/writers.js';
import { RandomAccessFile } from '../src/core/file.js';
import { readZipDirectory, zipDataOffset } from '../src/core/zip.js';
import { writeNpz } from '../src/formats/numpy/write.js';
import type { TensorInfo } from '../src/core/statedict.js';
import { CORPUS, ROOT, SAMPLES, runCli, tempDir } from './helpers.js';
import { python, pythonHas } from './python.js';

const CKPT = path.join(ROOT, 'bin', 'ckpt.js');
const ONNX = path.join(SAMPLES, 'detector-90.onnx');
const isRoot = process.getuid?.() === 0;
const isTemporary = (name: string) => /^\..*\.ckpt-\d+-\w+\.tmp$/.test(name);

/** A safetensors file of float32 tensors named t0, t1…, each `bytes` long (filled with its index). */
function safetensorsFile(file: string, count: number, bytes: number): string {
  const header: Record<string, unknown> = {};
  for (let i = 0; i < count; i++) header[`t${i}`] = { dtype: 'F32', shape: [bytes / 4], data_offsets: [i * bytes, (i + 1) * bytes] };
  const json = Buffer.from(JSON.stringify(header).padEnd(Math.ceil(JSON.stringify(header).length / 8) * 8, ' '));
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(json.length));
  fs.writeFileSync(file, Buffer.concat([length, json, ...Array.from({ length: count }, (_, i) => Buffer.alloc(bytes, i + 1))]));
  return file;
}

/** `ckpt ARGS` without blocking this process (FIFO readers, parallel runs); stdout as bytes. */
function runAsync(args: string[], options: { uid?: number; gid?: number } = {}): Promise<{ status: number | null; stdout: Buffer; stderr: string }> {
  const child = spawn(process.execPath, [CKPT, ...args], options);
  const stdout: Buffer[] = [];
  let stderr = '';
  child.stdout.on('data', (b: Buffer) => stdout.push(b));
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  return new Promise((resolve) => child.on('close', (status) => resolve({ status, stdout: Buffer.concat(stdout), stderr })));
}

/** `ckpt convert` in this process (faster than a CLI run): the CkptError it raised, if any. */
async function convert(input: string, out: string, to?: string): Promise<CkptError | undefined> {
  const dict = await open(input);
  try {
    const writer = chooseWriter(out, to, dict.format);
    const sameFormat = writer.format === dict.format;
    await writer.write(out, dict.tensors.map((t) => ({ name: sameFormat ? t.source : t.name, tensor: t })), dict);
    return undefined;
  } catch (err) {
    if (err instanceof CkptError) return err;
    throw err;
  } finally {
    await dict.close();
  }
}

/** Opens `file` and reads every value, as `inspect --hash` does: the CkptError that raised, if any. */
async function readAll(file: string): Promise<CkptError | undefined> {
  let dict;
  try {
    dict = await open(file);
    for (const t of dict.tensors) await t.read();
    return undefined;
  } catch (err) {
    if (err instanceof CkptError) return err;
    throw err;
  } finally {
    await dict?.close();
  }
}

/** The ONNX sample as safetensors, written to a plain file: what every special output must receive. */
let expectedBytes: Promise<Buffer> | undefined;
function expectedSafetensors(): Promise<Buffer> {
  expectedBytes ??= (async () => {
    const file = path.join(tempDir(), 'expected.safetensors');
    assert.equal(await convert(ONNX, file), undefined);
    return fs.readFileSync(file);
  })();
  return expectedBytes;
}

describe('special output paths', () => {
  test('a character device is written through and stays a device; then the real /dev/null', { skip: !isRoot && 'mknod needs root' }, () => {
    const dir = tempDir();
    const device = path.join(dir, 'null');
    if (spawnSync('mknod', [device, 'c', '1', '3']).status !== 0) return;
    const r = runCli(['convert', ONNX, device, '--to', 'safetensors']);
    assert.equal(r.status, 0, r.stderr);
    assert.ok(fs.lstatSync(device).isCharacterDevice(), 'the device node stays a device');
    assert.deepEqual(fs.readdirSync(dir), ['null']);
    // Only once a device in a temporary folder survived: a failure here would break the machine's /dev/null.
    const real = runCli(['convert', ONNX, '/dev/null', '--to', 'safetensors']);
    assert.equal(real.status, 0, real.stderr);
    assert.ok(fs.lstatSync('/dev/null').isCharacterDevice());
  });

  // A writer that replaced the FIFO would leave its reader waiting: hence the timeout.
  test('a FIFO is written through: its reader gets the whole model', { timeout: 30_000 }, async () => {
    const fifo = path.join(tempDir(), 'pipe');
    if (spawnSync('mkfifo', [fifo]).status !== 0) return;
    const run = runAsync(['convert', ONNX, fifo, '--to', 'safetensors']);
    const received = await fs.promises.readFile(fifo);
    assert.equal((await run).status, 0);
    assert.ok(fs.lstatSync(fifo).isFIFO());
    assert.ok(received.equals(await expectedSafetensors()));
  });

  test('/dev/stdout: the model goes to standard output (here a socket), the report to stderr', async () => {
    // A link of our own to what /dev/stdout links to: a writer that replaced it would not damage /dev.
    const dir = tempDir();
    const stdout = path.join(dir, 'stdout');
    fs.symlinkSync('/proc/self/fd/1', stdout);
    // 4 MiB: more than a socket buffer holds, so the writer must wait for its reader.
    const input = safetensorsFile(path.join(dir, 'input.safetensors'), 2, 2 << 20);
    const r = await runAsync(['convert', input, stdout, '--to', 'safetensors']);
    assert.equal(r.status, 0, r.stderr);
    const expected = path.join(dir, 'expected.safetensors');
    assert.equal(await convert(input, expected), undefined);
    assert.ok(r.stdout.equals(fs.readFileSync(expected)), 'stdout holds exactly the model');
    assert.ok(r.stderr.includes(`→ ${stdout} (safetensors)`), r.stderr);
    assert.ok(fs.lstatSync(stdout).isSymbolicLink());
  });

  test('a symlink is followed: its target is replaced in its own folder, the link stays', async () => {
    const dir = tempDir();
    fs.mkdirSync(path.join(dir, 'real'));
    const target = path.join(dir, 'real', 'model.safetensors');
    fs.writeFileSync(target, 'old');
    fs.chmodSync(target, 0o600);
    const link = path.join(dir, 'link.safetensors');
    fs.symlinkSync('real/model.safetensors', link);
    assert.equal(await convert(ONNX, link), undefined);
    assert.ok(fs.lstatSync(link).isSymbolicLink());
    assert.equal(fs.statSync(target).mode & 0o777, 0o600, 'the target keeps its permissions');
    assert.ok(fs.readFileSync(target).equals(await expectedSafetensors()));
    assert.deepEqual(fs.readdirSync(path.join(dir, 'real')), ['model.safetensors']);
  });

  test('a directory, a socket, a block device or a dangling symlink is refused with exit 4 naming it', async () => {
    const dir = tempDir();
    const outputs = [path.join(dir, 'folder'), path.join(dir, 'sock'), path.join(dir, 'dangling')];
    fs.mkdirSync(outputs[0]!);
    const server = net.createServer().listen(outputs[1]!);
    await new Promise((resolve) => server.once('listening', resolve));
    fs.symlinkSync('nowhere', outputs[2]!);
    if (isRoot && spawnSync('mknod', [path.join(dir, 'block'), 'b', '7', '0']).status === 0) outputs.push(path.join(dir, 'block'));
    try {
      for (const out of outputs) {
        const err = await convert(ONNX, out, 'safetensors');
        assert.equal(err?.exitCode, 4, out);
        assert.ok(err.message.includes(out), err.message);
      }
      const tfjs = await convert(ONNX, outputs[1]!, 'tfjs');
      assert.equal(tfjs?.exitCode, 4, 'TF.js output is a folder');
      assert.ok(fs.statSync(outputs[0]!).isDirectory());
      assert.ok(fs.lstatSync(outputs[1]!).isSocket());
      assert.deepEqual(fs.readdirSync(dir).filter(isTemporary), []);
    } finally {
      server.close();
    }
  });
});

/** Whether another user (nobody) can reach and read the checkout: every folder above it searchable by others. */
function othersCanRun(root: string): boolean {
  for (let dir = path.resolve(root); ; dir = path.dirname(dir)) {
    if ((fs.statSync(dir).mode & 0o005) !== 0o005) return false;
    if (path.dirname(dir) === dir) return true;
  }
}

describe('an output folder that cannot be written', () => {
  test('a path through a file (file/out.onnx) is exit 4 naming the output, not an internal error', async () => {
    const dir = tempDir();
    fs.writeFileSync(path.join(dir, 'file'), 'x');
    for (const out of ['out.onnx', 'out.h5', 'tfjs/model.json']) {
      const err = await convert(ONNX, path.join(dir, 'file', out), out.endsWith('.json') ? 'tfjs' : undefined);
      assert.equal(err?.exitCode, 4, out);
      assert.ok(err.message.includes(path.join(dir, 'file')), err.message);
      assert.doesNotMatch(err.message, /lstat|\.tmp/);
    }
  });

  test('a folder the user cannot search or write is exit 4 naming the output', { skip: (!isRoot && 'drops to user nobody, which needs root') || (!othersCanRun(ROOT) && 'user nobody cannot read this checkout') }, async () => {
    const dir = tempDir();
    fs.chmodSync(dir, 0o755);
    const locked = path.join(dir, 'locked');
    const readOnly = path.join(dir, 'read-only');
    fs.mkdirSync(locked, { mode: 0o700 });
    fs.mkdirSync(readOnly, { mode: 0o755 });
    const outputs = [path.join(locked, 'out.safetensors'), path.join(readOnly, 'out.safetensors'), path.join(readOnly, 'out.h5')];
    const runs = await Promise.all(outputs.map((out) => runAsync(['convert', ONNX, out], { uid: 65534, gid: 65534 })));
    runs.forEach((r, i) => {
      assert.equal(r.status, 4, r.stderr);
      assert.ok(r.stderr.includes(outputs[i]!), r.stderr);
      assert.match(r.stderr, /permission denied/);
    });
  });
});

describe('zip members and CRC-32', () => {
  test('an empty tensor gets the CRC-32 of its .npy header, and numpy reads the npz', async () => {
    const dir = tempDir();
    const empty: TensorInfo = {
      name: 'roi', source: 'roi', dtype: 'float32', shape: [0], byteLength: 0, origin: 'weight',
      read: async () => new Uint8Array(0),
      readStrings: async () => [],
    };
    // Converted again, the reader's empty tensor is a view of a zero-length buffer, whose CRC went wrong.
    const source = path.join(dir, 'source.npz');
    await writeNpz(source, [{ name: 'roi', tensor: empty }]);
    const out = path.join(dir, 'empty.npz');
    assert.equal(await convert(source, out), undefined);
    const file = RandomAccessFile.open(out);
    try {
      const [entry] = readZipDirectory(file);
      const member = file.read(zipDataOffset(file, entry!), entry!.size);
      assert.equal(entry!.crc32, zlib.crc32(member));
    } finally {
      file.close();
    }
    const dict = await open(out);
    assert.equal((await dict.tensors[0]!.read()).length, 0);
    await dict.close();
    if (pythonHas('numpy')) assert.equal(python('import numpy, sys; print(numpy.load(sys.argv[1])["roi"].shape)', out).trim(), '(0,)');
  });

  /** Flips one byte in the middle of `member`'s data. */
  function damage(file: string, member: (name: string) => boolean): string {
    const raf = RandomAccessFile.open(file);
    const entry = readZipDirectory(raf).find((e) => member(e.name) && e.size > 16)!;
    const at = zipDataOffset(raf, entry) + Math.floor(entry.compressedSize / 2);
    raf.close();
    const bytes = fs.readFileSync(file);
    bytes[at] ^= 0xff;
    fs.writeFileSync(file, bytes);
    return entry.name;
  }

  for (const [format, out, member] of [
    ['npz', 'out.npz', (n: string) => n.startsWith('yolo_output.weight')],
    ['PyTorch', 'out.pt', (n: string) => n === 'archive/data/4'],
  ] as const) {
    test(`a damaged ${format} member is exit 3 naming it when values are read, and still listed`, async () => {
      const file = path.join(tempDir(), out);
      assert.equal(await convert(ONNX, file), undefined);
      const name = damage(file, member);
      await (await open(file)).close(); // listing reads no values
      const err = await readAll(file);
      assert.equal(err?.exitCode, 3);
      assert.ok(err.message.includes(name) && err.message.includes('CRC-32'), err.message);
    });
  }

  const keras = path.join(CORPUS, 'keras-v3', 'keras311-mlp-15cls-small', 'your_model2.keras');
  test('a damaged .keras weights member is exit 3 naming it', { skip: !fs.existsSync(keras) && 'corpus not present' }, async () => {
    const file = path.join(tempDir(), 'model.keras');
    fs.copyFileSync(keras, file);
    const name = damage(file, (n) => n.endsWith('.h5'));
    const err = await readAll(file);
    assert.equal(err?.exitCode, 3);
    assert.ok(err.message.includes(name), err.message);
  });
});

describe('TF.js folders', () => {
  test('a shard that does not match its manifest is exit 3 naming the shard and sizes', async () => {
    const dir = path.join(tempDir(), 'model');
    fs.cpSync(path.join(SAMPLES, 'detector-90-tfjs'), dir, { recursive: true });
    fs.appendFileSync(path.join(dir, 'group1-shard1of1.bin'), Buffer.alloc(8));
    await assert.rejects(open(dir), (err: CkptError) => err.exitCode === 3 && /group1-shard1of1\.bin.*\d+ bytes/.test(err.message));
  });

  test('converting over a model leaves no old shard and reads back; in place too', async () => {
    const dir = path.join(tempDir(), 'model');
    fs.cpSync(path.join(SAMPLES, 'detector-90-tfjs'), dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'README'), 'kept');
    assert.equal(await convert(path.join(SAMPLES, 'detector-92.onnx'), dir, 'tfjs'), undefined);
    assert.deepEqual(fs.readdirSync(dir).sort(), ['README', 'group2-shard1of1.bin', 'model.json']);
    assert.equal(await convert(dir, dir, 'tfjs'), undefined);
    assert.deepEqual(fs.readdirSync(dir).sort(), ['README', 'group1-shard1of1.bin', 'model.json']);
    assert.equal(await readAll(dir), undefined);
  });
});

/**
 * Fault injection: every writer is interrupted half-way (SIGKILL, SIGINT, SIGTERM) while
 * replacing an existing output, slowed by the CKPT_TEST_WRITE_DELAY_MS hook. The output must be
 * the old one or the new one, and after SIGINT/SIGTERM no temporary may remain.
 */
describe('writers interrupted half-way leave the old output or the new one', () => {
  // Each write is slowed to about WRITE_MS; kills fall well inside it, with room for a loaded machine.
  const WRITE_MS = 1000;
  const input = path.join(tempDir(), 'inputs');
  fs.mkdirSync(input);
  const one = safetensorsFile(path.join(input, 'one.safetensors'), 1, 1024);
  // 6 × 3 MiB: five 4 MiB shards, so a kill falls between shards.
  const big = safetensorsFile(path.join(input, 'big.safetensors'), 6, 3 << 20);

  /** `tensors`: how many pauses the write makes (the ONNX writer copies this model in one piece). */
  interface Case { input: string; out: string; to?: string; tensors: number }
  const cases: Record<string, Case> = {
    onnx: { input: ONNX, out: 'out.onnx', tensors: 1 },
    safetensors: { input: ONNX, out: 'out.safetensors', tensors: 6 },
    npz: { input: ONNX, out: 'out.npz', tensors: 6 },
    npy: { input: one, out: 'out.npy', tensors: 1 },
    pytorch: { input: ONNX, out: 'out.pt', tensors: 6 },
    paddle: { input: ONNX, out: 'out.pdparams', tensors: 6 },
    keras: { input: ONNX, out: 'out.h5', tensors: 6 },
    tfjs: { input: big, out: 'model', to: 'tfjs', tensors: 6 },
  };

  /** The old output: a TF.js sample model folder, or bytes that no writer produces. */
  function existing(dir: string, c: Case): string {
    const out = path.join(dir, c.out);
    if (c.out === 'model') fs.cpSync(path.join(SAMPLES, 'detector-90-tfjs'), out, { recursive: true });
    else fs.writeFileSync(out, 'the previous output, which must survive');
    return out;
  }

  /** File name → bytes; for a folder, `modelOnly` keeps model.json and the files it references. */
  function snapshot(out: string, modelOnly = false): Map<string, string> {
    if (!fs.statSync(out).isDirectory()) return new Map([['', fs.readFileSync(out).toString('base64')]]);
    let names = fs.readdirSync(out);
    if (modelOnly) {
      const json = JSON.parse(fs.readFileSync(path.join(out, 'model.json'), 'utf8'));
      names = ['model.json', ...json.weightsManifest.flatMap((g: { paths: string[] }) => g.paths)];
    }
    return new Map(names.sort().map((n) => [n, fs.readFileSync(path.join(out, n)).toString('base64')]));
  }

  /** Same tensors, names and values: HDF5 files carry timestamps, so Keras output is compared by values. */
  async function sameModel(a: string, b: string): Promise<boolean> {
    const [x, y] = [await open(a), await open(b)];
    try {
      if (x.tensors.length !== y.tensors.length) return false;
      for (const [i, t] of x.tensors.entries()) {
        if (t.name !== y.tensors[i]!.name || !Buffer.from(await t.read()).equals(Buffer.from(await y.tensors[i]!.read()))) return false;
      }
      return true;
    } finally {
      await x.close();
      await y.close();
    }
  }

  const SIGNALS = [['SIGKILL', 0.1], ['SIGINT', 0.2], ['SIGTERM', 0.3]] as const;

  for (const [writer, c] of Object.entries(cases)) {
    test(writer, async () => {
      const referenceDir = tempDir();
      const reference = existing(referenceDir, c);
      // Both reference folders hold just their model, so a whole-folder snapshot is also a model-only one.
      const old = snapshot(reference);
      const referenceDone = convert(c.input, reference, c.to);
      const keptOld = await Promise.all(SIGNALS.map(async ([signal, fractionOfWrite]) => {
        const dir = tempDir();
        const out = existing(dir, c);
        const watched = c.out === 'model' ? out : dir;
        const child = spawn(process.execPath, [CKPT, 'convert', c.input, out, ...(c.to ? ['--to', c.to] : [])], { stdio: 'ignore', env: { ...process.env, CKPT_TEST_WRITE_DELAY_MS: String(WRITE_MS / c.tensors) } });
        const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) => child.on('exit', (code, sig) => resolve({ code, signal: sig })));
        for (let i = 0; i < 3000 && !fs.readdirSync(watched).some(isTemporary); i++) await new Promise((resolve) => setTimeout(resolve, 2));
        assert.ok(fs.readdirSync(watched).some(isTemporary), `${writer}: the write started`);
        await new Promise((resolve) => setTimeout(resolve, WRITE_MS * fractionOfWrite));
        child.kill(signal);
        const { code, signal: killedBy } = await exited;
        const where = `${writer} after ${signal}`;
        // A starved test process may signal too late; the write has then finished (and must be the new output).
        const finishedFirst = code === 0;
        if (!finishedFirst) assert.deepEqual([code, killedBy], signal === 'SIGKILL' ? [null, 'SIGKILL'] : [signal === 'SIGINT' ? 130 : 143, null], where);
        if (signal !== 'SIGKILL') assert.deepEqual(fs.readdirSync(watched).filter(isTemporary), [], `${where}: temporaries left`);
        // SIGKILL cannot clean up: temporaries (and, in a folder, unreferenced shards) may remain beside the model.
        const now = snapshot(out, signal === 'SIGKILL');
        assert.equal(await referenceDone, undefined);
        const fresh = snapshot(reference);
        const same = (a: Map<string, string>, b: Map<string, string>) => JSON.stringify([...a]) === JSON.stringify([...b]);
        const isOld = same(now, old);
        const isNew = !isOld && (writer === 'keras' ? await sameModel(out, reference) : same(now, fresh));
        assert.ok(finishedFirst ? isNew : isOld || isNew, `${where}: the output is neither the old one nor the new one`);
        return isOld;
      }));
      assert.ok(keptOld.includes(true), `${writer}: no signal arrived during the write (does it pause between tensors?)`);
    });
  }
});
