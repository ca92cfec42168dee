import * as fs from 'node:fs';
import * as path from 'node:path';
import { RandomAccessFile } from '../../core/file.js';
import { writeAll, writeAtomic, yieldToSignals } from '../../core/atomic.js';
import { chunkBuffer } from '../../core/chunks.js';
import { fromSystemError, invalidInput } from '../../core/errors.js';
import { byteLengthOf, type DType } from '../../core/dtype.js';
import type { StateDict, StoredBytes, TensorInfo } from '../../core/statedict.js';
import { fields, WIRE_BYTES, type Field, type Range } from './wire.js';
import { ONNX_DTYPE_NUMBER } from './dtypes.js';
import { MAX_ONNX_FILE } from './index.js';
import { writeFileSet, type SetMember } from '../../core/fileset.js';
import { EXTERNAL_SIZE_THRESHOLD, externalDataFiles, placeExternalData, type ExternalPlace, type ExternalTensor } from './external-write.js';
import { MAX_GRAPH_DEPTH } from './model.js';
import type { CastBack } from './cast.js';

/**
 * Lossless ONNX rewriting: the model's bytes are copied as they are, except the messages on the
 * path to a removed or replaced tensor, whose length prefixes are recomputed. Fields this code
 * does not know (newer ONNX versions, metadata) are never decoded, so they survive untouched, and
 * a rewrite with no edits gives back the same bytes. Output is streamed: payloads are read one
 * tensor at a time, while writing.
 */
export type TensorEdit =
  | { kind: 'remove' }
  | {
    kind: 'replace'; dtype: DType; shape: readonly number[]; read: () => Promise<Uint8Array>; external?: ExternalPlace;
    /** Where the values lie when a file stores them as they go out (a tensor kept as it is): copied in chunks. */
    stored?: StoredBytes;
  };

/** What the writer produced, for the command's report. */
export interface RewriteReport {
  /** Removed tensors that became graph inputs so the model stays valid. */
  newInputs: string[];
  /** What went to external data, and why, when any did. */
  externalData?: string;
}

type Piece =
  | { copy: Range }
  | { bytes: Uint8Array }
  | { length: number; read: () => Promise<Uint8Array> }
  | { field: number; children: Piece[] };

const MODEL_GRAPH = 7;
const GRAPH = { node: 1, initializer: 5, input: 11, output: 12, valueInfo: 13, sparseInitializer: 15 };
const NODE = { input: 1, output: 2, opType: 4, attribute: 5 };
const ATTR = { t: 5, g: 6, graphs: 11 };
const FUNCTION_NODE = 7;
/** AttributeProto.AttributeType INT. */
const ATTRIBUTE_INT = 2;
const NO_REWIRING: ReadonlyMap<string, string> = new Map();
const MODEL_FUNCTIONS = 25;
const MODEL_TRAINING_INFO = 20;

/**
 * `renames` maps weight names (as in the file) to new ones; every reference is renamed with them:
 * node inputs in every graph, Constant outputs, graph inputs/outputs and value_info.
 */
export interface RewriteOptions {
  renames?: ReadonlyMap<string, string>;
  /** Tensors to expose as extra graph outputs (feature extraction for fine-tuning). */
  extraOutputs?: readonly string[];
  /** Weights of 1 KiB or more go to external data: one `<model>.data` file, or one file per tensor. */
  externalData?: 'one-file' | 'per-tensor';
  /** A model larger than this inline is written with external data (protobuf's limit; tests lower it). */
  inlineLimit?: number;
  /**
   * Initializers (source names) stored in a new dtype by their edit: a Cast back to the old dtype
   * is put first in the main graph, and every node that read the initializer reads its output.
   */
  castBack?: ReadonlyMap<string, CastBack>;
}

