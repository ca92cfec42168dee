import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { ROOT, SAMPLES, tempDir } from './helpers.js';

// Start-up pays for what a command uses: detection loads every format's content test, and only
// the reader of the format it finds. Pinned by the list of modules a real `ckpt inspect` loads:
// the CLI bundle's files (dist/cli) stand for the modules they hold.

const dir = tempDir();
const hooks = path.join(dir, 'hooks.mjs');
fs.writeFileSync(hooks, `import * as fs from 'node:fs';
export async function load(url, context, next) {
  fs.appendFileSync(process.env.CKPT_MODULE_LOG, url + '\\n');
  return next(url, context);
}
`);
const register = path.join(dir, 'register.mjs');
// import()ed and imported modules pass the hooks; modules loaded with require() are in its cache.
fs.writeFileSync(register, `import { createRequire, register } from 'node:module';
import * as fs from 'node:fs';
import { pathToFileURL } from 'node:url';
register(${JSON.stringify(pathToFileURL(hooks).href)});
const required = createRequire(import.meta.url).cache;
process.on('exit', () => fs.appendFileSync(process.env.CKPT_MODULE_LOG, Object.keys(required).map((file) => pathToFileURL(file).href + '\\n').join('')));
`);

const BUNDLE = path.join(ROOT, 'dist', 'cli');

/** The bundle's files that `file` (one of them) imports, itself included, all the way down. */
function withImports(file: string, seen = new Set<string>()): Set<string> {
  if (seen.has(file)) return seen;
  seen.add(file);
  for (const [, imported] of fs.readFileSync(file, 'utf8').matchAll(/^(?:import|export)\b[^;]*?["'](\.\/[^"']+\.js)["']/gm)) {
    withImports(path.join(path.dirname(file), imported!), seen);
  }
  return seen;
}

/** Runs `ckpt ARGS` and returns its output with every module it loaded (project files relative to the root, packages by name). */
function modulesLoadedBy(args: string[]): { status: number; stdout: string; modules: string[] } {
  const log = path.join(dir, `modules-${Math.random().toString(36).slice(2)}.txt`);
  const r = spawnSync(process.execPath, ['--import', pathToFileURL(register).href, path.join(ROOT, 'bin', 'ckpt.js'), ...args], {
    encoding: 'utf8',
    env: { ...process.env, CKPT_MODULE_LOG: log },
    timeout: 60_000,
  });
  const urls = fs.existsSync(log) ? fs.readFileSync(log, 'utf8').split('\n').filter(Boolean) : [];
  const files = urls.filter((url) => url.startsWith('file:')).map((url) => fs.realpathSync(new URL(url)));
  // A bundle file required stands for the files it imports too (their loading passes no hook).
  const inBundle = (file: string) => file.startsWith(BUNDLE + path.sep);
  const bundled = new Set(files.filter(inBundle).flatMap((file) => [...withImports(file)]));
  const heldIn = bundled.size ? JSON.parse(fs.readFileSync(path.join(BUNDLE, 'modules.json'), 'utf8')) as Record<string, string[]> : {};
  const sources = [...files.filter((file) => !inBundle(file)), ...[...bundled].flatMap((file) => heldIn[path.relative(BUNDLE, file)]!.map((m) => path.join(ROOT, m)))];
  const modules = sources.map((file) => {
    const inPackage = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(file);
    return inPackage ? `package:${inPackage[1]}` : path.relative(ROOT, file);
  });
  return { status: r.status ?? -1, stdout: r.stdout, modules: [...new Set([...urls.filter((url) => !url.startsWith('file:')), ...modules])] };
}

/** The format readers (not their content tests) among the loaded modules. */
const readersIn = (modules: string[]) => modules.filter((m) => /^dist\/src\/formats\/[^/]+\/(index|inference|persistables)\.js$/.test(m)).sort();

/** Modules only some commands or files need: HDF5, ONNX protobufs and the runtime, pickles, remote files, archives, writers, reports, ggml blocks. */
const HEAVY = ['package:h5wasm', 'package:onnx-proto', 'package:onnxruntime-node', 'dist/src/core/pickle.js', 'dist/src/core/http-source.js', 'dist/src/core/archive.js', 'dist/src/formats/writers.js', 'dist/src/report/index.js', 'dist/src/core/ggml.js'];

test('inspect of a safetensors file loads the safetensors reader and nothing heavy', () => {
  const file = path.join(dir, 'tiny.safetensors');
  const header = Buffer.from(JSON.stringify({ weight: { dtype: 'F32', shape: [4], data_offsets: [0, 16] }, bias: { dtype: 'F32', shape: [1], data_offsets: [16, 20] } }));
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(header.length));
  fs.writeFileSync(file, Buffer.concat([length, header, Buffer.from(new Float32Array([1, 2, 3, 4, 0.5]).buffer)]));
  const r = modulesLoadedBy(['inspect', '--json', file]);
  assert.equal(r.status, 0);
  assert.deepEqual((JSON.parse(r.stdout) as { tensors: { name: string }[] }).tensors.map((t) => t.name), ['weight', 'bias']);
  assert.deepEqual(readersIn(r.modules), ['dist/src/formats/safetensors/index.js']);
  assert.deepEqual(HEAVY.filter((m) => r.modules.includes(m)), []);
});

test('inspect of an ONNX model loads the ONNX reader only, without onnx-proto or the runtime', () => {
  const r = modulesLoadedBy(['inspect', path.join(SAMPLES, 'detector-90.onnx')]);
  assert.equal(r.status, 0);
  assert.match(r.stdout, /backbone\.conv1\.weight/);
  assert.deepEqual(readersIn(r.modules), ['dist/src/formats/onnx/index.js']);
  assert.deepEqual(HEAVY.filter((m) => r.modules.includes(m)), []);
});

test('a PyTorch file brings the pickle reader with its own reader', () => {
  const r = modulesLoadedBy(['inspect', path.join(SAMPLES, 'detector-90-train.pth')]);
  assert.equal(r.status, 0);
  assert.deepEqual(readersIn(r.modules), ['dist/src/formats/pytorch/index.js']);
  assert.ok(r.modules.includes('dist/src/core/pickle.js'));
  assert.ok(!r.modules.includes('package:h5wasm'));
});
