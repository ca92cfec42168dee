import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { createRequire } from 'node:module';
import { resolveInsideFolder } from '../src/core/file.js';
import { open } from '../src/index.js';
import { hubFileUrl, parseHubId } from '../src/core/location.js';
import { ROOT, SAMPLES, runCli, tempDir } from './helpers.js';
import { python, pythonHas } from './python.js';
import { startServer, tar, type ServerConfig, type TestServer } from './http-fixture.js';

const Ajv2020 = createRequire(import.meta.url)('ajv/dist/2020.js');
const validateInspect = new Ajv2020({ allErrors: true }).compile(JSON.parse(fs.readFileSync(path.join(ROOT, 'schemas', 'inspect.schema.json'), 'utf8')));

/** A safetensors file of float32 tensors `name → values`, optionally with a padded header (to need several requests). */
function safetensors(file: string, tensors: Record<string, number[]>, headerPad = 0): void {
  const header: Record<string, unknown> = { __metadata__: { format: 'pt', pad: 'x'.repeat(headerPad) } };
  const data: Buffer[] = [];
  let at = 0;
  for (const [name, values] of Object.entries(tensors)) {
    header[name] = { dtype: 'F32', shape: [values.length], data_offsets: [at, at + values.length * 4] };
    data.push(Buffer.from(new Float32Array(values).buffer));
    at += values.length * 4;
  }
  const json = Buffer.from(JSON.stringify(header));
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(json.length));
  fs.writeFileSync(file, Buffer.concat([length, json, ...data]));
}

/** A two-shard Hugging Face model (index + shards) in `folder`. */
function shardedModel(folder: string, weightMap?: Record<string, string>): void {
  fs.mkdirSync(folder, { recursive: true });
  safetensors(path.join(folder, 'model-00001-of-00002.safetensors'), { 'layer.0.weight': [1, 2, 3], 'layer.0.bias': [0.5] });
  safetensors(path.join(folder, 'model-00002-of-00002.safetensors'), { 'layer.1.weight': [4, 5, 6, 7] });
  const map = weightMap ?? {
    'layer.0.weight': 'model-00001-of-00002.safetensors',
    'layer.0.bias': 'model-00001-of-00002.safetensors',
    'layer.1.weight': 'model-00002-of-00002.safetensors',
  };
  fs.writeFileSync(path.join(folder, 'model.safetensors.index.json'), JSON.stringify({ metadata: { total_size: 32 }, weight_map: map }));
}

/** The CLI with a cache in a temporary folder and quick retries, as the tests want it. */
function ckpt(args: string[], env: Record<string, string> = {}) {
  return runCli(args, { XDG_CACHE_HOME: cacheHome, CKPT_HTTP_RETRIES: '1', CKPT_HTTP_BACKOFF_MS: '1', HF_TOKEN: '', ...env });
}

function tensorsOf(stdout: string): { name: string; dtype: string; shape: number[]; sha256?: string }[] {
  return (JSON.parse(stdout) as { tensors: { name: string; dtype: string; shape: number[]; sha256?: string }[] }).tensors
    .map(({ name, dtype, shape, sha256 }) => ({ name, dtype, shape, ...(sha256 ? { sha256 } : {}) }));
}

/** Every tensor's name, dtype, shape and values, read in this process (the servers run in worker threads). */
async function contents(input: string): Promise<{ name: string; dtype: string; shape: number[]; sha256: string }[]> {
  const dict = await open(input);
  try {
    const out = [];
    for (const t of dict.tensors) out.push({ name: t.name, dtype: t.dtype, shape: [...t.shape], sha256: createHash('sha256').update(await t.read()).digest('hex') });
    return out;
  } finally {
    await dict.close();
  }
}

let root: string;
let cacheHome: string;
const servers: TestServer[] = [];
async function server(config: Omit<ServerConfig, 'root'> = {}): Promise<TestServer> {
  const s = await startServer({ root, ...config });
  servers.push(s);
  return s;
}

