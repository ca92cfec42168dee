import * as fs from 'node:fs';
import * as path from 'node:path';
import { invalidInput, usageError } from './errors.js';
import { LocalFile, relativeParts } from './file.js';
import { downloadWanted, hubEndpoint } from './remote-settings.js';
import { archives, crypto, remote } from './on-demand.js';
import type { ByteSource } from './source.js';

/**
 * Where a checkpoint is: a local path, an HTTP(S) URL, a Hugging Face id
 * (`hf://ORG/REPO[@REVISION]/PATH`), or a member of a `.tar`, `.tar.gz`/`.tgz` or `.zip`
 * archive (`ARCHIVE!member`). Readers get such a string as their path and open it, size it and
 * resolve its siblings through the functions here, which confine siblings as local folders are.
 */
export function isUrl(location: string): boolean {
  return /^https?:\/\//i.test(location);
}

export function isHubId(location: string): boolean {
  return location.startsWith('hf://');
}

export function isLocalPath(location: string): boolean {
  return !isUrl(location) && !isHubId(location) && splitArchiveLocation(location) === undefined;
}

/** Archives whose members are locations of their own (`ARCHIVE!member`). */
const ARCHIVE_SUFFIX = /\.(tar|tgz|tar\.gz|zip)$/i;

export function isArchiveName(location: string): boolean {
  return ARCHIVE_SUFFIX.test(location);
}

