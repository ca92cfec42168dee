import * as fs from 'node:fs';
import * as path from 'node:path';
import { RandomAccessFile, resolveInsideFolder } from '../../core/file.js';
import { invalidInput } from '../../core/errors.js';
import { canonicalName, uniqueNames } from '../../core/names.js';
import { graphRole, roleFromName, type GraphUse, type GraphView } from '../../core/roles.js';
import type { StateDict, TensorInfo } from '../../core/statedict.js';
import type { FormatReader } from '../types.js';
import { fluidModel, paddleInferenceFormat } from './match.js';
import { rangeByteLength, rangeTensor } from '../range-tensor.js';
import { PADDLE_DTYPES, persistableTensors, readProgram, tensorDescAt, type OpDesc, type Program, type TensorDesc } from './program.js';

/**
 * Paddle inference models: a `ProgramDesc` (`x.pdmodel`, or `__model__` in a fluid folder) lists
 * the persistable variables; their values are LoDTensor records, either all in one file (`x.pdiparams`,
 * `__params__`) in sorted-name order as `save_inference_model` writes them, or one file per variable
 * named after it (fluid `save_persistables`). The model is opened by its `.pdmodel` or its folder.
 */

const FLUID_PARAMS = '__params__';

export const paddleInferenceReader: FormatReader = { ...paddleInferenceFormat, open: openInference };

/** One LoDTensor record: versions, LoD levels (skipped), a TensorDesc, then the raw values. */
export interface LoDRecord {
  readonly desc: TensorDesc;
  readonly dataOffset: number;
  readonly end: number;
}

export function readLoDTensor(raf: RandomAccessFile, at: number, what: string): LoDRecord {
  const fail = (pos: number, detail: string) => invalidInput(raf.path, `${what} at offset ${pos}`, detail);
  const u32 = (pos: number, field: string) => new DataView(raf.read(pos, 4, `${what} ${field}`).slice().buffer).getUint32(0, true);
  const u64 = (pos: number, field: string) => {
    const v = new DataView(raf.read(pos, 8, `${what} ${field}`).slice().buffer).getBigUint64(0, true);
    if (v > BigInt(raf.size)) throw fail(pos, `${field} ${v} is larger than the file`);
    return Number(v);
  };
  if (u32(at, 'version') !== 0) throw fail(at, `LoDTensor version ${u32(at, 'version')}, expected 0`);
  let pos = at + 4;
  const levels = u64(pos, 'LoD level count');
  pos += 8;
  for (let i = 0; i < levels; i++) pos += 8 + u64(pos, `LoD level ${i} size`);
  if (u32(pos, 'tensor version') !== 0) throw fail(pos, `tensor version ${u32(pos, 'tensor version')}, expected 0`);
  pos += 4;
  const descSize = u32(pos, 'TensorDesc size');
  pos += 4;
  if (pos + descSize > raf.size) throw fail(pos, `TensorDesc of ${descSize} bytes runs past the end of the file (truncated?)`);
  const desc = tensorDescAt(raf, { start: pos, end: pos + descSize }, `${what} TensorDesc`);
  const dtype = PADDLE_DTYPES[desc.dataType];
  if (!dtype) throw fail(pos, `data type ${desc.dataType} is not a tensor element type ckpt reads`);
  if (desc.dims.some((d) => d < 0)) throw fail(pos, `dims [${desc.dims.join(', ')}] must not be negative`);
  const dataOffset = pos + descSize;
  const end = dataOffset + rangeByteLength(raf.path, what, dtype, desc.dims);
  if (end > raf.size) throw fail(dataOffset, `values need ${end - dataOffset} bytes but the file ends at ${raf.size} (truncated?)`);
  return { desc, dataOffset, end };
}

async function openInference(target: string): Promise<StateDict> {
  const folder = fs.statSync(target).isDirectory() ? target : undefined;
  const modelFile = folder ? fluidModel(folder)! : target;
  const model = RandomAccessFile.open(modelFile);
  let program: Program;
  try {
    program = readProgram(model);
  } finally {
    model.close();
  }
  const vars = persistableTensors(program);
  const dir = path.dirname(modelFile);
  const combined = folder
    ? (fs.existsSync(path.join(folder, FLUID_PARAMS)) ? FLUID_PARAMS : undefined)
    : `${path.basename(modelFile).replace(/\.[^.]*$/, '')}.pdiparams`;
  const files: RandomAccessFile[] = [];
  const close = async () => files.splice(0).forEach((f) => f.close());
  const open = (relative: string, what: string) => {
    const raf = RandomAccessFile.open(resolveInsideFolder(modelFile, dir, relative, what));
    files.push(raf);
    return raf;
  };
  try {
    const names = uniqueNames(vars.map((v) => ({ name: canonicalName(v.name) })));
    const index = new Map(vars.map((v, i) => [v, i]));
    const graph = graphOf(program.ops);
    const tensorOf = (raf: RandomAccessFile, v: (typeof vars)[number], record: LoDRecord): TensorInfo => {
      const what = `variable '${v.name}'`;
      const dtype = PADDLE_DTYPES[v.tensor.dataType];
      if (!dtype) throw invalidInput(modelFile, what, `data type ${v.tensor.dataType} is not a tensor element type ckpt reads`);
      if (record.desc.dataType !== v.tensor.dataType || record.desc.dims.join(',') !== v.tensor.dims.join(',')) {
        throw invalidInput(raf.path, `${what} at offset ${record.dataOffset}`, `stored as type ${record.desc.dataType} [${record.desc.dims.join(', ')}], the program declares type ${v.tensor.dataType} [${v.tensor.dims.join(', ')}] (parameters of another model?)`);
      }
      const fromGraph = graphRole(v.name, { dtype, shape: v.tensor.dims }, graph);
      return rangeTensor(raf, {
        name: names[index.get(v)!]!, source: v.name, dtype, shape: record.desc.dims, offset: record.dataOffset, origin: 'weight',
        ...(fromGraph ? { role: fromGraph, roleFrom: 'graph' as const } : { role: roleFromName(v.name, dtype), roleFrom: 'names' as const }),
      });
    };
    let tensors: TensorInfo[];
    if (combined) {
      const raf = open(combined, 'parameters file');
      // save_inference_model writes the persistables sorted by name.
      const sorted = [...vars].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
      let pos = 0;
      const byVar = new Map(sorted.map((v) => {
        if (pos >= raf.size) throw invalidInput(raf.path, `offset ${pos}`, `ends before variable '${v.name}' (${sorted.length} persistable variables in the program; truncated, or parameters of another model?)`);
        const record = readLoDTensor(raf, pos, `variable '${v.name}'`);
        pos = record.end;
        return [v, tensorOf(raf, v, record)];
      }));
      if (pos !== raf.size) throw invalidInput(raf.path, `offset ${pos}`, `${raf.size - pos} bytes after the last of ${sorted.length} variables (parameters of another model?)`);
      tensors = [...byVar.values()];
    } else {
      tensors = vars.map((v) => {
        const raf = open(v.name, `variable '${v.name}'`);
        const record = readLoDTensor(raf, 0, `variable '${v.name}'`);
        if (record.end !== raf.size) throw invalidInput(raf.path, `offset ${record.end}`, `${raf.size - record.end} bytes after the tensor`);
        return tensorOf(raf, v, record);
      });
    }
    const metadata = {
      paddle: { blocks: program.blocks, ...(program.version !== undefined ? { version: program.version } : {}), ops: program.ops.length, variables: program.vars.length },
      parameters: combined ?? 'one file per variable',
    };
    return { format: 'paddle-inference', path: target, metadata, tensors, close, bytesRead: () => files.reduce((n, f) => n + f.bytesRead, 0) };
  } catch (err) {
    await close();
    throw err;
  }
}

