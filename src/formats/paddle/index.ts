import { RandomAccessFile } from '../../core/file.js';
import { invalidInput } from '../../core/errors.js';
import { fortranToRowMajor, swapToLittleEndian } from '../../core/decode.js';
import { dtypeBits } from '../../core/dtype.js';
import { canonicalName, uniqueNames } from '../../core/names.js';
import { PyDict, PyTuple, readPickle, walk, type PyValue } from '../../core/pickle.js';
import type { OpenOptions, StateDict, TensorInfo } from '../../core/statedict.js';
import type { FormatReader } from '../types.js';
import { paddleFormat } from './match.js';
import { isNdarray, ndarrayOf, NUMPY_ALLOWED, type NdArray } from '../numpy/pickled.js';
import { roleByName } from '../../core/roles.js';

/**
 * PaddlePaddle `.pdparams` (and `.pdopt`): one pickle of a dict name → numpy array, written by
 * `paddle.save`. Read with the restricted pickle reader: array payloads are located, not read,
 * so listing costs a walk over the opcodes.
 */

/** Structured name → Paddle parameter name (`conv1.weight` → `conv2d_0.w_0`): metadata, not a tensor. */
export const NAME_TABLE_KEY = 'StructuredToParameterName@@';
/** Paddle splits arrays over 4 GiB into slices under this key when it pickles with protocol 2/3. */
const SPLIT_TABLE_KEY = 'UnpackBigParamInfor@@';

export const PADDLE_ALLOWED: ReadonlySet<string> = new Set([...NUMPY_ALLOWED, '_codecs.encode', 'builtins.bytes', 'collections.OrderedDict', 'builtins.tuple']);

export const paddleReader: FormatReader = { ...paddleFormat, open: openPaddle };

async function openPaddle(file: string, options: OpenOptions): Promise<StateDict> {
  const raf = RandomAccessFile.open(file);
  try {
    const fail = (where: string, detail: string) => invalidInput(raf.path, where, detail);
    const { value: root, end, opaque } = readPickle(raf, 0, raf.size, { allowed: PADDLE_ALLOWED, opaque: !options.strictPickle });
    if (end !== raf.size) throw fail(`offset ${end}`, `${raf.size - end} bytes after the end of the pickle`);
    if (!(root instanceof PyDict)) throw fail('pickle', 'expected a dict of name → numpy array, as paddle.save writes a state dict');
    if (root.entries.has(SPLIT_TABLE_KEY)) throw fail(`key '${SPLIT_TABLE_KEY}'`, 'parameters split into slices (arrays over 4 GiB saved with pickle protocol 2/3) are not supported');
    const nameTable = parameterNames(root.entries.get(NAME_TABLE_KEY), fail);

    const arrays: { source: string; array: NdArray }[] = [];
    walk(
      root,
      (path, value) => {
        if (path.length === 1 && path[0] === NAME_TABLE_KEY) return true;
        // paddle.save of a non-state-dict object pickles a tensor as the tuple (name, array).
        const target = value instanceof PyTuple && value.items.length === 2 && typeof value.items[0] === 'string' && isNdarray(value.items[1]!) ? value.items[1]! : value;
        if (!isNdarray(target)) return false;
        const array = ndarrayOf(target);
        if (typeof array === 'string') throw fail(`array '${path.join('/')}'`, array);
        arrays.push({ source: path.join('/'), array });
        return true;
      },
      (detail) => fail('pickle', detail),
    );

    const names = uniqueNames(arrays.map((a) => ({ name: canonicalName(a.source) })));
    const tensors: TensorInfo[] = arrays.map(({ source, array }, i) => {
      const where = `array '${source}'`;
      return {
        name: names[i]!, source, dtype: array.dtype, shape: array.shape, byteLength: array.byteLength, origin: 'weight',
        ...roleByName(names[i]!, array.dtype),
        read: async () => {
          let bytes = array.data.read();
          if (bytes.length !== array.byteLength) throw fail(where, `data is ${bytes.length} bytes, expected ${array.byteLength} for ${array.dtype} (${array.shape.join(', ')})`);
          if (array.bigEndian) bytes = swapToLittleEndian(bytes, array.dtype);
          return array.fortranOrder ? fortranToRowMajor(bytes, array.shape, dtypeBits(array.dtype) / 8) : bytes;
        },
        readStrings: async () => {
          throw fail(where, `is ${array.dtype}, not strings`);
        },
      };
    });
    const metadata = { ...(nameTable ? { structuredToParameterName: nameTable } : {}), ...(opaque.length ? { opaqueGlobals: opaque } : {}) };
    return { format: 'paddle', path: file, metadata, tensors, close: async () => raf.close(), bytesRead: () => raf.bytesRead };
  } catch (err) {
    raf.close();
    throw err;
  }
}

function parameterNames(value: PyValue | undefined, fail: (where: string, detail: string) => Error): Record<string, string> | undefined {
  if (value === undefined) return undefined;
  if (!(value instanceof PyDict)) throw fail(`key '${NAME_TABLE_KEY}'`, 'expected a dict of structured name → parameter name');
  const table: Record<string, string> = {};
  for (const [k, v] of value.entries) {
    if (typeof k !== 'string' || typeof v !== 'string') throw fail(`key '${NAME_TABLE_KEY}'`, 'names must be strings');
    table[k] = v;
  }
  return table;
}
