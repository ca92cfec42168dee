import { invalidInput } from './errors.js';
import type { RandomAccessFile } from './file.js';

/**
 * A restricted pickle reader: a small stack machine that builds inert values and NEVER runs
 * anything. GLOBAL/STACK_GLOBAL resolve only names on the caller's allowlist, to markers; REDUCE,
 * NEWOBJ and BUILD on a marker record the call (`PyCall`) for the format reader to interpret.
 * Large byte payloads are not read: they become `PyBytes` that read their range when asked.
 */

/**
 * A global the pickle named, e.g. `torch._utils._rebuild_tensor_v2`. Never resolved to code.
 * `opaque` marks one outside the reader's allowlist, kept as an inert value (lenient reading).
 */
export class PyGlobal {
  constructor(readonly module: string, readonly name: string, readonly opaque = false) {}
  get qualified(): string {
    return `${this.module}.${this.name}`;
  }
}

/**
 * `fn(*args)` as the pickle asked for it, with the BUILD state if any, and the items SETITEMS or
 * APPENDS added (objects that subclass dict or list, such as Lightning's `AttributeDict`).
 */
export class PyCall {
  state: PyValue | undefined;
  items: PyDict | undefined;
  listItems: PyValue[] | undefined;
  constructor(readonly fn: PyGlobal, readonly args: readonly PyValue[]) {}
}

export class PyTuple {
  constructor(readonly items: readonly PyValue[]) {}
}

/** A dict or OrderedDict, in insertion order. `attributes` holds a BUILD state (torch's `_metadata`). */
export class PyDict {
  readonly entries = new Map<PyValue, PyValue>();
  attributes: PyValue | undefined;
}

export class PySet {
  constructor(readonly items: PyValue[]) {}
}

/** A persistent id (BINPERSID): the format decides what it refers to (torch: a storage). */
export class PyPersistent {
  constructor(readonly id: PyValue) {}
}

/** Bytes in the file, read only when asked; `length` is undefined when only decoding tells. */
export class PyBytes {
  constructor(readonly length: number | undefined, readonly read: () => Uint8Array) {}
}

/** A long string left unread (protocol-2 array data arrives as text for `_codecs.encode`). */
export class PyLazyText {
  constructor(readonly offset: number, readonly length: number) {}
}

export type PyValue =
  | null | boolean | number | bigint | string
  | PyBytes | PyLazyText | PyTuple | PyValue[] | PyDict | PySet | PyGlobal | PyCall | PyPersistent;

export interface PickleOptions {
  /** `module.name` of every global the pickle may name. */
  readonly allowed: ReadonlySet<string>;
  /** Prefixes error locations, e.g. `member 'archive/data.pkl', `. */
  readonly label?: string;
  /** Globals the format knows but cannot read, with what to tell the user instead of "not allowed". */
  readonly unsupported?: ReadonlyMap<string, string>;
  /**
   * Lenient reading: a global outside `allowed` becomes an inert opaque value instead of an error
   * (a training checkpoint's hyper-parameters as an argparse `Namespace`, a whole pickled module).
   * Globals that run code when Python loads the file (`os.system`, `builtins.eval` …) are refused
   * all the same: ckpt would not run them, but a file built around them is not a checkpoint.
   */
  readonly opaque?: boolean;
  /** With `opaque`: code-running globals become opaque values too, for a scan that lists them all. */
  readonly scanning?: boolean;
  /** Called once for each GLOBAL/STACK_GLOBAL/INST the pickle names, allowed or not, before it is checked. */
  readonly onGlobal?: (qualified: string, offset: number) => void;
}

export interface PickleResult {
  readonly value: PyValue;
  /** Globals kept as opaque values (lenient reading), each once, in the order first met. */
  readonly opaque: readonly string[];
  /** File offset just past the STOP opcode (legacy torch files hold several pickles in a row). */
  readonly end: number;
}

/** Payloads above this size stay in the file until read. */
const INLINE_BYTES = 4096;
const INLINE_TEXT = 1 << 20;
const MAX_STACK = 1 << 22;
/** Protocol 0 text arguments (numbers, quoted strings) longer than this are refused. */
const MAX_LINE = 1 << 20;
/** GLOBAL and INST module and class names longer than this are refused. */
const MAX_NAME = 1024;

