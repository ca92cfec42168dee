import * as fs from 'node:fs';
import * as nodePath from 'node:path';
import { invalidInput } from './core/errors.js';
import { archives } from './core/on-demand.js';
import { hubModelUrl, inFolder, isArchiveName, isHubId, isUrl, isLocalPath, listFolder, locationIsFolder } from './core/location.js';
import { disposable, type OpenedStateDict, type OpenOptions } from './core/statedict.js';
import type { Detection, FormatReader } from './formats/types.js';
import { READERS } from './formats/index.js';
import { withProbe } from './formats/probe.js';

/** Which reader recognizes this file or folder from its content; undefined when none does. */
export function detectFormat(path: string): string | undefined {
  const model = modelPath(path);
  return (model.found ?? detect(model.file))?.reader.name;
}

/**
 * Opens a checkpoint and returns its normalized state dict. The format comes from the content
 * (magic bytes, structure), never from the file name. Only metadata is read here; each tensor's
 * values are read when its `read()` is called.
 */
export async function open(path: string, options: OpenOptions = {}): Promise<OpenedStateDict> {
  const model = modelPath(path);
  const file = model.file;
  const found = model.found ?? detect(file);
  if (!found) {
    throw invalidInput(file, undefined, `unrecognized format; expected one of: ${READERS.map((r) => r.name).join(', ')}`, 'unknown-format');
  }
  const settings = { ...openDefaults, ...options };
  const dict = disposable(await found.reader.open(file, settings, found.detection));
  const opaque = dict.metadata.opaqueGlobals;
  if (Array.isArray(opaque) && opaque.length) {
    const warn = settings.onWarning ?? ((message: string) => process.stderr.write(`ckpt: warning: ${message}\n`));
    warn(`${file}: read ${opaque.join(', ')} as opaque values, without running anything; tensors outside them opened (--strict-pickle refuses such files; \`ckpt scan\` tells whether torch.load(weights_only=True) loads it)`);
  }
  return dict;
}

let openDefaults: OpenOptions = {};

/** Options every later `open` starts from (the CLI's global `--strict-pickle`); a call's own options win. */
export function setOpenDefaults(defaults: OpenOptions): void {
  openDefaults = { ...defaults };
}

/** The reader that recognizes a file, with what its detection parsed. */
interface Found {
  reader: FormatReader;
  detection: Detection;
}

function detect(path: string): Found | undefined {
  return withProbe(path, (probe) => {
    const reader = READERS.find((r) => r.match(probe));
    return reader && { reader, detection: probe.detection };
  });
}

/** The model to open, with its detection where finding it already probed it (open then probes it no second time). */
interface ModelPath {
  file: string;
  found?: Found;
}

/** `path` as the model when a reader recognizes it. */
function detected(path: string): Required<ModelPath> | undefined {
  const found = detect(path);
  return found && { file: path, found };
}

/** A folder is looked into for its model only up to this many files: a data folder is not searched. */
const MAX_FOLDER_FILES = 256;
/** Files beside a model that look like one but hold no weights: Paddle inference's parameter-name pickle. */
const NOT_A_MODEL = /\.pdiparams\.info$/;

/**
 * What people pass, as the model to open: a TensorFlow checkpoint prefix (`…/cp-0000.ckpt`, as
 * TensorFlow takes it) is its `.index`; a folder no reader takes as a whole (a PEFT adapter with
 * its adapter_config.json, a folder with one TF.js model under another name than model.json) is
 * the one model file in it. A folder with several is refused, naming them.
 */
function modelPath(path: string): ModelPath {
  if (isHubId(path)) return modelPath(hubModelUrl(path));
  if (isUrl(path) && isArchiveName(new URL(path).pathname)) return modelPath(`${path}!`);
  if (!isLocalPath(path)) {
    if (!locationIsFolder(path)) return { file: path };
    // An archive of one folder (`tar -c model/`) is looked into that folder.
    const archive = path.endsWith('!') ? archives().archiveSoleFolder(path.slice(0, -1)) : undefined;
    if (archive) return modelPath(`${path}${archive}`);
    const files = listFolder(path).map((name) => inFolder(path, name));
    return detected(path) ?? modelInFolder(path, files);
  }
  const stat = statOrUndefined(path);
  if (!stat) return { file: statOrUndefined(`${path}.index`)?.isFile() ? `${path}.index` : path };
  if (stat.isFile() && isArchiveName(path)) {
    // An archive no reader takes as a model (a .tar of weights, a zipped TF.js model) is looked into like a folder.
    return detected(path) ?? modelPath(`${path}!`);
  }
  if (!stat.isDirectory()) return { file: path };
  const model = detected(path);
  if (model) return model;
  let entries: fs.Dirent[];
  try {
    entries = fs.readdirSync(path, { withFileTypes: true });
  } catch {
    return { file: path }; // the reader's own error names the folder
  }
  // Regular files only: a FIFO or device in the folder is never opened.
  return modelInFolder(path, entries.filter((e) => e.isFile()).map((e) => nodePath.join(path, e.name)));
}

/** The one model among the files of a folder no reader takes as a whole (a manifest before the shards it names); the folder itself when none is. */
function modelInFolder(path: string, all: string[]): ModelPath {
  const files = all.filter((file) => !NOT_A_MODEL.test(file)).sort();
  if (files.length > MAX_FOLDER_FILES) {
    throw invalidInput(path, undefined, `a folder of ${files.length} files is not searched for a model; name the model file`);
  }
  const models = files.flatMap((file) => {
    try {
      const model = detected(file);
      return model ? [model] : [];
    } catch {
      return []; // unreadable files are not candidates
    }
  });
  // A manifest (TF.js weights manifest, sharded index) names its shards, which are then no models of their own.
  const manifests = models.filter((m) => m.found.reader.name === 'tfjs' || m.found.reader.name === 'sharded');
  const candidates = manifests.length ? manifests : models;
  if (candidates.length === 1) return candidates[0]!;
  if (candidates.length > 1) {
    throw invalidInput(path, undefined, `the folder holds ${candidates.length} models (${candidates.map((m) => `${nodePath.basename(m.file.replace(/^.*!/, ''))}: ${m.found.reader.name}`).join(', ')}); name the one to open`);
  }
  return { file: path };
}

/** Undefined for a path that cannot be stat()ed: the reader's probe then reports why, naming it. */
function statOrUndefined(path: string): fs.Stats | undefined {
  try {
    return fs.statSync(path);
  } catch {
    return undefined;
  }
}
