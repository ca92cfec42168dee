// Starts a safetensors file for the benchmarks: the length prefix and the header, padded with
// spaces to a multiple of 8 as the reference writer pads it. Returns the open descriptor (the
// caller streams the data after it) and the padded header's length.
import * as fs from 'node:fs';

export function startSafetensors(file, headerText) {
  let header = Buffer.from(headerText);
  header = Buffer.concat([header, Buffer.alloc((8 - (header.length % 8)) % 8, 0x20)]);
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(header.length));
  const fd = fs.openSync(file, 'w');
  fs.writeSync(fd, length);
  fs.writeSync(fd, header);
  return { fd, headerLength: header.length };
}
