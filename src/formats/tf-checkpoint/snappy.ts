/**
 * Raw Snappy decompression (the block format LevelDB tables use; no framing), by the format
 * description in google/snappy `format_description.txt`: a varint of the uncompressed length, then
 * literals and back-references. Every length and offset is checked; the output never grows past
 * the declared length, which must itself be at most `maxLength`.
 */
export function snappyUncompress(input: Uint8Array, maxLength: number, fail: (what: string) => Error): Uint8Array {
  let pos = 0;
  let length = 0;
  for (let shift = 0; ; shift += 7) {
    if (shift > 28 || pos >= input.length) throw fail('snappy: bad uncompressed-length varint');
    const b = input[pos++]!;
    length += (b & 0x7f) * 2 ** shift;
    if (!(b & 0x80)) break;
  }
  if (length > maxLength) throw fail(`snappy: uncompressed length ${length} is more than the ${maxLength} allowed`);
  const out = new Uint8Array(length);
  let written = 0;
  const take = (n: number): number => {
    if (pos + n > input.length) throw fail('snappy: input ends inside an element (truncated?)');
    let v = 0;
    for (let i = 0; i < n; i++) v += input[pos + i]! * 2 ** (8 * i);
    pos += n;
    return v;
  };
  while (pos < input.length) {
    const tag = input[pos++]!;
    const kind = tag & 3;
    if (kind === 0) {
      let n = tag >>> 2;
      n = (n < 60 ? n : take(n - 59)) + 1;
      if (pos + n > input.length) throw fail('snappy: literal runs past the end of the input');
      if (written + n > length) throw fail('snappy: literal runs past the declared length');
      out.set(input.subarray(pos, pos + n), written);
      pos += n;
      written += n;
      continue;
    }
    let n: number;
    let offset: number;
    if (kind === 1) {
      n = ((tag >>> 2) & 7) + 4;
      offset = ((tag >>> 5) << 8) | take(1);
    } else {
      n = (tag >>> 2) + 1;
      offset = take(kind === 2 ? 2 : 4);
    }
    if (offset === 0 || offset > written) throw fail(`snappy: copy offset ${offset} at output ${written} points outside the output`);
    if (written + n > length) throw fail('snappy: copy runs past the declared length');
    // Byte by byte: a copy may overlap its own output (a repeated pattern).
    for (let i = 0; i < n; i++, written++) out[written] = out[written - offset]!;
  }
  if (written !== length) throw fail(`snappy: produced ${written} bytes, declared ${length}`);
  return out;
}
