import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { open } from '../src/index.js';
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

  test('a FIFO is written through: its reader gets the whole model', async () => {
    const dir = tempDir();
    const fifo = path.join(dir, 'pipe');
    if (spawnSync('mkfifo', [fifo]).status !== 0) return;
    const child = spawn(process.execPath, [CKPT, 'convert', ONNX, fifo, '--to', 'safetensors'], { stdio: 'ignore' });
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    const received = await fs.promises.readFile(fifo);
    assert.equal(await exited, 0);
    assert.ok(fs.lstatSync(fifo).isFIFO());
    const direct = path.join(dir, 'direct.safetensors');
    assert.equal(runCli(['convert', ONNX, direct]).status, 0);
    assert.ok(received.equals(fs.readFileSync(direct)));
  });

  test('/dev/stdout: the model goes to standard output, the report to stderr', () => {
    const r = spawnSync(process.execPath, [CKPT, 'convert', ONNX, '/dev/stdout', '--to', 'safetensors']);
    assert.equal(r.status, 0, r.stderr.toString());
    const direct = path.join(tempDir(), 'direct.safetensors');
    assert.equal(runCli(['convert', ONNX, direct]).status, 0);
    assert.ok(r.stdout.equals(fs.readFileSync(direct)), 'stdout holds exactly the model');
    assert.match(r.stderr.toString(), /convert: .* → \/dev\/stdout/);
  });

  test('a symlink is followed: its target is replaced in its own folder, the link stays', () => {
    const dir = tempDir();
    fs.mkdirSync(path.join(dir, 'real'));
    const target = path.join(dir, 'real', 'model.safetensors');
    fs.writeFileSync(target, 'old');
    fs.chmodSync(target, 0o600);
    const link = path.join(dir, 'link.safetensors');
    fs.symlinkSync('real/model.safetensors', link);
    const r = runCli(['convert', ONNX, link]);
    assert.equal(r.status, 0, r.stderr);
    assert.ok(fs.lstatSync(link).isSymbolicLink());
    assert.equal(fs.statSync(target).mode & 0o777, 0o600, 'the target keeps its permissions');
    const direct = path.join(dir, 'direct.safetensors');
    assert.equal(runCli(['convert', ONNX, direct]).status, 0);
    assert.ok(fs.readFileSync(target).equals(fs.readFileSync(direct)));
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
        const r = runCli(['convert', ONNX, out, '--to', 'safetensors']);
        assert.equal(r.status, 4, `${out}: ${r.stderr}`);
        assert.ok(r.stderr.includes(out), r.stderr);
        assert.doesNotMatch(r.stderr, /internal error/);
      }
      assert.ok(fs.statSync(outputs[0]!).isDirectory());
      assert.ok(fs.lstatSync(outputs[1]!).isSocket());
      assert.deepEqual(fs.readdirSync(dir).filter(isTemporary), []);
    } finally {
      server.close();
    }
  });
});

describe('an output folder that cannot be written', () => {
  test('a path through a file (file/out.onnx) is exit 4 naming the output, not an internal error', () => {
    const dir = tempDir();
    fs.writeFileSync(path.join(dir, 'file'), 'x');
    for (const out of ['out.onnx', 'out.h5', 'tfjs/model.json']) {
      const r = runCli(['convert', ONNX, path.join(dir, 'file', out), ...(out.endsWith('.json') ? ['--to', 'tfjs'] : [])]);
      assert.equal(r.status, 4, r.stderr);
      assert.ok(r.stderr.includes(path.join(dir, 'file')), r.stderr);
      assert.doesNotMatch(r.stderr, /internal error|lstat|\.tmp/);
    }
  });

  test('a folder the user cannot search or write is exit 4 naming the output', { skip: !isRoot && 'drops to user nobody, which needs root' }, () => {
    const dir = tempDir();
    fs.chmodSync(dir, 0o755);
    const locked = path.join(dir, 'locked');
    const readOnly = path.join(dir, 'read-only');
    fs.mkdirSync(locked, { mode: 0o700 });
    fs.mkdirSync(readOnly, { mode: 0o755 });
    for (const out of [path.join(locked, 'out.safetensors'), path.join(readOnly, 'out.safetensors'), path.join(readOnly, 'out.h5')]) {
      const r = spawnSync(process.execPath, [CKPT, 'convert', ONNX, out], { encoding: 'utf8', uid: 65534, gid: 65534 });
      assert.equal(r.status, 4, r.stderr);
      assert.ok(r.stderr.includes(out), r.stderr);
      assert.match(r.stderr, /permission denied/);
    }
  });
});

