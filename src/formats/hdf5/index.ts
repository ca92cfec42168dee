import { Cursor, fail, swapBytes } from './bytes.js';
import type { Attribute, Hdf5Object } from './file.js';

export { Hdf5File, Hdf5Object } from './file.js';
export { Hdf5Dataset } from './dataset.js';
export { Hdf5Unsupported } from './bytes.js';

/**
 * An attribute's value as readers use it: a string or a list of strings (fixed-length or
 * variable-length, by the dataspace's shape), otherwise the values' little-endian bytes.
 */
export type AttributeValue = string | string[] | Uint8Array;

export function attributeValue(object: Hdf5Object, name: string): AttributeValue | undefined {
  const attribute = object.attributes().get(name);
  return attribute && decodeAttribute(object, attribute);
}

function decodeAttribute(object: Hdf5Object, a: Attribute): AttributeValue {
  const place = { file: object.place.file, where: `${object.path} attribute '${a.name}'` };
  const type = a.type;
  const count = a.space.isNull ? 0 : a.space.dims.reduce((n, d) => n * d, 1);
  const scalar = a.space.dims.length === 0 && !a.space.isNull;
  let strings: string[] | undefined;
  if (type.kind === 'string') {
    strings = Array.from({ length: count }, (_, i) => fixedString(a.data.subarray(i * type.size, (i + 1) * type.size), type.padding));
  } else if (type.kind === 'vlen-string') {
    const file = object.file;
    const c = new Cursor(a.data, place, file.offsetSize, file.lengthSize);
    strings = Array.from({ length: count }, () => {
      const length = c.u32('string length');
      const heap = c.address('global heap address');
      const index = c.u32('global heap index');
      if (length === 0) return '';
      if (heap === undefined) throw fail(place, 'variable-length string in an undefined global heap');
      const bytes = file.globalHeapObject(heap, index, place);
      if (length > bytes.length) throw fail(place, `variable-length string of ${length} bytes in a ${bytes.length}-byte heap object`);
      return fixedString(bytes.subarray(0, length), type.padding);
    });
  }
  if (strings) return scalar ? strings[0]! : strings;
  if ((type.kind === 'integer' || type.kind === 'float') && type.bigEndian && type.size > 1) {
    const copy = Uint8Array.from(a.data);
    swapBytes(copy, type.size);
    return copy;
  }
  return a.data;
}

const decoder = new TextDecoder();

/** A stored string without its padding: up to the first NUL, trailing spaces dropped when space-padded. */
function fixedString(bytes: Uint8Array, padding: number): string {
  const nul = bytes.indexOf(0);
  const text = decoder.decode(nul < 0 ? bytes : bytes.subarray(0, nul));
  return padding === 2 ? text.replace(/ +$/, '') : text;
}
