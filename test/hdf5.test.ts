import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import h5wasm from 'h5wasm/node';
import { CkptError } from '../src/index.js';
import { LocalFile } from '../src/core/file.js';
import { ByteSource } from '../src/core/source.js';
import { attributeValue, Hdf5Dataset, Hdf5File, type Hdf5Object } from '../src/formats/hdf5/index.js';
import { lookup3 } from '../src/formats/hdf5/checksum.js';
import { CORPUS, ROOT, SAMPLES, runCli, tempDir } from './helpers.js';
import { python, pythonHas } from './python.js';

const HAS_H5PY = pythonHas('h5py');

interface Seen {
  groups: Record<string, string[]>;
  datasets: Record<string, { dtype: string; shape: number[]; sha256: string } | { error: string }>;
  attributes: Record<string, Record<string, unknown>>;
}

/** Everything ckpt's HDF5 reader sees in a file, in the shape the h5py fixture script prints. */
function walk(h5: Hdf5File): Seen {
  const seen: Seen = { groups: {}, datasets: {}, attributes: {} };
  const visited = new Set<number>();
  const visit = (object: Hdf5Object) => {
    if (visited.has(object.address)) return;
    visited.add(object.address);
    seen.attributes[object.path] = Object.fromEntries([...object.attributes().keys()].map((name) => {
      const value = attributeValue(object, name)!;
      return [name, value instanceof Uint8Array ? { hex: Buffer.from(value).toString('hex') } : value];
    }));
    if (object.isDataset()) {
      const dataset = new Hdf5Dataset(object);
      seen.datasets[object.path] = { dtype: dataset.dtype, shape: dataset.shape, sha256: createHash('sha256').update(dataset.read()).digest('hex') };
    } else if (object.isGroup()) {
      const links = object.links();
      seen.groups[object.path] = links.map((l) => l.name);
      for (const link of links) if (link.kind === 'hard') visit(h5.get(`${object.path === '/' ? '' : object.path}/${link.name}`)!);
    }
  };
  visit(h5.root());
  return seen;
}

function openFile(file: string): Hdf5File {
  return new Hdf5File(LocalFile.open(file), file);
}

/** A file in memory, as the reader's byte source: the fuzz test reads thousands of variants without writing them. */
class MemorySource extends ByteSource {
  constructor(private readonly bytes: Uint8Array) {
    super('fuzz.h5', bytes.length, 4096, 4096);
  }

  protected fetch(out: Uint8Array, position: number): void {
    out.set(this.bytes.subarray(position, position + out.length));
  }

  close(): void {}
}

await h5wasm.ready;

/** A small Keras weights file written by h5wasm. */
function kerasWeights(file: string): string {
  const f = new h5wasm.File(file, 'w');
  f.create_attribute('layer_names', ['d']);
  const g = f.create_group('d');
  g.create_attribute('weight_names', ['d/kernel:0']);
  g.create_group('d').create_dataset({ name: 'kernel:0', data: new Float32Array(16).fill(0.5), shape: [4, 4], dtype: '<f' });
  f.close();
  return file;
}

