import type { RandomAccessFile } from '../../core/file.js';
import { invalidInput } from '../../core/errors.js';
import type { DType } from '../../core/dtype.js';
import type { AffineQuantization } from '../../core/encoding.js';
import { FlatBuffer, type Table } from './flatbuffer.js';

/**
 * The parts of a TFLite model (schema v3, `TFL3`) that hold weights: every subgraph's tensors
 * (shape, shape_signature, type, buffer, quantization), the buffers' places in the file (inline
 * in the flatbuffer, or at `offset`/`size` after it in models over 2 GB), the operators' inputs and
 * the operator codes. Field numbers are those of tensorflow/lite/schema/schema.fbs.
 */

/** TensorType → dtype; RESOURCE (13) and VARIANT (14) hold no values. */
const TENSOR_TYPES: readonly (DType | undefined)[] = [
  'float32', 'float16', 'int32', 'uint8', 'int64', 'string', 'bool', 'int16', 'complex64', 'int8', 'float64', 'complex128', 'uint64',
  undefined, undefined, 'uint32', 'uint16', 'int4', 'bfloat16',
];
const TYPE_NAMES = ['FLOAT32', 'FLOAT16', 'INT32', 'UINT8', 'INT64', 'STRING', 'BOOL', 'INT16', 'COMPLEX64', 'INT8', 'FLOAT64', 'COMPLEX128', 'UINT64', 'RESOURCE', 'VARIANT', 'UINT32', 'UINT16', 'INT4', 'BFLOAT16'];

/** BuiltinOperator names by code, as schema.fbs spells them (codes past the list print as numbers). */
export const BUILTIN_OPERATORS = (
  'ADD AVERAGE_POOL_2D CONCATENATION CONV_2D DEPTHWISE_CONV_2D DEPTH_TO_SPACE DEQUANTIZE EMBEDDING_LOOKUP FLOOR FULLY_CONNECTED ' +
  'HASHTABLE_LOOKUP L2_NORMALIZATION L2_POOL_2D LOCAL_RESPONSE_NORMALIZATION LOGISTIC LSH_PROJECTION LSTM MAX_POOL_2D MUL RELU ' +
  'RELU_N1_TO_1 RELU6 RESHAPE RESIZE_BILINEAR RNN SOFTMAX SPACE_TO_DEPTH SVDF TANH CONCAT_EMBEDDINGS SKIP_GRAM CALL CUSTOM ' +
  'EMBEDDING_LOOKUP_SPARSE PAD UNIDIRECTIONAL_SEQUENCE_RNN GATHER BATCH_TO_SPACE_ND SPACE_TO_BATCH_ND TRANSPOSE MEAN SUB DIV SQUEEZE ' +
  'UNIDIRECTIONAL_SEQUENCE_LSTM STRIDED_SLICE BIDIRECTIONAL_SEQUENCE_RNN EXP TOPK_V2 SPLIT LOG_SOFTMAX DELEGATE BIDIRECTIONAL_SEQUENCE_LSTM ' +
  'CAST PRELU MAXIMUM ARG_MAX MINIMUM LESS NEG PADV2 GREATER GREATER_EQUAL LESS_EQUAL SELECT SLICE SIN TRANSPOSE_CONV SPARSE_TO_DENSE ' +
  'TILE EXPAND_DIMS EQUAL NOT_EQUAL LOG SUM SQRT RSQRT SHAPE POW ARG_MIN FAKE_QUANT REDUCE_PROD REDUCE_MAX PACK LOGICAL_OR ONE_HOT ' +
  'LOGICAL_AND LOGICAL_NOT UNPACK REDUCE_MIN FLOOR_DIV REDUCE_ANY SQUARE ZEROS_LIKE FILL FLOOR_MOD RANGE RESIZE_NEAREST_NEIGHBOR ' +
  'LEAKY_RELU SQUARED_DIFFERENCE MIRROR_PAD ABS SPLIT_V UNIQUE CEIL REVERSE_V2 ADD_N GATHER_ND COS WHERE RANK ELU REVERSE_SEQUENCE ' +
  'MATRIX_DIAG QUANTIZE MATRIX_SET_DIAG ROUND HARD_SWISH IF WHILE NON_MAX_SUPPRESSION_V4 NON_MAX_SUPPRESSION_V5 SCATTER_ND SELECT_V2 ' +
  'DENSIFY SEGMENT_SUM BATCH_MATMUL PLACEHOLDER_FOR_GREATER_OP_CODES CUMSUM CALL_ONCE BROADCAST_TO RFFT2D CONV_3D IMAG REAL ' +
  'COMPLEX_ABS HASHTABLE HASHTABLE_FIND HASHTABLE_IMPORT HASHTABLE_SIZE REDUCE_ALL CONV_3D_TRANSPOSE VAR_HANDLE READ_VARIABLE ' +
  'ASSIGN_VARIABLE BROADCAST_ARGS RANDOM_STANDARD_NORMAL BUCKETIZE RANDOM_UNIFORM MULTINOMIAL GELU DYNAMIC_UPDATE_SLICE RELU_0_TO_1 ' +
  'UNSORTED_SEGMENT_PROD UNSORTED_SEGMENT_MAX UNSORTED_SEGMENT_SUM ATAN2 UNSORTED_SEGMENT_MIN SIGN BITCAST BITWISE_XOR RIGHT_SHIFT'
).split(' ');

