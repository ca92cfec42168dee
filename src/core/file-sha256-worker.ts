// Worker thread of localSha256: hashes the path it is given and posts the digest or the error.
import { parentPort, workerData } from 'node:worker_threads';
import { postableError } from './errors.js';
import { localSha256Sync, type Sha256Reply } from './file-sha256.js';

let reply: Sha256Reply;
try {
  const { target, files } = workerData as { target: string; files: string[] };
  reply = { ok: true, sha256: localSha256Sync(target, files) };
} catch (err) {
  reply = { ok: false, error: postableError(err) };
}
parentPort!.postMessage(reply);