export async function rewriteOnnx(
  sourcePath: string, edits: ReadonlyMap<TensorInfo, TensorEdit>, outPath: string, options: RewriteOptions = {},
): Promise<RewriteReport> {
  const renames = options.renames ?? new Map<string, string>();
  const byOffset = new Map<number, { tensor: TensorInfo; edit: TensorEdit }>();
  for (const [tensor, edit] of edits) {
    const location = tensor.location;
    if (!location || path.resolve(location.file) !== path.resolve(sourcePath)) throw invalidInput(sourcePath, undefined, `tensor '${tensor.name}' does not belong to this ONNX model`);
    if (edit.kind === 'remove' && location.scope !== '') {
      throw invalidInput(sourcePath, location.scope, `cannot remove '${tensor.source}': it lives inside a subgraph or function; only top-level weights can become graph inputs`);
    }
    if (tensor.origin === 'sparse_initializer' && edit.kind === 'replace') {
      throw invalidInput(sourcePath, undefined, `cannot replace sparse initializer '${tensor.source}'`);
    }
    byOffset.set(location.offset, { tensor, edit });
  }
  // The model's own tensors, opened when external data is kept or moved: open until the output is written.
  let own: StateDict | undefined;
  const ownModel = async () => {
    const { openOnnx } = await import('./index.js');
    return own ??= await openOnnx(sourcePath);
  };
  try {
    await inlineMovedExternalData(sourcePath, outPath, byOffset, ownModel);
    return await writeRewritten(sourcePath, outPath, byOffset, renames, options, ownModel);
  } finally {
    await own?.close();
  }
}

async function writeRewritten(
  sourcePath: string, outPath: string, byOffset: Map<number, { tensor: TensorInfo; edit: TensorEdit }>,
  renames: ReadonlyMap<string, string>, options: RewriteOptions, ownModel: () => Promise<StateDict>,
): Promise<RewriteReport> {
  const file = RandomAccessFile.open(sourcePath);
  try {
    const castBack = options.castBack ?? new Map<string, CastBack>();
    let rewriter = new Rewriter(file, byOffset, renames, options.extraOutputs ?? [], castBack);
    let pieces = rewriter.model();
    const inlineSize = pieces.reduce((n, p) => n + lengthOf(p), 0);
    const limit = options.inlineLimit ?? MAX_ONNX_FILE;
    const layout = options.externalData ?? (inlineSize > limit ? 'one-file' : undefined);
    if (!layout) {
      await writeAtomic(outPath, async (fd) => {
        for (const piece of pieces) await emit(file, fd, piece);
      });
      return { newInputs: rewriter.newInputs };
    }
    const external = moveToExternalData(await ownModel(), outPath, byOffset, renames, layout);
    rewriter = new Rewriter(file, byOffset, renames, options.extraOutputs ?? [], castBack);
    pieces = rewriter.model();
    const model = { path: outPath, write: async (fd: number) => { for (const piece of pieces) await emit(file, fd, piece); } };
    await writeFileSet(outPath, [...external.files, model]);
    const where = layout === 'one-file' ? `${path.basename(outPath)}.data` : 'one file per tensor';
    const why = options.externalData ? '' : ` because the model would be ${inlineSize} bytes inline, over the ${limit === MAX_ONNX_FILE ? "2 GiB protobuf limit no tool can load past" : `${limit}-byte inline limit`}`;
    return { newInputs: rewriter.newInputs, externalData: `${external.count} weight(s) written as external data (${where}, beside the model)${why}` };
  } finally {
    file.close();
  }
}

/**
 * Turns every initializer of at least 1 KiB (and every one already external) into an edit whose
 * TensorProto points into external data, placed as onnx's save_model places it. Removed tensors
 * stay removed; replaced ones keep their new values.
 */