/** `a/b.tar!dir/model.json` → the archive and the member; undefined for other locations. */
export function splitArchiveLocation(location: string): { archive: string; member: string } | undefined {
  for (let i = location.indexOf('!'); i !== -1; i = location.indexOf('!', i + 1)) {
    const archive = location.slice(0, i);
    if (ARCHIVE_SUFFIX.test(archive)) return { archive, member: location.slice(i + 1).replace(/^\.\//, '').replace(/\/+$/, '') };
  }
  return undefined;
}

export function openLocation(location: string): ByteSource {
  if (isHubId(location)) return openLocation(hubFileUrl(location));
  const archive = splitArchiveLocation(location);
  if (archive) return archives().archiveMember(archive.archive, archive.member);
  try {
    return remote().HttpSource.open(location);
  } catch (err) {
    if (remote().isNoRangeError(err) && downloadWanted()) {
      process.stderr.write(`ckpt: ${remote().displayUrl(location)}: the server does not support range requests: downloading the whole file to a temporary file (--download)\n`);
      return LocalFile.open(remote().downloadToTemporary(location));
    }
    throw err;
  }
}

/** The size of the file at a location, without reading it. */
export function locationSize(location: string): number {
  if (isLocalPath(location)) return fs.statSync(location).size;
  if (isHubId(location)) return locationSize(hubFileUrl(location));
  const archive = splitArchiveLocation(location);
  if (archive) return archives().archiveMemberSize(archive.archive, archive.member);
  return remote().remoteSize(location);
}

/**
 * Asks the sizes of a remote model's sibling files (TF.js shards) all at once, so that sizing them
 * one by one afterwards costs no request. Errors are left to the one-by-one calls, which name the file.
 */
export function prefetchSizes(modelFile: string, names: string[]): void {
  if (!isUrl(modelFile) && !isHubId(modelFile)) return;
  try {
    remote().remoteSizes(names.map((name) => siblingLocation(modelFile, relativeParts(modelFile, name, 'shard'), 'shard')));
  } catch {
    // Reported by the caller's own reads.
  }
}

/** Whether a location is a folder (a remote URL never is: HTTP has no listing). */
export function locationIsFolder(location: string): boolean {
  if (isLocalPath(location)) return fs.statSync(location, { throwIfNoEntry: false })?.isDirectory() ?? false;
  const archive = splitArchiveLocation(location);
  return archive !== undefined && archives().isArchiveFolder(archive.archive, archive.member);
}

/**
 * A file named inside a remote model or an archive member, as a location under the same base: a
 * URL's folder (same host, same path prefix) or the member's folder in the archive. `parts` are
 * already free of `..` and absolute paths (relativeParts).
 */
export function siblingLocation(modelFile: string, parts: string[], where: string): string {
  const archive = splitArchiveLocation(modelFile);
  if (archive) {
    const folder = archive.member.includes('/') ? archive.member.slice(0, archive.member.lastIndexOf('/') + 1) : '';
    return `${archive.archive}!${folder}${parts.join('/')}`;
  }
  const url = new URL(isHubId(modelFile) ? hubFileUrl(modelFile) : modelFile);
  url.search = '';
  url.hash = '';
  const base = new URL('./', url);
  const sibling = new URL(parts.map(encodeURIComponent).join('/'), base);
  if (sibling.origin !== base.origin || !sibling.pathname.startsWith(base.pathname)) {
    throw invalidInput(modelFile, where, `file path '${parts.join('/')}' resolves outside ${base.href}`);
  }
  return sibling.href;
}

interface HubId { repo: string; revision: string; path: string }

/**
 * `hf://ORG/REPO[@REVISION][/PATH]` → its parts. A revision with slashes is either one of the Hub's
 * own refs (`refs/pr/N`, `refs/convert/NAME`), recognized as huggingface_hub's HfFileSystem does, or
 * percent-encoded (`@feature%2Fx`).
 */
export function parseHubId(location: string): HubId {
  const found = /^([\w.-]+\/[\w.-]+)(?:@(refs\/pr\/\d+|refs\/convert\/[\w.-]+|[^/]+))?(?:\/(.*))?$/.exec(location.slice('hf://'.length));
  const revision = found?.[2] === undefined ? 'main' : decodeRevision(found[2]);
  if (!found || revision === undefined || found[3]?.split('/').includes('..')) {
    throw usageError(`'${location}' is not a Hugging Face id; expected hf://ORG/REPO[@REVISION][/PATH] (a revision with '/' other than refs/pr/N written as %2F)`);
  }
  return { repo: found[1]!, revision, path: found[3]?.replace(/\/+$/, '') ?? '' };
}

function decodeRevision(text: string): string | undefined {
  try {
    const revision = decodeURIComponent(text);
    return revision.split('/').some((part) => part === '' || part === '.' || part === '..') ? undefined : revision;
  } catch {
    return undefined;
  }
}

function hubResolveUrl(id: HubId, file: string): string {
  const encoded = file.split('/').map(encodeURIComponent).join('/');
  return `${hubEndpoint()}/${id.repo}/resolve/${encodeURIComponent(id.revision)}/${encoded}`;
}

/** The download URL of a file in a Hub repo, as huggingface_hub builds it (`/{repo}/resolve/{revision}/{path}`). */
export function hubFileUrl(location: string): string {
  const id = parseHubId(location);
  if (!id.path) throw usageError(`'${location}' names a repository, not a file`);
  return hubResolveUrl(id, id.path);
}

/** Files people open a repo for, best first: the index of a sharded model before its shards. */
const HUB_MODEL_FILES = [
  'model.safetensors.index.json', 'model.safetensors', 'pytorch_model.bin.index.json', 'pytorch_model.bin',
  'model.onnx', 'onnx/model.onnx', 'model.json', 'tf_model.h5', 'model.h5', 'model.keras', 'adapter_model.safetensors',
];
const MAX_LISTING = 16 << 20;

/**
 * A Hub id as the URL of the model file to open: a file id as is; a repo or folder id through the
 * Hub's tree listing (`/api/models/{repo}/tree/{revision}/{path}`), taking the first of the usual
 * model file names, or the only safetensors/ONNX/bin file when none is there.
 */
export function hubModelUrl(location: string): string {
  const id = parseHubId(location);
  const looksLikeFile = /\.[A-Za-z0-9]+$/.test(id.path.split('/').at(-1) ?? '');
  if (looksLikeFile) return hubResolveUrl(id, id.path);
  const listingUrl = `${hubEndpoint()}/api/models/${id.repo}/tree/${encodeURIComponent(id.revision)}${id.path ? `/${id.path.split('/').map(encodeURIComponent).join('/')}` : ''}?recursive=true`;
  let files: string[];
  try {
    const listing = JSON.parse(remote().fetchText(listingUrl, MAX_LISTING, location)) as { type?: string; path?: string }[];
    files = listing.filter((e) => e.type === 'file' && typeof e.path === 'string').map((e) => e.path!);
  } catch (err) {
    if (err instanceof SyntaxError) throw invalidInput(location, 'tree listing', 'the Hub answered something that is not a JSON list of files');
    throw err;
  }
  const under = (name: string) => (id.path ? `${id.path}/${name}` : name);
  const chosen = HUB_MODEL_FILES.map(under).find((f) => files.includes(f))
    ?? only(files.filter((f) => /\.(safetensors|onnx|bin|pt|pth|h5|pdparams)$/.test(f)));
  if (!chosen) {
    throw invalidInput(location, undefined, `no model file found among ${files.length} files (looked for ${HUB_MODEL_FILES.join(', ')}); name the file: hf://${id.repo}/FILE`);
  }
  return hubResolveUrl(id, chosen);
}

function only(list: string[]): string | undefined {
  return list.length === 1 ? list[0] : undefined;
}

/** The names in a folder: a local folder (entries of any kind, refused by name when opened) or one inside an archive (files). */
export function listFolder(location: string): string[] {
  const archive = splitArchiveLocation(location);
  if (archive) return archives().archiveFolderFiles(archive.archive, archive.member);
  return fs.readdirSync(location).sort();
}

/** Whether a folder holds an entry of this name (locally of any kind: a FIFO there is then refused by name when opened). */
export function folderHas(folder: string, name: string): boolean {
  return isLocalPath(folder) ? fs.existsSync(path.join(folder, name)) : listFolder(folder).includes(name);
}

/** `folder` joined with `name`, for any kind of folder location. */
export function inFolder(folder: string, name: string): string {
  if (splitArchiveLocation(folder)) return folder.endsWith('!') ? `${folder}${name}` : `${folder}/${name}`;
  return path.join(folder, name);
}

/**
 * A local path for a location, for the libraries that read files themselves (onnxruntime, h5wasm):
 * the path itself when local, else the whole file copied to a temporary file (streamed), saying so.
 */
export function localCopy(location: string, why: string): string {
  if (isLocalPath(location)) return location;
  const url = isHubId(location) ? hubModelUrl(location) : location;
  process.stderr.write(`ckpt: ${isUrl(url) ? remote().displayUrl(url) : url}: ${why} reads local files: copying it whole to a temporary file\n`);
  if (isUrl(url)) return remote().downloadToTemporary(url);
  const source = openLocation(url);
  const out = path.join(fs.mkdtempSync(path.join(remote().temporaryFolder(), 'copy-')), path.basename(url.replace(/^.*!/, '')));
  const fd = fs.openSync(out, 'w', 0o600);
  try {
    for (let at = 0; at < source.size; at += COPY_CHUNK) fs.writeSync(fd, source.read(at, Math.min(COPY_CHUNK, source.size - at), 'copy'));
  } finally {
    fs.closeSync(fd);
    source.close();
  }
  return out;
}
const COPY_CHUNK = 8 << 20;

/**
 * SHA-256 naming the content at a non-local location, for plans that must notice a changed
 * source: a remote file's URL, ETag and size (hashing it would mean downloading it); an archive
 * member's bytes.
 */
export function locationSha256(location: string): string {
  const hash = crypto().createHash('sha256');
  const source = openLocation(location);
  try {
    if (source instanceof remote().HttpSource) hash.update(`${location}\n${source.version}`);
    else for (let at = 0; at < source.size; at += COPY_CHUNK) hash.update(source.read(at, Math.min(COPY_CHUNK, source.size - at), 'hash'));
  } finally {
    source.close();
  }
  return hash.digest('hex');
}
