import { CkptError, invalidInput } from '../core/errors.js';
import { RandomAccessFile } from '../core/file.js';
import { codeRunningGlobal, readPickle } from '../core/pickle.js';
import { isSafeMemberName, isZip, readZipDirectory, zipDataOffset, type ZipEntry } from '../core/zip.js';
import { MAX_HEADER, parseDictLiteral, preambleLength } from './numpy/header.js';
import { hasNpyMagic } from './numpy/match.js';
import { NUMPY_ALLOWED } from './numpy/pickled.js';
import { STORAGE_DTYPES, TORCH_DTYPES } from './pytorch/tensors.js';
import { hasLegacyMagic } from './pytorch/match.js';

/**
 * What a file would make Python (or Keras) run or import when it is loaded, read without running
 * anything: every global each pickle names, TorchScript code, Keras Lambda layers. Judged on an
 * allowlist, as `torch.load(weights_only=True)` judges: anything not known to be plain data is
 * not safe.
 */

/**
 * `torch`: what `torch.load(weights_only=True)` accepts by default; `data`: plain data types it
 * refuses until allowlisted (numpy arrays, argparse Namespace, config containers); `unknown`: a
 * class or function whose module loading imports and whose code then runs; `code`: a global whose
 * purpose is running commands or code.
 */
export type GlobalCategory = 'torch' | 'data' | 'unknown' | 'code';

export interface ScannedGlobal {
  readonly name: string;
  readonly category: GlobalCategory;
  /** How many times the file names it. */
  readonly count: number;
  /** Where it is named first: member and pickle offset. */
  readonly where: string;
  readonly why: string;
}

/** Code the file carries besides pickle globals: TorchScript sources, Keras Lambda layers. */
export interface ScannedCode {
  readonly where: string;
  readonly what: string;
}

/**
 * `safe`: loads with `torch.load(weights_only=True)` (or holds no code at all); `allowlist`: only
 * plain data types beyond that, loadable once they are allowlisted; `unsafe`: loading would
 * import or run code, or the file could not be read completely.
 */
export type ScanVerdict = 'safe' | 'allowlist' | 'unsafe';

export interface ScanReport {
  readonly path: string;
  /** What was scanned: `pytorch-zip`, `torchscript`, `pytorch-legacy`, `pickle`, `npy`, `npz`, `keras-h5`, `keras-zip`, or `no-code` for formats without pickles. */
  readonly kind: string;
  readonly pickles: number;
  readonly globals: readonly ScannedGlobal[];
  readonly code: readonly ScannedCode[];
  /** What could not be scanned; any entry makes the verdict `unsafe`. */
  readonly incomplete: readonly string[];
  readonly verdict: ScanVerdict;
  readonly reason: string;
}

export interface ScanOptions {
  /** Globals the caller trusts, as `torch.serialization.add_safe_globals` would add them. */
  readonly allow?: readonly string[];
}

const TORCH_WEIGHTS_ONLY: ReadonlySet<string> = new Set([
  'collections.OrderedDict', 'collections.Counter', 'torch.nn.parameter.Parameter', 'torch.serialization._get_layout',
  'torch.Size', 'torch.Tensor', 'torch.device', '_codecs.encode', 'builtins.bytearray', 'builtins.set', 'builtins.complex',
  ...Object.keys(TORCH_DTYPES).map((d) => `torch.${d}`),
  ...Object.keys(STORAGE_DTYPES).flatMap((s) => [`torch.${s}`, `torch.cuda.${s}`]),
  'torch.storage.TypedStorage', 'torch.storage.UntypedStorage',
  ...['Double', 'Float', 'Half', 'BFloat16', 'Long', 'Int', 'Short', 'Char', 'Byte', 'Bool'].flatMap((t) => [`torch.${t}Tensor`, `torch.cuda.${t}Tensor`]),
  ...['per_tensor_affine', 'per_tensor_symmetric', 'per_channel_affine', 'per_channel_symmetric', 'per_channel_affine_float_qparams'].map((q) => `torch.${q}`),
  ...['parameter', 'parameter_with_state', 'qtensor', 'tensor', 'tensor_v2', 'tensor_v3', 'sparse_tensor', 'meta_tensor_no_storage', 'wrapper_subclass',
    'device_tensor_from_numpy', 'device_tensor_from_cpu_tensor'].map((f) => `torch._utils._rebuild_${f}`),
  'torch._tensor._rebuild_from_type_v2',
]);

