/**
 * A small pickle encoder: the opcodes the PyTorch and Paddle writers and the training-checkpoint
 * sample (scripts/make-checkpoint-samples.js) need, emitted the way CPython's pickler would.
 * Opcodes collect in a buffer that `flush()` hands to `sink`; a large payload goes through
 * `bytesHeader(n)` + `raw(bytes)` so it reaches the sink without a copy, and memory stays bounded
 * by the one payload the caller holds.
 */

/** What `value()` encodes: Python None, bool, int (safe-integer number or bigint), float (other numbers), str, and tuples (arrays). */
export type PickleValue = null | boolean | number | bigint | string | readonly PickleValue[];

const OP = {
  PROTO: 0x80, STOP: 0x2e, MARK: 0x28, GLOBAL: 0x63, NONE: 0x4e, NEWTRUE: 0x88, NEWFALSE: 0x89,
  BININT: 0x4a, BININT1: 0x4b, BININT2: 0x4d, LONG1: 0x8a, BINFLOAT: 0x47, BINUNICODE: 0x58,
  SHORT_BINBYTES: 0x43, BINBYTES: 0x42, BINBYTES8: 0x8e,
  EMPTY_DICT: 0x7d, EMPTY_LIST: 0x5d, APPEND: 0x61, APPENDS: 0x65,
  EMPTY_TUPLE: 0x29, TUPLE: 0x74, TUPLE1: 0x85, TUPLE2: 0x86, TUPLE3: 0x87,
  SETITEM: 0x73, SETITEMS: 0x75, REDUCE: 0x52, BUILD: 0x62, BINPERSID: 0x51,
  BINPUT: 0x71, LONG_BINPUT: 0x72, BINGET: 0x68, LONG_BINGET: 0x6a,
} as const;

/** CPython's pickler sets dict items and appends list items in batches of this many. */
const BATCH = 1000;

/** Two's complement little-endian in the fewest bytes, as LONG1 wants (0 is no bytes). */
function encodeLong(x: bigint): Uint8Array {
  if (x === 0n) return new Uint8Array(0);
  const out: number[] = [];
  let v = x;
  for (;;) {
    const byte = Number(v & 0xffn);
    out.push(byte);
    v >>= 8n;
    if ((v === 0n && !(byte & 0x80)) || (v === -1n && byte & 0x80)) return Uint8Array.from(out);
  }
}

export class PickleWriter {
  private chunks: Uint8Array[] = [];
  private readonly memo = new Map<string, number>();

  constructor(private readonly sink: (bytes: Uint8Array) => void) {}