export interface TfliteBuffer {
  /** Where the bytes lie in the file and how many; `inline` when inside the flatbuffer's data vector. */
  readonly start: number;
  readonly length: number;
  readonly inline: boolean;
}

export interface TfliteTensor {
  readonly subgraph: number;
  readonly index: number;
  readonly name: string;
  readonly shape: readonly number[];
  readonly shapeSignature?: readonly number[];
  readonly type: DType;
  readonly typeName: string;
  readonly buffer: number;
  readonly quantization?: AffineQuantization;
  readonly isVariable: boolean;
}

export interface TfliteOperator {
  readonly subgraph: number;
  readonly opcode: string;
  readonly inputs: readonly number[];
  readonly outputs: readonly number[];
}

export interface TfliteModel {
  readonly version: number;
  readonly description?: string;
  readonly subgraphNames: readonly string[];
  readonly tensors: readonly TfliteTensor[];
  readonly buffers: readonly (TfliteBuffer | undefined)[];
  readonly operators: readonly TfliteOperator[];
  readonly opcodes: readonly string[];
  /** Model.metadata entries by name (buffer indexes: not tensors). */
  readonly metadataBuffers: Readonly<Record<string, number>>;
  /** shape_signature of tensors with a dynamic dimension (-1), by name. */
  readonly dynamicShapes: Readonly<Record<string, readonly number[]>>;
}

