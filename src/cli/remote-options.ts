import { Option, type Command } from 'commander';
import { usageError } from '../core/errors.js';
import { configureRemote, transferSummary } from '../core/remote-settings.js';

/**
 * Options for models that are not local files (URLs, hf:// ids, archives), shared by every
 * command: set on the program, so they are accepted before or after the command name.
 */
export function addRemoteOptions(program: Command): void {
  // Listed in every command's help, under "Global Options".
  program.configureHelp({ ...program.configureHelp(), showGlobalOptions: true });
  program
    .addOption(new Option('--download', 'when a server does not support range requests, fetch the whole file to a temporary file (never into memory)'))
    .addOption(new Option('--token-file <file>', 'Hugging Face token file (default: $HF_TOKEN); sent only to the Hub endpoint, never printed'))
    .addOption(new Option('--endpoint <url>', 'Hugging Face endpoint for hf:// ids (default: $HF_ENDPOINT or https://huggingface.co)'))
    .addOption(new Option('--no-cache', 'do not keep or use fetched ranges in the cache ($XDG_CACHE_HOME/ckpt or ~/.cache/ckpt)'))
    .addOption(new Option('--timeout <seconds>', 'give up on a remote request that gets no answer for this long (default 30)'))
    .hook('preAction', () => {
      const o = program.opts<{ download?: boolean; tokenFile?: string; endpoint?: string; cache?: boolean; timeout?: string }>();
      const timeout = o.timeout === undefined ? undefined : Number(o.timeout);
      if (timeout !== undefined && !(o.timeout!.trim() !== '' && Number.isFinite(timeout) && timeout > 0)) {
        throw usageError(`--timeout must be a positive number of seconds, got '${o.timeout}'`);
      }
      configureRemote({
        ...(o.download ? { download: true } : {}),
        ...(o.tokenFile ? { tokenFile: o.tokenFile } : {}),
        ...(o.endpoint ? { endpoint: o.endpoint } : {}),
        ...(o.cache === false ? { cache: false } : {}),
        ...(timeout !== undefined ? { timeoutMs: timeout * 1000 } : {}),
      });
    });
}

/** After a command that read remote files: what it fetched, on stderr (stdout keeps the command's output). */
export function reportTransfer(): void {
  const summary = transferSummary();
  if (summary) process.stderr.write(`ckpt: ${summary}\n`);
}