before(() => {
  root = tempDir();
  cacheHome = tempDir();
  safetensors(path.join(root, 'model.safetensors'), { a: [1, 2, 3, 4], b: [5, 6] }, 100_000);
  shardedModel(path.join(root, 'sharded'));
  fs.cpSync(path.join(SAMPLES, 'detector-90-tfjs'), path.join(root, 'tfjs'), { recursive: true });
  fs.copyFileSync(path.join(SAMPLES, 'detector-90.onnx'), path.join(root, 'model.onnx'));
  fs.copyFileSync(path.join(SAMPLES, 'detector-90.h5'), path.join(root, 'model.h5'));
  shardedModel(path.join(root, 'escape'), { w: '../model.safetensors' });
  shardedModel(path.join(root, 'absolute'), { w: 'http://127.0.0.1:1/model.safetensors' });
  // A file that a server ignoring ranges would send whole: big, sparse on disk.
  fs.mkdirSync(path.join(root, 'big'));
  fs.copyFileSync(path.join(root, 'model.safetensors'), path.join(root, 'big', 'model.safetensors'));
  fs.truncateSync(path.join(root, 'big', 'model.safetensors'), 512 << 20);
  const tfjsFiles = Object.fromEntries(fs.readdirSync(path.join(root, 'tfjs')).map((f) => [`detector/${f}`, fs.readFileSync(path.join(root, 'tfjs', f))]));
  fs.writeFileSync(path.join(root, 'tfjs.tar'), tar(tfjsFiles));
  fs.writeFileSync(path.join(root, 'tfjs.tgz'), zlib.gzipSync(tar(tfjsFiles)));
  fs.writeFileSync(path.join(root, 'sneaky.tar'), tar({ '../evil.safetensors': fs.readFileSync(path.join(root, 'model.safetensors')) }));
});

after(async () => {
  for (const s of servers) await s.stop();
});

