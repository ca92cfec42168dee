import * as fs from 'node:fs';
import * as path from 'node:path';
import onnxProto from 'onnx-proto';
import { encodeModel, float32Tensor, type ModelSpec, type NodeSpec } from '../src/formats/onnx/build.js';

const { onnx } = onnxProto;
export type TensorSpec = onnxProto.onnx.ITensorProto;

/** A valid one-node model whose graph holds `initializers` (Identity keeps it well-formed). */
export function modelWith(initializers: TensorSpec[], nodes: NodeSpec[] = []): Uint8Array {
  return encodeModel({
    graphName: 'fixture',
    nodes: [{ op: 'Identity', inputs: ['x'], outputs: ['y'] }, ...nodes],
    initializers,
    inputs: [{ name: 'x', dtype: 'float32', shape: [1] }],
    outputs: [{ name: 'y', dtype: 'float32', shape: [1] }],
  });
}

/** Encodes a ModelProto given directly (for fields the plain builder does not cover). */
export function encodeRaw(model: onnxProto.onnx.IModelProto): Uint8Array {
  return onnx.ModelProto.encode(onnx.ModelProto.create(model)).finish();
}

export function writeModel(dir: string, name: string, bytes: Uint8Array): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, bytes);
  return file;
}

export function f32(...values: number[]): Float32Array {
  return new Float32Array(values);
}

/** A small MLP-shaped model with two Gemm weights, used by the CLI tests. */
export function mlpModel(): Uint8Array {
  return encodeModel(mlpSpec());
}

/** mlpModel's description, for variants (another opset, other values). */
export function mlpSpec(): ModelSpec {
  return {
    graphName: 'mlp',
    nodes: [
      { op: 'Gemm', inputs: ['x', 'fc1.weight', 'fc1.bias'], outputs: ['h'], attributes: { transB: 1 } },
      { op: 'Gemm', inputs: ['h', 'head.weight', 'head.bias'], outputs: ['y'] },
    ],
    initializers: [
      float32Tensor('fc1.weight', [3, 2], f32(1, 2, 3, 4, 5, 6)),
      float32Tensor('fc1.bias', [3], f32(0, 0, 0)),
      float32Tensor('head.weight', [3, 2], f32(1, 0, 0, 1, 1, 1)),
      float32Tensor('head.bias', [2], f32(0.5, -0.5)),
    ],
    inputs: [{ name: 'x', dtype: 'float32', shape: ['batch', 2] }],
    outputs: [{ name: 'y', dtype: 'float32', shape: ['batch', 2] }],
  };
}
