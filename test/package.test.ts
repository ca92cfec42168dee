// The published package as a user gets it: `npm pack`'s contents, an offline install into a fresh
// project (the npm cache standing in for the registry), the example program compiled against the
// packed types, and diff → plan → apply → check → finetune run through the API alone.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ROOT, SAMPLES, tempDir } from './helpers.js';

const NPM = process.platform === 'win32' ? 'npm.cmd' : 'npm';

function npm(args: string[], cwd: string, env: Record<string, string> = {}) {
  return spawnSync(NPM, args, { cwd, encoding: 'utf8', env: { ...process.env, npm_config_update_notifier: 'false', ...env } });
}

/** What a user's package-lock would hold: the tarball, and ckpt's own dependencies as this repository pins them. */
function consumerLock(tarball: string): object {
  const lock = JSON.parse(fs.readFileSync(path.join(ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, { dev?: boolean }> };
  const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
  const integrity = `sha512-${createHash('sha512').update(fs.readFileSync(tarball)).digest('base64')}`;
  const dependencies = Object.fromEntries(Object.entries(lock.packages).filter(([where, entry]) => where !== '' && !entry.dev));
  const spec = `file:${path.basename(tarball)}`;
  return {
    name: 'consumer', version: '1.0.0', lockfileVersion: 3, requires: true,
    packages: {
      '': { name: 'consumer', version: '1.0.0', dependencies: { ckpt: spec } },
      'node_modules/ckpt': { version: pkg.version, resolved: spec, integrity, license: pkg.license, dependencies: pkg.dependencies, bin: pkg.bin, engines: pkg.engines },
      ...dependencies,
    },
  };
}

test('the packed package installs offline into a fresh project and runs diff → plan → apply → check → finetune through its API', async (t) => {
  if (spawnSync(NPM, ['--version']).status !== 0) return t.skip('npm is not on PATH');
  const dir = tempDir('ckpt-pack-');
  const packed = npm(['pack', '--ignore-scripts', '--json', '--pack-destination', dir], ROOT);
  assert.equal(packed.status, 0, packed.stderr);
  const [{ filename, files }] = JSON.parse(packed.stdout) as [{ filename: string; files: { path: string }[] }];

  const paths = files.map((f) => f.path);
  const shipped = (p: string) => p === 'package.json' || p === 'README.md' || p === 'LICENSE' || p.startsWith('bin/') || p.startsWith('dist/src/') || p.startsWith('dist/cli/');
  assert.deepEqual(paths.filter((p) => !shipped(p)), [], 'only the package manifest, README, bin/, the compiled library and the CLI bundle');
  assert.deepEqual(paths.filter((p) => /\.test\.|(^|\/)(test|samples|scripts|bench|examples)\//.test(p) || /\.map$/.test(p) || /(?<!\.d)\.ts$/.test(p)), [],
    'no tests, samples, scripts, benchmarks, source maps or TypeScript sources');
  for (const needed of ['dist/src/index.js', 'dist/src/index.d.ts', 'dist/src/api/index.d.ts', 'bin/ckpt.js', 'dist/cli/cli-main.js']) assert.ok(paths.includes(needed), needed);
  assert.ok(!paths.includes('dist/cli/modules.json'), 'the bundle\'s module list is for the tests only');

  const project = path.join(dir, 'consumer');
  fs.mkdirSync(project);
  fs.renameSync(path.join(dir, filename), path.join(project, filename));
  // A user who approved onnxruntime-node's install script (npm 10 runs it unasked) and set the variable the README names.
  fs.writeFileSync(path.join(project, 'package.json'), JSON.stringify({
    name: 'consumer', version: '1.0.0', private: true, type: 'module', dependencies: { ckpt: `file:${filename}` }, allowScripts: { 'onnxruntime-node': true },
  }));
  fs.writeFileSync(path.join(project, 'package-lock.json'), JSON.stringify(consumerLock(path.join(project, filename))));
  // onnxruntime-node's install script runs and, told to skip, downloads nothing: offline, that is the proof.
  const installed = npm(['ci', '--offline', '--no-audit', '--no-fund'], project, { ONNXRUNTIME_NODE_INSTALL: 'skip' });
  if (installed.status !== 0 && /ENOTCACHED|ENOTFOUND|EAI_AGAIN/.test(installed.stderr)) return t.skip('the npm cache does not hold these dependencies (offline install impossible here)');
  assert.equal(installed.status, 0, installed.stderr);

  // The command as installed: bin/ckpt.js runs the bundle (dist/cli).
  const listed = spawnSync(process.execPath, [path.join(project, 'node_modules', 'ckpt', 'bin', 'ckpt.js'), 'inspect', path.join(SAMPLES, 'detector-90.onnx')], { encoding: 'utf8' });
  assert.equal(listed.status, 0, listed.stderr);
  assert.match(listed.stdout, /backbone\.conv1\.weight/);

  fs.copyFileSync(path.join(ROOT, 'examples', 'library.ts'), path.join(project, 'library.ts'));
  fs.writeFileSync(path.join(project, 'tsconfig.json'), JSON.stringify({
    compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, outDir: 'out', types: ['node'] },
    files: ['library.ts'],
  }));
  const compiled = spawnSync(process.execPath, [path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', project], { encoding: 'utf8' });
  assert.equal(compiled.status, 0, compiled.stdout + compiled.stderr);

  const out = path.join(dir, 'out');
  fs.mkdirSync(out);
  const ran = spawnSync(process.execPath, [path.join(project, 'out', 'library.js'), SAMPLES, out], { cwd: project, encoding: 'utf8' });
  assert.equal(ran.status, 0, ran.stdout + ran.stderr);
  assert.match(ran.stdout, /^diff: \d+ tensors matched, [1-9]\d* shape mismatches$/m);
  assert.match(ran.stdout, /^plan: \d+ loaded, [1-9]\d* expanded, 0 skipped$/m);
  assert.match(ran.stdout, /^check: ok, \d+ weights and buffers read, outputs logits /m);
  assert.equal(ran.stdout.match(/^epoch \d+: train loss/gm)?.length, 3);
  assert.match(ran.stdout, /^finetune: trained \S+; held-out accuracy 0\.\d+$/m);
  assert.match(ran.stdout, new RegExp(`^wrote ${path.join(out, 'cnn-10.onnx').replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: \\d+ tensors$`, 'm'));
  // The CUDA provider was never fetched: installs need no network.
  assert.ok(!fs.existsSync(path.join(project, 'node_modules', 'onnxruntime-node', 'bin', 'napi-v6', 'linux', 'x64', 'libonnxruntime_providers_cuda.so')));
});

test("the README's library section is the example program, as the test above compiles and runs it", () => {
  const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  assert.ok(readme.includes(`\`\`\`ts\n${fs.readFileSync(path.join(ROOT, 'examples', 'library.ts'), 'utf8')}\`\`\``));
});