/** Plain data types: restoring them runs no code of the file's choosing. */
const DATA_GLOBALS: ReadonlySet<string> = new Set([
  ...NUMPY_ALLOWED,
  'argparse.Namespace', 'builtins.tuple', 'builtins.frozenset', 'builtins.slice', 'builtins.range', 'builtins.bytes', 'builtins.str', 'builtins.int',
  'builtins.float', 'builtins.bool', 'builtins.list', 'builtins.dict', 'builtins.object', 'copyreg._reconstructor',
  'collections.defaultdict', 'collections.deque', 'decimal.Decimal', 'fractions.Fraction', 'uuid.UUID',
  'pytorch_lightning.utilities.parsing.AttributeDict', 'lightning_fabric.utilities.data.AttributeDict', 'lightning.fabric.utilities.data.AttributeDict',
]);
const DATA_MODULES = /^(numpy\.dtypes|datetime|pathlib|omegaconf(\.(dictconfig|listconfig|nodes|base))?)$/;

function categorize(name: string, allow: ReadonlySet<string>): { category: GlobalCategory; why: string } {
  if (TORCH_WEIGHTS_ONLY.has(name)) return { category: 'torch', why: 'torch tensor, storage, dtype or container' };
  if (allow.has(name)) return { category: 'torch', why: 'allowed with --allow' };
  const danger = codeRunningGlobal(name);
  if (danger) return { category: 'code', why: danger };
  const module = name.slice(0, name.lastIndexOf('.'));
  if (DATA_GLOBALS.has(name) || DATA_MODULES.test(module) || /^numpy\.(_?core\.multiarray\.scalar|dtype|ndarray)$/.test(name)) {
    return { category: 'data', why: 'plain data; torch.load(weights_only=True) refuses it until allowlisted' };
  }
  if (module === '__main__') return { category: 'unknown', why: 'a class of the script that saved the file: loading needs that code and runs it' };
  return { category: 'unknown', why: `loading imports '${module}' and runs its code to rebuild this` };
}

/** Reads what `path` would run or import when loaded. Throws for files that are not checkpoints ckpt knows. */
export async function scanFile(path: string, options: ScanOptions = {}): Promise<ScanReport> {
  const raf = RandomAccessFile.open(path);
  try {
    const head = raf.read(0, Math.min(raf.size, 512), 'header');
    const found = new Found(new Set(options.allow ?? []));
    let kind: string;
    if (isZip(head)) kind = await scanZip(raf, found);
    else if (hasLegacyMagic(head)) {
      kind = 'pytorch-legacy';
      scanPickles(raf, 0, raf.size, '', found, 5);
    } else if (hasNpyMagic(head)) {
      kind = 'npy';
      scanNpy(raf, 0, raf.size, '', found);
    } else if (isPickleStart(head)) {
      kind = 'pickle';
      scanPickles(raf, 0, raf.size, '', found, Infinity);
    } else {
      raf.close();
      // The readers' own detection: an HDF5 file with a user block is Keras too.
      const { detectFormat } = await import('../open.js');
      const format = detectFormat(path);
      if (!format) throw invalidInput(path, undefined, 'unrecognized format: ckpt scans PyTorch, TorchScript, pickle, NumPy and Keras files, and formats it reads', 'unknown-format');
      if (format === 'keras') {
        kind = 'keras-h5';
        await scanHdf5(path, found);
      } else {
        kind = 'no-code';
        found.note(`${format} holds tensors and metadata only: no pickles and no code`);
      }
    }
    return found.report(path, kind);
  } finally {
    raf.close();
  }
}

class Found {
  readonly globals = new Map<string, { count: number; where: string }>();
  readonly code: ScannedCode[] = [];
  readonly incomplete: string[] = [];
  pickles = 0;
  /** Why the file is safe when nothing else says so: the first note taken. */
  private safeReason: string | undefined;
  torchscript = false;

  constructor(readonly allow: ReadonlySet<string>) {}

