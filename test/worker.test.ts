import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { ROOT, tempDir } from './helpers.js';

// A library user's script run as `node --input-type=module -e …`: the worker threads ckpt starts
// must not inherit --input-type, which makes a worker fail at start.
for (const flags of [['--input-type=module'], ['--input-type', 'module']]) {
  test(`worker threads start under node ${flags.join(' ')} -e`, () => {
    const file = path.join(tempDir(), 'zeros.bin');
    fs.writeFileSync(file, '');
    fs.truncateSync(file, 64 << 20); // large enough to be hashed on a worker thread
    const module = pathToFileURL(path.join(ROOT, 'dist', 'src', 'core', 'file-sha256.js')).href;
    const script = `import { localSha256 } from '${module}'; console.log(await localSha256(process.argv[1]));`;
    const r = spawnSync(process.execPath, [...flags, '-e', script, file], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), createHash('sha256').update(Buffer.alloc(64 << 20)).digest('hex'));
  });
}
