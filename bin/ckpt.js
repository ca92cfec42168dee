#!/usr/bin/env node
// The `ckpt` command. `npm install` (prepare) compiles the TypeScript sources to dist/src and
// bundles the CLI into dist/cli (scripts/bundle.js), which starts faster. A bundle older than the
// compiled sources (a `tsc` without the bundle step) is stale: the compiled sources run instead.
import * as fs from 'node:fs';

const bundle = new URL('../dist/cli/cli-main.js', import.meta.url);
const compiled = new URL('../dist/src/cli/main.js', import.meta.url);
const mtime = (url) => fs.statSync(url, { throwIfNoEntry: false })?.mtimeMs ?? -Infinity;
const { main } = await import(mtime(bundle) >= mtime(compiled) ? bundle : compiled);

// `ckpt inspect big.onnx | head` closes the pipe early: that is the reader's choice, not an error.
process.stdout.on('error', (err) => {
  if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw err;
});

process.exitCode = await main(process.argv.slice(2));