/** An integer as a number where it is exactly one, else as a bigint. */
const narrow = (v: bigint): number | bigint => (v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v);

/** Globals with a fixed, harmless meaning that the machine applies itself. */
const CONTAINERS = new Set(['collections.OrderedDict', 'builtins.set', 'builtins.frozenset', 'builtins.tuple', 'torch.Size', '_codecs.encode', 'builtins.bytes', 'builtins.bytearray']);

const MARK = Symbol('mark');
type Slot = PyValue | typeof MARK;

/** Shared decoders: `decode()` without `stream` keeps no state between calls, and making one per string is costly. */
const UTF8 = new TextDecoder('utf-8', { fatal: true });
const LATIN1 = new TextDecoder('latin1');

/**
 * Runs the pickle that starts at `start` in `file` and ends before `limit`. Every opcode outside
 * the supported subset, every global outside `options.allowed`, and every malformed structure is
 * an invalid-input error naming the file and the pickle offset.
 */
export function readPickle(file: RandomAccessFile, start: number, limit: number, options: PickleOptions): PickleResult {
  const label = options.label ?? '';
  let pos = start;
  let opAt = start;
  const fail = (detail: string) => invalidInput(file.path, `${label}pickle offset ${opAt - start}`, detail);
  const need = (n: number) => {
    if (n < 0 || pos + n > limit) throw fail(`pickle is truncated: needs ${n} more bytes at offset ${pos - start}, but it ends at ${limit - start}`);
  };
  const u8 = () => {
    need(1);
    return file.byteAt(pos++);
  };
  const bytes = (n: number) => {
    need(n);
    const out = file.bytesAt(pos, n, 'pickle');
    pos += n;
    return out;
  };
  const view = (n: number) => {
    const b = bytes(n);
    return new DataView(b.buffer, b.byteOffset, b.byteLength);
  };
  // Little-endian integers byte by byte through the block cache: no subarray or DataView per opcode.
  const u16 = () => {
    need(2);
    const v = file.byteAt(pos) | (file.byteAt(pos + 1) << 8);
    pos += 2;
    return v;
  };
  const i32 = () => {
    need(4);
    const v = file.byteAt(pos) | (file.byteAt(pos + 1) << 8) | (file.byteAt(pos + 2) << 16) | (file.byteAt(pos + 3) << 24);
    pos += 4;
    return v;
  };
  const u32 = () => i32() >>> 0;
  const u64 = () => {
    const n = view(8).getBigUint64(0, true);
    if (n > BigInt(Number.MAX_SAFE_INTEGER)) throw fail(`length ${n} is too large`);
    return Number(n);
  };
  const utf8 = (n: number) => {
    try {
      return UTF8.decode(bytes(n));
    } catch (err) {
      if ((err as { name?: string }).name === 'CkptError') throw err;
      throw fail('string is not valid UTF-8');
    }
  };
  const latin1 = (n: number) => LATIN1.decode(bytes(n));
  /** A byte payload: small ones are copied, large ones read later from their range. */
  const payload = (n: number): PyBytes => {
    need(n);
    if (n <= INLINE_BYTES) {
      const copy = Uint8Array.from(bytes(n));
      return new PyBytes(n, () => copy);
    }
    const at = pos;
    pos += n;
    return new PyBytes(n, () => file.read(at, n, `${label}bytes at pickle offset ${at - start}`));
  };
  const text = (n: number): string | PyLazyText => {
    if (n <= INLINE_TEXT) return utf8(n);
    need(n);
    const lazy = new PyLazyText(pos, n);
    pos += n;
    return lazy;
  };
  const signed = (b: Uint8Array): number | bigint => {
    if (b.length === 0) return 0;
    let v = 0n;
    for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]!);
    if (b[b.length - 1]! & 0x80) v -= 1n << BigInt(8 * b.length);
    return narrow(v);
  };

  const stack: Slot[] = [];
  const marks: number[] = [];
  const opaque = new Set<string>();
  const memo = new Map<number, PyValue>();
  const push = (v: PyValue) => {
    if (stack.length >= MAX_STACK) throw fail(`more than ${MAX_STACK} values on the pickle stack`);
    stack.push(v);
  };
  // Values above the innermost MARK only: a MARK is never popped as a value.
  const floor = () => (marks.length ? marks[marks.length - 1]! + 1 : 0);
  const pop = (): PyValue => {
    if (stack.length <= floor()) throw fail('pickle stack underflow');
    return stack.pop() as PyValue;
  };
  const top = (): PyValue => {
    if (stack.length <= floor()) throw fail('pickle stack underflow');
    return stack[stack.length - 1] as PyValue;
  };
  const popMark = (): PyValue[] => {
    const m = marks.pop();
    if (m === undefined) throw fail('no MARK on the pickle stack');
    const items = stack.splice(m + 1) as PyValue[];
    stack.pop(); // the mark itself
    return items;
  };
  /** A newline-terminated text argument (protocol 0), without the newline. */
  const line = (what: string, max = MAX_LINE) => {
    const from = pos;
    while (u8() !== 0x0a) if (pos - from > max) throw fail(`${what} longer than ${max} bytes`);
    return LATIN1.decode(file.bytesAt(from, pos - 1 - from));
  };
  const decimal = (text: string, what: string): number | bigint => {
    if (!/^[+-]?\d+$/.test(text)) throw fail(`${what} '${text.slice(0, 40)}' is not an integer`);
    return narrow(BigInt(text));
  };
  const memoIndex = (text: string) => {
    const i = decimal(text, 'memo index');
    if (typeof i !== 'number' || i < 0) throw fail(`memo index ${text} is out of range`);
    return i;
  };
  const getMemo = (i: number) => {
    if (!memo.has(i)) throw fail(`memo index ${i} was never stored`);
    return memo.get(i)!;
  };
  const str = (v: PyValue, what: string): string => {
    if (typeof v !== 'string') throw fail(`${what} must be a string`);
    return v;
  };
  const global = (written: string, name: string): PyGlobal => {
    // Protocol 2 spells Python 3's builtins as Python 2 did.
    const module = written === '__builtin__' ? 'builtins' : written;
    const qualified = `${module}.${name}`;
    options.onGlobal?.(qualified, opAt - start);
    const reason = options.unsupported?.get(qualified);
    if (reason) throw fail(`'${qualified}': ${reason}`);
    if (options.allowed.has(qualified)) return new PyGlobal(module, name);
    if (!options.opaque) {
      throw fail(`global '${qualified}' is not allowed (strict pickle reading): ckpt reads tensors without running code from the file, and only knows tensor and container types`);
    }
    const danger = options.scanning ? undefined : codeRunningGlobal(qualified);
    if (danger) throw fail(`global '${qualified}' ${danger}; this is not a checkpoint ckpt reads (\`ckpt scan\` lists what the file would run)`);
    opaque.add(qualified);
    return new PyGlobal(module, name, true);
  };
  const call = (fn: PyValue, args: PyValue): PyValue => {
    // Lenient reading: a method of an opaque object (`copyreg._reconstructor` results, bound methods) stays opaque.
    if (fn instanceof PyCall && fn.fn.opaque && args instanceof PyTuple) return new PyCall(fn.fn, args.items);
    if (!(fn instanceof PyGlobal)) throw fail('REDUCE/NEWOBJ on something that is not an allowed global');
    if (!(args instanceof PyTuple)) throw fail(`arguments of ${fn.qualified} must be a tuple`);
    const a = args.items;
    if (!CONTAINERS.has(fn.qualified)) return new PyCall(fn, a);
    switch (fn.qualified) {
      case 'collections.OrderedDict': {
        const d = new PyDict();
        if (a.length) addPairs(d, a[0]!);
        return d;
      }
      case 'builtins.set':
      case 'builtins.frozenset':
        return new PySet(a.length ? [...iterable(a[0]!)] : []);
      case 'builtins.tuple':
      case 'torch.Size':
        return new PyTuple(a.length ? [...iterable(a[0]!)] : []);
      case 'builtins.bytes': // bytes() is how protocol 2 spells b''
      case 'builtins.bytearray':
        return a.length && a[0] instanceof PyBytes ? a[0] : new PyBytes(0, () => new Uint8Array(0));
      default: // _codecs.encode(text, 'latin1'): how protocol 2 spells bytes
        return latin1Bytes(a[0] ?? null, a[1] ?? 'latin1');
    }
  };
  const iterable = (v: PyValue): PyValue[] => {
    if (Array.isArray(v)) return v;
    if (v instanceof PyTuple) return [...v.items];
    if (v instanceof PySet) return v.items;
    throw fail('expected a list or tuple');
  };
  const addPairs = (d: PyDict, pairs: PyValue) => {
    if (pairs instanceof PyDict) for (const [k, v] of pairs.entries) d.entries.set(k, v);
    else for (const p of iterable(pairs)) {
      const kv = iterable(p);
      if (kv.length !== 2) throw fail('OrderedDict items must be pairs');
      d.entries.set(kv[0]!, kv[1]!);
    }
  };
  const latin1Bytes = (value: PyValue, encoding: PyValue): PyBytes => {
    if (encoding !== 'latin1' && encoding !== 'latin-1') throw fail(`_codecs.encode with encoding ${JSON.stringify(encoding)}; only latin1 is used for bytes`);
    if (typeof value === 'string') {
      const out = Uint8Array.from(value, (c) => c.charCodeAt(0));
      if (out.some((b, i) => b !== value.charCodeAt(i))) throw fail('_codecs.encode: text has characters outside latin1');
      return new PyBytes(out.length, () => out);
    }
    if (value instanceof PyLazyText) {
      const where = `${label}text at pickle offset ${value.offset - start}`;
      return new PyBytes(undefined, () => {
        const decoded = new TextDecoder('utf-8', { fatal: false }).decode(file.read(value.offset, value.length, where));
        const out = new Uint8Array(decoded.length);
        for (let i = 0; i < decoded.length; i++) {
          const c = decoded.charCodeAt(i);
          if (c > 255) throw invalidInput(file.path, where, 'text meant as latin1 bytes has characters outside latin1');
          out[i] = c;
        }
        return out;
      });
    }
    throw fail('_codecs.encode needs a string');
  };
  const setItems = (target: PyValue, items: PyValue[]) => {
    const dict = target instanceof PyCall && target.fn.opaque ? (target.items ??= new PyDict()) : target;
    if (!(dict instanceof PyDict)) throw fail('SETITEM(S) on something that is not a dict');
    if (items.length % 2) throw fail('SETITEMS with an odd number of values');
    for (let i = 0; i < items.length; i += 2) dict.entries.set(items[i]!, items[i + 1]!);
  };
  const append = (target: PyValue, items: PyValue[]) => {
    const list = target instanceof PyCall && target.fn.opaque ? (target.listItems ??= []) : target;
    if (!Array.isArray(list)) throw fail('APPEND(S) on something that is not a list');
    for (const item of items) list.push(item);
  };

  for (;;) {
    opAt = pos;
    const op = u8();
    switch (op) {
      case 0x80: { // PROTO
        const protocol = u8();
        if (protocol > 5) throw fail(`pickle protocol ${protocol} is newer than 5`);
        break;
      }
      case 0x95: u64(); break; // FRAME: a read-ahead hint
      case 0x2e: { // STOP
        const value = pop();
        return { value, end: pos, opaque: [...opaque] };
      }
      case 0x28: marks.push(stack.length); stack.push(MARK); break; // MARK
      case 0x30: pop(); break; // POP
      case 0x31: popMark(); break; // POP_MARK
      case 0x32: push(top()); break; // DUP
      case 0x4e: push(null); break; // NONE
      case 0x88: push(true); break; // NEWTRUE
      case 0x89: push(false); break; // NEWFALSE
      case 0x4a: push(i32()); break; // BININT
      case 0x4b: push(u8()); break; // BININT1
      case 0x4d: push(u16()); break; // BININT2
      case 0x8a: push(signed(bytes(u8()))); break; // LONG1
      case 0x8b: { // LONG4
        const n = i32();
        if (n < 0 || n > 4096) throw fail(`LONG4 of ${n} bytes`);
        push(signed(bytes(n)));
        break;
      }
      case 0x47: push(view(8).getFloat64(0, false)); break; // BINFLOAT (big-endian)
      case 0x58: push(text(u32())); break; // BINUNICODE
      case 0x8c: push(utf8(u8())); break; // SHORT_BINUNICODE
      case 0x8d: push(text(u64())); break; // BINUNICODE8
      // Python 2 str: text for names, raw bytes when long (array data from Python 2 pickles).
      case 0x55: push(latin1(u8())); break; // SHORT_BINSTRING
      case 0x54: { // BINSTRING
        const n = i32();
        if (n < 0) throw fail('BINSTRING with a negative length');
        push(n <= INLINE_BYTES ? latin1(n) : payload(n));
        break;
      }
      case 0x43: push(payload(u8())); break; // SHORT_BINBYTES
      case 0x42: push(payload(u32())); break; // BINBYTES
      case 0x8e: push(payload(u64())); break; // BINBYTES8
      case 0x96: push(payload(u64())); break; // BYTEARRAY8
      case 0x29: push(new PyTuple([])); break; // EMPTY_TUPLE
      case 0x74: push(new PyTuple(popMark())); break; // TUPLE
      case 0x85: push(new PyTuple([pop()])); break; // TUPLE1
      case 0x86: { const b = pop(); push(new PyTuple([pop(), b])); break; } // TUPLE2
      case 0x87: { const c = pop(); const b = pop(); push(new PyTuple([pop(), b, c])); break; } // TUPLE3
      case 0x5d: push([]); break; // EMPTY_LIST
      case 0x6c: push(popMark()); break; // LIST
      case 0x7d: push(new PyDict()); break; // EMPTY_DICT
      case 0x64: { const d = new PyDict(); setItems(d, popMark()); push(d); break; } // DICT
      case 0x8f: push(new PySet([])); break; // EMPTY_SET
      case 0x91: push(new PySet(popMark())); break; // FROZENSET
      case 0x90: { // ADDITEMS
        const items = popMark();
        const s = top();
        if (!(s instanceof PySet)) throw fail('ADDITEMS on something that is not a set');
        for (const item of items) s.items.push(item);
        break;
      }
      case 0x61: { const v = pop(); append(top(), [v]); break; } // APPEND
      case 0x65: { const items = popMark(); append(top(), items); break; } // APPENDS
      case 0x73: { const v = pop(); const k = pop(); setItems(top(), [k, v]); break; } // SETITEM
      case 0x75: { const items = popMark(); setItems(top(), items); break; } // SETITEMS
      case 0x71: memo.set(u8(), top()); break; // BINPUT
      case 0x72: memo.set(u32(), top()); break; // LONG_BINPUT
      case 0x94: memo.set(memo.size, top()); break; // MEMOIZE
      case 0x68: push(getMemo(u8())); break; // BINGET
      case 0x6a: push(getMemo(u32())); break; // LONG_BINGET
      case 0x63: { // GLOBAL "module\nname\n"
        const module = line('GLOBAL name', MAX_NAME);
        push(global(module, line('GLOBAL name', MAX_NAME)));
        break;
      }
      case 0x69: { // INST "module\nname\n": cls(*items above the mark)
        const module = line('INST name', MAX_NAME);
        const cls = global(module, line('INST name', MAX_NAME));
        push(call(cls, new PyTuple(popMark())));
        break;
      }
      case 0x6f: { // OBJ: items above the mark are cls, *args
        const [cls, ...args] = popMark();
        push(call(cls ?? null, new PyTuple(args)));
        break;
      }
      // Protocol 0 spells numbers, strings, memo indices and persistent ids as text lines.
      case 0x49: { // INT
        const text = line('INT');
        push(text === '01' ? true : text === '00' ? false : decimal(text, 'INT'));
        break;
      }
      case 0x4c: push(decimal(line('LONG').replace(/L$/, ''), 'LONG')); break; // LONG
      case 0x46: { // FLOAT
        const text = line('FLOAT');
        const v = Number(text);
        if (text.trim() === '' || (Number.isNaN(v) && !/^-?nan$/i.test(text))) throw fail(`FLOAT '${text.slice(0, 40)}' is not a number`);
        push(v);
        break;
      }
      case 0x53: push(pythonStringLiteral(line('STRING'), fail)); break; // STRING
      case 0x56: push(rawUnicodeEscape(line('UNICODE'))); break; // UNICODE
      case 0x70: memo.set(memoIndex(line('PUT')), top()); break; // PUT
      case 0x67: push(getMemo(memoIndex(line('GET')))); break; // GET
      case 0x50: push(new PyPersistent(line('PERSID'))); break; // PERSID
      case 0x93: { // STACK_GLOBAL
        const name = str(pop(), 'STACK_GLOBAL name');
        push(global(str(pop(), 'STACK_GLOBAL module'), name));
        break;
      }
      case 0x52: { const args = pop(); push(call(pop(), args)); break; } // REDUCE
      case 0x81: { const args = pop(); push(call(pop(), args)); break; } // NEWOBJ
      case 0x92: { // NEWOBJ_EX
        const kwargs = pop();
        if (!(kwargs instanceof PyDict) || kwargs.entries.size) throw fail('NEWOBJ_EX with keyword arguments');
        const args = pop();
        push(call(pop(), args));
        break;
      }
      case 0x62: { // BUILD
        const state = pop();
        const target = top();
        if (target instanceof PyCall) target.state = state;
        else if (target instanceof PyDict) target.attributes = state;
        else throw fail('BUILD on something that is not an object');
        break;
      }
      case 0x51: push(new PyPersistent(pop())); break; // BINPERSID
      default:
        throw fail(`unsupported pickle opcode 0x${op.toString(16).padStart(2, '0')}${op >= 0x20 && op < 0x7f ? ` ('${String.fromCharCode(op)}')` : ''}`);
    }
  }
}