function moveToExternalData(
  dict: StateDict, outPath: string, byOffset: Map<number, { tensor: TensorInfo; edit: TensorEdit }>,
  renames: ReadonlyMap<string, string>, layout: 'one-file' | 'per-tensor',
): { files: SetMember[]; count: number } {
  const chosen: { offset: number; tensor: TensorInfo; edit: Extract<TensorEdit, { kind: 'replace' }>; external: ExternalTensor }[] = [];
  for (const tensor of dict.tensors) {
    const location = tensor.location!;
    if (tensor.origin !== 'initializer' || tensor.dtype === 'string') continue;
    const hit = byOffset.get(location.offset);
    if (hit?.edit.kind === 'remove') continue;
    const edit = hit?.edit ?? { kind: 'replace' as const, dtype: tensor.dtype, shape: tensor.shape, read: () => tensor.read() };
    const byteLength = byteLengthOfEdit(edit);
    if (byteLength < EXTERNAL_SIZE_THRESHOLD && !location.external) continue;
    const name = renames.get(tensor.source) ?? tensor.source;
    // A tensor kept as it is streams from where it lies; new values are read whole.
    const stored = hit ? edit.stored : tensor.stored;
    chosen.push({ offset: location.offset, tensor: hit?.tensor ?? tensor, edit, external: { name, byteLength, read: edit.read, ...(stored ? { stored } : {}) } });
  }
  const places = placeExternalData(outPath, chosen.map((c) => c.external), layout);
  chosen.forEach((c, i) => byOffset.set(c.offset, { tensor: c.tensor, edit: { ...c.edit, external: places[i]! } }));
  return { files: externalDataFiles(outPath, chosen.map((c) => c.external), places), count: chosen.length };
}

/**
 * External data is found relative to the model's folder: written to another folder, the
 * untouched external tensors would point at nothing, so they are written inline instead.
 */
async function inlineMovedExternalData(
  sourcePath: string, outPath: string, byOffset: Map<number, { tensor: TensorInfo; edit: TensorEdit }>, ownModel: () => Promise<StateDict>,
): Promise<void> {
  let outFolder: string;
  try {
    outFolder = fs.realpathSync(path.dirname(path.resolve(outPath)));
  } catch (err) {
    throw fromSystemError(outPath, 'output folder', err);
  }
  if (fs.realpathSync(path.dirname(path.resolve(sourcePath))) === outFolder) return;
  for (const tensor of (await ownModel()).tensors) {
    const location = tensor.location!;
    if (location.external && !byOffset.has(location.offset)) {
      byOffset.set(location.offset, {
        tensor, edit: { kind: 'replace', dtype: tensor.dtype, shape: tensor.shape, read: () => tensor.read(), ...(tensor.stored ? { stored: tensor.stored } : {}) },
      });
    }
  }
}

class Rewriter {
  readonly newInputs: string[] = [];
  private readonly offsets: number[];

  constructor(
    private readonly file: RandomAccessFile,
    private readonly edits: Map<number, { tensor: TensorInfo; edit: TensorEdit }>,
    private readonly renames: ReadonlyMap<string, string>,
    private readonly extraOutputs: readonly string[],
    private readonly castBack: ReadonlyMap<string, CastBack>,
  ) {
    this.offsets = [...edits.keys()].sort((a, b) => a - b);
  }

  model(): Piece[] {
    const model = { start: 0, end: this.file.size };
    if (this.extraOutputs.length && !this.touches(model)) {
      // Nothing else changes: copy every field, rebuilding only the graph.
      const pieces: Piece[] = [];
      for (const f of fields(this.file, model, 'ModelProto')) {
        pieces.push(f.no === MODEL_GRAPH && f.wire === WIRE_BYTES ? this.field(f, this.graph(f, 0, true)) : { copy: { start: f.at, end: f.end } });
      }
      return pieces;
    }
    return this.message(model, 'ModelProto', (f) => {
      if (f.no === MODEL_GRAPH) return [this.field(f, this.graph(f, 0, true))];
      if (f.no === MODEL_FUNCTIONS) return [this.field(f, this.message(f, 'function', (g) => (g.no === FUNCTION_NODE ? this.node(g, 1, NO_REWIRING) : undefined)))];
      if (f.no === MODEL_TRAINING_INFO) {
        return [this.field(f, this.message(f, 'training_info', (g) => (g.no === 1 || g.no === 2 ? [this.field(g, this.graph(g, 1, false, NO_REWIRING))] : undefined)))];
      }
      return undefined;
    });
  }

