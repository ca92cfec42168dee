import { fromSystemError, invalidInput } from '../../core/errors.js';
import { readTextFile } from '../../core/file.js';
import { folderHas, inFolder, locationIsFolder, locationSize } from '../../core/location.js';
import type { Probe } from '../types.js';

/** model.json is parsed whole: cap it so that a huge or hostile file is refused, not loaded. */
export const MAX_MODEL_JSON = 256 * 1024 * 1024;

/** The JSON file of a model given as its folder or as the file itself. */
export function modelJsonPath(input: string): string {
  try {
    return locationIsFolder(input) ? inFolder(input, 'model.json') : input;
  } catch (err) {
    throw fromSystemError(input, undefined, err);
  }
}

export function readModelJson(file: string): unknown {
  let text: string;
  try {
    const size = locationSize(file);
    if (size > MAX_MODEL_JSON) throw invalidInput(file, undefined, `${size} bytes is more than the ${MAX_MODEL_JSON} bytes ckpt parses as a model.json`);
    text = readTextFile(file);
  } catch (err) {
    throw fromSystemError(file, undefined, err);
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw invalidInput(file, undefined, `not valid JSON (${(err as Error).message})`);
  }
}

/** The keys a TF.js model.json is known by. */
const MODEL_KEY = /"(weightsManifest|modelTopology)"\s*:/;
/** A bare manifest: an array whose first group has `paths` and `weights`. */
const MANIFEST_START = /^\[\s*\{/;

/**
 * A folder with a model.json, or JSON that is a TF.js model or weights manifest. Decided from the
 * first bytes when their keys show; otherwise (keys past the head) by parsing the file, within the cap.
 */
export function looksLikeTfjs(probe: Probe): boolean {
  if (probe.isDirectory) return folderHas(probe.path, 'model.json');
  const head = new TextDecoder().decode(probe.head).trimStart();
  if (head.startsWith('{') && MODEL_KEY.test(head)) return true;
  if (MANIFEST_START.test(head) && head.includes('"paths"') && head.includes('"weights"')) return true;
  if (!head.startsWith('{') && !head.startsWith('[')) return false;
  if (probe.size > MAX_MODEL_JSON) return false;
  let json: unknown;
  try {
    json = JSON.parse(readTextFile(probe.path));
  } catch {
    return false;
  }
  if (Array.isArray(json)) return json.length > 0 && json.every((g) => typeof g === 'object' && g !== null && 'paths' in g && 'weights' in g);
  return typeof json === 'object' && json !== null && ('weightsManifest' in json || 'modelTopology' in json);
}
