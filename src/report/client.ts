// @ts-nocheck -- this function runs in the browser: its source text is inlined into the report page
// (Function.prototype.toString), so it may use nothing from its module scope and no Node API.

/**
 * The report page's script: reads the embedded `--json` document and draws the treemap, the table
 * (filtered, sorted, paged: fast with 10,000 tensors), the selected tensor's histogram(s) and, for
 * finetune, the training curves. `#filter=TEXT` and `#select=NAME` in the URL preset the view.
 */
export function reportClient() {
  'use strict';
  const started = performance.now();
  const root = document.documentElement;
  window.addEventListener('error', (e) => { root.dataset.error = String(e.message); });
  const $ = (id) => document.getElementById(id);
  const kind = document.body.dataset.kind;
  const data = JSON.parse($('ckpt-data').textContent);
  const numel = (shape) => (shape || []).reduce((a, b) => a * b, 1);
  const PAGE = 100;
  const CATEGORY_COLORS = 9;

  /** A number as the table shows it: 4 significant digits, exponent outside [1e-3, 1e6). */
  const fmt = (v) => {
    if (v === null || v === undefined) return '–';
    if (typeof v !== 'number') return String(v);
    if (v === 0 || Number.isInteger(v) && Math.abs(v) < 1e15) return v.toLocaleString('en-US');
    const a = Math.abs(v);
    return a >= 1e-3 && a < 1e6 ? String(Number(v.toPrecision(4))) : v.toExponential(3);
  };
  const el = (tag, attrs, ...children) => {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) if (v !== undefined) e.setAttribute(k, v);
    for (const c of children) e.append(c);
    return e;
  };
  const css = (name) => getComputedStyle(root).getPropertyValue(name).trim();
  // Colors are scheme variables (--c2) or fixed values (hsl(…)): a variable is looked up when drawn, so a scheme change recolors.
  const cssColor = (color) => (color.startsWith('--') ? `var(${color})` : color);

  // Each command's document as rows: name, size (elements) for the treemap, a color key, table cells, histograms.
  const categories = new Map();
  /** A color per category, in order of appearance unless `fixed` names its variable (plan actions keep theirs). */
  const categoryColor = (key, fixed) => {
    if (!categories.has(key)) categories.set(key, (fixed && fixed[key]) || `--c${categories.size % CATEGORY_COLORS}`);
    return categories.get(key);
  };
  const ACTION_COLORS = { load: '--c0', expand: '--c1', fold: '--c4', skip: '--c3', keep: '--c8' };
  /** |Δ|/|A| from 0 (green) to ≥ 1 (red) on a log scale from 1e-7. */
  const changeColor = (rel) => {
    if (rel === undefined || rel === null || Number.isNaN(rel)) return '--c8';
    if (rel === 0) return '--c2';
    const t = Math.max(0, Math.min(1, (Math.log10(rel) + 7) / 7));
    return `hsl(${Math.round(120 - 120 * t)} 65% 50%)`;
  };
  const statColumns = [['min', 'min'], ['max', 'max'], ['mean', 'mean'], ['std', 'std'], ['zeros', 'zeros'], ['nonFinite', 'NaN/Inf']];
  const statCells = (s) => (s ? { min: s.min, max: s.max, mean: s.mean, std: s.std, zeros: s.zeros, nonFinite: s.nan + s.posInf + s.negInf } : {});
  const rms = (s) => (s && s.mean !== null ? Math.sqrt(s.mean * s.mean + s.std * s.std) : undefined);

  const views = {
    inspect(d) {
      const withStats = d.tensors.some((t) => t.stats);
      const t = d.totals || {};
      return {
        summary: `${d.format} · ${fmt(t.tensors)} tensors · ${fmt(t.parameters)} parameters`,
        legendTitle: 'dtype',
        columns: [['name', 'name'], ['dtype', 'dtype'], ['shape', 'shape'], ['role', 'role'], ['params', 'elements'], ['bytes', 'bytes'], ...(withStats ? statColumns : [])],
        rows: d.tensors.map((x) => ({
          name: x.name, size: numel(x.shape), key: x.dtype, color: categoryColor(x.dtype),
          cells: { name: x.name, dtype: x.dtype, shape: `[${x.shape.join(', ')}]`, role: x.role || '', params: numel(x.shape), bytes: x.byteLength, ...statCells(x.stats) },
          histograms: x.stats ? [{ label: x.name, stats: x.stats }] : [],
        })),
      };
    },
    diff(d) {
      const stats = d.stats || { a: {}, b: {} };
      const status = new Map();
      for (const p of d.shapeMismatches) status.set(p.a, 'shape differs');
      for (const p of d.dtypeMismatches) status.set(p.a, 'dtype differs');
      const rows = d.matched.map((p) => {
        const sa = stats.a[p.a];
        const sb = stats.b[p.b];
        const v = p.values;
        const rel = v && v.meanAbsDiff !== undefined && rms(sa) ? v.meanAbsDiff / rms(sa) : v && v.bitIdentical ? 0 : undefined;
        const s = status.get(p.a) || (v ? (v.bitIdentical ? 'identical' : v.withinTolerance ? 'within tolerance' : 'values differ') : 'matched');
        return {
          name: p.a === p.b ? p.a : `${p.a} ↔ ${p.b}`, size: numel(p.shapeA), key: s, color: v ? changeColor(rel) : categoryColor(s),
          cells: { name: p.a === p.b ? p.a : `${p.a} ↔ ${p.b}`, status: s, shape: `[${p.shapeA.join(', ')}]`, dtype: p.dtypeA === p.dtypeB ? p.dtypeA : `${p.dtypeA} → ${p.dtypeB}`,
            maxAbs: v ? v.maxAbsDiff : undefined, meanAbs: v ? v.meanAbsDiff : undefined, relative: rel, cosine: v ? v.cosine : undefined },
          histograms: [sa && { label: `A: ${p.a}`, stats: sa }, sb && { label: `B: ${p.b}`, stats: sb }].filter(Boolean),
        };
      });
      const only = (list, side) => list.map((x) => {
        const s = `only in ${side}`;
        const st = stats[side.toLowerCase()][x.name];
        return { name: x.name, size: numel(x.shape), key: s, color: categoryColor(s), cells: { name: x.name, status: s, shape: `[${x.shape.join(', ')}]`, dtype: x.dtype }, histograms: st ? [{ label: `${side}: ${x.name}`, stats: st }] : [] };
      });
      return {
        summary: `A: ${d.a.path} (${d.a.tensors} tensors) · B: ${d.b.path} (${d.b.tensors}) · ${d.matched.length} matched · ${d.onlyInA.length} only in A · ${d.onlyInB.length} only in B · ${d.equal ? 'equal' : 'different'}`,
        legendTitle: d.valuesCompared ? 'mean |Δ| / RMS(A), green 0 → red ≥ 1 (log scale from 1e-7)' : 'status',
        columns: [['name', 'name'], ['status', 'status'], ['shape', 'shape A'], ['dtype', 'dtype'], ...(d.valuesCompared ? [['maxAbs', 'max |Δ|'], ['meanAbs', 'mean |Δ|'], ['relative', '|Δ|/|A|'], ['cosine', 'cosine']] : [])],
        rows: [...rows, ...only(d.onlyInA, 'A'), ...only(d.onlyInB, 'B')],
        scale: d.valuesCompared ? [['0', 0], ['1e-6', 1e-6], ['1e-4', 1e-4], ['1e-2', 1e-2], ['≥ 1', 1]].map(([label, rel]) => [label, changeColor(rel)]) : undefined,
      };
    },
    plan(d) {
      return {
        summary: `${d.source.path} → ${d.target.path} · ${d.summary.loaded} loaded · ${d.summary.expanded} expanded · ${d.summary.folded} folded · ${d.summary.skipped} skipped · ${d.summary.kept} kept · ${(100 * d.summary.fractionLoaded).toFixed(1)}% of parameters from the source`,
        legendTitle: 'action',
        columns: [['name', 'target tensor'], ['action', 'action'], ['source', 'from source'], ['shape', 'shape'], ['params', 'parameters'], ['why', 'why']],
        rows: d.entries.map((e) => ({
          name: e.target, size: numel(e.shape), key: e.action, color: categoryColor(e.action, ACTION_COLORS),
          cells: { name: e.target, action: e.action, source: e.source || '', shape: `[${e.shape.join(', ')}]`, params: e.parameters, why: e.skip ? e.skip.detail : e.keep ? e.keep.detail : e.why || '' },
          histograms: [],
        })),
      };
    },
    compare(d) {
      // Divergence: max |Δ| in units of the tolerance, from 1 (green) to 1e6 and beyond (red).
      const divergence = (o) => changeColor(Math.min(1, (o.maxAbs / (d.atol + d.rtol)) * 1e-6));
      return {
        summary: `${d.a} vs ${d.b} · ${d.equal ? 'equal' : 'different'} within |A−B| ≤ ${d.atol} + ${d.rtol}·|B| · ran on ${d.provider}`,
        legendTitle: 'max |Δ| in units of atol + rtol (log scale)',
        columns: [['name', 'output'], ['dtype', 'dtype'], ['shape', 'shape A'], ['maxAbs', 'max |Δ|'], ['meanAbs', 'mean |Δ|'], ['cosine', 'cosine'], ['verdict', 'verdict']],
        rows: d.outputs.map((o) => ({
          name: o.name, size: Math.max(1, numel(o.shapeA)), key: o.equal ? 'equal' : 'different', color: o.problem ? '--c8' : o.equal ? '--c2' : divergence(o),
          cells: { name: o.name, dtype: o.dtype, shape: `[${o.shapeA.join(', ')}]`, maxAbs: o.maxAbs, meanAbs: o.meanAbs, cosine: o.cosine, verdict: o.problem || (o.equal ? 'equal' : `different (${o.outside} outside)`) },
          histograms: [],
        })),
        scale: [['equal', '--c2'], ['1×', divergence({ maxAbs: d.atol + d.rtol })], ['100×', divergence({ maxAbs: 100 * (d.atol + d.rtol) })], ['10⁴×', divergence({ maxAbs: 1e4 * (d.atol + d.rtol) })], ['≥ 10⁶×', divergence({ maxAbs: 1e6 * (d.atol + d.rtol) })], ['not compared', '--c8']],
      };
    },
    finetune(d) {
      const epochs = d.epochs || [];
      return {
        summary: `${d.start ? d.start.model : ''} · ${epochs.length} epochs · trained ${(d.start ? d.start.trainable : []).join(', ')}`,
        columns: [['name', 'epoch'], ['trainLoss', 'train loss'], ['validationLoss', 'val loss'], ['validationAccuracy', 'accuracy'], ['accuracyOld', 'old classes'], ['accuracyNew', 'new classes'], ['examplesPerSecond', 'examples/s']],
        rows: epochs.map((e) => ({ name: String(e.epoch), size: 0, cells: { name: String(e.epoch), ...e }, histograms: [] })),
        curves: epochs,
      };
    },
  };

  const view = views[kind](data);
  $('summary').textContent = view.summary;
  const numeric = new Set(view.columns.filter(([key]) => view.rows.some((r) => typeof r.cells[key] === 'number')).map(([key]) => key));

  // ---- legend and treemap ----
  const tiles = [];
  const hasMap = view.rows.some((r) => r.size > 0);
  if (!hasMap) $('map-section').hidden = true;
  else {
    const legend = $('legend');
    legend.append(el('span', {}, `${view.legendTitle}:`));
    for (const [label, color] of view.scale || [...categories]) legend.append(el('span', { role: 'listitem' }, el('span', { class: 'swatch', style: `background: ${cssColor(color)}` }), label));
  }

  /** Rows grouped by dotted name parts: the treemap's hierarchy. */
  function hierarchy(rows) {
    const top = { name: '', children: new Map(), size: 0 };
    for (const row of rows) {
      if (!(row.size > 0)) continue;
      const parts = row.name.split(/[./]/);
      let node = top;
      top.size += row.size;
      for (let i = 0; i < parts.length - 1; i++) {
        if (!node.children.has(parts[i])) node.children.set(parts[i], { name: parts[i], children: new Map(), size: 0 });
        node = node.children.get(parts[i]);
        node.size += row.size;
      }
      node.children.set(`\u0000${row.name}`, { name: parts[parts.length - 1], row, size: row.size });
    }
    return top;
  }

  /** Squarified layout of `items` (with .size) in the rectangle; returns [item, x, y, w, h]. */
  function squarify(items, x, y, w, h) {
    const out = [];
    const total = items.reduce((s, i) => s + i.size, 0);
    if (!total || w <= 0 || h <= 0) return out;
    const scale = (w * h) / total;
    let rest = items.slice().sort((a, b) => b.size - a.size);
    while (rest.length) {
      const short = Math.min(w, h);
      let row = [];
      let rowArea = 0;
      let worst = Infinity;
      for (const item of rest) {
        const area = item.size * scale;
        const candidate = rowArea + area;
        const side = candidate / short;
        const all = [...row, item];
        const ratio = Math.max(...all.map((i) => Math.max(side / (i.size * scale / side), (i.size * scale / side) / side)));
        if (row.length && ratio > worst) break;
        row = all; rowArea = candidate; worst = ratio;
        if (row.length > 64) break;
      }
      rest = rest.slice(row.length);
      const thick = rowArea / short;
      let along = 0;
      for (const item of row) {
        const len = item.size * scale / thick;
        if (w >= h) out.push([item, x, y + along, thick, len]); else out.push([item, x + along, y, len, thick]);
        along += len;
      }
      if (w >= h) { x += thick; w -= thick; } else { y += thick; h -= thick; }
    }
    return out;
  }

  const canvas = $('treemap');
  function drawMap() {
    if (!hasMap) return;
    const ratio = window.devicePixelRatio || 1;
    const width = canvas.clientWidth;
    const height = canvas.clientHeight;
    canvas.width = Math.round(width * ratio);
    canvas.height = Math.round(height * ratio);
    const g = canvas.getContext('2d');
    g.scale(ratio, ratio);
    const bg = css('--bg');
    g.fillStyle = bg;
    g.fillRect(0, 0, width, height);
    tiles.length = 0;
    const line = css('--line');
    const fg = css('--fg');
    const resolved = new Map();
    const paint = (color) => {
      if (!color.startsWith('--')) return color;
      if (!resolved.has(color)) resolved.set(color, css(color));
      return resolved.get(color);
    };
    const visit = (node, x, y, w, h, depth) => {
      if (node.row) {
        tiles.push([node.row, x, y, w, h]);
        g.fillStyle = paint(node.row.color);
        g.fillRect(x, y, w, h);
        if (w > 3 && h > 3) { g.strokeStyle = bg; g.lineWidth = 1; g.strokeRect(x + 0.5, y + 0.5, w - 1, h - 1); }
        if (node.row === selected) { g.strokeStyle = fg; g.lineWidth = 2; g.strokeRect(x + 1, y + 1, w - 2, h - 2); }
        return;
      }
      const pad = depth > 0 && w > 24 && h > 24 ? 1 : 0;
      const label = depth > 0 && w > 60 && h > 30 ? 14 : 0;
      for (const [child, cx, cy, cw, ch] of squarify([...node.children.values()], x + pad, y + pad + label, w - 2 * pad, h - 2 * pad - label)) visit(child, cx, cy, cw, ch, depth + 1);
      if (depth > 0 && (w > 3 || h > 3)) {
        g.strokeStyle = line; g.lineWidth = 1; g.strokeRect(x + 0.5, y + 0.5, w - 1, h - 1);
        if (label) { g.fillStyle = fg; g.font = '11px system-ui, sans-serif'; g.fillText(node.name, x + 3, y + 11, w - 6); }
      }
    };
    visit(hierarchy(view.rows), 0, 0, width, height, 0);
    canvas.setAttribute('aria-label', `Treemap of ${tiles.length} tensors sized by elements; the table below lists the same tensors.`);
  }
  const tileAt = (event) => {
    const r = canvas.getBoundingClientRect();
    const x = event.clientX - r.left;
    const y = event.clientY - r.top;
    return tiles.find(([, tx, ty, tw, th]) => x >= tx && x < tx + tw && y >= ty && y < ty + th);
  };
  canvas.addEventListener('mousemove', (event) => {
    const tile = tileAt(event);
    const tip = $('tip');
    if (!tile) { tip.hidden = true; return; }
    tip.hidden = false;
    tip.textContent = `${tile[0].name} · ${fmt(tile[0].size)} elements · ${tile[0].key}`;
    tip.style.left = `${Math.min(event.offsetX + 12, canvas.clientWidth - 200)}px`;
    tip.style.top = `${event.offsetY + 12}px`;
  });
  canvas.addEventListener('mouseleave', () => { $('tip').hidden = true; });
  canvas.addEventListener('click', (event) => { const tile = tileAt(event); if (tile) select(tile[0], true); });

  // ---- table: filter, sort, pages ----
  let sortKey = null;
  let sortDir = 1;
  let page = 0;
  let shown = view.rows;
  let selected = null;
  const thead = $('table').tHead;
  const tbody = $('table').tBodies[0];
  const headRow = el('tr');
  for (const [key, label] of view.columns) {
    const button = el('button', { type: 'button' }, label);
    button.addEventListener('click', () => { sortDir = sortKey === key ? -sortDir : 1; sortKey = key; page = 0; update(); });
    headRow.append(el('th', { scope: 'col', 'data-key': key, 'aria-sort': 'none' }, button));
  }
  thead.append(headRow);

  const matcher = (text) => {
    if (!text) return () => true;
    if (text.startsWith('re:')) {
      let re;
      try { re = new RegExp(text.slice(3), 'i'); } catch { return () => false; }
      return (row) => re.test(row.name);
    }
    const needle = text.toLowerCase();
    return (row) => row.name.toLowerCase().includes(needle) || String(row.key || '').toLowerCase() === needle;
  };
  function update() {
    const keep = matcher($('filter').value.trim());
    shown = view.rows.filter(keep);
    if (sortKey) {
      const k = sortKey;
      const value = (r) => r.cells[k];
      shown.sort((a, b) => {
        const x = value(a);
        const y = value(b);
        if (x === y) return 0;
        if (x === undefined || x === null) return 1;
        if (y === undefined || y === null) return -1;
        return (typeof x === 'number' && typeof y === 'number' ? x - y : String(x).localeCompare(String(y))) * sortDir;
      });
    }
    for (const th of headRow.children) th.setAttribute('aria-sort', th.dataset.key === sortKey ? (sortDir > 0 ? 'ascending' : 'descending') : 'none');
    const pages = Math.max(1, Math.ceil(shown.length / PAGE));
    page = Math.min(page, pages - 1);
    $('count').textContent = `${shown.length} of ${view.rows.length} rows`;
    $('page').textContent = `page ${page + 1} of ${pages}`;
    $('prev').disabled = page === 0;
    $('next').disabled = page >= pages - 1;
    const body = document.createDocumentFragment();
    for (const row of shown.slice(page * PAGE, (page + 1) * PAGE)) {
      const tr = el('tr', { tabindex: '0', 'data-name': row.name, 'aria-selected': row === selected ? 'true' : 'false' });
      for (const [key] of view.columns) {
        const v = row.cells[key];
        const isNumber = typeof v === 'number';
        tr.append(el('td', { class: key === 'name' ? 'name' : isNumber || numeric.has(key) ? 'num' : undefined, 'data-key': key, title: isNumber ? String(v) : key === 'name' ? row.name : undefined }, fmt(v === '' ? null : v)));
      }
      tr.addEventListener('click', () => select(row, false));
      tr.addEventListener('keydown', (event) => {
        if (event.key === 'Enter' || event.key === ' ') { event.preventDefault(); select(row, false); }
        else if (event.key === 'ArrowDown' && tr.nextElementSibling) { event.preventDefault(); tr.nextElementSibling.focus(); }
        else if (event.key === 'ArrowUp' && tr.previousElementSibling) { event.preventDefault(); tr.previousElementSibling.focus(); }
      });
      body.append(tr);
    }
    tbody.replaceChildren(body);
  }
  $('filter').addEventListener('input', () => { page = 0; update(); });
  $('prev').addEventListener('click', () => { page--; update(); });
  $('next').addEventListener('click', () => { page++; update(); });

  // ---- detail: the selected row's cells and histograms ----
  function select(row, fromMap) {
    selected = row;
    const detail = $('detail');
    const list = el('dl');
    for (const [key, label] of view.columns) {
      const v = row.cells[key];
      if (v === undefined || v === '') continue;
      list.append(el('dt', {}, label), el('dd', { 'data-key': key }, typeof v === 'number' ? `${fmt(v)}${fmt(v) === String(v) ? '' : ` (${v})`}` : String(v)));
    }
    detail.replaceChildren(el('h2', { id: 'detail-title' }, row.name), list);
    if (row.histograms.length) detail.append(histogram(row.histograms));
    for (const tr of tbody.rows) tr.setAttribute('aria-selected', tr.dataset.name === row.name ? 'true' : 'false');
    drawMap();
    if (fromMap) detail.scrollIntoView({ block: 'nearest' });
  }

  const SVG = 'http://www.w3.org/2000/svg';
  const svgEl = (tag, attrs, text) => {
    const e = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    return e;
  };

  /** One or two (A over B) histograms on a common value axis; bars are each side's own bins. */
  function histogram(sets) {
    const W = 560;
    const H = 180;
    const M = { l: 48, r: 12, t: 10, b: 36 };
    const finite = sets.filter((s) => s.stats.min !== null);
    const svg = svgEl('svg', { width: W, height: H, viewBox: `0 0 ${W} ${H}`, role: 'img', class: 'histogram', 'aria-label': `histogram of ${sets.map((s) => s.label).join(' and ')}` });
    if (!finite.length) { svg.append(svgEl('text', { x: M.l, y: H / 2 }, 'no finite values')); return svg; }
    const lo = Math.min(...finite.map((s) => s.stats.min));
    const hi = Math.max(...finite.map((s) => s.stats.max));
    const span = hi > lo ? hi - lo : 1;
    const top = Math.max(1, ...finite.flatMap((s) => s.stats.histogram));
    const sx = (v) => M.l + ((v - lo) / span) * (W - M.l - M.r);
    const colors = ['--bar-a', '--bar-b'];
    finite.forEach((s, k) => {
      const bins = s.stats.histogram.length;
      const width = (s.stats.max - s.stats.min) / bins || span / bins;
      s.stats.histogram.forEach((count, i) => {
        if (!count) return;
        const x0 = sx(s.stats.min + i * width);
        const x1 = Math.max(x0 + 1, sx(s.stats.min + (i + 1) * width));
        const h = (count / top) * (H - M.t - M.b);
        svg.append(svgEl('rect', { x: x0, y: H - M.b - h, width: x1 - x0, height: h, style: `fill: var(${colors[k]})`, 'fill-opacity': finite.length > 1 ? 0.55 : 0.85, 'data-count': count }));
      });
    });
    svg.append(svgEl('line', { class: 'axis', x1: M.l, x2: W - M.r, y1: H - M.b, y2: H - M.b }));
    svg.append(svgEl('text', { x: M.l, y: H - M.b + 14 }, fmt(lo)));
    svg.append(svgEl('text', { x: W - M.r, y: H - M.b + 14, 'text-anchor': 'end' }, fmt(hi)));
    svg.append(svgEl('text', { x: M.l - 4, y: M.t + 10, 'text-anchor': 'end' }, fmt(top)));
    finite.forEach((s, k) => svg.append(svgEl('text', { x: M.l + k * 240, y: H - 4, style: `fill: var(${colors[k]})` }, s.label.length > 40 ? `${s.label.slice(0, 39)}…` : s.label)));
    return svg;
  }

  // ---- finetune: loss and accuracy per epoch ----
  function lineChart(title, series, epochs) {
    const W = 420;
    const H = 220;
    const M = { l: 48, r: 12, t: 24, b: 40 };
    const values = series.flatMap((s) => epochs.map((e) => e[s.key]).filter((v) => typeof v === 'number'));
    const box = el('figure', { class: 'chart' });
    const svg = svgEl('svg', { width: W, height: H, viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': title });
    svg.append(svgEl('text', { x: M.l, y: 14 }, title));
    if (!values.length) { box.append(svg); return box; }
    const lo = Math.min(0, ...values);
    const hi = Math.max(...values) || 1;
    const first = epochs[0].epoch;
    const last = epochs[epochs.length - 1].epoch;
    const sx = (x) => M.l + (last > first ? (x - first) / (last - first) : 0.5) * (W - M.l - M.r);
    const sy = (v) => H - M.b - ((v - lo) / (hi - lo || 1)) * (H - M.t - M.b);
    svg.append(svgEl('line', { class: 'axis', x1: M.l, x2: W - M.r, y1: H - M.b, y2: H - M.b }));
    svg.append(svgEl('text', { x: M.l - 4, y: sy(hi) + 4, 'text-anchor': 'end' }, fmt(hi)));
    svg.append(svgEl('text', { x: M.l - 4, y: sy(lo), 'text-anchor': 'end' }, fmt(lo)));
    svg.append(svgEl('text', { x: W - M.r, y: H - M.b + 14, 'text-anchor': 'end' }, `epoch ${last}`));
    series.forEach((s, k) => {
      const points = epochs.filter((e) => typeof e[s.key] === 'number').map((e) => `${sx(e.epoch)},${sy(e[s.key])}`);
      if (!points.length) return;
      svg.append(svgEl('polyline', { points: points.join(' '), fill: 'none', style: `stroke: var(--c${k})`, 'stroke-width': 2, 'data-series': s.key }));
      svg.append(svgEl('text', { x: M.l + k * 110, y: H - 6, style: `fill: var(--c${k})` }, s.label));
    });
    box.append(svg);
    return box;
  }
  if (view.curves) {
    $('curves-section').hidden = false;
    $('table-title').textContent = 'Epochs';
    $('curves').append(
      lineChart('loss', [{ key: 'trainLoss', label: 'train' }, { key: 'validationLoss', label: 'validation' }], view.curves),
      lineChart('accuracy', [{ key: 'validationAccuracy', label: 'all classes' }, { key: 'accuracyOld', label: 'old classes' }, { key: 'accuracyNew', label: 'new classes' }], view.curves),
    );
  }

  // The URL may preset the view: #filter=TEXT&select=NAME.
  const preset = new URLSearchParams(location.hash.slice(1));
  if (preset.get('filter')) $('filter').value = preset.get('filter');
  update();
  drawMap();
  const wanted = preset.get('select');
  const first = wanted ? view.rows.find((r) => r.name === wanted) : undefined;
  if (first) select(first, false);
  let resizing = 0;
  window.addEventListener('resize', () => { cancelAnimationFrame(resizing); resizing = requestAnimationFrame(drawMap); });
  // The canvas takes its colors from the scheme: drawn again when it changes.
  matchMedia('(prefers-color-scheme: dark)').addEventListener('change', drawMap);
  root.dataset.loadMs = String(Math.round(performance.now() - started));
  root.dataset.ready = 'true';
}
