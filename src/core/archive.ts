import * as fs from 'node:fs';
import * as path from 'node:path';
import { invalidInput, ioError } from './errors.js';
import { LocalFile, RandomAccessFile } from './file.js';
import { downloadToTemporary, inflateToFile, temporaryFolder } from './http-source.js';
import { isSafeMemberName, readZipDirectory, zipDataOffset } from './zip.js';
import { ByteSource } from './source.js';

/**
 * Models inside `.tar`, `.tar.gz`/`.tgz` and `.zip` archives, named `ARCHIVE!member`. A stored
 * member is read in place, by ranges of the archive (local or remote); a compressed one is
 * inflated once to a temporary file (streamed: memory stays bounded). Members whose names would
 * leave the archive (`..`, absolute) and links are not listed, so nothing resolves to them.
 */
interface Member {
  readonly size: number;
  /** Where a stored member's bytes start in `source`. */
  readonly offset?: number;
  /** How to get a compressed member's bytes: inflated to a file on first open. */
  readonly deflated?: { start: number; length: number };
  inflated?: string;
}

interface Archive {
  readonly location: string;
  readonly source: ByteSource;
  readonly members: Map<string, Member>;
}

const archives = new Map<string, Archive>();

function loadArchive(location: string): Archive {
  let archive = archives.get(location);
  if (!archive) {
    let source = RandomAccessFile.open(location);
    if (/\.(tgz|tar\.gz)$/i.test(location)) {
      // gzip has no random access: the tar inside is inflated once to a temporary file.
      const local = source instanceof LocalFile ? location : downloadToTemporary(location);
      source.close();
      const tar = path.join(fs.mkdtempSync(path.join(temporaryFolder(), 'tar-')), 'archive.tar');
      inflateToFile(local, 0, fs.statSync(local).size, 'gzip', tar, location);
      source = LocalFile.open(tar);
    }
    const members = /\.zip$/i.test(location) ? zipMembers(source) : tarMembers(source, location);
    archive = { location, source, members };
    archives.set(location, archive);
  }
  return archive;
}