/** A Python 2 `repr` of a str, as protocol 0's STRING writes it: quoted, with backslash escapes. */
function pythonStringLiteral(text: string, fail: (detail: string) => Error): string {
  const quote = text[0];
  if ((quote !== "'" && quote !== '"') || text.length < 2 || text[text.length - 1] !== quote) throw fail('STRING argument is not a quoted string');
  const body = text.slice(1, -1);
  const escapes: Record<string, string> = { n: '\n', t: '\t', r: '\r', '\\': '\\', "'": "'", '"': '"', a: '\x07', b: '\b', f: '\f', v: '\v' };
  return body.replace(/\\(x[0-9a-fA-F]{2}|[0-7]{1,3}|.)/g, (_, e: string) => {
    if (e[0] === 'x') return String.fromCharCode(parseInt(e.slice(1), 16));
    if (/^[0-7]+$/.test(e)) return String.fromCharCode(parseInt(e, 8) & 0xff);
    return escapes[e] ?? `\\${e}`;
  });
}

/** Python's `raw-unicode-escape`: latin1 text with `\uXXXX` and `\UXXXXXXXX` escapes. */
function rawUnicodeEscape(text: string): string {
  return text.replace(/\\u([0-9a-fA-F]{4})|\\U([0-9a-fA-F]{8})/g, (_, u?: string, U?: string) => String.fromCodePoint(parseInt(u ?? U!, 16)));
}

