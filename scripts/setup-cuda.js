// `npm run setup:cuda`: installs the CUDA execution provider that matches the pinned
// onnxruntime-node (1.29.0) and checks it. The provider comes from the npm package
// com.github.asus4.onnxruntime.linux-x64-gpu@0.4.9 (official ONNX Runtime 1.29.0 binaries for
// CUDA 13, MIT): its two provider libraries are copied next to onnxruntime-node's
// libonnxruntime.so.1. Needs the npm registry once; CUDA 13 and cuDNN 9 must be installed.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createRequire } from 'node:module';

const PROVIDER_PACKAGE = 'com.github.asus4.onnxruntime.linux-x64-gpu@0.4.9';
const ORT_VERSION = '1.29.0';
const LIBRARIES = ['libonnxruntime_providers_cuda.so', 'libonnxruntime_providers_shared.so'];

const require = createRequire(import.meta.url);
const fail = (message) => {
  console.error(`setup:cuda: ${message}`);
  process.exit(1);
};

if (process.platform !== 'linux' || process.arch !== 'x64') fail(`the CUDA provider is for linux-x64; this is ${process.platform}-${process.arch}`);
const ortPackage = require.resolve('onnxruntime-node/package.json');
const installed = JSON.parse(fs.readFileSync(ortPackage, 'utf8')).version;
if (installed !== ORT_VERSION) fail(`onnxruntime-node is ${installed}; the provider is built for ${ORT_VERSION} exactly`);
const target = path.join(path.dirname(ortPackage), 'bin', 'napi-v6', 'linux', 'x64');
if (!fs.existsSync(path.join(target, 'libonnxruntime.so.1'))) fail(`libonnxruntime.so.1 not found in ${target}`);

const temp = fs.mkdtempSync(path.join(os.tmpdir(), 'ckpt-cuda-'));
try {
  console.log(`setup:cuda: fetching ${PROVIDER_PACKAGE} (about 180 MB)…`);
  execFileSync('npm', ['pack', '--silent', PROVIDER_PACKAGE], { cwd: temp, stdio: ['ignore', 'ignore', 'inherit'] });
  const tarball = fs.readdirSync(temp).find((f) => f.endsWith('.tgz'));
  if (!tarball) fail('npm pack produced no tarball');
  const members = LIBRARIES.map((l) => `package/Plugins/Linux/x64/${l}`);
  execFileSync('tar', ['xzf', tarball, ...members], { cwd: temp });
  const from = (library) => path.join(temp, 'package', 'Plugins', 'Linux', 'x64', library);
  // The provider must come from the same ONNX Runtime build as the core library.
  if (!fs.readFileSync(from(LIBRARIES[0])).includes(Buffer.from(ORT_VERSION))) fail(`${LIBRARIES[0]} is not ONNX Runtime ${ORT_VERSION}`);
  for (const library of LIBRARIES) {
    fs.copyFileSync(from(library), path.join(target, `${library}.tmp`));
    fs.renameSync(path.join(target, `${library}.tmp`), path.join(target, library));
    console.log(`setup:cuda: installed ${library} (${ORT_VERSION}) in ${target}`);
  }
} finally {
  fs.rmSync(temp, { recursive: true, force: true });
}
console.log('setup:cuda: done; `npx ckpt doctor` tells whether CUDA loads on this machine.');