describe('reading models by URL', () => {
  test('a safetensors file lists as it does locally, in a few range requests, and says what it fetched', async () => {
    const s = await server();
    const local = ckpt(['inspect', '--json', '--hash', path.join(root, 'model.safetensors')]);
    const remote = ckpt(['inspect', '--json', '--hash', '--no-cache', `${s.url}/model.safetensors`]);
    assert.equal(remote.status, 0, remote.stderr);
    assert.deepEqual(tensorsOf(remote.stdout), tensorsOf(local.stdout));
    const text = ckpt(['inspect', '--no-cache', `${s.url}/model.safetensors`]);
    assert.match(text.stdout.split('\n')[0]!, /read \d+(\.\d)? KiB of \d+ KiB in \d requests?/);
    // --json carries the figures, as the schema says: what the server sent, in as many requests.
    const fresh = await server();
    const listing = JSON.parse(ckpt(['inspect', '--json', '--no-cache', `${fresh.url}/model.safetensors`]).stdout);
    assert.ok(validateInspect(listing), JSON.stringify(validateInspect.errors));
    const served = await fresh.requests();
    assert.deepEqual(listing.transfer, {
      requests: served.length,
      bytesFetched: served.reduce((n, r) => n + (r.sent ?? 0), 0),
      bytesFromCache: 0,
      remoteBytes: fs.statSync(path.join(root, 'model.safetensors')).size,
    });
    assert.equal(JSON.parse(local.stdout).transfer, undefined, 'a local file has no transfer figures');
    const requests = await s.requests();
    assert.ok(requests.every((r) => r.range !== undefined), 'every request asks for a range');
    assert.ok(requests.length <= 8, `${requests.length} requests`);
  });

  test('a sharded index, a TF.js model and an ONNX model by URL read as their local copies do, values included', async () => {
    const s = await server();
    for (const [remote, local] of [
      [`${s.url}/sharded/model.safetensors.index.json`, path.join(root, 'sharded')],
      [`${s.url}/tfjs/model.json`, path.join(root, 'tfjs')],
      [`${s.url}/model.onnx`, path.join(root, 'model.onnx')],
    ] as const) {
      assert.deepEqual(await contents(remote), await contents(local), remote);
    }
    const diff = ckpt(['diff', '--values', `${s.url}/sharded/model.safetensors.index.json`, path.join(root, 'sharded')]);
    assert.equal(diff.status, 0, `${diff.stdout}${diff.stderr}`);
  });

  test('a Keras .h5 by URL is read by ranges like the other formats, not copied whole first', async () => {
    const s = await server();
    const remote = ckpt(['inspect', '--json', '--hash', '--no-cache', `${s.url}/model.h5`]);
    assert.equal(remote.status, 0, remote.stderr);
    assert.doesNotMatch(remote.stderr, /copying it whole/);
    assert.deepEqual(tensorsOf(remote.stdout), tensorsOf(ckpt(['inspect', '--json', '--hash', path.join(root, 'model.h5')]).stdout));
    assert.ok((await s.requests()).every((r) => r.range !== undefined), 'every request asks for a range');
  });

  test('a second run reads the ranges it already fetched from the cache; --no-cache leaves no cache', async () => {
    const s = await server();
    const home = tempDir();
    ckpt(['inspect', '--hash', `${s.url}/model.safetensors`], { XDG_CACHE_HOME: home });
    const first = (await s.requests()).length;
    ckpt(['inspect', '--hash', `${s.url}/model.safetensors`], { XDG_CACHE_HOME: home });
    const second = (await s.requests()).length - first;
    assert.ok(first > 1 && second === 1, `first run ${first} requests, second ${second}`);
    const none = tempDir();
    ckpt(['inspect', '--hash', '--no-cache', `${s.url}/model.safetensors`], { XDG_CACHE_HOME: none });
    assert.deepEqual(fs.readdirSync(none), []);
  });

  test('401 and 404 exit 4 with the status and what to do', async () => {
    const s = await server({ statuses: { '^/private': 401 } });
    const denied = ckpt(['inspect', `${s.url}/private/model.safetensors`]);
    assert.equal(denied.status, 4);
    assert.match(denied.stderr, /HTTP 401: .*token \(HF_TOKEN or --token-file\)/);
    const missing = ckpt(['inspect', '--json', `${s.url}/missing.safetensors`]);
    assert.equal(missing.status, 4);
    assert.equal(JSON.parse(missing.stdout).error.code, 'not-found');
    assert.match(missing.stderr, /HTTP 404/);
  });

  test('a server that ignores Range is refused after its first bytes, not read whole; --download fetches it to a temporary file', async () => {
    const s = await server({ ranges: 'ignore' });
    const refused = ckpt(['inspect', `${s.url}/big/model.safetensors`]);
    assert.equal(refused.status, 4);
    assert.match(refused.stderr, /does not support range requests.*--download/);
    const sent = (await s.requests())[0]!.sent ?? 0;
    assert.ok(sent < 64 << 20, `the server got to send ${sent} of ${512 << 20} bytes`);
    const downloaded = ckpt(['inspect', '--download', `${s.url}/model.safetensors`]);
    assert.equal(downloaded.status, 0, downloaded.stderr);
    assert.match(downloaded.stdout, /2 tensors/);
  });

  test('a truncated body, a wrong Content-Range and a file that changes mid-read are errors, not data', async () => {
    const cut = await server({ truncate: 'model.safetensors' });
    const truncated = ckpt(['inspect', '--no-cache', `${cut.url}/model.safetensors`]);
    assert.equal(truncated.status, 4);
    assert.match(truncated.stderr, /(body ended|connection closed) after \d+ of \d+ bytes/);
    const wrong = await server({ wrongRange: 'model.safetensors' });
    const misplaced = ckpt(['inspect', '--no-cache', `${wrong.url}/model.safetensors`]);
    assert.equal(misplaced.status, 4);
    assert.match(misplaced.stderr, /answered Content-Range 'bytes 1-65536\/\d+' to a request for bytes 0-65535/);
    const changing = await server({ etagChangesAfter: 1 });
    const changed = ckpt(['inspect', '--no-cache', `${changing.url}/model.safetensors`]);
    assert.equal(changed.status, 4);
    assert.match(changed.stderr, /changed on the server while being read/);
  });

  test('a server that does not answer in time fails after --timeout', async () => {
    const s = await server({ slow: { path: 'model', ms: 5_000 } });
    const r = ckpt(['inspect', '--timeout', '0.2', `${s.url}/model.safetensors`], { CKPT_HTTP_RETRIES: '0' });
    assert.equal(r.status, 4);
    assert.match(r.stderr, /no answer within 200 ms/);
    // A timeout that is not a positive number is a usage error, not the default taken silently.
    for (const given of ['abc', '-1', '0', '']) {
      const bad = ckpt(['inspect', '--timeout', given, `${s.url}/model.safetensors`]);
      assert.equal(bad.status, 2, given);
      assert.match(bad.stderr, new RegExp(`--timeout must be a positive number of seconds, got '${given}'`));
    }
  });

  test('shards named with .. or as another URL are refused: a URL\'s siblings stay under its folder', async () => {
    const s = await server();
    const up = ckpt(['inspect', `${s.url}/escape/model.safetensors.index.json`]);
    assert.equal(up.status, 3);
    assert.match(up.stderr, /contains '\.\.'/);
    const absolute = ckpt(['inspect', `${s.url}/absolute/model.safetensors.index.json`]);
    assert.equal(absolute.status, 3);
    assert.match(absolute.stderr, /is absolute/);
    const base = 'https://host.example/models/m/model.onnx?sig=1';
    assert.equal(resolveInsideFolder(base, '', 'weights/data.bin', 'external data'), 'https://host.example/models/m/weights/data.bin');
    assert.equal(resolveInsideFolder(base, '', 'a b#c.bin', 'external data'), 'https://host.example/models/m/a%20b%23c.bin');
    assert.throws(() => resolveInsideFolder(base, '', '/etc/passwd', 'external data'), /is absolute/);
    assert.throws(() => resolveInsideFolder(base, '', '//evil.example/x', 'external data'), /is absolute/);
  });
});

