import { writeAtomic, writeAll } from '../core/atomic.js';
import { reportClient } from './client.js';
import { REPORT_CSS } from './style.js';

/** The commands with an HTML report; each page is built from that command's `--json` document. */
export type ReportKind = 'inspect' | 'diff' | 'plan' | 'compare' | 'finetune';

export interface ReportSpec {
  kind: ReportKind;
  /** What the report is about (a path, "A vs B"), in the page's title. */
  title: string;
  /** Exactly what the command prints with --json. */
  data: unknown;
}

/**
 * One self-contained HTML page: inline style and script, the data as embedded JSON, and a content
 * security policy that forbids every network request.
 */
export function renderReport(spec: ReportSpec): string {
  const title = `ckpt ${spec.kind}: ${spec.title}`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:">
<meta name="color-scheme" content="light dark">
<title>${escapeHtml(title)}</title>
<style>${REPORT_CSS}</style>
</head>
<body data-kind="${spec.kind}">
<a class="skip" href="#table-section">Skip to the table</a>
<header><h1>${escapeHtml(title)}</h1><p id="summary"></p></header>
<main>
<section id="map-section" aria-labelledby="map-title"><h2 id="map-title">Model</h2><div id="legend" role="list"></div><div id="map-box"><canvas id="treemap" tabindex="0" role="img"></canvas><div id="tip" role="tooltip" hidden></div></div></section>
<section id="curves-section" hidden aria-labelledby="curves-title"><h2 id="curves-title">Training</h2><div id="curves"></div></section>
<section id="table-section" aria-labelledby="table-title"><h2 id="table-title">Tensors</h2>
<div class="controls"><label for="filter">Filter</label> <input id="filter" type="search" placeholder="name, or re:REGEX" autocomplete="off"> <span id="count" aria-live="polite"></span></div>
<div class="scroll"><table id="table"><thead></thead><tbody></tbody></table></div>
<nav id="pager" aria-label="pages"><button type="button" id="prev">← Previous</button> <span id="page"></span> <button type="button" id="next">Next →</button></nav>
</section>
<section id="detail" aria-live="polite" aria-labelledby="detail-title"><h2 id="detail-title">Selected</h2><p>Select a row (Enter) or a tile to see its values.</p></section>
</main>
<script type="application/json" id="ckpt-data">${embedJson(spec.data)}</script>
<script>(${reportClient.toString()})();</script>
</body>
</html>
`;
}

/** Writes the report atomically (a temporary beside FILE, renamed over it). */
export async function writeReport(file: string, spec: ReportSpec): Promise<void> {
  const html = renderReport(spec);
  await writeAtomic(file, (fd) => writeAll(fd, Buffer.from(html)));
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** JSON inside a script element: `<` escaped so no string in it can close the element. */
function embedJson(data: unknown): string {
  return JSON.stringify(data).replace(/</g, '\\u003c').replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029');
}
