import type { FormatMatch, FormatReader } from './types.js';
import { ggufFormat } from './gguf/match.js';
import { tfliteFormat } from './tflite/match.js';
import { kerasFormat } from './keras/match.js';
import { pytorchFormat, torchscriptFormat } from './pytorch/match.js';
import { numpyFormat } from './numpy/match.js';
import { safetensorsFormat } from './safetensors/match.js';
import { shardedFormat } from './sharded/match.js';
import { tfjsFormat } from './tfjs/match.js';
import { tfCheckpointFormat } from './tf-checkpoint/match.js';
import { paddleFormat, paddleInferenceFormat, paddlePersistablesFormat } from './paddle/match.js';
import { darknetFormat } from './darknet/match.js';
import { openvinoFormat } from './openvino/match.js';
import { onnxFormat } from './onnx/match.js';

/**
 * A format's content test with an open that imports its reader module on first use: detection
 * loads only the tests, and a command pays for the one reader (and its dependencies) it opens.
 */
function onDemand(format: FormatMatch, load: () => Promise<FormatReader>): FormatReader {
  return { ...format, open: async (path, options, detection) => (await load()).open(path, options, detection) };
}

/**
 * Every reader, most specific signature first. ONNX has no magic bytes and is recognized by
 * walking its protobuf structure, so it comes last.
 */
export const READERS: readonly FormatReader[] = [
  onDemand(ggufFormat, async () => (await import('./gguf/index.js')).ggufReader),
  onDemand(tfliteFormat, async () => (await import('./tflite/index.js')).tfliteReader),
  onDemand(kerasFormat, async () => (await import('./keras/index.js')).kerasReader),
  onDemand(torchscriptFormat, async () => (await import('./pytorch/index.js')).torchscriptReader),
  onDemand(pytorchFormat, async () => (await import('./pytorch/index.js')).pytorchReader),
  onDemand(numpyFormat, async () => (await import('./numpy/index.js')).numpyReader),
  onDemand(safetensorsFormat, async () => (await import('./safetensors/index.js')).safetensorsReader),
  onDemand(shardedFormat, async () => (await import('./sharded/index.js')).shardedReader),
  onDemand(tfjsFormat, async () => (await import('./tfjs/index.js')).tfjsReader),
  onDemand(tfCheckpointFormat, async () => (await import('./tf-checkpoint/index.js')).tfCheckpointReader),
  onDemand(paddleFormat, async () => (await import('./paddle/index.js')).paddleReader),
  onDemand(paddleInferenceFormat, async () => (await import('./paddle/inference.js')).paddleInferenceReader),
  onDemand(paddlePersistablesFormat, async () => (await import('./paddle/persistables.js')).paddlePersistablesReader),
  onDemand(darknetFormat, async () => (await import('./darknet/index.js')).darknetReader),
  onDemand(openvinoFormat, async () => (await import('./openvino/index.js')).openvinoReader),
  onDemand(onnxFormat, async () => (await import('./onnx/index.js')).onnxReader),
];
