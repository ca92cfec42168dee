/** The report's style: system fonts, light and dark schemes from prefers-color-scheme, visible focus. */
export const REPORT_CSS = `
:root { --bg: #ffffff; --fg: #1b1f24; --muted: #57606a; --line: #d0d7de; --panel: #f6f8fa; --accent: #0969da; --bar-a: #0969da; --bar-b: #cf222e; --select: #fff8c5;
  --c0: #4e79a7; --c1: #f28e2b; --c2: #59a14f; --c3: #e15759; --c4: #b07aa1; --c5: #76b7b2; --c6: #edc948; --c7: #9c755f; --c8: #bab0ac; }
@media (prefers-color-scheme: dark) {
  :root { --bg: #0d1117; --fg: #e6edf3; --muted: #8d96a0; --line: #30363d; --panel: #161b22; --accent: #4493f8; --bar-a: #4493f8; --bar-b: #f85149; --select: #3b2e00;
    --c0: #6a9fd4; --c1: #ffa657; --c2: #7ee787; --c3: #ff7b72; --c4: #d2a8ff; --c5: #76e3ea; --c6: #e3b341; --c7: #c39a7f; --c8: #8b949e; }
}
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; background: var(--bg); color: var(--fg); }
header, main { padding: 0 1.25rem; }
h1 { font-size: 1.25rem; margin: 1rem 0 0.25rem; word-break: break-all; }
h2 { font-size: 1.05rem; margin: 1.25rem 0 0.5rem; }
#summary { color: var(--muted); margin: 0 0 0.5rem; }
.skip { position: absolute; left: -999px; }
.skip:focus { left: 0.5rem; top: 0.5rem; background: var(--bg); padding: 0.25rem 0.5rem; }
:focus-visible { outline: 2px solid var(--accent); outline-offset: 1px; }
#map-box { position: relative; }
#treemap { width: 100%; height: 360px; display: block; border: 1px solid var(--line); border-radius: 4px; }
#tip { position: absolute; pointer-events: none; background: var(--panel); border: 1px solid var(--line); padding: 0.2rem 0.4rem; border-radius: 4px; font-size: 12px; max-width: 60ch; word-break: break-all; }
#legend { display: flex; flex-wrap: wrap; gap: 0.25rem 1rem; margin-bottom: 0.5rem; color: var(--muted); }
.swatch { display: inline-block; width: 0.8em; height: 0.8em; border-radius: 2px; margin-right: 0.3em; vertical-align: -0.05em; }
.controls { margin-bottom: 0.5rem; }
#filter { font: inherit; padding: 0.25rem 0.4rem; width: min(40ch, 70vw); background: var(--bg); color: var(--fg); border: 1px solid var(--line); border-radius: 4px; }
#count { color: var(--muted); margin-left: 0.5rem; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
th, td { padding: 0.2rem 0.5rem; border-bottom: 1px solid var(--line); text-align: left; white-space: nowrap; }
td.num { text-align: right; }
th button { font: inherit; font-weight: 600; background: none; border: 0; color: inherit; cursor: pointer; padding: 0; }
tbody tr { cursor: pointer; }
tbody tr:hover { background: var(--panel); }
tbody tr[aria-selected="true"] { background: var(--select); }
td.name { max-width: 48ch; overflow: hidden; text-overflow: ellipsis; }
#pager { margin: 0.5rem 0; }
#pager button { font: inherit; background: var(--panel); color: var(--fg); border: 1px solid var(--line); border-radius: 4px; padding: 0.15rem 0.6rem; }
#pager button:disabled { opacity: 0.5; }
#detail { margin-bottom: 2rem; }
#detail dl { display: grid; grid-template-columns: max-content 1fr; gap: 0.1rem 1rem; margin: 0.5rem 0; }
#detail dt { color: var(--muted); }
#detail dd { margin: 0; word-break: break-all; }
svg text { fill: var(--muted); font-size: 11px; }
svg .axis { stroke: var(--line); }
.chart { display: inline-block; margin-right: 1.5rem; vertical-align: top; }
`;
