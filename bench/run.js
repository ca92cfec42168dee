// Runs every listing benchmark in bench/ one after the other (each cleans up after itself).
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
for (const name of fs.readdirSync(here).filter((f) => f.endsWith('.js') && !['run.js', 'big-onnx.js', 'measure.js', 'cold.js', 'listing.js', 'safetensors-pair.js'].includes(f)).sort()) {
  console.log(`\n== ${name}`);
  const r = spawnSync(process.execPath, [path.join(here, name)], { stdio: 'inherit' });
  if (r.status !== 0) process.exitCode = 1;
}
