/**
 * A small FlatBuffers builder for TFLite test and bench models. It lays objects out forwards (a
 * table, then what it points to), which FlatBuffers allows: offsets are unsigned and point ahead.
 */
type Scalar = 'u8' | 'i8' | 'u32' | 'i32' | 'u64' | 'f32';
export type Field = { scalar: Scalar; value: number } | { ref: Node } | undefined;
export type Node =
  | { table: Field[] }
  | { vector: Scalar | 'i64'; values: readonly number[] }
  | { bytes: Uint8Array }
  | { string: string }
  | { tables: Node[] };

const SIZE: Record<Scalar | 'i64', number> = { u8: 1, i8: 1, u32: 4, i32: 4, u64: 8, f32: 4, i64: 8 };

export function buildFlatBuffer(root: Node, identifier = 'TFL3'): Buffer {
  let buf = Buffer.alloc(1 << 16);
  let end = 0;
  const ensure = (n: number) => {
    while (end + n > buf.length) buf = Buffer.concat([buf, Buffer.alloc(buf.length)]);
  };
  const align = (n: number) => {
    const pad = (n - (end % n)) % n;
    ensure(pad);
    end += pad;
  };
  const put = (scalar: Scalar | 'i64', value: number, at: number) => {
    switch (scalar) {
      case 'u8': buf.writeUInt8(value, at); break;
      case 'i8': buf.writeInt8(value, at); break;
      case 'u32': buf.writeUInt32LE(value, at); break;
      case 'i32': buf.writeInt32LE(value, at); break;
      case 'u64': buf.writeBigUInt64LE(BigInt(value), at); break;
      case 'i64': buf.writeBigInt64LE(BigInt(value), at); break;
      case 'f32': buf.writeFloatLE(value, at); break;
    }
  };
  const pending: { slot: number; node: Node }[] = [];
  const write = (node: Node): number => {
    if ('table' in node) {
      // vtable, then the table: soffset, then fields, 8-byte fields aligned.
      align(2);
      const vtable = end;
      const vtableSize = 4 + 2 * node.table.length;
      ensure(vtableSize);
      end += vtableSize;
      align(8);
      const table = end;
      let cursor = 4;
      const layout = node.table.map((f) => {
        if (!f) return 0;
        const size = 'ref' in f ? 4 : SIZE[f.scalar];
        cursor = Math.ceil(cursor / size) * size;
        const at = cursor;
        cursor += size;
        return at;
      });
      const tableSize = Math.ceil(cursor / 4) * 4;
      ensure(tableSize);
      end += tableSize;
      buf.writeUInt16LE(vtableSize, vtable);
      buf.writeUInt16LE(tableSize, vtable + 2);
      buf.writeInt32LE(table - vtable, table);
      node.table.forEach((f, i) => {
        buf.writeUInt16LE(f ? layout[i]! : 0, vtable + 4 + 2 * i);
        if (!f) return;
        if ('ref' in f) pending.push({ slot: table + layout[i]!, node: f.ref });
        else put(f.scalar, f.value, table + layout[i]!);
      });
      return table;
    }
    if ('tables' in node) {
      align(4);
      const at = end;
      ensure(4 + 4 * node.tables.length);
      buf.writeUInt32LE(node.tables.length, at);
      end += 4 + 4 * node.tables.length;
      node.tables.forEach((child, i) => pending.push({ slot: at + 4 + 4 * i, node: child }));
      return at;
    }
    const bytes = 'bytes' in node ? node.bytes : 'string' in node ? Buffer.from(`${node.string}\0`) : undefined;
    if (bytes) {
      // The length word sits just before 16-byte aligned data (TFLite's force_align: 16).
      const data = Math.ceil((end + 4) / 16) * 16;
      const at = data - 4;
      const length = 'string' in node ? bytes.length - 1 : bytes.length;
      ensure(data - end + bytes.length);
      buf.writeUInt32LE(length, at);
      Buffer.from(bytes).copy(buf, at + 4);
      end = at + 4 + bytes.length;
      return at;
    }
    const v = node as { vector: Scalar | 'i64'; values: readonly number[] };
    align(8);
    end += 4;
    const at = end - 4;
    ensure(v.values.length * SIZE[v.vector]);
    buf.writeUInt32LE(v.values.length, at);
    v.values.forEach((x, i) => put(v.vector, x, at + 4 + i * SIZE[v.vector]));
    end += v.values.length * SIZE[v.vector];
    return at;
  };
  ensure(8);
  end = 8;
  buf.write(identifier, 4, 'latin1');
  pending.push({ slot: 0, node: root });
  while (pending.length) {
    const { slot, node } = pending.shift()!;
    const at = write(node);
    buf.writeUInt32LE(at - slot, slot);
  }
  return buf.subarray(0, end);
}

