import { scanFile, type ScanReport } from '../formats/scan.js';
import { ExitCode } from '../core/errors.js';
import { fitLine, newTable } from './format.js';

export interface ScanCommandOptions {
  json?: boolean;
  allow?: string[];
  allowData?: boolean;
}

/** Exit 0 when safe (or only plain data with --allow-data), 1 otherwise: a CI gate. */
export async function scanCommand(path: string, options: ScanCommandOptions): Promise<number> {
  const report = await scanFile(path, { allow: options.allow });
  process.stdout.write(options.json ? `${JSON.stringify(report, null, 2)}\n` : renderText(report));
  const passes = report.verdict === 'safe' || (report.verdict === 'allowlist' && options.allowData);
  return passes ? ExitCode.ok : ExitCode.differs;
}

function renderText(report: ScanReport): string {
  const lines = [fitLine(`${report.path}: ${report.kind} · ${report.pickles} pickle${report.pickles === 1 ? '' : 's'} · ${report.globals.length} globals`, ' · ')];
  if (report.globals.length) {
    const table = newTable(['global', 'kind', 'count', 'first at', 'why'], ['wrap', 'keep', 'keep', 'optional', 'wrap']);
    for (const g of report.globals) table.push([g.name, g.category, String(g.count), g.where, g.why]);
    lines.push(table.toString());
  }
  for (const c of report.code) lines.push(`code: ${c.where}: ${c.what}`);
  for (const problem of report.incomplete) lines.push(`not scanned: ${problem}`);
  lines.push(`verdict: ${report.verdict} — ${report.reason}`);
  return `${lines.join('\n')}\n`;
}
