import type { FormatReader } from './types.js';
import { onnxReader } from './onnx/index.js';
import { numpyReader } from './numpy/index.js';
import { tfjsReader } from './tfjs/index.js';
import { kerasReader } from './keras/index.js';
import { safetensorsReader } from './safetensors/index.js';
import { tfCheckpointReader } from './tf-checkpoint/index.js';
import { pytorchReader, torchscriptReader } from './pytorch/index.js';
import { paddleReader } from './paddle/index.js';
import { paddleInferenceReader } from './paddle/inference.js';
import { paddlePersistablesReader } from './paddle/persistables.js';
import { shardedReader } from './sharded/index.js';
import { ggufReader } from './gguf/index.js';
import { tfliteReader } from './tflite/index.js';
import { darknetReader } from './darknet/index.js';
import { openvinoReader } from './openvino/index.js';

/**
 * Every reader, most specific signature first. ONNX has no magic bytes and is recognized by
 * walking its protobuf structure, so it comes last.
 */
export const READERS: readonly FormatReader[] = [ggufReader, tfliteReader, kerasReader, torchscriptReader, pytorchReader, numpyReader, safetensorsReader, shardedReader, tfjsReader, tfCheckpointReader, paddleReader, paddleInferenceReader, paddlePersistablesReader, darknetReader, openvinoReader, onnxReader];
