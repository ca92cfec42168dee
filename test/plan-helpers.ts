import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createRequire } from 'node:module';
import { ROOT, runCli, tempDir } from './helpers.js';

const require = createRequire(import.meta.url);
const Ajv2020 = require('ajv/dist/2020.js');
const validate = new Ajv2020({ allErrors: true }).compile(JSON.parse(fs.readFileSync(path.join(ROOT, 'schemas', 'plan.schema.json'), 'utf8')));

/** Runs `ckpt plan ARGS -o plan.json`; the written plan must validate against schemas/plan.schema.json. */
export function plan(args: string[]): { status: number; plan: any; stdout: string; stderr: string; file: string } {
  const file = path.join(tempDir(), 'plan.json');
  const r = runCli(['plan', ...args, '-o', file]);
  const written = fs.existsSync(file) ? JSON.parse(fs.readFileSync(file, 'utf8')) : undefined;
  if (written) assert.ok(validate(written), JSON.stringify(validate.errors));
  return { status: r.status, plan: written, stdout: r.stdout, stderr: r.stderr, file };
}