  global(name: string, where: string): void {
    const known = this.globals.get(name);
    if (known) known.count++;
    else this.globals.set(name, { count: 1, where });
  }

  note(text: string): void {
    this.safeReason ??= text;
  }

  report(path: string, kind: string): ScanReport {
    const globals = [...this.globals].map(([name, g]) => ({ name, ...g, ...categorize(name, this.allow) }));
    const order: GlobalCategory[] = ['code', 'unknown', 'data', 'torch'];
    globals.sort((a, b) => order.indexOf(a.category) - order.indexOf(b.category) || a.name.localeCompare(b.name));
    const names = (c: GlobalCategory) => globals.filter((g) => g.category === c).map((g) => g.name);
    const [codeGlobals, unknown, data] = [names('code'), names('unknown'), names('data')];
    let verdict: ScanVerdict;
    let reason: string;
    if (this.incomplete.length) {
      verdict = 'unsafe';
      reason = `could not be scanned completely (${this.incomplete[0]}); what was not read cannot be called safe`;
    } else if (codeGlobals.length) {
      verdict = 'unsafe';
      reason = `loading would run ${list(codeGlobals)}`;
    } else if (this.torchscript) {
      verdict = 'unsafe';
      reason = `a TorchScript archive: torch.jit.load compiles and runs its ${this.code.length} code/ files, and torch.load(weights_only=True) refuses it`;
    } else if (this.code.length) {
      verdict = 'unsafe';
      reason = `it carries code that loading runs: ${this.code[0]!.what}`;
    } else if (unknown.length) {
      verdict = 'unsafe';
      reason = `loading imports and runs code to rebuild ${list(unknown)}; torch.load(weights_only=True) refuses it`;
    } else if (data.length) {
      verdict = 'allowlist';
      reason = `torch.load(weights_only=True) refuses ${list(data)} until torch.serialization.add_safe_globals([...]) allows them; they are plain data`;
    } else {
      verdict = 'safe';
      reason = this.safeReason ?? (this.pickles ? 'every global is one torch.load(weights_only=True) accepts' : 'no pickles and no code');
    }
    return { path, kind: this.torchscript ? 'torchscript' : kind, pickles: this.pickles, globals, code: this.code, incomplete: this.incomplete, verdict, reason };
  }
}

function list(names: readonly string[]): string {
  return names.length > 3 ? `${names.slice(0, 3).join(', ')} and ${names.length - 3} more` : names.join(', ');
}

/** PROTO (protocol 2+), or the opcodes a protocol 0/1 pickle starts with: MARK, GLOBAL, EMPTY_DICT/LIST/TUPLE. */
const isPickleStart = (head: Uint8Array) => (head[0] === 0x80 && head[1]! >= 2 && head[1]! <= 5) || (head.length > 1 && [0x28, 0x63, 0x7d, 0x5d, 0x29].includes(head[0]!));

/** Pickles back to back from `start` (legacy torch: five; a pickle file: while another PROTO follows). */
function scanPickles(raf: RandomAccessFile, start: number, limit: number, label: string, found: Found, max: number): void {
  let pos = start;
  for (let n = 0; n < max && pos < limit; n++) {
    if (n > 0 && raf.byteAt(pos) !== 0x80) break; // data after the pickles (legacy storages, joblib arrays)
    const end = scanOnePickle(raf, pos, limit, label, found);
    if (end === undefined) return;
    pos = end;
  }
}

function scanOnePickle(raf: RandomAccessFile, start: number, limit: number, label: string, found: Found): number | undefined {
  found.pickles++;
  try {
    return readPickle(raf, start, limit, {
      allowed: new Set(), opaque: true, scanning: true, label,
      onGlobal: (name, offset) => found.global(name, `${label}pickle offset ${offset}`),
    }).end;
  } catch (err) {
    if (!(err instanceof CkptError)) throw err;
    found.incomplete.push(err.message.replace(`${raf.path}: `, ''));
    return undefined;
  }
}

