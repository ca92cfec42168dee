import type { RandomAccessFile } from '../../core/file.js';
import { invalidInput } from '../../core/errors.js';
import type { DType } from '../../core/dtype.js';
import { fields, int64Of, readRepeatedVarints, readString, WIRE_BYTES, WIRE_VARINT, type Range } from '../onnx/wire.js';

/**
 * Paddle's `ProgramDesc` protobuf (framework.proto), as far as weights need it: block 0's
 * variables (name, type, persistable, tensor dtype and dims) and ops (type, input and output
 * slots). Walked field by field over the file; nothing else is decoded.
 */

/** VarType.Type values of tensor element types. */
export const PADDLE_DTYPES: Readonly<Record<number, DType>> = {
  0: 'bool', 1: 'int16', 2: 'int32', 3: 'int64', 4: 'float16', 5: 'float32', 6: 'float64',
  20: 'uint8', 21: 'int8', 22: 'bfloat16', 23: 'complex64', 24: 'complex128',
};
const LOD_TENSOR = 7;

export interface TensorDesc {
  readonly dataType: number;
  readonly dims: readonly number[];
}

export interface VarDesc {
  readonly name: string;
  /** VarType.Type: 7 a LoDTensor; feed/fetch lists and others are not tensors. */
  readonly type: number;
  readonly persistable: boolean;
  readonly tensor?: TensorDesc;
}

export interface OpDesc {
  readonly type: string;
  readonly inputs: readonly { slot: string; args: readonly string[] }[];
  readonly outputs: readonly { slot: string; args: readonly string[] }[];
}

export interface Program {
  readonly vars: readonly VarDesc[];
  readonly ops: readonly OpDesc[];
  readonly blocks: number;
  readonly version?: number;
}

export function readProgram(file: RandomAccessFile): Program {
  const whole = { start: 0, end: file.size };
  let block0: Range | undefined;
  let blocks = 0;
  let version: number | undefined;
  for (const f of fields(file, whole, 'ProgramDesc')) {
    if (f.no === 1 && f.wire === WIRE_BYTES) {
      if (blocks++ === 0) block0 = f;
    } else if (f.no === 4 && f.wire === WIRE_BYTES) {
      for (const v of fields(file, f, 'ProgramDesc.version')) if (v.no === 1 && v.wire === WIRE_VARINT) version = Number(int64Of(v));
    }
  }
  if (!block0) throw invalidInput(file.path, 'ProgramDesc', 'has no block');
  const vars: VarDesc[] = [];
  const ops: OpDesc[] = [];
  for (const f of fields(file, block0, 'block 0')) {
    if (f.no === 3 && f.wire === WIRE_BYTES) vars.push(varOf(file, f));
    else if (f.no === 4 && f.wire === WIRE_BYTES) ops.push(opOf(file, f));
  }
  return { vars, ops, blocks, ...(version !== undefined ? { version } : {}) };
}

function varOf(file: RandomAccessFile, range: Range): VarDesc {
  let name: string | undefined;
  let type: number | undefined;
  let persistable = false;
  let tensor: TensorDesc | undefined;
  for (const f of fields(file, range, 'VarDesc')) {
    if (f.no === 1) name = readString(file, f, 'VarDesc.name');
    else if (f.no === 3 && f.wire === WIRE_VARINT) persistable = f.varint !== 0n;
    else if (f.no === 2 && f.wire === WIRE_BYTES) {
      for (const t of fields(file, f, 'VarType')) {
        if (t.no === 1 && t.wire === WIRE_VARINT) type = Number(t.varint);
        else if (t.no === 3 && t.wire === WIRE_BYTES) {
          for (const l of fields(file, t, 'LoDTensorDesc')) if (l.no === 1 && l.wire === WIRE_BYTES) tensor = tensorDescAt(file, l, 'TensorDesc');
        }
      }
    }
  }
  if (name === undefined || type === undefined) throw invalidInput(file.path, `offset ${range.start}`, 'VarDesc without a name or type');
  return { name, type, persistable, ...(tensor ? { tensor } : {}) };
}

/** A TensorDesc message (data_type = 1, dims = 2) in a file range. */
export function tensorDescAt(file: RandomAccessFile, range: Range, what: string): TensorDesc {
  let dataType: number | undefined;
  const dims: bigint[] = [];
  for (const f of fields(file, range, what)) {
    if (f.no === 1 && f.wire === WIRE_VARINT) dataType = Number(f.varint);
    else if (f.no === 2) readRepeatedVarints(file, f, dims, `${what}.dims`);
  }
  if (dataType === undefined) throw invalidInput(file.path, `offset ${range.start}`, `${what} without a data_type`);
  return { dataType, dims: dims.map((d) => Number(BigInt.asIntN(64, d))) };
}

function opOf(file: RandomAccessFile, range: Range): OpDesc {
  let type = '';
  const inputs: { slot: string; args: string[] }[] = [];
  const outputs: { slot: string; args: string[] }[] = [];
  for (const f of fields(file, range, 'OpDesc')) {
    if (f.no === 3) type = readString(file, f, 'OpDesc.type');
    else if ((f.no === 1 || f.no === 2) && f.wire === WIRE_BYTES) {
      let slot = '';
      const args: string[] = [];
      for (const v of fields(file, f, 'OpDesc.Var')) {
        if (v.no === 1) slot = readString(file, v, 'OpDesc.Var.parameter');
        else if (v.no === 2) args.push(readString(file, v, 'OpDesc.Var.arguments'));
      }
      (f.no === 1 ? inputs : outputs).push({ slot, args });
    }
  }
  return { type, inputs, outputs };
}

/** The tensors a program stores: persistable LoDTensors (feed and fetch lists excluded). */
export function persistableTensors(program: Program): (VarDesc & { tensor: TensorDesc })[] {
  return program.vars.filter((v): v is VarDesc & { tensor: TensorDesc } => v.persistable && v.type === LOD_TENSOR && v.tensor !== undefined);
}