/**
 * Globals whose only use in a pickle is to run code when Python loads it: the shell, the
 * interpreter, the import system, files and sockets. A small denylist by design — the allowlist
 * (what a reader knows) decides what is read; this only decides what is refused even when reading
 * leniently.
 */
const CODE_MODULES = /^(os|posix|nt|subprocess|sys|runpy|importlib|imp|pickle|_pickle|cPickle|marshal|shutil|socket|pty|ctypes|code|codeop|webbrowser|multiprocessing|asyncio|pdb|bdb|commands|popen2|ftplib|httplib|http|urllib|urllib2|requests|telnetlib|smtplib|tempfile|glob|io|_io|types|inspect|timeit|distutils|setuptools|pip|platform|signal|threading|_thread|operator|functools|dill|torch\.hub|torch\.jit(?!\._pickle)|torch\.package)(\.|$)/;
const CODE_BUILTINS = new Set(['eval', 'exec', 'execfile', 'compile', 'open', 'file', '__import__', 'getattr', 'setattr', 'delattr', 'globals', 'locals', 'vars', 'input', 'raw_input', 'breakpoint', 'apply', 'reload']);

/** Why a global runs code when Python unpickles it, or undefined when it is not one of those. */
export function codeRunningGlobal(qualified: string): string | undefined {
  const dot = qualified.lastIndexOf('.');
  const module = qualified.slice(0, dot);
  const name = qualified.slice(dot + 1);
  if ((module === 'builtins' || module === '__builtin__') && CODE_BUILTINS.has(name)) return `is Python's ${name}(), which loading would call`;
  if (CODE_MODULES.test(module)) return `comes from module '${module}', which can run commands, code or I/O when the file is loaded`;
  if (/^(numpy|numpy\.lib\.npyio|numpy\.core\.numeric)$/.test(module) && /^(load|loads|fromfile|save|savetxt|loadtxt)$/.test(name)) return 'reads or writes files when the file is loaded';
  if (/^torch(\..*)?$/.test(module) && /^(load|save|hub|compile)$/.test(name)) return 'reads files or runs code when the file is loaded';
  return undefined;
}