  /** True when an edited tensor lies inside this range: only then is the message rebuilt. */
  private touches(range: Range): boolean {
    if (this.renames.size || this.castBack.size) return true; // names are referenced everywhere: walk it all
    return this.offsets.some((o) => o >= range.start && o < range.end);
  }

  /**
   * Rebuilds a message: each field is copied verbatim unless `rewrite` returns pieces for it.
   * Untouched messages are never walked at all.
   */
  private message(range: Range, what: string, rewrite: (f: Field) => Piece[] | undefined): Piece[] {
    if (!this.touches(range)) return [{ copy: range }];
    const out: Piece[] = [];
    let copyFrom = range.start;
    for (const f of fields(this.file, range, what)) {
      const replaced = f.wire === WIRE_BYTES && this.touches(f) ? rewrite(f) : undefined;
      if (!replaced) continue;
      if (f.at > copyFrom) out.push({ copy: { start: copyFrom, end: f.at } });
      out.push(...replaced);
      copyFrom = f.end;
    }
    if (range.end > copyFrom) out.push({ copy: { start: copyFrom, end: range.end } });
    return out;
  }

  private field(f: Field, children: Piece[]): Piece {
    return { field: f.no, children };
  }

  /**
   * `rewiring` maps the names of cast initializers to their Cast's output, for the node inputs of
   * this graph and its subgraphs; the main graph starts it, and a subgraph that defines one of the
   * names itself (an input, initializer or node output shadowing the outer one) drops it.
   */
  private graph(range: Range, depth: number, top: boolean, outer?: ReadonlyMap<string, string>): Piece[] {
    if (depth > MAX_GRAPH_DEPTH) throw invalidInput(this.file.path, `offset ${range.start}`, 'subgraphs nested too deep');
    const existingInputs = top ? this.inputNames(range) : new Set<string>();
    const rewiring = top ? new Map([...this.castBack].map(([name, c]) => [name, c.output])) : this.unshadowed(range, outer ?? NO_REWIRING);
    let castsPlaced = !top || this.castBack.size === 0;
    const added: Piece[] = [];
    const pieces = this.message(range, 'graph', (f) => {
      if (f.no === GRAPH.initializer || f.no === GRAPH.sparseInitializer) {
        const hit = this.edits.get(f.no === GRAPH.initializer ? f.start : this.sparseValuesOffset(f));
        if (!hit) return f.no === GRAPH.initializer ? this.renamedTensor(f) : undefined;
        if (hit.edit.kind === 'remove') {
          // Before IR 4 every initializer was also a graph input: it stays one, nothing to add.
          if (top && !existingInputs.has(hit.tensor.source)) added.push(this.inputFor(hit.tensor));
          return [];
        }
        return [{ field: f.no, children: tensorProto(this.newName(hit.tensor.source), hit.edit) }];
      }
      if (f.no === GRAPH.valueInfo) return (top ? this.retyped(f) : undefined) ?? this.renamedStrings(f, 1);
      if (f.no === GRAPH.input) return this.renamedStrings(f, 1);
      if (f.no === GRAPH.output) return (top ? undefined : this.rewiredOutput(f, rewiring)) ?? this.renamedStrings(f, 1);
      if (f.no === GRAPH.node) {
        const node = this.node(f, depth, rewiring);
        if (node.length === 0 && top) {
          const hit = this.editInside(f)!;
          added.push(this.inputFor(hit.tensor));
        }
        if (castsPlaced) return node;
        castsPlaced = true;
        return [...this.castNodes(), ...node];
      }
      return undefined;
    });
    if (top) for (const name of this.extraOutputs) added.push({ field: GRAPH.output, children: [{ bytes: keyBytes(1, name) }] });
    if (!castsPlaced) added.push(...this.castNodes());
    return [...pieces, ...added];
  }

