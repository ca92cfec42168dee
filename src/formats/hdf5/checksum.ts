// The two checksums of HDF5: Jenkins' lookup3 (metadata of the 1.8+ format) and Fletcher-32 (the
// chunk filter). Written from the published algorithms (Bob Jenkins' lookup3.c `hashlittle`,
// HDF5's file format specification).

const rotate = (x: number, k: number) => (x << k) | (x >>> (32 - k));

/** lookup3 `hashlittle` of `bytes` with initial value 0, as HDF5 stores it (unsigned 32 bits). */
export function lookup3(bytes: Uint8Array, initial = 0): number {
  let length = bytes.length;
  let a = (0xdeadbeef + length + initial) | 0;
  let b = a;
  let c = a;
  let k = 0;
  const word = (at: number) => bytes[at]! | (bytes[at + 1]! << 8) | (bytes[at + 2]! << 16) | (bytes[at + 3]! << 24);
  while (length > 12) {
    a = (a + word(k)) | 0;
    b = (b + word(k + 4)) | 0;
    c = (c + word(k + 8)) | 0;
    a = (a - c) | 0; a ^= rotate(c, 4); c = (c + b) | 0;
    b = (b - a) | 0; b ^= rotate(a, 6); a = (a + c) | 0;
    c = (c - b) | 0; c ^= rotate(b, 8); b = (b + a) | 0;
    a = (a - c) | 0; a ^= rotate(c, 16); c = (c + b) | 0;
    b = (b - a) | 0; b ^= rotate(a, 19); a = (a + c) | 0;
    c = (c - b) | 0; c ^= rotate(b, 4); b = (b + a) | 0;
    length -= 12;
    k += 12;
  }
  if (length === 0) return c >>> 0;
  // The last 1–12 bytes, zero-padded.
  const tail = new Uint8Array(12);
  tail.set(bytes.subarray(k, k + length));
  const tailWord = (at: number) => tail[at]! | (tail[at + 1]! << 8) | (tail[at + 2]! << 16) | (tail[at + 3]! << 24);
  a = (a + tailWord(0)) | 0;
  b = (b + tailWord(4)) | 0;
  c = (c + tailWord(8)) | 0;
  c ^= b; c = (c - rotate(b, 14)) | 0;
  a ^= c; a = (a - rotate(c, 11)) | 0;
  b ^= a; b = (b - rotate(a, 25)) | 0;
  c ^= b; c = (c - rotate(b, 16)) | 0;
  a ^= c; a = (a - rotate(c, 4)) | 0;
  b ^= a; b = (b - rotate(a, 14)) | 0;
  c ^= b; c = (c - rotate(b, 24)) | 0;
  return c >>> 0;
}

/** HDF5's Fletcher-32 of `bytes`: 16-bit big-endian words, sums folded every 360 words. */
export function fletcher32(bytes: Uint8Array): number {
  let sum1 = 0;
  let sum2 = 0;
  let words = bytes.length >>> 1;
  let at = 0;
  while (words > 0) {
    let run = Math.min(words, 360);
    words -= run;
    while (run-- > 0) {
      sum1 += (bytes[at]! << 8) | bytes[at + 1]!;
      at += 2;
      sum2 = (sum2 + sum1) >>> 0; // C's uint32 arithmetic wraps
    }
    sum1 = (sum1 & 0xffff) + (sum1 >>> 16);
    sum2 = (sum2 & 0xffff) + (sum2 >>> 16);
  }
  if (bytes.length % 2) {
    sum1 += bytes[at]! << 8;
    sum2 += sum1;
    sum1 = (sum1 & 0xffff) + (sum1 >>> 16);
    sum2 = (sum2 & 0xffff) + (sum2 >>> 16);
  }
  sum1 = (sum1 & 0xffff) + (sum1 >>> 16);
  sum2 = (sum2 & 0xffff) + (sum2 >>> 16);
  return ((sum2 << 16) | sum1) >>> 0;
}
