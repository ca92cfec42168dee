import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createRequire } from 'node:module';
import { ExitCode } from '../core/errors.js';
import { encodeModel } from '../formats/onnx/build.js';
import { cudaProviderInstalled, firstLine, loadOrt, missingCudaLibraries, ortLibraryFolder } from '../runtime/session.js';

interface ProviderStatus { name: 'cpu' | 'cuda'; loads: boolean; detail: string }

/** A one-node model to prove a provider can create a session and run. */
function probeModel(): Uint8Array {
  return encodeModel({
    graphName: 'probe', nodes: [{ op: 'Relu', inputs: ['x'], outputs: ['y'] }], initializers: [],
    inputs: [{ name: 'x', dtype: 'float32', shape: [1] }], outputs: [{ name: 'y', dtype: 'float32', shape: [1] }],
  });
}

async function probe(provider: 'cpu' | 'cuda'): Promise<ProviderStatus> {
  if (provider === 'cuda' && !cudaProviderInstalled()) {
    return { name: provider, loads: false, detail: `libonnxruntime_providers_cuda.so is not in ${ortLibraryFolder()}: run \`npm run setup:cuda\`` };
  }
  const ort = await loadOrt();
  try {
    const session = await ort.InferenceSession.create(probeModel(), { executionProviders: [provider], logSeverityLevel: 4 });
    await session.run({ x: new ort.Tensor('float32', new Float32Array([1]), [1]) });
    await session.release();
    return { name: provider, loads: true, detail: 'creates a session and runs' };
  } catch (err) {
    if (provider === 'cpu') return { name: provider, loads: false, detail: firstLine(err) };
    const missing = missingCudaLibraries();
    const reason = missing?.length ? `libraries not found: ${missing.join(', ')}` : firstLine(err);
    return { name: provider, loads: false, detail: `the provider is installed but did not load (${reason}): put CUDA 13 and cuDNN 9 on LD_LIBRARY_PATH` };
  }
}

function gpuNames(): string[] {
  try {
    return execFileSync('nvidia-smi', ['--query-gpu=name,driver_version', '--format=csv,noheader'], { encoding: 'utf8', timeout: 10_000, stdio: ['ignore', 'pipe', 'ignore'] })
      .split('\n').map((l) => l.trim()).filter(Boolean);
  } catch {
    return [];
  }
}

/** `ckpt doctor`: what can run here, and what to do when CUDA cannot. */
export async function doctorCommand(options: { json?: boolean }): Promise<number> {
  const require = createRequire(import.meta.url);
  const ortPackage = require.resolve('onnxruntime-node/package.json');
  const ortVersion = JSON.parse(fs.readFileSync(ortPackage, 'utf8')).version as string;
  const providers = [await probe('cpu'), await probe('cuda')];
  const gpus = gpuNames();
  const cuda = providers[1]!;
  const advice = cuda.loads
    ? 'CUDA is usable: `--ep auto` picks it.'
    : gpus.length === 0
      ? 'No NVIDIA GPU found (nvidia-smi): ckpt runs on the CPU.'
      : cudaProviderInstalled()
        ? 'A GPU is present and the provider installed, but CUDA 13 / cuDNN 9 did not load: put their lib folders on LD_LIBRARY_PATH.'
        : 'A GPU is present: run `npm run setup:cuda` to install the CUDA provider for onnxruntime-node 1.29.0.';
  const report = {
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
    onnxruntimeNode: ortVersion,
    libraryFolder: ortLibraryFolder(),
    providers,
    gpus,
    advice,
  };
  if (options.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  else {
    const lines = [
      `node ${report.node} (${report.platform})`,
      `onnxruntime-node ${ortVersion} (${path.relative(process.cwd(), report.libraryFolder) || report.libraryFolder})`,
      ...providers.map((p) => `provider ${p.name}: ${p.loads ? 'yes' : 'no'} — ${p.detail}`),
      `GPU: ${gpus.length ? gpus.join('; ') : 'none found'}`,
      advice,
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
  }
  return ExitCode.ok;
}
