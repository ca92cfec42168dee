import type { RandomAccessFile } from '../../core/file.js';
import { MAX_DEPTH, PyCall, PyDict, PyTuple, type PickleOptions, type PyValue } from '../../core/pickle.js';
import { readZipEntry, type ZipEntry } from '../../core/zip.js';
import { interpret, isTensorCall, TORCH_ALLOWED, TORCH_UNSUPPORTED, type Interpreted, type StorageRef } from './tensors.js';

/**
 * TorchScript archives (`torch.jit.save`): `data.pkl` pickles the module tree as `__torch__.*`
 * objects whose BUILD state is a dict of attributes. They stay inert markers here: the code is
 * read as text only for each class's `__parameters__` and `__buffers__`, so the listing is
 * exactly what `state_dict()` names (`conv1.weight`), never by running anything.
 */

/** `__torch__.*` classes are the archive's own module types; everything else as for torch.save. */
class ScriptGlobals extends Set<string> {
  override has(name: string): boolean {
    return super.has(name) || name.startsWith('__torch__.');
  }
}

/** Quantized tensors live in packed-params objects outside state_dict; they are allowed to parse and not listed. */
const QUANTIZED = ['torch._utils._rebuild_qtensor', 'torch.QInt8Storage', 'torch.QUInt8Storage', 'torch.QInt32Storage', 'torch.per_tensor_affine', 'torch.per_channel_affine', 'torch.qint8', 'torch.quint8', 'torch.qint32'];

/** TorchScript's typed-container builders (`build_intlist([1, 2])` is the list): inert calls, never listed as tensors. */
const CONTAINERS = ['build_intlist', 'build_doublelist', 'build_boollist', 'build_tensorlist', 'build_complexlist', 'restore_type_tag'].map((f) => `torch.jit._pickle.${f}`);

export const SCRIPT_PICKLE: Omit<PickleOptions, 'label'> = {
  allowed: new ScriptGlobals([...TORCH_ALLOWED, ...QUANTIZED, ...CONTAINERS]),
  unsupported: new Map([...TORCH_UNSUPPORTED].filter(([name]) => name !== 'torch._utils._rebuild_qtensor')),
};

interface ModuleClass {
  readonly parameters: readonly string[];
  readonly buffers: readonly string[];
}

/** The code of a whole archive is read for class declarations only; more than this is not a model's code. */
const MAX_CODE_BYTES = 64 << 20;

/** `__torch__.a.b.Class` → its declared parameters and buffers, from the archive's `code/` text. */
export function moduleClasses(raf: RandomAccessFile, entries: readonly ZipEntry[], prefix: string): Map<string, ModuleClass> {
  const classes = new Map<string, ModuleClass>();
  let total = 0;
  const decoder = new TextDecoder();
  for (const entry of entries) {
    if (!entry.name.startsWith(`${prefix}code/__torch__/`) || !entry.name.endsWith('.py')) continue;
    total += entry.size;
    if (total > MAX_CODE_BYTES) break;
    const module = entry.name.slice(`${prefix}code/`.length, -'.py'.length).split('/').join('.');
    let current: { name: string; parameters: string[]; buffers: string[] } | undefined;
    for (const line of decoder.decode(readZipEntry(raf, entry, MAX_CODE_BYTES)).split('\n')) {
      const header = /^class (\w+)\(/.exec(line);
      if (header) {
        current = { name: header[1]!, parameters: [], buffers: [] };
        classes.set(`${module}.${current.name}`, current);
        continue;
      }
      const list = /^ {2}__(parameters|buffers)__ = \[(.*)\]\s*$/.exec(line);
      if (current && list) current[list[1] as 'parameters' | 'buffers'].push(...[...list[2]!.matchAll(/"([^"]*)"/g)].map((m) => m[1]!));
    }
  }
  return classes;
}

/**
 * The state dict of the module tree: each module's parameters, then its buffers, then its
 * submodules', dotted. Objects restored by `__setstate__` (a non-dict state, such as quantized
 * packed params) hold no state_dict entries; their tensors are counted in `notListed`.
 */
export function interpretScript(
  root: PyValue,
  classes: ReadonlyMap<string, ModuleClass>,
  storageOf: (id: PyValue, where: string) => StorageRef,
  fail: (where: string, detail: string) => Error,
): Interpreted & { notListed: number } {
  const tensors: Interpreted['tensors'] = [];
  let notListed = 0;
  const isModule = (v: PyValue | undefined): v is PyCall => v instanceof PyCall && v.fn.module.startsWith('__torch__.');
  const visit = (module: PyCall, prefix: string, depth: number) => {
    if (depth > MAX_DEPTH) throw fail(prefix || 'data.pkl', `modules nested deeper than ${MAX_DEPTH} levels`);
    const state = module.state;
    if (!(state instanceof PyDict)) {
      notListed += countTensors(state);
      return;
    }
    const declared = classes.get(module.fn.qualified);
    const attributes = new Map([...state.entries].filter((e): e is [string, PyValue] => typeof e[0] === 'string'));
    const named = declared ? [...declared.parameters, ...declared.buffers] : [...attributes.keys()].filter((k) => isTensorCall(attributes.get(k)!));
    for (const key of named) {
      const value = attributes.get(key);
      if (value === undefined || value === null) continue; // an optional parameter left out (bias=False)
      const where = `attribute '${prefix}${key}'`;
      if (!isTensorCall(value)) throw fail(where, 'is declared a parameter or buffer but holds no plain tensor');
      for (const record of interpret(value, storageOf, (at, detail) => fail(where, `${at}: ${detail}`)).tensors) tensors.push({ ...record, path: [`${prefix}${key}`] });
    }
    for (const [key, value] of attributes) {
      if (isModule(value)) visit(value, `${prefix}${key}.`, depth + 1);
      else if (!named.includes(key)) notListed += countTensors(value);
    }
  };
  if (!isModule(root)) throw fail('data.pkl', 'the root is not a scripted module (a __torch__.* object)');
  visit(root, '', 0);
  return { tensors, values: {}, notListed };
}

/** Tensors (plain and quantized) inside a value that is no state_dict entry. */
function countTensors(root: PyValue | undefined): number {
  let count = 0;
  const seen = new Set<object>();
  const go = (v: PyValue | undefined, depth: number) => {
    if (v === undefined || v === null || typeof v !== 'object' || seen.has(v) || depth > MAX_DEPTH) return;
    seen.add(v);
    if (v instanceof PyCall) {
      if (isTensorCall(v) || v.fn.qualified === 'torch._utils._rebuild_qtensor') count++;
      else [...v.args, v.state].forEach((a) => go(a, depth + 1));
    } else if (v instanceof PyDict) for (const x of v.entries.values()) go(x, depth + 1);
    else if (v instanceof PyTuple) v.items.forEach((x) => go(x, depth + 1));
    else if (Array.isArray(v)) v.forEach((x) => go(x, depth + 1));
  };
  go(root, 0);
  return count;
}
