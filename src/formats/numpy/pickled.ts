import { byteLengthOf, numelOf, type DType } from '../../core/dtype.js';
import { asInts, PyBytes, PyCall, PyGlobal, PyTuple, type PyValue } from '../../core/pickle.js';
import { dtypeOfCode } from './header.js';

/**
 * numpy arrays as numpy pickles them: `_reconstruct(ndarray, (0,), b'b')`, then BUILD with
 * `(version, shape, dtype, is_fortran, data)`; the dtype is `dtype('f4', False, True)` with BUILD
 * state `(3, '<', …)`. Protocol 5 writes `_frombuffer(buffer, dtype, shape, order)` instead.
 * Read here as plain data. (numpy 2 renamed `numpy.core` to `numpy._core`; both are accepted.)
 */
const MODULES = ['numpy.core', 'numpy._core'];
export const NUMPY_ALLOWED: readonly string[] = [
  ...MODULES.flatMap((m) => [`${m}.multiarray._reconstruct`, `${m}.multiarray.scalar`, `${m}.numeric._frombuffer`]),
  'numpy.ndarray', 'numpy.dtype',
];

export interface NdArray {
  readonly dtype: DType;
  readonly shape: number[];
  readonly byteLength: number;
  readonly bigEndian: boolean;
  readonly fortranOrder: boolean;
  readonly data: PyBytes;
}

/** A call that builds a numpy array: `_reconstruct` (protocols 0–4) or `_frombuffer` (protocol 5). */
export function isNdarray(value: PyValue): value is PyCall {
  if (!(value instanceof PyCall)) return false;
  const { module, name } = value.fn;
  return (name === '_reconstruct' && /^numpy\._?core\.multiarray$/.test(module)) || (name === '_frombuffer' && /^numpy\._?core\.numeric$/.test(module));
}

/** The array such a call builds, or a description of why it is not a plain array. */
export function ndarrayOf(call: PyCall): NdArray | string {
  if (call.fn.name === '_frombuffer') {
    const [buffer, dtypeValue, shapeValue, order] = call.args;
    if (order !== 'C' && order !== 'F') return `array order ${JSON.stringify(order)} is not 'C' or 'F'`;
    return arrayOf(shapeValue, dtypeValue, order === 'F', buffer);
  }
  const [cls] = call.args;
  if (!(cls instanceof PyGlobal) || cls.qualified !== 'numpy.ndarray') return 'not a numpy.ndarray (subclasses such as masked arrays are not supported)';
  if (!(call.state instanceof PyTuple)) return 'array without its BUILD state';
  // numpy writes (version, shape, dtype, is_fortran, data); very old pickles omit the version.
  const items = call.state.items.length === 5 ? call.state.items.slice(1) : call.state.items;
  if (items.length !== 4) return `array state has ${call.state.items.length} fields, expected 5`;
  const [shapeValue, dtypeValue, fortranValue, dataValue] = items;
  if (typeof fortranValue !== 'boolean') return 'array is_fortran flag is not a boolean';
  return arrayOf(shapeValue, dtypeValue, fortranValue, dataValue);
}

function arrayOf(shapeValue: PyValue | undefined, dtypeValue: PyValue | undefined, fortranOrder: boolean, dataValue: PyValue | undefined): NdArray | string {
  const shape = asInts(shapeValue);
  if (!shape || shape.some((d) => d < 0)) return 'array shape is not a tuple of non-negative integers';
  const dtype = dtypeOf(dtypeValue);
  if (typeof dtype === 'string') return dtype;
  const numel = numelOf(shape);
  if (numel === undefined) return `array shape (${shape.join(', ')}) has too many elements`;
  const byteLength = byteLengthOf(dtype.dtype, numel);
  let data: PyBytes;
  if (dataValue instanceof PyBytes) data = dataValue;
  else if (typeof dataValue === 'string') {
    // Python 2 pickles carry the bytes as a str, read back as latin1.
    const bytes = Uint8Array.from(dataValue, (c) => c.charCodeAt(0));
    data = new PyBytes(bytes.length, () => bytes);
  } else if (Array.isArray(dataValue)) return 'object arrays (dtype O) are not supported';
  else return 'array data is not bytes';
  if (data.length !== undefined && data.length !== byteLength) {
    return `array data is ${data.length} bytes, expected ${byteLength} for ${dtype.dtype} (${shape.join(', ')})`;
  }
  return { dtype: dtype.dtype, shape, byteLength, bigEndian: dtype.bigEndian, fortranOrder, data };
}

function dtypeOf(value: PyValue | undefined): { dtype: DType; bigEndian: boolean } | string {
  if (!(value instanceof PyCall) || value.fn.qualified !== 'numpy.dtype') return 'array dtype is not a numpy.dtype';
  const code = value.args[0];
  const dtype = typeof code === 'string' ? dtypeOfCode(code) : undefined;
  if (!dtype) return `numpy dtype ${JSON.stringify(code)} is not supported (object, string and structured arrays hold no plain numbers)`;
  const order = value.state instanceof PyTuple ? value.state.items[1] : '|';
  if (order !== '<' && order !== '>' && order !== '|' && order !== '=') return `numpy dtype byte order ${JSON.stringify(order)} is not one of < > | =`;
  return { dtype, bigEndian: order === '>' };
}