  /** Hands the buffered opcodes to the sink. */
  flush(): void {
    if (this.chunks.length === 0) return;
    this.sink(this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks));
    this.chunks = [];
  }

  proto(version: number): void {
    this.op(OP.PROTO, version);
  }

  stop(): void {
    this.op(OP.STOP);
    this.flush();
  }

  mark(): void {
    this.op(OP.MARK);
  }

  /** `module.name`; memoized, so repeating a global costs a BINGET. */
  global(module: string, name: string): void {
    const key = `${module}\n${name}\n`;
    const index = this.memo.get(key);
    if (index !== undefined) {
      this.indexed(OP.BINGET, OP.LONG_BINGET, index);
      return;
    }
    this.op(OP.GLOBAL);
    this.chunks.push(Buffer.from(key, 'utf8'));
    this.memo.set(key, this.memo.size);
    this.indexed(OP.BINPUT, OP.LONG_BINPUT, this.memo.size - 1);
  }

  value(v: PickleValue): void {
    if (v === null) this.op(OP.NONE);
    else if (typeof v === 'boolean') this.op(v ? OP.NEWTRUE : OP.NEWFALSE);
    else if (typeof v === 'number' && !Number.isSafeInteger(v)) this.float(v);
    else if (typeof v === 'number' || typeof v === 'bigint') this.int(v);
    else if (typeof v === 'string') this.unicode(v);
    else this.tuple(v.length, () => this.values(...v));
  }

  /** Several values, one after the other on the stack (not a tuple). */
  values(...items: PickleValue[]): void {
    for (const item of items) this.value(item);
  }

  int(v: number | bigint): void {
    if (typeof v === 'number' && !Number.isSafeInteger(v)) throw new Error(`pickle: ${v} is not an integer`);
    const n = BigInt(v);
    if (n >= 0n && n <= 0xffn) this.op(OP.BININT1, Number(n));
    else if (n >= 0n && n <= 0xffffn) this.op(OP.BININT2, Number(n) & 0xff, Number(n) >> 8);
    else if (n >= -0x80000000n && n <= 0x7fffffffn) {
      const b = Buffer.alloc(5);
      b[0] = OP.BININT;
      b.writeInt32LE(Number(n), 1);
      this.chunks.push(b);
    } else {
      const bytes = encodeLong(n);
      this.op(OP.LONG1, bytes.length);
      this.chunks.push(bytes);
    }
  }

  /** BINFLOAT: a double, big-endian as pickle has it. */
  float(v: number): void {
    const b = Buffer.alloc(9);
    b[0] = OP.BINFLOAT;
    b.writeDoubleBE(v, 1);
    this.chunks.push(b);
  }

  unicode(s: string): void {
    const utf8 = Buffer.from(s, 'utf8');
    this.withLength32(OP.BINUNICODE, utf8.length);
    this.chunks.push(utf8);
  }

  /** Small bytes inline (the payload is copied into the buffer). */
  bytes(data: Uint8Array): void {
    this.bytesHeader(data.length);
    this.chunks.push(data);
  }

  /** The opcode and length of a bytes object whose `length` bytes the caller then gives to `raw()`. */
  bytesHeader(length: number): void {
    if (length <= 0xff) this.op(OP.SHORT_BINBYTES, length);
    else if (length <= 0xffffffff) this.withLength32(OP.BINBYTES, length);
    else {
      const b = Buffer.alloc(9);
      b[0] = OP.BINBYTES8;
      b.writeBigUInt64LE(BigInt(length), 1);
      this.chunks.push(b);
    }
  }

  /** Payload bytes straight to the sink, after what is buffered. */
  raw(data: Uint8Array): void {
    this.flush();
    if (data.length) this.sink(data);
  }

  /** A tuple of `n` items that `push` emits: EMPTY_TUPLE, TUPLE1-3, or MARK … TUPLE. */
  tuple(n: number, push: () => void): void {
    if (n === 0) {
      this.op(OP.EMPTY_TUPLE);
      return;
    }
    if (n > 3) this.op(OP.MARK);
    push();
    this.op(n > 3 ? OP.TUPLE : OP.TUPLE1 + n - 1);
  }

  emptyDict(): void {
    this.op(OP.EMPTY_DICT);
  }

  emptyList(): void {
    this.op(OP.EMPTY_LIST);
  }

  /**
   * Sets `total` key/value pairs into the dict on the stack, batched like CPython (MARK …
   * SETITEMS per 1000, SETITEM for a batch of one). Call the returned function after each pair.
   */
  items(total: number): () => void {
    return this.batched(total, OP.SETITEM, OP.SETITEMS);
  }

  /**
   * Appends `total` items to the list on the stack, batched like CPython (MARK … APPENDS per
   * 1000, APPEND for a batch of one). Call the returned function after each item.
   */
  appends(total: number): () => void {
    return this.batched(total, OP.APPEND, OP.APPENDS);
  }

  reduce(): void {
    this.op(OP.REDUCE);
  }

  build(): void {
    this.op(OP.BUILD);
  }

  /** BINPERSID: the value on the stack is a persistent id the loader resolves. */
  persistentId(): void {
    this.op(OP.BINPERSID);
  }

  private batched(total: number, one: number, many: number): () => void {
    let remaining = total;
    let batch = 0;
    let done = 0;
    const begin = () => {
      batch = Math.min(BATCH, remaining);
      done = 0;
      if (batch > 1) this.op(OP.MARK);
    };
    begin();
    return () => {
      if (++done < batch) return;
      this.op(batch > 1 ? many : one);
      remaining -= batch;
      if (remaining > 0) begin();
    };
  }

  private op(...bytes: number[]): void {
    this.chunks.push(Uint8Array.from(bytes));
  }

  private withLength32(code: number, length: number): void {
    const b = Buffer.alloc(5);
    b[0] = code;
    b.writeUInt32LE(length, 1);
    this.chunks.push(b);
  }

  private indexed(short: number, long: number, index: number): void {
    if (index <= 0xff) this.op(short, index);
    else this.withLength32(long, index);
  }
}