describe('HDF5 reader against h5py', { skip: !HAS_H5PY && 'Debian python3-h5py is not installed' }, () => {
  const dir = tempDir();
  const expected = HAS_H5PY ? JSON.parse(python(fs.readFileSync(path.join(ROOT, 'test', 'fixtures', 'hdf5-features.py'), 'utf8'), dir)) as Record<string, Seen & { path: string }> : {};
  const cases: Record<string, string> = {
    contiguous: 'superblock 0, old-style groups of several symbol-table nodes, contiguous storage, float16, big-endian, bool, scalar and empty datasets, fixed-length string attributes',
    chunked: 'chunked storage through a v1 B-tree (several levels), gzip + shuffle + Fletcher-32, edge chunks, fill values for chunks never written',
    compact: 'compact storage',
    latest: "libver='latest': superblock 3, version 2 object headers, link messages, dense links and attributes (fractal heap, v2 B-trees, a huge attribute), track_order groups, variable-length strings, fixed-array (paged), extensible-array (secondary blocks, unlimited first or last dimension), single-chunk and v2 B-tree chunk indexes, soft links",
    userblock: 'a 512-byte user block before the superblock',
  };
  /** A one-weight Keras weights file written by h5py: the kernel dataset's arguments, then more statements on `f`. */
  const kerasWithH5py = (name: string, kernel: string, more = '') => {
    const file = path.join(dir, name);
    python(`
import sys, h5py, numpy as np
with h5py.File(sys.argv[1], 'w') as f:
    f.attrs['layer_names'] = [b'd']
    g = f.create_group('d')
    g.attrs['weight_names'] = [b'd/kernel:0']
    g.create_dataset('d/kernel:0', ${kernel})${more}
`, file);
    return file;
  };

  for (const [name, what] of Object.entries(cases)) {
    test(`${name}: ${what}`, () => {
      const h5 = openFile(expected[name]!.path);
      try {
        const { path: _, ...reference } = expected[name]!;
        assert.deepEqual(walk(h5), reference);
      } finally {
        h5.close();
      }
    });
  }

  test('a filter the reader lacks (scale-offset) is refused naming the feature, and a Keras file using it still opens through h5wasm', async () => {
    const file = kerasWithH5py('scaleoffset.h5', "data=np.arange(6, dtype='i4'), chunks=(2,), scaleoffset=0");
    const h5 = openFile(file);
    assert.throws(() => new Hdf5Dataset(h5.get('d/d/kernel:0')!), /\/d\/d\/kernel:0: uses the scaleoffset \(filter 6\) compression filter, which ckpt's HDF5 reader does not support/);
    h5.close();
    const r = runCli(['inspect', '--json', '--hash', file]);
    assert.equal(r.status, 0, r.stderr);
    const [tensor] = JSON.parse(r.stdout).tensors;
    assert.equal(tensor.sha256, createHash('sha256').update(new Int32Array([0, 1, 2, 3, 4, 5])).digest('hex'));
  });

  test('compound and enum datasets are named in the refusal', () => {
    const file = path.join(dir, 'records.h5');
    python(`
import sys, h5py, numpy as np
with h5py.File(sys.argv[1], 'w') as f:
    f.create_dataset('pairs', data=np.zeros(2, dtype=[('a', 'f4'), ('b', 'i8')]))
    f.create_dataset('colors', data=np.zeros(2, dtype=np.int16), dtype=h5py.enum_dtype({'RED': 0, 'GREEN': 1}, basetype='i2'))
`, file);
    const h5 = openFile(file);
    assert.throws(() => new Hdf5Dataset(h5.get('pairs')!), /\/pairs: dataset type compound \{a, b\} is not a numeric weight/);
    assert.throws(() => new Hdf5Dataset(h5.get('colors')!), /\/colors: dataset type enum \{GREEN, RED\} of int16 is not a numeric weight/);
    h5.close();
  });

  test('a group that contains itself ends the listing with exit 3', () => {
    const file = kerasWithH5py('cycle.h5', "data=np.ones(4, dtype='f4')", `
    o = f.create_group('optimizer_weights')
    o.create_dataset('Adam/iter', data=np.int64(1))
    o['Adam/loop'] = o`);
    const r = runCli(['inspect', '--all', file]);
    assert.equal(r.status, 3, r.stderr);
    assert.match(r.stderr, /\/optimizer_weights\/Adam\/loop: this group is reached twice while listing \(the file's groups form a cycle\)/);
  });
});

describe('HDF5 bad input: exit 3 naming the file, the place and the problem', () => {
  const dir = tempDir();
  // Both written with superblock 2 and version 2 object headers (h5wasm's and the samples' writer).
  const small = fs.readFileSync(kerasWeights(path.join(dir, 'small.h5')));
  const v2 = fs.readFileSync(path.join(SAMPLES, 'detector-90.h5'));
  const inspect = (name: string, bytes: Uint8Array) => {
    const file = path.join(dir, name);
    fs.writeFileSync(file, bytes);
    const r = runCli(['inspect', '--hash', file]);
    assert.equal(r.status, 3, r.stderr);
    assert.equal(r.stderr.split('\n').length, 2, r.stderr);
    assert.ok(r.stderr.startsWith(`ckpt: ${file}: `), r.stderr);
    return r.stderr;
  };
  const patched = (bytes: Uint8Array, at: number, patch: number[]) => {
    const copy = Buffer.from(bytes);
    copy.set(patch, at);
    return copy;
  };

  test('truncated: the superblock names the size the file should have', () => {
    assert.match(inspect('cut.h5', v2.subarray(0, Math.floor(v2.length / 2))), /superblock: the file should be \d+ bytes long but has \d+: it is truncated/);
  });

  test('an address beyond the end of the file', () => {
    // Superblock 2 with 8-byte offsets: the root object header address is at byte 36, the checksum of bytes 0–43 at 44.
    const far = patched(small, 36, [0, 0, 0, 0x10, 0, 0, 0, 0]);
    far.writeUInt32LE(lookup3(far.subarray(0, 44)), 44);
    assert.match(inspect('far.h5', far), /\/: object header at offset 268435456 lies beyond the end of the file \(\d+ bytes\)/);
  });

  test('a damaged object header fails its checksum', () => {
    const at = v2.indexOf('OHDR', 0, 'latin1');
    assert.match(inspect('checksum.h5', patched(v2, at + 12, [v2[at + 12]! ^ 0xff])), /checksum is 0x[0-9a-f]{8}, the file stores 0x[0-9a-f]{8}: the file is damaged/);
  });

  test('a wrong signature names the structure expected', () => {
    const child = small.indexOf('OHDR', small.indexOf('OHDR', 0, 'latin1') + 4, 'latin1');
    assert.match(inspect('signature.h5', patched(small, child, [0x4f, 0x48, 0x44, 0x52 ^ 0x20])), /: no object header at offset \d+ \(found neither 'OHDR' nor version 1\)/);
  });

  test('mutated bytes never fail with anything but a CkptError (bounded: a thousand variants, about a second)', () => {
    // With the corpus, a superblock-0 file too: old-style groups, local heaps, v1 B-trees, no checksums to stop a mutation early.
    const legacy = path.join(CORPUS, 'keras-h5', 'keras3-legacy-h5-adam', 'model.h5');
    const seeds = [small, v2, ...(fs.existsSync(legacy) ? [fs.readFileSync(legacy)] : [])];
    let seed = 7;
    const random = () => (seed = (seed * 48271) % 2147483647) / 2147483647;
    const iterations = Number(process.env.CKPT_FUZZ_ITERATIONS ?? 1000);
    let failures = 0;
    for (let i = 0; i < iterations; i++) {
      const bytes = Buffer.from(seeds[i % seeds.length]!);
      for (let k = 0; k < 1 + Math.floor(random() * 6); k++) {
        // Most mutations land in the metadata, where the parsing is: the first 4 KiB and the headers.
        const at = random() < 0.7 ? Math.floor(random() * Math.min(bytes.length, 4096)) : Math.floor(random() * bytes.length);
        bytes[at] = Math.floor(random() * 256);
      }
      const input = random() < 0.1 ? bytes.subarray(0, Math.floor(random() * bytes.length)) : bytes;
      try {
        walk(new Hdf5File(new MemorySource(input), 'fuzz.h5'));
      } catch (err) {
        failures++;
        assert.ok(err instanceof CkptError && err.exitCode === 3, `variant ${i}: ${(err as Error).stack}`);
        assert.doesNotMatch(err.message, /\n/);
      }
    }
    assert.ok(failures > 0);
  });
});