const u8 = (value: number): Field => ({ scalar: 'u8', value });
const i8 = (value: number): Field => ({ scalar: 'i8', value });
const u32 = (value: number): Field => ({ scalar: 'u32', value });
const i32 = (value: number): Field => ({ scalar: 'i32', value });
const ints = (values: readonly number[]): Field => ({ ref: { vector: 'i32', values } });

export interface TensorSpec {
  name: string;
  shape: number[];
  /** TensorType code: 0 FLOAT32, 1 FLOAT16, 2 INT32, 5 STRING, 9 INT8, 17 INT4… */
  type: number;
  buffer: number;
  quantization?: { scale: number[]; zeroPoint: number[]; axis?: number };
  shapeSignature?: number[];
  sparse?: boolean;
}

export interface ModelSpec {
  /** Schema version (3 unless a test says otherwise). */
  version?: number;
  subgraphs: { name: string; tensors: TensorSpec[]; operators: { opcode: number; inputs: number[]; outputs: number[] }[] }[];
  /** Builtin codes of the operator codes table. */
  opcodes: number[];
  /**
   * Buffer contents; `external` ones go after the flatbuffer at offset/size (as in models over
   * 2 GB), `externalLength` ones too, their bytes left to the caller (benchmarks write zeros).
   */
  buffers: ({ data: Uint8Array } | { external: Uint8Array } | { externalLength: number } | undefined)[];
}

const externalLength = (b: ModelSpec['buffers'][number]) => (b && 'external' in b ? b.external.length : b && 'externalLength' in b ? b.externalLength : undefined);

/** The flatbuffer of a TFLite model and where its external buffers go (each 16-byte aligned, after it). */
export function tfliteLayout(spec: ModelSpec): { flatbuffer: Buffer; external: { at: number; length: number; bytes?: Uint8Array }[] } {
  const tensor = (t: TensorSpec): Node => ({
    table: [
      ints(t.shape), i8(t.type), u32(t.buffer), { ref: { string: t.name } },
      t.quantization ? { ref: { table: [undefined, undefined, { ref: { vector: 'f32', values: t.quantization.scale } }, { ref: { vector: 'i64', values: t.quantization.zeroPoint } }, undefined, undefined, i32(t.quantization.axis ?? 0)] } } : undefined,
      u8(0),
      t.sparse ? { ref: { table: [ints([0])] } } : undefined,
      t.shapeSignature ? ints(t.shapeSignature) : undefined,
    ],
  });
  // External buffers' offsets are only known once the flatbuffer's size is: build twice.
  const build = (externalAt: number[]) => buildFlatBuffer({
    table: [
      u32(spec.version ?? 3),
      { ref: { tables: spec.opcodes.map((code) => ({ table: [i8(Math.min(code, 127)), undefined, i32(1), i32(code)] })) } },
      { ref: { tables: spec.subgraphs.map((sg) => ({ table: [
        { ref: { tables: sg.tensors.map(tensor) } }, ints([]), ints([]),
        { ref: { tables: sg.operators.map((op) => ({ table: [u32(op.opcode), ints(op.inputs), ints(op.outputs)] })) } },
        { ref: { string: sg.name } },
      ] })) } },
      { ref: { string: 'ckpt test model' } },
      { ref: { tables: spec.buffers.map((b, i) => (b && 'data' in b ? { table: [{ ref: { bytes: b.data } }] } : b ? { table: [undefined, { scalar: 'u64', value: externalAt[i]! }, { scalar: 'u64', value: externalLength(b)! }] } : { table: [] })) } },
    ],
  });
  const first = build(spec.buffers.map(() => 2));
  const externalAt: number[] = [];
  let at = Math.ceil(first.length / 16) * 16;
  for (const b of spec.buffers) {
    externalAt.push(at);
    const length = externalLength(b);
    if (length !== undefined) at = Math.ceil((at + length) / 16) * 16;
  }
  const flatbuffer = build(externalAt);
  const external = spec.buffers.flatMap((b, i) => {
    const length = externalLength(b);
    return length === undefined ? [] : [{ at: externalAt[i]!, length, ...(b && 'external' in b ? { bytes: b.external } : {}) }];
  });
  return { flatbuffer, external };
}

