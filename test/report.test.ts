import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Browser, type Page } from './browser.js';
import { ROOT, SAMPLES, runCli, tempDir } from './helpers.js';

/**
 * Each HTML report opened in headless Chromium, as a person would look at it: it renders without
 * console errors, shows the numbers of its JSON, filters as one types, answers the keyboard, and
 * leaves a screenshot in test-output/. Skips where Chromium is missing or cannot start (Debian:
 * apt-get install chromium).
 */
const SCREENSHOTS = path.join(ROOT, 'test-output');
const browser = await Browser.launch();

/** Opens the page; it must run its script to the end with nothing on the console. */
async function openPage(file: string, hash = ''): Promise<Page> {
  const page = await browser!.page();
  await page.open(`file://${file}${hash}`);
  assert.equal(await page.evaluate('document.documentElement.dataset.ready'), 'true', 'the script ran to the end');
  assert.deepEqual(page.messages, [], `console of ${path.basename(file)}`);
  return page;
}

async function screenshot(page: Page, name: string): Promise<void> {
  fs.mkdirSync(SCREENSHOTS, { recursive: true });
  const png = await page.screenshot();
  assert.ok(png.length > 10_000, 'a screenshot with something on it');
  fs.writeFileSync(path.join(SCREENSHOTS, `report-${name}.png`), png);
}

/** Types TEXT into the filter box as a person would (an input event per change). */
async function filter(page: Page, text: string): Promise<string> {
  return page.evaluate(`(() => {
    const box = document.getElementById('filter');
    box.focus();
    box.value = ${JSON.stringify(text)};
    box.dispatchEvent(new Event('input'));
    return document.documentElement.outerHTML;
  })()`);
}

const decode = (html: string) => html.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&amp;/g, '&');

interface Cell { text: string; title?: string }
/** The table's rows on the page: data-name and each cell's text and exact value (title). */
function tableRows(dom: string): { name: string; cells: Record<string, Cell> }[] {
  return [...dom.matchAll(/<tr tabindex="0" data-name="([^"]*)"[^>]*>(.*?)<\/tr>/gs)].map((row) => {
    const cells: Record<string, Cell> = {};
    for (const cell of row[2]!.matchAll(/<td([^>]*)>(.*?)<\/td>/gs)) {
      const attributes = cell[1]!;
      const title = /title="([^"]*)"/.exec(attributes)?.[1];
      cells[/data-key="([^"]*)"/.exec(attributes)![1]!] = { text: decode(cell[2]!), ...(title === undefined ? {} : { title: decode(title) }) };
    }
    return { name: decode(row[1]!), cells };
  });
}

/** The document embedded in the page. */
function embedded(file: string): unknown {
  const html = fs.readFileSync(file, 'utf8');
  return JSON.parse(/<script type="application\/json" id="ckpt-data">(.*?)<\/script>/s.exec(html)![1]!);
}

/** A number shown with 4 significant digits (thousands separated) that stands for `value`. */
function shows(cell: Cell | undefined, value: number, what: string): void {
  assert.ok(cell, `${what}: no cell`);
  assert.equal(cell.title, String(value), `${what}: exact value`);
  const shown = Number(cell.text.replace(/,/g, ''));
  assert.ok(Math.abs(shown - value) <= 5e-4 * Math.abs(value), `${what}: '${cell.text}' shows ${value}`);
}