export function readTfliteModel(file: RandomAccessFile): TfliteModel {
  const fail = (where: string, what: string) => invalidInput(file.path, where, what);
  if (file.size < 8) throw fail('offset 0', `file is ${file.size} bytes; a TFLite flatbuffer starts with an 8-byte header`);
  const fb = new FlatBuffer(file);
  const model = fb.root();
  const version = model.u32(0);
  if (version !== 3) throw fail('Model.version', `schema version ${version} is not 3; ckpt reads TFLite schema v3`);
  const opcodes = model.tables(1, 'operator code').map((code, i) => {
    // Codes ≥ 127 live in builtin_code (field 3); deprecated_builtin_code (field 0) keeps older ones.
    const builtin = Math.max(code.i8(0), code.i32(3));
    if (builtin === 32) return `CUSTOM:${code.string(1, `custom code of operator code ${i}`) ?? ''}`;
    return BUILTIN_OPERATORS[builtin] ?? `BUILTIN_${builtin}`;
  });
  const buffers = model.tables(4, 'buffer').map((b, i) => bufferOf(b, i, fb));
  const subgraphs = model.tables(2, 'subgraph');
  const tensors: TfliteTensor[] = [];
  const operators: TfliteOperator[] = [];
  subgraphs.forEach((sg, s) => {
    sg.tables(0, `subgraph ${s} tensor`).forEach((t, index) => {
      const name = t.string(3, `name of tensor ${index}`) ?? `tensor_${index}`;
      const where = `subgraph ${s} tensor ${index} '${name}'`;
      const typeCode = t.i8(1);
      const type = TENSOR_TYPES[typeCode];
      const buffer = t.u32(2);
      if (t.field(6) !== undefined && buffer !== 0) {
        throw fail(where, 'is a sparse tensor (SparsityParameters): ckpt does not densify sparse TFLite weights; convert the model without sparsity');
      }
      if (buffer !== 0 && buffer >= buffers.length) throw fail(where, `refers to buffer ${buffer} of ${buffers.length}`);
      const shape = t.ints(0, 'shape');
      if (shape.some((d) => d < 0)) throw fail(where, `shape [${shape.join(',')}] has a negative dimension`);
      if (buffer !== 0 && buffers[buffer] && !type) throw fail(where, `holds values of TensorType ${TYPE_NAMES[typeCode] ?? typeCode}, which ckpt does not read`);
      const signature = t.ints(7, 'shape_signature');
      tensors.push({
        subgraph: s, index, name, shape, type: type ?? 'float32', typeName: TYPE_NAMES[typeCode] ?? String(typeCode), buffer,
        ...(signature.length ? { shapeSignature: signature } : {}),
        ...quantizationOf(t.child(4, `quantization of ${where}`), shape, where, file.path),
        isVariable: t.u8(5) === 1,
      });
    });
    sg.tables(3, `subgraph ${s} operator`).forEach((op, i) => {
      const opcode = op.u32(0);
      if (opcode >= opcodes.length) throw fail(`subgraph ${s} operator ${i}`, `operator code ${opcode} of ${opcodes.length}`);
      operators.push({ subgraph: s, opcode: opcodes[opcode]!, inputs: op.ints(1, 'inputs'), outputs: op.ints(2, 'outputs') });
    });
  });
  const metadataBuffers = Object.fromEntries(model.tables(6, 'metadata').map((m, i) => [m.string(0, `metadata ${i} name`) ?? `metadata_${i}`, m.u32(1)]));
  const description = model.string(3, 'description');
  return {
    version, ...(description ? { description } : {}), subgraphNames: subgraphs.map((sg, s) => sg.string(4, 'subgraph name') ?? `subgraph${s}`),
    tensors, buffers, operators, opcodes, metadataBuffers,
    dynamicShapes: Object.fromEntries(tensors.filter((t) => t.shapeSignature?.includes(-1)).map((t) => [t.name, t.shapeSignature!])),
  };
}

/** A buffer's bytes: its inline data vector, or offset/size (relative to the file) beyond the flatbuffer; undefined when empty. */
function bufferOf(b: Table, index: number, fb: FlatBuffer): TfliteBuffer | undefined {
  const data = b.vector(0, 1, `data of buffer ${index}`);
  if (data && data.length > 0) return { start: data.start, length: data.length, inline: true };
  const offset = b.u64(1);
  const size = b.u64(2);
  // The converter writes offset 1 as a placeholder while it lays out a large model.
  if (offset > 1 && size > 0) {
    if (offset + size > fb.file.size) throw invalidInput(fb.file.path, `buffer ${index}`, `bytes ${offset}..${offset + size} run past the end of the file (${fb.file.size} bytes; truncated?)`);
    return { start: offset, length: size, inline: false };
  }
  return undefined;
}

function quantizationOf(q: Table | undefined, shape: readonly number[], where: string, file: string): { quantization?: AffineQuantization } {
  if (!q) return {};
  const scale = q.floats(2, 'scale');
  if (scale.length === 0) return {};
  if (q.u8(4) !== 0) return {}; // custom quantization details: the affine fields do not apply
  const zeroPoint = q.longs(3, 'zero_point');
  const axis = q.i32(6);
  if (scale.length > 1) {
    if (axis < 0 || axis >= shape.length || shape[axis] !== scale.length) {
      throw invalidInput(file, where, `has ${scale.length} scales along quantized_dimension ${axis} of shape [${shape.join(',')}]`);
    }
  }
  if (zeroPoint.length !== 0 && zeroPoint.length !== scale.length) throw invalidInput(file, where, `has ${scale.length} scales but ${zeroPoint.length} zero points`);
  return { quantization: { scale, zeroPoint: zeroPoint.length ? zeroPoint : scale.map(() => 0), axis } };
}