describe('Hugging Face ids', () => {
  test('hf://ORG/REPO finds the sharded index; the token goes to the endpoint and not to the host it redirects to', async () => {
    const cdn = await server({ hub: true });
    const hub = await server({ hub: true, redirectTo: cdn.url });
    fs.mkdirSync(path.join(root, 'org'), { recursive: true });
    fs.cpSync(path.join(root, 'sharded'), path.join(root, 'org', 'repo'), { recursive: true });
    const tokenFile = path.join(tempDir(), 'token');
    fs.writeFileSync(tokenFile, 'hf_secret_token\n');
    const r = ckpt(['inspect', '--json', '--no-cache', '--endpoint', hub.url, '--token-file', tokenFile, 'hf://org/repo']);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(tensorsOf(r.stdout).map((t) => t.name).sort(), ['layer.0.bias', 'layer.0.weight', 'layer.1.weight']);
    assert.doesNotMatch(r.stdout + r.stderr, /hf_secret_token/);
    const toHub = await hub.requests();
    assert.ok(toHub.some((q) => q.url.startsWith('/api/models/org/repo/tree/main')));
    assert.ok(toHub.every((q) => q.authorization === 'Bearer hf_secret_token'));
    const toCdn = await cdn.requests();
    assert.ok(toCdn.length > 0 && toCdn.every((q) => q.authorization === undefined), 'no credentials after the redirect');
    const file = ckpt(['inspect', '--json', '--no-cache', 'hf://org/repo@main/model-00002-of-00002.safetensors'], { HF_ENDPOINT: cdn.url });
    assert.equal(file.status, 0, file.stderr);
    assert.deepEqual(tensorsOf(file.stdout).map((t) => t.name), ['layer.1.weight']);
  });

  test('ids are ORG/REPO, an optional @revision, then a path', () => {
    assert.deepEqual(parseHubId('hf://org/repo@v1.0/sub/model.onnx'), { repo: 'org/repo', revision: 'v1.0', path: 'sub/model.onnx' });
    assert.deepEqual(parseHubId('hf://org/repo'), { repo: 'org/repo', revision: 'main', path: '' });
    // Revisions with slashes: the Hub's pull-request and conversion refs as they are, any other percent-encoded.
    assert.deepEqual(parseHubId('hf://org/repo@refs/pr/12/model.safetensors'), { repo: 'org/repo', revision: 'refs/pr/12', path: 'model.safetensors' });
    assert.deepEqual(parseHubId('hf://org/repo@refs/convert/parquet'), { repo: 'org/repo', revision: 'refs/convert/parquet', path: '' });
    assert.deepEqual(parseHubId('hf://org/repo@feature%2Fbig-head/onnx/model.onnx'), { repo: 'org/repo', revision: 'feature/big-head', path: 'onnx/model.onnx' });
    assert.match(hubFileUrl('hf://org/repo@refs/pr/12/model.safetensors'), /\/org\/repo\/resolve\/refs%2Fpr%2F12\/model\.safetensors$/);
    assert.throws(() => parseHubId('hf://org/repo@%2E%2E%2Fx/model.onnx'), /not a Hugging Face id/);
    assert.throws(() => parseHubId('hf://org/repo@bad%zz/model.onnx'), /not a Hugging Face id/);
    assert.throws(() => parseHubId('hf://org/repo/../other/x'), /not a Hugging Face id/);
  });
});