  /** The Cast nodes restoring each cast initializer's dtype, as the first nodes of the main graph. */
  private castNodes(): Piece[] {
    return [...this.castBack].map(([name, cast]) => {
      const to = Buffer.concat([keyBytes(1, 'to'), varintField(3, ONNX_DTYPE_NUMBER[cast.to]), varintField(20, ATTRIBUTE_INT)]);
      const head = Buffer.concat([keyBytes(NODE.input, this.newName(name)), keyBytes(NODE.output, cast.output), keyBytes(3, `Cast_${cast.output}`), keyBytes(NODE.opType, 'Cast')]);
      return { field: GRAPH.node, children: [{ bytes: head }, { field: NODE.attribute, children: [{ bytes: to }] }] };
    });
  }

  /** The rewiring less the names this subgraph defines itself. */
  private unshadowed(graph: Range, outer: ReadonlyMap<string, string>): ReadonlyMap<string, string> {
    if (outer.size === 0) return outer;
    const inner = new Map(outer);
    const nameIn = (range: Range, no: number) => {
      for (const g of fields(this.file, range, 'graph')) if (g.no === no) inner.delete(this.text(g));
    };
    for (const f of fields(this.file, graph, 'graph')) {
      if (f.wire !== WIRE_BYTES) continue;
      if (f.no === GRAPH.input) nameIn(f, 1);
      else if (f.no === GRAPH.initializer) nameIn(f, 8);
      else if (f.no === GRAPH.node) nameIn(f, NODE.output);
    }
    return inner;
  }

  private text(f: Range): string {
    return new TextDecoder().decode(this.file.bytesAt(f.start, f.end - f.start));
  }

  /** A subgraph output that passes an outer cast initializer on directly: it passes the Cast's output. */
  private rewiredOutput(f: Field, rewiring: ReadonlyMap<string, string>): Piece[] | undefined {
    let changed = false;
    const pieces = this.message(f, 'graph output', (g) => {
      const output = g.no === 1 ? rewiring.get(this.text(g)) : undefined;
      if (output === undefined) return undefined;
      changed = true;
      return [{ bytes: keyBytes(1, output) }];
    });
    return changed ? [this.field(f, pieces)] : undefined;
  }

  /** A main-graph value_info naming a cast initializer, declared with the dtype it is now stored in. */
  private retyped(f: Field): Piece[] | undefined {
    let name: string | undefined;
    for (const g of fields(this.file, f, 'value_info')) if (g.no === 1) name = this.text(g);
    const hit = name === undefined || !this.castBack.has(name) ? undefined : [...this.edits.values()].find((e) => e.tensor.source === name && e.tensor.location?.scope === '');
    if (!hit || hit.edit.kind !== 'replace') return undefined;
    const dtype = hit.edit.dtype;
    // elem_type is a varint, which message() copies: the tensor type's other fields are copied here.
    const besidesElemType = (range: Range): Piece[] => [...fields(this.file, range, 'tensor_type')].filter((e) => e.no !== 1).map((e) => ({ copy: { start: e.at, end: e.end } }));
    return [this.field(f, this.message(f, 'value_info', (g) => {
      if (g.no === 1) return [{ bytes: keyBytes(1, this.newName(name!)) }];
      if (g.no !== 2) return undefined;
      return [this.field(g, this.message(g, 'type', (t) => (t.no === 1 ? [this.field(t, [{ bytes: varintField(1, ONNX_DTYPE_NUMBER[dtype]) }, ...besidesElemType(t)])] : undefined)))];
    }))];
  }

  private inputNames(graph: Range): Set<string> {
    const names = new Set<string>();
    for (const f of fields(this.file, graph, 'graph')) {
      if (f.no !== GRAPH.input) continue;
      for (const g of fields(this.file, f, 'graph input')) {
        if (g.no === 1) names.add(this.text(g));
      }
    }
    return names;
  }