/** Paddle op types and input slots as the role rules know them (ONNX op names and input positions). */
const SLOTS: Readonly<Record<string, { op: string; slots: readonly string[] }>> = {
  conv2d: { op: 'Conv', slots: ['Input', 'Filter', 'Bias'] },
  depthwise_conv2d: { op: 'Conv', slots: ['Input', 'Filter', 'Bias'] },
  conv3d: { op: 'Conv', slots: ['Input', 'Filter', 'Bias'] },
  conv2d_transpose: { op: 'ConvTranspose', slots: ['Input', 'Filter', 'Bias'] },
  batch_norm: { op: 'BatchNormalization', slots: ['X', 'Scale', 'Bias', 'Mean', 'Variance'] },
  sync_batch_norm: { op: 'BatchNormalization', slots: ['X', 'Scale', 'Bias', 'Mean', 'Variance'] },
  layer_norm: { op: 'LayerNormalization', slots: ['X', 'Scale', 'Bias'] },
  instance_norm: { op: 'InstanceNormalization', slots: ['X', 'Scale', 'Bias'] },
  group_norm: { op: 'GroupNormalization', slots: ['X', 'Scale', 'Bias'] },
  mul: { op: 'MatMul', slots: ['X', 'Y'] },
  matmul: { op: 'MatMul', slots: ['X', 'Y'] },
  matmul_v2: { op: 'MatMul', slots: ['X', 'Y'] },
  fc: { op: 'Gemm', slots: ['Input', 'W', 'Bias'] },
  lookup_table: { op: 'Gather', slots: ['W', 'Ids'] },
  lookup_table_v2: { op: 'Gather', slots: ['W', 'Ids'] },
  prelu: { op: 'PRelu', slots: ['X', 'Alpha'] },
  elementwise_add: { op: 'Add', slots: ['X', 'Y'] },
  elementwise_sub: { op: 'Sub', slots: ['X', 'Y'] },
  elementwise_mul: { op: 'Mul', slots: ['X', 'Y'] },
  elementwise_div: { op: 'Div', slots: ['X', 'Y'] },
  reshape2: { op: 'Reshape', slots: ['X', 'Shape', 'ShapeTensor'] },
  transpose2: { op: 'Transpose', slots: ['X'] },
  squeeze2: { op: 'Squeeze', slots: ['X'] },
  unsqueeze2: { op: 'Unsqueeze', slots: ['X'] },
  cast: { op: 'Cast', slots: ['X'] },
};

function graphOf(ops: readonly OpDesc[]): GraphView {
  const uses = new Map<string, GraphUse[]>();
  const producers = new Map<string, { opType: string; inputs: string[] }>();
  for (const op of ops) {
    const known = SLOTS[op.type];
    const slotOrder = known ? [...known.slots, ...op.inputs.map((s) => s.slot).filter((s) => !known.slots.includes(s))] : op.inputs.map((s) => s.slot);
    const inputs = slotOrder.map((slot) => op.inputs.find((s) => s.slot === slot)?.args[0] ?? '');
    // The main output first (Out, Y, Output), so pass-through ops follow it rather than XShape.
    const outputs = [...op.outputs].sort((a, b) => Number(/shape/i.test(a.slot)) - Number(/shape/i.test(b.slot))).flatMap((s) => s.args);
    const opType = known?.op ?? op.type;
    inputs.forEach((value, inputIndex) => {
      if (!value) return;
      if (!uses.has(value)) uses.set(value, []);
      uses.get(value)!.push({ opType, inputIndex, inputs, outputs });
    });
    for (const out of outputs) producers.set(out, { opType, inputs });
  }
  return { usesOf: (name) => uses.get(name) ?? [], producerOf: (name) => producers.get(name) };
}