function zipMembers(source: ByteSource): Map<string, Member> {
  const members = new Map<string, Member>();
  for (const entry of readZipDirectory(source)) {
    if (entry.name.endsWith('/') || !isSafeMemberName(entry.name)) continue;
    const start = zipDataOffset(source, entry);
    members.set(entry.name.replace(/^\.\//, ''), entry.method === 0
      ? { size: entry.size, offset: start }
      : { size: entry.size, deflated: { start, length: entry.compressedSize } });
  }
  return members;
}

const BLOCK = 512;

/** ustar/GNU/pax tar headers, walked from the start; regular files only. */
function tarMembers(source: ByteSource, location: string): Map<string, Member> {
  const members = new Map<string, Member>();
  const decoder = new TextDecoder();
  const text = (bytes: Uint8Array) => decoder.decode(bytes.subarray(0, bytes.indexOf(0) === -1 ? bytes.length : bytes.indexOf(0)));
  let offset = 0;
  let longName: string | undefined;
  while (offset + BLOCK <= source.size) {
    const header = source.bytesAt(offset, BLOCK, 'tar header');
    if (header.every((b) => b === 0)) break;
    const where = `tar header at offset ${offset}`;
    const size = tarNumber(header.subarray(124, 136), location, where);
    const type = String.fromCharCode(header[156]!);
    const dataStart = offset + BLOCK;
    if (dataStart + size > source.size) throw invalidInput(location, where, `member of ${size} bytes extends past the end of the archive (truncated?)`);
    const prefix = decoder.decode(header.subarray(257, 262)) === 'ustar' ? text(header.subarray(345, 500)) : '';
    const name = longName ?? (prefix ? `${prefix}/${text(header.subarray(0, 100))}` : text(header.subarray(0, 100)));
    longName = undefined;
    if (type === 'L') {
      longName = text(source.read(dataStart, Math.min(size, 64 * 1024), 'tar long name'));
    } else if (type === 'x') {
      const pax = text(source.read(dataStart, Math.min(size, 64 * 1024), 'tar pax header'));
      longName = /(?:^|\n)\d+ path=([^\n]*)\n/.exec(pax)?.[1];
    } else if (type === '0' || type === '\0' || type === '7') {
      const clean = name.replace(/^\.\//, '');
      if (isSafeMemberName(clean)) members.set(clean, { size, offset: dataStart });
    }
    offset = dataStart + Math.ceil(size / BLOCK) * BLOCK;
  }
  return members;
}

/** Octal (NUL/space padded), or base-256 big-endian when the high bit is set (GNU, files ≥ 8 GiB). */
function tarNumber(field: Uint8Array, location: string, where: string): number {
  if (field[0]! & 0x80) {
    let value = field[0]! & 0x7f;
    for (const b of field.subarray(1)) value = value * 256 + b;
    return value;
  }
  const digits = new TextDecoder().decode(field).replace(/[\0 ]+$/, '').trim();
  if (!/^[0-7]*$/.test(digits)) throw invalidInput(location, where, `size field '${digits}' is not octal; expected a tar archive`);
  return digits === '' ? 0 : parseInt(digits, 8);
}

function memberOf(archiveLocation: string, name: string): { archive: Archive; member: Member } {
  const archive = loadArchive(archiveLocation);
  const member = archive.members.get(name);
  if (!member) {
    const sample = [...archive.members.keys()].slice(0, 8).join(', ');
    throw ioError(`${archiveLocation}!${name}`, undefined, `no such member in the archive (it holds ${archive.members.size} files${sample ? `: ${sample}${archive.members.size > 8 ? ', …' : ''}` : ''})`, 'not-found');
  }
  return { archive, member };
}

export function archiveMember(archiveLocation: string, name: string): ByteSource {
  const { archive, member } = memberOf(archiveLocation, name);
  const label = `${archiveLocation}!${name}`;
  if (member.deflated) {
    if (!member.inflated) {
      const local = archive.source instanceof LocalFile ? archiveLocation : downloadToTemporary(archiveLocation);
      const out = path.join(fs.mkdtempSync(path.join(temporaryFolder(), 'member-')), path.basename(name));
      inflateToFile(local, member.deflated.start, member.deflated.length, 'raw', out, label, member.size);
      member.inflated = out;
    }
    return new MemberSource(label, LocalFile.open(member.inflated), 0, member.size, true);
  }
  return new MemberSource(label, archive.source, member.offset!, member.size);
}

export function archiveMemberSize(archiveLocation: string, name: string): number {
  return memberOf(archiveLocation, name).member.size;
}

/** Whether `folder` ('' for the top) holds members. */
export function isArchiveFolder(archiveLocation: string, folder: string): boolean {
  if (folder === '') return true;
  return [...loadArchive(archiveLocation).members.keys()].some((name) => name.startsWith(`${folder}/`));
}

/** The files directly in `folder` of the archive ('' for the top), as names. */
export function archiveFolderFiles(archiveLocation: string, folder: string): string[] {
  const prefix = folder ? `${folder}/` : '';
  return [...loadArchive(archiveLocation).members.keys()]
    .filter((name) => name.startsWith(prefix) && !name.slice(prefix.length).includes('/'))
    .map((name) => name.slice(prefix.length))
    .sort();
}

/** The one folder holding every member (an archive of `model/…`), if there is one. */
export function archiveSoleFolder(archiveLocation: string): string | undefined {
  const tops = new Set([...loadArchive(archiveLocation).members.keys()].map((name) => (name.includes('/') ? name.slice(0, name.indexOf('/')) : '')));
  const [only] = tops;
  return tops.size === 1 && only ? only : undefined;
}

/** A window of another source: a stored archive member. */
class MemberSource extends ByteSource {
  constructor(label: string, private readonly base: ByteSource, private readonly start: number, size: number, private readonly ownsBase = false) {
    super(label, size, 8 * 1024, 1 << 20);
  }

  protected fetch(out: Uint8Array, position: number): void {
    const before = this.base.bytesRead;
    out.set(this.base.read(this.start + position, out.length, this.path));
    this.bytesRead += this.base.bytesRead - before;
  }

  close(): void {
    if (this.ownsBase) this.base.close();
  }
}