/** A .npy of Python objects (`descr` `|O`) is a pickle after its header; other dtypes are plain numbers. */
function scanNpy(raf: RandomAccessFile, start: number, size: number, label: string, found: Found): void {
  const bytes = raf.read(start, Math.min(size, MAX_HEADER + 12), 'npy header');
  const fail = (where: string, what: string) => invalidInput(raf.path, `${label}${where}`, what);
  if (bytes.length < 12) throw fail('offset 0', '.npy header is cut off');
  const pre = preambleLength(bytes);
  const length = bytes[6] === 1 ? bytes[8]! | (bytes[9]! << 8) : new DataView(bytes.buffer, bytes.byteOffset).getUint32(8, true);
  if (pre + length > bytes.length) throw fail('offset 8', `header of ${length} bytes runs past the data`);
  const header = parseDictLiteral(new TextDecoder('latin1').decode(bytes.subarray(pre, pre + length)), (what) => fail(`offset ${pre}`, `header ${what}`));
  if (typeof header.descr === 'string' && header.descr.includes('O')) scanPickles(raf, start + pre + length, start + size, label, found, 1);
}

async function scanZip(raf: RandomAccessFile, found: Found): Promise<string> {
  const entries = readZipDirectory(raf);
  const stored = (e: ZipEntry) => {
    if (!isSafeMemberName(e.name)) throw invalidInput(raf.path, `member '${e.name}'`, 'member name is absolute or contains ..');
    if (e.method === 0) return true;
    found.incomplete.push(`member '${e.name}' is compressed; ckpt scans stored members in place`);
    return false;
  };
  let kind = 'zip';
  for (const e of entries) {
    const label = `member '${e.name}', `;
    if (/(^|\/)[^/]*\.pkl$/.test(e.name) && stored(e)) {
      kind = 'pytorch-zip';
      const at = zipDataOffset(raf, e);
      scanPickles(raf, at, at + e.size, label, found, 1);
    } else if (/\.npy$/.test(e.name) && stored(e)) {
      kind = 'npz';
      scanNpy(raf, zipDataOffset(raf, e), e.size, label, found);
    } else if (/(^|\/)code\/.+\.py$/.test(e.name)) {
      found.torchscript = true;
      found.code.push({ where: `member '${e.name}'`, what: 'TorchScript source that torch.jit.load compiles and runs' });
    } else if (e.name === 'config.json' && entries.some((m) => m.name === 'model.weights.h5') && stored(e)) {
      kind = 'keras-zip';
      const text = new TextDecoder().decode(raf.read(zipDataOffset(raf, e), e.size, 'config.json'));
      kerasConfig(parseJson(text, raf.path, `member '${e.name}'`), `member '${e.name}'`, found);
    }
  }
  return kind;
}

async function scanHdf5(path: string, found: Found): Promise<void> {
  const { attributeValue, Hdf5File } = await import('./hdf5/index.js');
  const h5 = new Hdf5File(RandomAccessFile.open(path), path);
  try {
    const attribute = attributeValue(h5.root(), 'model_config');
    if (typeof attribute === 'string') kerasConfig(parseJson(attribute, path, '/ attribute model_config'), '/ attribute model_config', found);
    else found.note('Keras weights without a model config: no layers that could carry code');
  } finally {
    h5.close();
  }
}

function parseJson(text: string, file: string, where: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw invalidInput(file, where, 'is not valid JSON');
  }
}

/** Lambda layers hold Python bytecode Keras runs; classes from outside Keras need the user's code. */
function kerasConfig(config: unknown, where: string, found: Found): void {
  found.note('the Keras model config has no Lambda layers and no classes from outside Keras');
  const visit = (node: unknown): void => {
    if (Array.isArray(node)) return node.forEach(visit);
    if (!node || typeof node !== 'object') return;
    const o = node as Record<string, unknown>;
    const inner = (o.config ?? {}) as Record<string, unknown>;
    if (o.class_name === 'Lambda') {
      found.code.push({ where: `${where}, layer '${String(inner.name ?? '?')}'`, what: 'a Lambda layer: Python bytecode Keras runs when it loads the model (refused in safe_mode)' });
    } else if (typeof o.class_name === 'string' && typeof o.module === 'string' && !/^(keras|tf_keras|tensorflow)(\.|$)/.test(o.module)) {
      found.global(`${o.module}.${o.class_name}`, `${where}, layer '${String(inner.name ?? '?')}'`);
    }
    Object.values(o).forEach(visit);
  };
  visit(config);
}