  private newName(name: string): string {
    return this.renames.get(name) ?? name;
  }

  /** The message with its string field `no` renamed, or undefined when no name in it changes. */
  private renamedStrings(f: Field, ...numbers: number[]): Piece[] | undefined {
    if (!this.renames.size) return undefined;
    let changed = false;
    const pieces = this.message(f, 'names', (g) => {
      if (!numbers.includes(g.no)) return undefined;
      const renamed = this.renames.get(this.text(g));
      if (renamed === undefined) return undefined;
      changed = true;
      return [{ bytes: keyBytes(g.no, renamed) }];
    });
    return changed ? [this.field(f, pieces)] : undefined;
  }

  private renamedTensor(f: Field): Piece[] | undefined {
    return this.renamedStrings(f, 8);
  }

  private sparseValuesOffset(f: Field): number {
    for (const g of fields(this.file, f, 'sparse_initializer')) if (g.no === 1) return g.start;
    return -1;
  }

  private editInside(range: Range): { tensor: TensorInfo; edit: TensorEdit } | undefined {
    const offset = this.offsets.find((o) => o >= range.start && o < range.end);
    return offset === undefined ? undefined : this.edits.get(offset);
  }

  /** A node: a Constant whose tensor is removed disappears; replaced, it gets a `value` attribute. */
  private node(f: Field, depth: number, rewiring: ReadonlyMap<string, string>): Piece[] {
    let isConstant = false;
    for (const g of fields(this.file, f, 'node')) {
      if (g.no === NODE.opType) isConstant = this.text(g) === 'Constant';
    }
    if (isConstant) {
      const hit = this.editInside(f);
      if (hit?.edit.kind === 'remove') return [];
      if (hit) {
        return [this.field(f, this.message(f, 'node', (g) => {
          if (g.no === NODE.output) return this.renamedName(g);
          if (g.no !== NODE.attribute) return undefined;
          return [{ field: NODE.attribute, children: [
            { bytes: Buffer.concat([keyBytes(1, 'value'), varintField(20, 4)]) },
            { field: ATTR.t, children: tensorProto(this.newName(hit.tensor.source), hit.edit as Extract<TensorEdit, { kind: 'replace' }>) },
          ] }];
        }))];
      }
    }
    return [this.field(f, this.message(f, 'node', (g) => {
      const rewired = g.no === NODE.input && rewiring.size ? rewiring.get(this.text(g)) : undefined;
      if (rewired !== undefined) return [{ bytes: keyBytes(NODE.input, rewired) }];
      if (g.no === NODE.input || g.no === NODE.output) return this.renamedName(g);
      if (g.no !== NODE.attribute) return undefined;
      return [this.field(g, this.message(g, 'attribute', (a) => {
        if (a.no === ATTR.g || a.no === ATTR.graphs) return [this.field(a, this.graph(a, depth + 1, false, rewiring))];
        if (a.no === ATTR.t) {
          const hit = this.edits.get(a.start);
          if (hit?.edit.kind === 'replace') return [{ field: ATTR.t, children: tensorProto(this.newName(hit.tensor.source), hit.edit) }];
        }
        return undefined;
      }))];
    }))];
  }

  /** A node input/output string field, renamed when it names a renamed weight. */
  private renamedName(g: Field): Piece[] | undefined {
    const renamed = this.renames.get(this.text(g));
    return renamed === undefined ? undefined : [{ bytes: keyBytes(g.no, renamed) }];
  }

  /** A graph input (ValueInfoProto) declaring a removed weight's type and shape. */
  private inputFor(tensor: TensorInfo): Piece {
    this.newInputs.push(this.newName(tensor.source));
    const dims = tensor.shape.map((d) => ({ field: 1, children: [{ bytes: varintField(1, d) }] }));
    const tensorType: Piece = { field: 1, children: [{ bytes: varintField(1, ONNX_DTYPE_NUMBER[tensor.dtype]) }, { field: 2, children: dims }] };
    return { field: GRAPH.input, children: [{ bytes: keyBytes(1, this.newName(tensor.source)) }, { field: 2, children: [tensorType] }] };
  }
}