/** Nesting deeper than this is refused: no checkpoint needs it, and walking it could exhaust the stack. */
export const MAX_DEPTH = 100;

/**
 * Visits every value reachable from `root` with the container keys that lead to it, depth first
 * in insertion order. A container met twice (shared, or a cycle) is entered once. `visit` returns
 * true to stop descending into a value it has taken.
 */
export function walk(root: PyValue, visit: (path: readonly string[], value: PyValue) => boolean, fail: (detail: string) => Error): void {
  const seen = new Set<object>();
  const go = (path: string[], value: PyValue) => {
    if (path.length > MAX_DEPTH) throw fail(`containers nested deeper than ${MAX_DEPTH} levels`);
    if (visit(path, value)) return;
    const children: [string, PyValue][] = [];
    if (value instanceof PyDict) for (const [k, v] of value.entries) children.push([keyText(k), v]);
    else if (Array.isArray(value)) value.forEach((v, i) => children.push([String(i), v]));
    else if (value instanceof PyTuple) value.items.forEach((v, i) => children.push([String(i), v]));
    else if (value instanceof PyCall && value.fn.opaque) children.push(...objectAttributes(value));
    else return;
    if (seen.has(value)) return;
    seen.add(value);
    for (const [k, v] of children) go([...path, k], v);
  };
  go([], root);
}

