import type { DType } from '../../core/dtype.js';

/**
 * TensorProto.DataType numbers up to ONNX IR 13. onnx-proto's enum stops at 16 (BFLOAT16); the
 * field is a plain int32 on the wire, so newer numbers arrive intact and are mapped here.
 */
export const ONNX_DTYPES: Readonly<Record<number, DType>> = {
  1: 'float32',
  2: 'uint8',
  3: 'int8',
  4: 'uint16',
  5: 'int16',
  6: 'int32',
  7: 'int64',
  8: 'string',
  9: 'bool',
  10: 'float16',
  11: 'float64',
  12: 'uint32',
  13: 'uint64',
  14: 'complex64',
  15: 'complex128',
  16: 'bfloat16',
  17: 'float8e4m3fn',
  18: 'float8e4m3fnuz',
  19: 'float8e5m2',
  20: 'float8e5m2fnuz',
  21: 'uint4',
  22: 'int4',
  23: 'float4e2m1',
  24: 'float8e8m0',
  25: 'uint2',
  26: 'int2',
};

export const ONNX_DTYPE_NUMBER: Readonly<Record<DType, number>> = Object.fromEntries(
  Object.entries(ONNX_DTYPES).map(([n, d]) => [d, Number(n)]),
) as Record<DType, number>;

/** TensorProto field numbers of the typed value fields. */
export const FIELD = {
  dims: 1,
  dataType: 2,
  segment: 3,
  floatData: 4,
  int32Data: 5,
  stringData: 6,
  int64Data: 7,
  name: 8,
  rawData: 9,
  doubleData: 10,
  uint64Data: 11,
  externalData: 13,
  dataLocation: 14,
} as const;

export type TypedField =
  | typeof FIELD.floatData
  | typeof FIELD.int32Data
  | typeof FIELD.stringData
  | typeof FIELD.int64Data
  | typeof FIELD.doubleData
  | typeof FIELD.uint64Data;

export const TYPED_FIELD_NAMES: Readonly<Record<TypedField, string>> = {
  4: 'float_data',
  5: 'int32_data',
  6: 'string_data',
  7: 'int64_data',
  10: 'double_data',
  11: 'uint64_data',
};

/** Which typed field holds a dtype's values when raw_data is absent (onnx.proto comments). */
export function typedFieldFor(dtype: DType): TypedField {
  switch (dtype) {
    case 'float32':
    case 'complex64':
      return FIELD.floatData;
    case 'float64':
    case 'complex128':
      return FIELD.doubleData;
    case 'int64':
      return FIELD.int64Data;
    case 'uint32':
    case 'uint64':
      return FIELD.uint64Data;
    case 'string':
      return FIELD.stringData;
    default:
      return FIELD.int32Data;
  }
}