/** A fresh TensorProto: dims, data_type, name, raw_data — in field-number order. */
function tensorProto(name: string, edit: Extract<TensorEdit, { kind: 'replace' }>): Piece[] {
  const length = byteLengthOfEdit(edit);
  const head: Piece = { bytes: Buffer.concat([...edit.shape.map((d) => varintField(1, d)), varintField(2, ONNX_DTYPE_NUMBER[edit.dtype]), keyBytes(8, name)]) };
  if (!edit.external) return [head, { field: 9, children: [{ length, read: edit.read }] }];
  // external_data (13) entries, then data_location (14) = EXTERNAL.
  const entry = (key: string, value: string): Piece => ({ field: 13, children: [{ bytes: Buffer.concat([keyBytes(1, key), keyBytes(2, value)]) }] });
  const { location, offset, length: stored } = edit.external;
  return [head, entry('location', location), entry('offset', String(offset)), entry('length', String(stored)), { bytes: varintField(14, 1) }];
}

function byteLengthOfEdit(edit: Extract<TensorEdit, { kind: 'replace' }>): number {
  return byteLengthOf(edit.dtype, edit.shape.reduce((n, d) => n * d, 1));
}

function varint(value: number): Uint8Array {
  const out: number[] = [];
  let v = BigInt(value);
  if (v < 0n) v = BigInt.asUintN(64, v);
  while (v >= 0x80n) {
    out.push(Number(v & 0x7fn) | 0x80);
    v >>= 7n;
  }
  out.push(Number(v));
  return Uint8Array.from(out);
}

function varintField(field: number, value: number): Uint8Array {
  return Buffer.concat([varint(field * 8), varint(value)]);
}

function keyBytes(field: number, text: string): Uint8Array {
  const bytes = new TextEncoder().encode(text);
  return Buffer.concat([varint(field * 8 + WIRE_BYTES), varint(bytes.length), bytes]);
}

function lengthOf(piece: Piece): number {
  if ('copy' in piece) return piece.copy.end - piece.copy.start;
  if ('bytes' in piece) return piece.bytes.length;
  if ('read' in piece) return piece.length;
  const inner = piece.children.reduce((n, c) => n + lengthOf(c), 0);
  return varint(piece.field * 8 + WIRE_BYTES).length + varint(inner).length + inner;
}

const COPY_CHUNK = 16 * 1024 * 1024;
/** One buffer for every copied range: no fresh 16 MiB per chunk for the allocator and page faults. */
let copyBuffer: Buffer | undefined;

async function emit(file: RandomAccessFile, fd: number, piece: Piece): Promise<void> {
  if ('copy' in piece) {
    copyBuffer ??= chunkBuffer(COPY_CHUNK);
    for (let at = piece.copy.start; at < piece.copy.end; at += COPY_CHUNK) {
      await yieldToSignals();
      writeAll(fd, file.readInto(at, copyBuffer.subarray(0, Math.min(COPY_CHUNK, piece.copy.end - at))));
    }
  } else if ('bytes' in piece) {
    writeAll(fd, piece.bytes);
  } else if ('read' in piece) {
    await yieldToSignals();
    const bytes = await piece.read();
    if (bytes.length !== piece.length) throw new Error(`tensor data is ${bytes.length} bytes, expected ${piece.length}`);
    writeAll(fd, bytes);
  } else {
    const inner = piece.children.reduce((n, c) => n + lengthOf(c), 0);
    writeAll(fd, Buffer.concat([varint(piece.field * 8 + WIRE_BYTES), varint(inner)]));
    for (const child of piece.children) await emit(file, fd, child);
  }
}
