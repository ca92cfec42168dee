// Bundles the CLI (the tsc output under dist/src) into a few files under dist/cli, so that
// start-up loads a handful of files instead of ~50 ES modules and commander and cli-table3's
// CommonJS files: bin/ckpt.js runs it. The library (package.json exports) stays the tsc output.
// Dynamic import()s stay lazy chunks; files located with `new URL('./x.js', import.meta.url)`
// (worker threads, modules required on demand) become entry points, and the URL is rewritten to
// point at the entry's output; worker threads are a build of their own, in dist/cli/workers.
// Packages with native code or WASM stay outside the bundle.
// Usage: node scripts/bundle.js (after tsc; `npm run build` runs both)
import * as esbuild from 'esbuild';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const src = path.join(root, 'dist', 'src');
const outdir = path.join(root, 'dist', 'cli');
const main = path.join(src, 'cli', 'main.js');
// A located file is either a worker thread's module (`new Worker(…)`, `startWorker(…)`) or a module
// required on demand (`onDemand(…)`); any other use stops the build, which knows only these two.
const LOCATED = /(\bWorker\(|\bstartWorker\(|\bonDemand\()?new URL\((['"])(\.{1,2}\/[^'"]+\.js)\2, import\.meta\.url\)/g;
const isWorker = (use) => use !== 'onDemand(';
const DYNAMIC_IMPORT = /\bimport\((['"])(\.{1,2}\/[^'"]+\.js)\1\)/g;

/** `text` with `replace` applied to its lines of code: comment lines (`/*`, `*`, `//`) stay as they are. */
const inCode = (text, replace) => text.split('\n').map((line) => (/^\s*(\*|\/\/|\/\*)/.test(line) ? line : replace(line))).join('\n');

/** The output name of the bundle entry for a file under dist/src: its path with dashes. */
const entryName = (file) => path.relative(src, file).replace(/\.js$/, '').split(path.sep).join('-');

/** The files under dist/src that run in worker threads, that are required on demand, and that are import()ed. */
function scan() {
  const found = { workers: new Set(), onDemand: new Set(), imported: new Set() };
  const target = (file, relative) => {
    const resolved = path.resolve(path.dirname(file), relative);
    if (!fs.existsSync(resolved)) throw new Error(`${file}: ${relative} does not exist`);
    return resolved;
  };
  for (const name of fs.readdirSync(src, { recursive: true })) {
    if (!name.endsWith('.js')) continue;
    const file = path.join(src, name);
    inCode(fs.readFileSync(file, 'utf8'), (line) => {
      for (const [located, use, , relative] of line.matchAll(LOCATED)) {
        if (!use) throw new Error(`${file}: ${located} is neither a worker thread's module nor one required on demand`);
        (isWorker(use) ? found.workers : found.onDemand).add(target(file, relative));
      }
      for (const [, , relative] of line.matchAll(DYNAMIC_IMPORT)) found.imported.add(target(file, relative));
      return line;
    });
  }
  return found;
}

const { workers, onDemand, imported } = scan();

/**
 * `new URL('./x.js', import.meta.url)` pointed at x's bundle entry: a build's outputs all lie in one
 * folder, and `workers` is where the worker threads' build lies from it.
 */
const relocated = (file, text, workers) => inCode(text, (line) => line.replace(LOCATED, (_, use, quote, relative) =>
  `${use}new URL(${quote}./${isWorker(use) ? workers : ''}${entryName(path.resolve(path.dirname(file), relative))}.js${quote}, import.meta.url)`));

/**
 * Loads dist/src files with their URLs relocated and `imports` added to some of them (file → the
 * files it also imports).
 */
const rewrite = ({ workers, imports = new Map() }) => ({
  name: 'ckpt-cli',
  setup(build) {
    build.onLoad({ filter: /\.js$/ }, async (args) => {
      if (!args.path.startsWith(src + path.sep)) return undefined;
      const added = (imports.get(args.path) ?? []).map((file) => `import ${JSON.stringify(file)};\n`).join('');
      return { contents: added + relocated(args.path, await fs.promises.readFile(args.path, 'utf8'), workers), loader: 'js' };
    });
  },
});

/**
 * What the CLI's modules import besides their own imports. The modules loaded after start-up
 * (import()ed, required on demand) import main.js: everything start-up loads is then reachable
 * from every one of them, and esbuild puts it in one chunk instead of one per set of importers
 * (dozens of files, each a cost to load). main.js has run before any of them loads, so at run time
 * the import does nothing. And main.js imports the inspect command (with the table renderer most
 * commands use) and the small core modules most readers share: fewer chunks to load after it.
 */
const cliImports = new Map([...imported, ...onDemand].map((file) => [file, [main]]));
cliImports.set(main, ['cli/inspect.js', 'core/dtype.js', 'core/names.js', 'core/cast.js', 'core/decode.js'].map((file) => path.join(src, file)));

/**
 * commander requires child_process when it loads, for subcommands that are programs of their own
 * (ckpt has none): loading it, with net and dgram, is ~1% of a listing's start-up. It gets an
 * object that requires the module on first use instead.
 */
const lazyChildProcess = {
  name: 'lazy-child-process',
  setup(build) {
    build.onResolve({ filter: /^(node:)?child_process$/ }, (args) =>
      (args.importer.includes(`${path.sep}node_modules${path.sep}commander${path.sep}`) ? { path: 'child_process', namespace: 'lazy' } : undefined));
    build.onLoad({ filter: /.*/, namespace: 'lazy' }, () => ({
      contents: "let loaded;\nmodule.exports = new Proxy({}, { get: (_, key) => (loaded ??= require('node:child_process'))[key] });\n",
      loader: 'js',
    }));
  },
};

/**
 * cli-table3 measures every cell with string-width, which strips ANSI codes and runs a regular
 * expression of every emoji over the text: 2-3% of a listing's start-up. Printable ASCII (the
 * names, numbers and shapes of a listing) and the ellipsis cli-table3 measures before truncating
 * a cell are as wide as they are long: only other text takes that way.
 */
const asciiStringWidth = {
  name: 'ascii-string-width',
  setup(build) {
    build.onResolve({ filter: /^string-width$/ }, (args) =>
      (args.namespace === 'file' ? { path: path.relative(root, args.resolveDir), namespace: 'ascii' } : undefined));
    build.onLoad({ filter: /.*/, namespace: 'ascii' }, (args) => ({
      contents: "const stringWidth = require('string-width');\nmodule.exports = (text) => (typeof text === 'string' && /^[\\x20-\\x7e\\u2026]*$/.test(text) ? text.length : stringWidth(text));\n",
      resolveDir: path.join(root, args.path),
      loader: 'js',
    }));
  },
};

/** Settings of both builds: ES modules for Node 20, packages with native code or WASM left out. */
const common = {
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  entryNames: '[name]',
  // @colors/colors: cli-table3 requires it only to colour cells, which ckpt's tables never are.
  external: ['h5wasm', 'h5wasm/*', 'onnxruntime-node', 'onnx-proto', '@colors/colors', '@colors/colors/*'],
  // The bundled CommonJS packages (commander, cli-table3) require Node's built-ins.
  banner: { js: "import { createRequire as bundleRequire } from 'node:module';\nconst require = bundleRequire(import.meta.url);" },
  logLevel: 'warning',
  metafile: true,
};

fs.rmSync(outdir, { recursive: true, force: true });
const builds = [await esbuild.build({
  ...common,
  outdir,
  entryPoints: Object.fromEntries([main, ...onDemand].map((file) => [entryName(file), file])),
  chunkNames: 'chunk-[hash]',
  plugins: [rewrite({ workers: 'workers/', imports: cliImports }), lazyChildProcess, asciiStringWidth],
}),
// Worker threads have modules of their own: a build of their own in dist/cli/workers, with the
// modules they may require on demand, sharing nothing with the CLI's chunks.
await esbuild.build({
  ...common,
  outdir: path.join(outdir, 'workers'),
  entryPoints: Object.fromEntries([...workers, ...onDemand].map((file) => [entryName(file), file])),
  chunkNames: 'chunk-[hash]',
  plugins: [rewrite({ workers: '' })],
})];

// Which modules (paths from the project's root) each file holds: what test/startup.test.ts reads
// to tell the modules a command loaded.
const modules = Object.fromEntries(builds.flatMap(({ metafile }) => Object.entries(metafile.outputs))
  .map(([output, { inputs }]) => [path.relative(outdir, path.join(root, output)), Object.keys(inputs)]));
fs.writeFileSync(path.join(outdir, 'modules.json'), `${JSON.stringify(modules, null, 1)}\n`);
