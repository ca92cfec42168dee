import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import { setTimeout as delay } from 'node:timers/promises';
import { tempDir } from './helpers.js';

/**
 * Headless Chromium driven over the DevTools protocol on a pipe (--remote-debugging-pipe: no port,
 * no WebSocket): one browser for many pages, each page's console messages, exceptions and log
 * errors collected. Every host name is unresolvable and background services are off: no network.
 */
export const BROWSER = ['chromium', 'chromium-browser', 'google-chrome'].find((name) => spawnSync('which', [name]).status === 0);

const FLAGS = [
  '--headless=new', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-extensions', '--disable-sync', '--disable-background-networking',
  '--disable-component-update', '--disable-default-apps', '--host-resolver-rules=MAP * ~NOTFOUND', '--remote-debugging-pipe',
];

type Message = { id?: number; method?: string; sessionId?: string; params?: Record<string, unknown>; result?: Record<string, unknown>; error?: { message: string } };

export class Browser {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (m: Message) => void; reject: (e: Error) => void }>();
  private readonly listeners: ((m: Message) => void)[] = [];

  private constructor(private readonly child: ChildProcess, private readonly input: Writable, output: Readable) {
    let buffered = '';
    output.setEncoding('utf8');
    output.on('data', (chunk: string) => {
      buffered += chunk;
      let end: number;
      while ((end = buffered.indexOf('\0')) >= 0) {
        const message = JSON.parse(buffered.slice(0, end)) as Message;
        buffered = buffered.slice(end + 1);
        const waiting = message.id === undefined ? undefined : this.pending.get(message.id);
        if (waiting) {
          this.pending.delete(message.id!);
          if (message.error) waiting.reject(new Error(message.error.message));
          else waiting.resolve(message);
        } else for (const listen of this.listeners) listen(message);
      }
    });
    child.on('exit', () => { for (const w of this.pending.values()) w.reject(new Error('chromium exited')); });
  }

  /** Starts Chromium, or returns undefined where it is missing or cannot start within 30 s. */
  static async launch(): Promise<Browser | undefined> {
    if (!BROWSER) return undefined;
    // Its own process group: closing ends its helper processes too (they write to the profile folder).
    const child = spawn(BROWSER, [...FLAGS, `--user-data-dir=${tempDir('ckpt-chromium-')}`], { stdio: ['ignore', 'ignore', 'ignore', 'pipe', 'pipe'], detached: true });
    const browser = new Browser(child, child.stdio[3] as Writable, child.stdio[4] as Readable);
    const failed = new Promise<undefined>((resolve) => { child.on('error', () => resolve(undefined)); child.on('exit', () => resolve(undefined)); });
    const timeout = delay(30_000, undefined, { ref: false });
    const ready = browser.send('Browser.getVersion').then(() => browser);
    const result = await Promise.race([ready, failed, timeout]).catch(() => undefined);
    if (!result) child.kill();
    return result;
  }

  send(method: string, params: Record<string, unknown> = {}, sessionId?: string): Promise<Message> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.input.write(`${JSON.stringify({ id, method, params, ...(sessionId ? { sessionId } : {}) })}\0`);
    });
  }

  on(listen: (m: Message) => void): void {
    this.listeners.push(listen);
  }

  /** A new tab of `width`×`height` CSS pixels whose console and errors are collected. */
  async page(width = 1280, height = 1400): Promise<Page> {
    const target = await this.send('Target.createTarget', { url: 'about:blank' });
    const attached = await this.send('Target.attachToTarget', { targetId: target.result!.targetId, flatten: true });
    const page = new Page(this, attached.result!.sessionId as string);
    this.on((m) => page.receive(m));
    for (const domain of ['Page', 'Runtime', 'Log']) await page.send(`${domain}.enable`);
    await page.send('Emulation.setDeviceMetricsOverride', { width, height, deviceScaleFactor: 1, mobile: false });
    return page;
  }

  /** Ends Chromium and every process it started, waiting for it to exit, so its profile folder is no longer written to. */
  async close(): Promise<void> {
    const running = this.child.exitCode === null && this.child.signalCode === null;
    const exited = running ? new Promise((resolve) => this.child.once('exit', resolve)) : undefined;
    try {
      process.kill(-this.child.pid!, 'SIGKILL');
    } catch {
      // the group is already gone
    }
    await exited;
  }
}

export class Page {
  /** Console calls, uncaught exceptions and error log entries (refused requests, CSP violations). */
  readonly messages: string[] = [];
  private loaded?: () => void;

  constructor(private readonly browser: Browser, private readonly sessionId: string) {}

  receive(m: Message): void {
    if (m.sessionId !== this.sessionId) return;
    const p = m.params ?? {};
    if (m.method === 'Runtime.consoleAPICalled') this.messages.push(`console.${p.type}: ${JSON.stringify((p.args as { value?: unknown }[]).map((a) => a.value))}`);
    else if (m.method === 'Runtime.exceptionThrown') this.messages.push(`exception: ${JSON.stringify(p.exceptionDetails)}`);
    else if (m.method === 'Log.entryAdded') this.messages.push(`log: ${JSON.stringify(p.entry)}`);
    else if (m.method === 'Page.loadEventFired') this.loaded?.();
  }

  send(method: string, params: Record<string, unknown> = {}): Promise<Message> {
    return this.browser.send(method, params, this.sessionId);
  }

  async open(url: string): Promise<void> {
    const loaded = new Promise<void>((resolve) => { this.loaded = resolve; });
    await this.send('Page.navigate', { url });
    await loaded;
  }

  /** Evaluates an expression in the page; returns its value (JSON-serializable). */
  async evaluate<T>(expression: string): Promise<T> {
    const r = await this.send('Runtime.evaluate', { expression, returnByValue: true, awaitPromise: true });
    if (r.result!.exceptionDetails) throw new Error(`in the page: ${JSON.stringify(r.result!.exceptionDetails)}`);
    return (r.result!.result as { value: T }).value;
  }

  /** The page as HTML, after its scripts ran. */
  html(): Promise<string> {
    return this.evaluate<string>('document.documentElement.outerHTML');
  }

  /** A PNG of the whole page. */
  async screenshot(): Promise<Buffer> {
    const r = await this.send('Page.captureScreenshot', { format: 'png', captureBeyondViewport: true });
    return Buffer.from(r.result!.data as string, 'base64');
  }
}