/**
 * What an opaque object holds, keyed as Python would reach it: its BUILD state (`__dict__`, or the
 * `(dict, slots)` pair), then items SETITEMS/APPENDS added. A pickled `nn.Module` keeps its
 * tensors under `_parameters` / `_buffers` / `_modules` there.
 */
function objectAttributes(object: PyCall): [string, PyValue][] {
  const out: [string, PyValue][] = [];
  const state = object.state;
  const dicts = state instanceof PyDict ? [state] : state instanceof PyTuple ? state.items.filter((s): s is PyDict => s instanceof PyDict) : [];
  for (const d of dicts) for (const [k, v] of d.entries) out.push([keyText(k), v]);
  if (object.items) for (const [k, v] of object.items.entries) out.push([keyText(k), v]);
  object.listItems?.forEach((v, i) => out.push([String(i), v]));
  return out;
}

function keyText(key: PyValue): string {
  if (typeof key === 'string' || typeof key === 'number' || typeof key === 'bigint' || typeof key === 'boolean') return String(key);
  if (key === null) return 'None';
  if (key instanceof PyTuple) return key.items.map(keyText).join(',');
  return '?';
}

/** A small integer argument, or undefined when it is not one. */
export function asInt(v: PyValue | undefined): number | undefined {
  return typeof v === 'number' && Number.isSafeInteger(v) ? v : undefined;
}

/** A tuple (or list) of safe integers, e.g. a shape. */
export function asInts(v: PyValue | undefined): number[] | undefined {
  const items = v instanceof PyTuple ? v.items : Array.isArray(v) ? v : undefined;
  if (!items) return undefined;
  const out = items.map(asInt);
  return out.every((x) => x !== undefined) ? (out as number[]) : undefined;
}