/** A TFLite model file: the flatbuffer, then any external buffers. */
export function buildTflite(spec: ModelSpec): Buffer {
  const { flatbuffer, external } = tfliteLayout(spec);
  const parts: Buffer[] = [flatbuffer];
  let size = flatbuffer.length;
  for (const e of external) {
    parts.push(Buffer.alloc(e.at - size), Buffer.from(e.bytes ?? new Uint8Array(e.length)));
    size = e.at + e.length;
  }
  return Buffer.concat(parts);
}

const bytesOf = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

/**
 * Two subgraphs: a quantized conv (int8 per-channel weights, int32 bias), a float16 and an int4
 * tensor, a string table, a dynamic-batch shape signature and one buffer stored after the flatbuffer.
 */
export function sampleTflite(): Buffer {
  return buildTflite({
    opcodes: [3, 9, 22],
    buffers: [
      undefined,
      { data: bytesOf(Int8Array.from([1, -2, 3, -4, 5, -6, 7, -8])) },
      { data: bytesOf(Int32Array.from([100, -100])) },
      { data: bytesOf(Uint16Array.from([0x3c00, 0xc000, 0x3800])) },
      { data: Uint8Array.from([0x21, 0xf8]) },
      { data: Buffer.concat([bytesOf(Int32Array.from([2, 16, 18, 21])), Buffer.from('hicat')]) },
      { external: bytesOf(Float32Array.from([0.5, 1.5, 2.5, 3.5])) },
      { data: bytesOf(Int32Array.from([-1, 4])) },
    ],
    subgraphs: [
      {
        name: 'main',
        tensors: [
          { name: 'input', shape: [1, 4, 4, 1], type: 0, buffer: 0, shapeSignature: [-1, 4, 4, 1] },
          { name: 'conv/weights', shape: [2, 2, 2, 1], type: 9, buffer: 1, quantization: { scale: [0.5, 0.25], zeroPoint: [0, 1], axis: 0 } },
          { name: 'conv/bias', shape: [2], type: 2, buffer: 2, quantization: { scale: [0.01], zeroPoint: [0] } },
          { name: 'conv/out', shape: [1, 3, 3, 2], type: 0, buffer: 0 },
          { name: 'half', shape: [3], type: 1, buffer: 3 },
          { name: 'nibbles', shape: [4], type: 17, buffer: 4, quantization: { scale: [2], zeroPoint: [0] } },
          { name: 'labels', shape: [2], type: 5, buffer: 5 },
        ],
        operators: [{ opcode: 0, inputs: [0, 1, 2], outputs: [3] }],
      },
      {
        name: 'head',
        tensors: [
          { name: 'x', shape: [1, 4], type: 0, buffer: 0, shapeSignature: [-1, 4] },
          { name: 'fc/weights', shape: [1, 4], type: 0, buffer: 6 },
          { name: 'y', shape: [1, 1], type: 0, buffer: 0 },
          { name: 'shape', shape: [2], type: 2, buffer: 7 },
          { name: 'z', shape: [1, 1], type: 0, buffer: 0 },
        ],
        operators: [{ opcode: 1, inputs: [0, 1, -1], outputs: [2] }, { opcode: 2, inputs: [2, 3], outputs: [4] }],
      },
    ],
  });
}