describe('zip members and CRC-32', () => {
  test('an empty tensor gets the CRC-32 of its .npy header, and numpy reads the npz', async () => {
    const dir = tempDir();
    const empty = (name: string): TensorInfo => ({
      name, source: name, dtype: 'float32', shape: [0], byteLength: 0, origin: 'weight',
      read: async () => new Uint8Array(0), // a view of a zero-length buffer, as readers return
      readStrings: async () => [],
    });
    const out = path.join(dir, 'empty.npz');
    await writeNpz(out, [{ name: 'roi', tensor: empty('roi') }]);
    const file = RandomAccessFile.open(out);
    try {
      const [entry] = readZipDirectory(file);
      const member = file.read(zipDataOffset(file, entry!), entry!.size);
      assert.equal(entry!.crc32, (await import('node:zlib')).crc32(member));
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
    test(`a damaged ${format} member is exit 3 naming it when values are read, and still listed`, () => {
      const file = path.join(tempDir(), out);
      assert.equal(runCli(['convert', ONNX, file]).status, 0);
      const name = damage(file, member);
      assert.equal(runCli(['inspect', file]).status, 0, 'listing reads no values');
      const r = runCli(['inspect', '--hash', file]);
      assert.equal(r.status, 3, r.stderr);
      assert.ok(r.stderr.includes(name) && r.stderr.includes('CRC-32'), r.stderr);
    });
  }

  const keras = path.join(CORPUS, 'keras-v3', 'keras311-mlp-15cls-small', 'your_model2.keras');
  test('a damaged .keras weights member is exit 3 naming it', { skip: !fs.existsSync(keras) && 'corpus not present' }, () => {
    const file = path.join(tempDir(), 'model.keras');
    fs.copyFileSync(keras, file);
    const name = damage(file, (n) => n.endsWith('.h5'));
    const r = runCli(['inspect', '--hash', file]);
    assert.equal(r.status, 3, r.stderr);
    assert.ok(r.stderr.includes(name), r.stderr);
  });
});

describe('TF.js folders', () => {
  test('a shard that does not match its manifest is exit 3 naming the shard and sizes', () => {
    const dir = path.join(tempDir(), 'model');
    fs.cpSync(path.join(SAMPLES, 'detector-90-tfjs'), dir, { recursive: true });
    fs.appendFileSync(path.join(dir, 'group1-shard1of1.bin'), Buffer.alloc(8));
    const r = runCli(['inspect', '--hash', dir]);
    assert.equal(r.status, 3, r.stderr);
    assert.match(r.stderr, /group1-shard1of1\.bin/);
    assert.match(r.stderr, /\d+ bytes/);
  });

  test('converting over a model leaves no old shard and reads back; in place too', () => {
    const dir = path.join(tempDir(), 'model');
    fs.cpSync(path.join(SAMPLES, 'detector-90-tfjs'), dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'README'), 'kept');
    assert.equal(runCli(['convert', path.join(SAMPLES, 'detector-92.onnx'), dir, '--to', 'tfjs']).status, 0);
    assert.deepEqual(fs.readdirSync(dir).sort(), ['README', 'group2-shard1of1.bin', 'model.json']);
    assert.equal(runCli(['convert', dir, dir, '--to', 'tfjs']).status, 0);
    assert.deepEqual(fs.readdirSync(dir).sort(), ['README', 'group1-shard1of1.bin', 'model.json']);
    assert.equal(runCli(['inspect', '--hash', dir]).status, 0);
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

  interface Case { out: string; args: (out: string) => string[]; tensors: number }
  const cases: Record<string, Case> = {
    onnx: { out: 'out.onnx', args: (out) => ['convert', ONNX, out], tensors: 1 },
    safetensors: { out: 'out.safetensors', args: (out) => ['convert', ONNX, out], tensors: 6 },
    npz: { out: 'out.npz', args: (out) => ['convert', ONNX, out], tensors: 6 },
    npy: { out: 'out.npy', args: (out) => ['convert', one, out], tensors: 1 },
    pytorch: { out: 'out.pt', args: (out) => ['convert', ONNX, out], tensors: 6 },
    paddle: { out: 'out.pdparams', args: (out) => ['convert', ONNX, out], tensors: 6 },
    keras: { out: 'out.h5', args: (out) => ['convert', ONNX, out], tensors: 6 },
    tfjs: { out: 'model', args: (out) => ['convert', big, out, '--to', 'tfjs'], tensors: 6 },
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

  const SIGNALS = [['SIGKILL', 0.1], ['SIGINT', 0.3], ['SIGTERM', 0.5]] as const;

  for (const [writer, c] of Object.entries(cases)) {
    test(writer, async () => {
      const referenceDir = tempDir();
      const reference = existing(referenceDir, c);
      // Both reference folders hold just their model, so a whole-folder snapshot is also a model-only one.
      const old = snapshot(reference);
      const uninterrupted = spawn(process.execPath, [CKPT, ...c.args(reference)], { stdio: 'ignore' });
      const referenceDone = new Promise((resolve) => uninterrupted.on('exit', resolve));
      await Promise.all(SIGNALS.map(async ([signal, fractionOfWrite]) => {
        const dir = tempDir();
        const out = existing(dir, c);
        const watched = c.out === 'model' ? out : dir;
        const child = spawn(process.execPath, [CKPT, ...c.args(out)], { stdio: 'ignore', env: { ...process.env, CKPT_TEST_WRITE_DELAY_MS: String(WRITE_MS / c.tensors) } });
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
        assert.equal(await referenceDone, 0);
        const fresh = snapshot(reference);
        const same = (a: Map<string, string>, b: Map<string, string>) => JSON.stringify([...a]) === JSON.stringify([...b]);
        const isOld = same(now, old);
        const isNew = !isOld && (writer === 'keras' ? await sameModel(out, reference) : same(now, fresh));
        assert.ok(finishedFirst ? isNew : isOld || isNew, `${where}: the output is neither the old one nor the new one`);
      }));
    });
  }
});