describe('archives', () => {
  test('a TF.js model in a .tar, a .tgz and a .tar by URL reads as the folder does; ARCHIVE!member names it', async () => {
    const s = await server();
    const expected = await contents(path.join(root, 'tfjs'));
    for (const input of [path.join(root, 'tfjs.tar'), path.join(root, 'tfjs.tgz'), `${path.join(root, 'tfjs.tar')}!detector/model.json`, `${s.url}/tfjs.tar`]) {
      assert.deepEqual(await contents(input), expected, input);
    }
    const listed = ckpt(['inspect', '--json', path.join(root, 'tfjs.tgz')]);
    assert.equal(listed.status, 0, listed.stderr);
    const missing = ckpt(['inspect', `${path.join(root, 'tfjs.tar')}!nothing.json`]);
    assert.equal(missing.status, 4);
    assert.match(missing.stderr, /no such member in the archive/);
  });

  test('a zipped TF.js model (deflated members, inflated to a temporary file) reads as the folder does, locally and by URL', { skip: !pythonHas('zipfile') && 'needs python3 zipfile' }, async () => {
    const s = await server();
    const zip = path.join(root, 'tfjs.zip');
    python('import sys, zipfile, os\nwith zipfile.ZipFile(sys.argv[1], "w", zipfile.ZIP_DEFLATED) as z:\n    for f in sorted(os.listdir(sys.argv[2])): z.write(os.path.join(sys.argv[2], f), f)', zip, path.join(root, 'tfjs'));
    const expected = await contents(path.join(root, 'tfjs'));
    assert.deepEqual(await contents(zip), expected);
    assert.deepEqual(await contents(`${s.url}/tfjs.zip`), expected);
  });

  test('members named with .. are not in the archive\'s listing', () => {
    const r = ckpt(['inspect', `${path.join(root, 'sneaky.tar')}!../evil.safetensors`]);
    assert.equal(r.status, 4);
    assert.match(r.stderr, /no such member/);
  });
});