describe('HTML reports in headless Chromium', { skip: !browser && 'chromium is not installed or cannot start here' }, () => {
  const dir = tempDir();
  const detector90 = path.join(SAMPLES, 'detector-90.onnx');
  const detector92 = path.join(SAMPLES, 'detector-92.onnx');
  const digits = path.join(SAMPLES, 'digits');
  const html = (kind: string) => path.join(dir, `${kind}.html`);
  after(() => browser?.close());

  test('inspect --stats: every number equals the JSON; filtering keeps the matching rows; Enter shows a histogram', async () => {
    const r = runCli(['inspect', '--stats', '--json', '--html', html('inspect'), detector90]);
    assert.equal(r.status, 0, r.stderr);
    const json = JSON.parse(r.stdout);
    assert.deepEqual(embedded(html('inspect')), json, 'the page embeds what --json prints');
    const page = await openPage(html('inspect'));
    const rows = tableRows(await page.html());
    assert.deepEqual(rows.map((row) => row.name), json.tensors.map((t: { name: string }) => t.name));
    for (const t of json.tensors) {
      const row = rows.find((x) => x.name === t.name)!;
      assert.equal(row.cells.dtype!.text, t.dtype);
      shows(row.cells.params, t.shape.reduce((a: number, b: number) => a * b, 1), `${t.name} elements`);
      for (const key of ['min', 'max', 'mean', 'std'] as const) shows(row.cells[key], t.stats[key], `${t.name} ${key}`);
    }
    // The keyboard: focus the first row, Enter selects it and draws its histogram with the JSON's counts.
    await page.evaluate("document.querySelector('tbody tr').focus()");
    await page.send('Input.dispatchKeyEvent', { type: 'keyDown', key: 'Enter', code: 'Enter', windowsVirtualKeyCode: 13 });
    const selected = await page.html();
    assert.match(selected, /<tr tabindex="0" data-name="backbone.conv1.weight" aria-selected="true">/);
    const bars = [...selected.matchAll(/<rect [^>]*data-count="(\d+)"/g)].map((m) => Number(m[1]));
    assert.deepEqual(bars, json.tensors[0].stats.histogram.filter((c: number) => c > 0));
    await screenshot(page, 'inspect');
    // The dark scheme, as a system set to dark gives it.
    await page.send('Emulation.setEmulatedMedia', { features: [{ name: 'prefers-color-scheme', value: 'dark' }] });
    assert.equal(await page.evaluate('getComputedStyle(document.body).backgroundColor'), 'rgb(13, 17, 23)');
    await screenshot(page, 'inspect-dark');
    const filtered = await filter(page, 'conv1');
    assert.deepEqual(tableRows(filtered).map((row) => row.name), ['backbone.conv1.weight', 'backbone.conv1.bias']);
    assert.match(filtered, /2 of 6 rows/);
    assert.deepEqual(tableRows(await filter(page, 're:bias$')).map((row) => row.name), json.tensors.map((t: { name: string }) => t.name).filter((n: string) => n.endsWith('bias')));
    assert.deepEqual(page.messages, []);
  });

  test('diff --values: relative change per tensor as the JSON gives it; overlaid histograms of A and B', async () => {
    const r = runCli(['diff', '--values', '--json', '--html', html('diff'), detector90, detector92]);
    assert.equal(r.status, 1, r.stderr);
    const json = JSON.parse(r.stdout);
    assert.deepEqual(embedded(html('diff')), json);
    const page = await openPage(html('diff'), '#select=yolo_output.weight');
    const dom = await page.html();
    const rows = tableRows(dom);
    for (const pair of json.matched.filter((p: { values?: unknown }) => p.values)) {
      const row = rows.find((x) => x.name === pair.a)!;
      const a = json.stats.a[pair.a];
      shows(row.cells.maxAbs, pair.values.maxAbsDiff, `${pair.a} max |Δ|`);
      shows(row.cells.relative, pair.values.meanAbsDiff / Math.sqrt(a.mean ** 2 + a.std ** 2), `${pair.a} |Δ|/|A|`);
    }
    const overlaid = [...dom.matchAll(/<rect [^>]*fill-opacity="0.55" data-count="(\d+)"/g)].reduce((s, m) => s + Number(m[1]), 0);
    const finite = (name: string, side: 'a' | 'b') => json.stats[side][name].histogram.reduce((s: number, c: number) => s + c, 0);
    assert.equal(overlaid, finite('yolo_output.weight', 'a') + finite('yolo_output.weight', 'b'), 'A and B bars together');
    await screenshot(page, 'diff');
  });

  test('plan: each tensor with its action; filtering by an action name', async () => {
    const r = runCli(['plan', '--json', '--html', html('plan'), detector90, detector92]);
    assert.equal(r.status, 0, r.stderr);
    const json = JSON.parse(r.stdout);
    assert.deepEqual(embedded(html('plan')), json);
    const page = await openPage(html('plan'));
    assert.deepEqual(tableRows(await page.html()).map((row) => [row.name, row.cells.action!.text]), json.entries.map((e: { target: string; action: string }) => [e.target, e.action]));
    await screenshot(page, 'plan');
    assert.deepEqual(tableRows(await filter(page, 'expand')).map((row) => row.name), json.entries.filter((e: { action: string }) => e.action === 'expand').map((e: { target: string }) => e.target));
  });

  test('compare: divergence per output', async () => {
    const r = runCli(['compare', '--json', '--ep', 'cpu', '--html', html('compare'), detector90, detector90]);
    assert.equal(r.status, 0, r.stderr);
    const json = JSON.parse(r.stdout);
    assert.deepEqual(embedded(html('compare')), json);
    const page = await openPage(html('compare'));
    const rows = tableRows(await page.html());
    assert.deepEqual(rows.map((row) => [row.name, row.cells.verdict!.text]), json.outputs.map((o: { name: string }) => [o.name, 'equal']));
    assert.equal(rows[0]!.cells.maxAbs!.title, String(json.outputs[0].maxAbs));
    await screenshot(page, 'compare');
  });

  test('finetune: loss and accuracy per epoch, old and new classes apart', async () => {
    const [plan, start] = ['plan.json', 'start.onnx'].map((f) => path.join(dir, f));
    assert.equal(runCli(['plan', path.join(digits, 'cnn-8.onnx'), path.join(digits, 'cnn-10.onnx'), '-o', plan]).status, 0);
    assert.equal(runCli(['apply', plan, '-o', start]).status, 0);
    const r = runCli(['finetune', start, '--data', path.join(digits, 'finetune.csv.gz'), '--old-classes', '8', '--epochs', '3', '--ep', 'cpu', '-o', path.join(dir, 'out.onnx'), '--html', html('finetune')]);
    assert.equal(r.status, 0, r.stderr);
    const lines = r.stdout.trim().split('\n').map((line) => JSON.parse(line));
    const data = embedded(html('finetune')) as { start: unknown; epochs: { trainLoss: number }[]; summary: unknown };
    assert.deepEqual(data, { start: lines[0], epochs: lines.slice(1, -1), summary: lines[lines.length - 1] }, 'the JSON lines, gathered');
    const page = await openPage(html('finetune'));
    const dom = await page.html();
    assert.deepEqual([...dom.matchAll(/<polyline [^>]*data-series="(\w+)"/g)].map((m) => m[1]), ['trainLoss', 'validationLoss', 'validationAccuracy', 'accuracyOld', 'accuracyNew']);
    const rows = tableRows(dom);
    data.epochs.forEach((e, i) => shows(rows[i]!.cells.trainLoss, e.trainLoss, `epoch ${i + 1} train loss`));
    await screenshot(page, 'finetune');
  });
});
