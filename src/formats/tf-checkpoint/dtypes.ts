import type { DType } from '../../core/dtype.js';

/**
 * TensorFlow `DataType` codes (tensorflow/core/framework/types.proto) and the ckpt dtype each is
 * read as. Quantized types hold plain integers. Types without a ckpt dtype (resources, variants,
 * 4/2-bit integers stored one per byte, float8_e4m3b11fnuz) are listed in the metadata, not read.
 */
const TF_DTYPES: Readonly<Record<number, readonly [name: string, dtype?: DType]>> = {
  1: ['DT_FLOAT', 'float32'],
  2: ['DT_DOUBLE', 'float64'],
  3: ['DT_INT32', 'int32'],
  4: ['DT_UINT8', 'uint8'],
  5: ['DT_INT16', 'int16'],
  6: ['DT_INT8', 'int8'],
  7: ['DT_STRING', 'string'],
  8: ['DT_COMPLEX64', 'complex64'],
  9: ['DT_INT64', 'int64'],
  10: ['DT_BOOL', 'bool'],
  11: ['DT_QINT8', 'int8'],
  12: ['DT_QUINT8', 'uint8'],
  13: ['DT_QINT32', 'int32'],
  14: ['DT_BFLOAT16', 'bfloat16'],
  15: ['DT_QINT16', 'int16'],
  16: ['DT_QUINT16', 'uint16'],
  17: ['DT_UINT16', 'uint16'],
  18: ['DT_COMPLEX128', 'complex128'],
  19: ['DT_HALF', 'float16'],
  20: ['DT_RESOURCE'],
  21: ['DT_VARIANT'],
  22: ['DT_UINT32', 'uint32'],
  23: ['DT_UINT64', 'uint64'],
  24: ['DT_FLOAT8_E5M2', 'float8e5m2'],
  25: ['DT_FLOAT8_E4M3FN', 'float8e4m3fn'],
  26: ['DT_FLOAT8_E4M3FNUZ', 'float8e4m3fnuz'],
  27: ['DT_FLOAT8_E4M3B11FNUZ'],
  28: ['DT_FLOAT8_E5M2FNUZ', 'float8e5m2fnuz'],
  29: ['DT_INT4'],
  30: ['DT_UINT4'],
  31: ['DT_INT2'],
  32: ['DT_UINT2'],
};

export interface TfDType {
  readonly code: number;
  readonly name: string;
  /** Undefined for types ckpt lists but does not read. */
  readonly dtype?: DType;
}

/** The type of a code, or undefined when the code is not a TensorFlow DataType a checkpoint holds. */
export function tfDType(code: number): TfDType | undefined {
  const known = TF_DTYPES[code];
  return known ? { code, name: known[0], dtype: known[1] } : undefined;
}
