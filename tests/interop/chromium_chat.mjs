// A real browser against duplex: Debian's headless Chromium uses examples/chat_server's
// own page in two tabs. The browser is driven through the Chrome DevTools Protocol
// (CDP) directly, over the `ws` package: no browser-automation library, so this runs on
// Debian 12's Node.js 18 as well as on newer ones.
//
//   node tests/interop/chromium_chat.mjs <path/to/chat_server> <screenshot.png>
//
// Starts chat_server on port 0, checks the browser's WebSocket API against it
// (subprotocols, binary, close codes), then opens the chat page twice, types a
// message in page one and checks both pages show it; saves a screenshot of
// page two. Kills the browser (its whole process group) and the server whatever
// happens.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Checks, assert, assertEq, expectCleanExit, killServers, requirePackage, sleep, startServer, withTimeout } from './lib.mjs';

const [chatExe, screenshot] = process.argv.slice(2);
if (!chatExe || !screenshot) {
  console.error('usage: node chromium_chat.mjs <chat_server> <screenshot.png>');
  process.exit(2);
}
const CHROMIUM = process.env.DUPLEX_CHROMIUM || '/usr/bin/chromium';
// RFC 7692 negotiated, unless duplex was built without zlib (CMake sets DUPLEX_EXPECT_DEFLATE=0).
// chat_server adds server_no_context_takeover (RFC 7692 §7.1.1.1) to compress each broadcast once.
const EXTENSIONS = process.env.DUPLEX_EXPECT_DEFLATE === '0' ? '' : 'permessage-deflate; server_no_context_takeover';
const OPEN_LINE = `open (subprotocol: chat, extensions: ${EXTENSIONS || 'none'})`;
if (!fs.existsSync(CHROMIUM)) {
  console.error(`FAIL: no browser at ${CHROMIUM}. Install Debian's Chromium with:  apt-get install chromium\n` +
    '(or: bash scripts/install-deps.sh). Browser downloads do not work here.');
  process.exit(1);
}
const { default: WebSocket } = await requirePackage('ws');

// ---- the browser process ------------------------------------------------------------

let browser; // { proc, stderr, exited }
/** Kills the browser's process group (the browser, its zygotes, renderers, GPU process). */
function killBrowserGroup() {
  if (!browser) return;
  try { process.kill(-browser.proc.pid, 'SIGKILL'); } catch {}
}
// Never leave a browser behind: on a normal exit, a signal (lib.mjs exits on those) or an error.
process.on('exit', killBrowserGroup);

/** Starts Chromium with DevTools on a port of its choosing; resolves to its browser ws:// URL. */
function launchBrowser(userDataDir) {
  // This machine's closed network: no background connections, no GPU, root needs --no-sandbox.
  const args = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
    '--disable-component-update', '--no-first-run', '--disable-sync', '--disable-quic',
    '--remote-debugging-port=0', `--user-data-dir=${userDataDir}`, 'about:blank'];
  return new Promise((resolve, reject) => {
    // detached: its own process group, so killBrowserGroup() reaches every child process.
    const proc = spawn(CHROMIUM, args, { stdio: ['ignore', 'ignore', 'pipe'], detached: true });
    browser = { proc, stderr: '' };
    browser.exited = new Promise((r) => proc.once('exit', (code, signal) => r({ code, signal })));
    const timer = setTimeout(() => reject(new Error(`Chromium printed no "DevTools listening on" line within 30 s; stderr:\n${browser.stderr}`)), 30000);
    let found = false;
    proc.on('error', (e) => { clearTimeout(timer); reject(new Error(`cannot start ${CHROMIUM}: ${e.message}`)); });
    proc.stderr.on('data', (d) => { // keep reading, so a chatty browser never blocks on a full pipe
      browser.stderr = (browser.stderr + d).slice(-20000);
      const m = !found && /DevTools listening on (ws:\/\/\S+)/.exec(browser.stderr);
      if (m) { found = true; clearTimeout(timer); resolve(m[1]); }
    });
    proc.once('exit', (code, signal) => {
      clearTimeout(timer);
      if (!found) reject(new Error(`Chromium exited (code ${code}, signal ${signal}) before DevTools listened; stderr:\n${browser.stderr}`));
    });
  });
}

/** Browser.close, then SIGKILL for the process group if the browser is not gone within 5 s. */
async function stopBrowser(cdp) {
  if (!browser) return;
  if (cdp) await withTimeout(cdp.send('Browser.close'), 3000, 'Browser.close').catch(() => {});
  if (cdp) cdp.close();
  const gone = await Promise.race([browser.exited.then(() => true), sleep(5000).then(() => false)]);
  if (!gone) console.error('chromium did not exit within 5 s of Browser.close: killed');
  killBrowserGroup(); // also any child still in the group after the browser exited
  await Promise.race([browser.exited, sleep(2000)]);
  browser = undefined;
}

// ---- a minimal CDP client: one WebSocket to the browser, flat sessions per page --------

class CDP {
  static connect(url) {
    return new Promise((resolve, reject) => {
      const cdp = new CDP();
      cdp.ws = new WebSocket(url, { perMessageDeflate: false, maxPayload: 512 * 1024 * 1024 });
      cdp.ws.once('open', () => resolve(cdp));
      cdp.ws.once('error', reject);
      cdp.ws.on('message', (data) => cdp._dispatch(JSON.parse(data.toString())));
      cdp.ws.on('close', () => {
        cdp.closed = true;
        for (const p of cdp.pending.values()) p.reject(new Error(`${p.method}: the DevTools connection closed`));
        cdp.pending.clear();
      });
    });
  }
  constructor() { this.nextId = 0; this.pending = new Map(); this.listeners = new Set(); this.closed = false; }
  /** A command; with sessionId, to that page's session (Target.attachToTarget flatten). */
  send(method, params = {}, sessionId) {
    if (this.closed) return Promise.reject(new Error(`${method}: the DevTools connection is closed`));
    const id = ++this.nextId;
    const msg = { id, method, params };
    if (sessionId) msg.sessionId = sessionId;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, method });
      this.ws.send(JSON.stringify(msg));
    });
  }
  /** Calls fn(params) for each `method` event of the session (undefined: the browser's). */
  on(method, sessionId, fn) {
    const l = { method, sessionId, fn };
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }
  _dispatch(m) {
    if (m.id !== undefined) {
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      if (m.error) p.reject(new Error(`${p.method}: ${m.error.message}${m.error.data ? ` (${m.error.data})` : ''}`));
      else p.resolve(m.result);
      return;
    }
    for (const l of this.listeners) if (l.method === m.method && l.sessionId === m.sessionId) l.fn(m.params);
  }
  close() { try { this.ws.close(); } catch {} }
}

/** One tab: navigation, script evaluation, trusted input events and screenshots through CDP. */
class Page {
  static async create(cdp, pageErrors) {
    const { targetId } = await cdp.send('Target.createTarget', { url: 'about:blank' });
    return Page.attach(cdp, targetId, pageErrors);
  }
  static async attach(cdp, targetId, pageErrors) {
    const { sessionId } = await cdp.send('Target.attachToTarget', { targetId, flatten: true });
    const p = new Page(cdp, targetId, sessionId);
    // Uncaught exceptions and unhandled rejections of the page's own scripts.
    cdp.on('Runtime.exceptionThrown', sessionId, ({ exceptionDetails: d }) =>
      pageErrors.push((d.exception && d.exception.description) || d.text));
    cdp.on('Network.responseReceived', sessionId, ({ type, loaderId, response }) => {
      if (type === 'Document') p.status.set(loaderId, response.status);
    });
    cdp.on('Page.lifecycleEvent', sessionId, ({ loaderId, name }) => p.lifecycle.add(`${loaderId} ${name}`));
    await p.send('Page.enable');
    await p.send('Page.setLifecycleEventsEnabled', { enabled: true });
    await p.send('Runtime.enable');
    await p.send('Network.enable');
    // 900x700 like a desktop window; focus emulation so each tab behaves as the focused one.
    await p.send('Emulation.setDeviceMetricsOverride', { width: 900, height: 700, deviceScaleFactor: 1, mobile: false });
    await p.send('Emulation.setFocusEmulationEnabled', { enabled: true });
    return p;
  }
  constructor(cdp, targetId, sessionId) {
    Object.assign(this, { cdp, targetId, sessionId });
    this.status = new Map();     // loaderId -> HTTP status of the document
    this.lifecycle = new Set();  // "loaderId name" of lifecycle events seen
  }
  send(method, params) { return this.cdp.send(method, params, this.sessionId); }

  /** Navigates and waits for the load event; resolves to the document's HTTP status. */
  async goto(url, timeoutMs = 10000) {
    const r = await this.send('Page.navigate', { url });
    if (r.errorText) throw new Error(`navigating to ${url}: ${r.errorText}`);
    const deadline = Date.now() + timeoutMs;
    while (!this.lifecycle.has(`${r.loaderId} load`)) {
      if (Date.now() > deadline) throw new Error(`no load event for ${url} within ${timeoutMs} ms`);
      await sleep(20);
    }
    return this.status.get(r.loaderId);
  }

  /** Runs fn(arg) in the page (arg as JSON), awaits its promise, returns its value as JSON. */
  async evaluate(fn, arg) {
    const expression = `(${fn})(${arg === undefined ? '' : JSON.stringify(arg)})`;
    const r = await this.send('Runtime.evaluate', { expression, awaitPromise: true, returnByValue: true });
    if (r.exceptionDetails) {
      const d = r.exceptionDetails;
      throw new Error(`exception in the page: ${(d.exception && d.exception.description) || d.text}`);
    }
    return r.result.value;
  }

  /** Polls fn(arg) in the page until it returns something truthy. */
  async waitFor(fn, arg, what, timeoutMs = 10000) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const v = await this.evaluate(fn, arg);
      if (v) return v;
      if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
      await sleep(50);
    }
  }

  /** Waits for a visible element matching `selector` whose text contains `text`. */
  waitForText(selector, text, timeoutMs = 10000) {
    return this.waitFor(({ selector, text }) => [...document.querySelectorAll(selector)]
      .some((e) => e.textContent.includes(text) && e.getClientRects().length > 0),
    { selector, text }, `${selector} containing ${JSON.stringify(text)}`, timeoutMs);
  }

  textContents(selector) {
    return this.evaluate((s) => [...document.querySelectorAll(s)].map((e) => e.textContent), selector);
  }
  title() { return this.evaluate(() => document.title); }
  inputValue(selector) { return this.evaluate((s) => document.querySelector(s).value, selector); }

  async focus(selector) {
    const ok = await this.evaluate((s) => {
      const e = document.querySelector(s);
      if (!e) return false;
      e.focus();
      return document.activeElement === e;
    }, selector);
    if (!ok) throw new Error(`cannot focus ${selector}`);
  }

  /** A real left click (mouse events) at the middle of the element, after a hit test. */
  async click(selector) {
    const at = await this.evaluate((s) => {
      const e = document.querySelector(s);
      if (!e) return { error: 'no such element' };
      e.scrollIntoView({ block: 'center', inline: 'center' });
      const r = e.getBoundingClientRect();
      if (!r.width || !r.height) return { error: 'not visible' };
      const x = r.left + r.width / 2, y = r.top + r.height / 2;
      const hit = document.elementFromPoint(x, y);
      if (!hit || !(hit === e || e.contains(hit))) return { error: `covered by ${hit && hit.outerHTML.slice(0, 80)}` };
      return { x, y };
    }, selector);
    if (at.error) throw new Error(`cannot click ${selector}: ${at.error}`);
    await this.send('Input.dispatchMouseEvent', { type: 'mouseMoved', x: at.x, y: at.y, button: 'none' });
    await this.send('Input.dispatchMouseEvent', { type: 'mousePressed', x: at.x, y: at.y, button: 'left', clickCount: 1 });
    await this.send('Input.dispatchMouseEvent', { type: 'mouseReleased', x: at.x, y: at.y, button: 'left', clickCount: 1 });
  }

  /** Types `text` into the element one character at a time: key events for printable
   *  ASCII, text input (as an input method would send) for everything else. */
  async type(selector, text) {
    await this.focus(selector);
    for (const ch of text) { // code points, so 🎉 stays one character
      if (/^[\x20-\x7e]$/.test(ch)) {
        await this.send('Input.dispatchKeyEvent', { type: 'keyDown', key: ch, text: ch, unmodifiedText: ch });
        await this.send('Input.dispatchKeyEvent', { type: 'keyUp', key: ch });
      } else {
        await this.send('Input.insertText', { text: ch });
      }
    }
  }

  /** Replaces the input's value, as pasting over a selection would. */
  async fill(selector, value) {
    await this.focus(selector);
    await this.evaluate((s) => document.querySelector(s).select(), selector);
    await this.send('Input.insertText', { text: value });
  }

  /** Presses Enter in the element (keyDown with text "\r" makes the form submit). */
  async pressEnter(selector) {
    await this.focus(selector);
    const key = { key: 'Enter', code: 'Enter', windowsVirtualKeyCode: 13, nativeVirtualKeyCode: 13 };
    await this.send('Input.dispatchKeyEvent', { type: 'keyDown', ...key, text: '\r', unmodifiedText: '\r' });
    await this.send('Input.dispatchKeyEvent', { type: 'keyUp', ...key });
  }

  /** A PNG of the whole page (beyond the viewport), written to `file`. */
  async screenshot(file) {
    const m = await this.send('Page.getLayoutMetrics');
    const size = m.cssContentSize || m.contentSize;
    const { data } = await this.send('Page.captureScreenshot', {
      format: 'png', captureBeyondViewport: true,
      clip: { x: 0, y: 0, width: Math.ceil(size.width), height: Math.ceil(size.height), scale: 1 },
    });
    const png = Buffer.from(data, 'base64');
    assert(png.length > 1000 && png.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])),
      `Page.captureScreenshot returned no PNG (${png.length} bytes)`);
    fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
    fs.writeFileSync(file, png);
    return png.length;
  }

  async close() {
    const { success } = await this.cdp.send('Target.closeTarget', { targetId: this.targetId });
    assert(success !== false, `Target.closeTarget ${this.targetId} failed`);
  }
}

async function pageTargets(cdp) {
  const { targetInfos } = await cdp.send('Target.getTargets');
  return targetInfos.filter((t) => t.type === 'page');
}

// ---- the test -------------------------------------------------------------------------

let cdp;
const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'duplex-chromium-'));
async function cleanup() {
  await stopBrowser(cdp);
  cdp = undefined;
  await killServers();
  fs.rmSync(userDataDir, { recursive: true, force: true });
}
const watchdog = setTimeout(async () => {
  console.error('FAIL: chromium_chat.mjs watchdog: the whole run took over 100 s');
  setTimeout(() => process.exit(1), 10000).unref(); // even if cleanup hangs ('exit' kills all)
  await cleanup();
  process.exit(1);
}, 100000);

const checks = new Checks();
try {
  const chat = await startServer(chatExe, 'chat_server');
  checks.servers.push(chat);
  const origin = `http://127.0.0.1:${chat.port}`;
  const wsUrl = `ws://127.0.0.1:${chat.port}/`;

  const t0 = Date.now();
  cdp = await CDP.connect(await launchBrowser(userDataDir));
  const { product } = await cdp.send('Browser.getVersion');
  console.log(`${product} (DevTools protocol, started in ${Date.now() - t0} ms), chat_server on ${chat.port}`);
  const pageErrors = [];

  // ---- the browser's WebSocket API, before any chat tab is open (chat broadcasts) ----
  await checks.run('browser WebSocket API against chat_server: protocols, binary, close codes', async () => {
    const probe = await Page.create(cdp, pageErrors);
    await probe.goto(`${origin}/not-the-page`); // the 404 page: same origin, no chat script
    const r = await probe.evaluate(async (url) => {
      const opened = (ws) => new Promise((res, rej) => { ws.onopen = res; ws.onerror = () => rej(new Error('error event')); });
      const closed = (ws) => new Promise((res) => { ws.onclose = (e) => res({ code: e.code, reason: e.reason, wasClean: e.wasClean }); });
      const next = (ws) => new Promise((res) => { ws.onmessage = (e) => res(e.data); });
      const out = {};
      // Offering only a protocol the server does not speak: the server answers 101
      // without Sec-WebSocket-Protocol (RFC 6455 §4.2.2; node_client checks the
      // header), and the browser then fails the connection: the WHATWG WebSocket
      // standard fails it when protocols were requested and none came back.
      const none = new WebSocket(url, ['superchat']);
      out.unmatched = await new Promise((res) => {
        none.onopen = () => res('open');
        none.onclose = (e) => res(`close ${e.code}`);
      });
      // Offering nothing: open, protocol '' (§4.1).
      const plain = new WebSocket(url);
      await opened(plain);
      out.plainProtocol = plain.protocol;
      plain.close();
      await closed(plain);
      // §4.2.2: the server's choice among several offered.
      const ws = new WebSocket(url, ['superchat', 'chat']);
      ws.binaryType = 'arraybuffer';
      await opened(ws);
      out.protocol = ws.protocol;
      out.extensions = ws.extensions; // RFC 7692: chat_server accepts the browser's offer
      // Broadcast to a single client is an echo: binary stays binary (§5.6).
      const bytes = new Uint8Array(70000).map((_, i) => (i * 31 + 7) & 0xff);
      let p = next(ws);
      ws.send(bytes);
      const back = new Uint8Array(await p);
      out.binaryOk = back.length === bytes.length && back.every((b, i) => b === bytes[i]);
      const big = 'duplex ✓ '.repeat(120000); // ~1.3 MB of text, 64-bit length (§5.2)
      p = next(ws);
      ws.send(big);
      out.textOk = (await p) === big;
      const c = closed(ws);
      ws.close(4000, 'bye from chromium');
      out.close = await c; // §5.5.1 the code is echoed, §7.1.5 wasClean
      // Over chat_server's 16 MiB max_message_size: closed with 1009 (§7.4.1, §10.4).
      const huge = new WebSocket(url);
      await opened(huge);
      const hc = closed(huge);
      huge.send(new Uint8Array(16 * 1024 * 1024 + 1));
      out.tooBig = await hc;
      return out;
    }, wsUrl);
    assertEq(r.unmatched, 'close 1006', 'offering only superchat (the browser fails the handshake)');
    assertEq(r.plainProtocol, '', 'protocol when none is offered');
    assertEq(r.protocol, 'chat', 'protocol when [superchat, chat] is offered');
    assertEq(r.extensions, EXTENSIONS, 'extensions');
    assert(r.binaryOk, '70000-byte binary message came back changed');
    assert(r.textOk, '1.3 MB text message came back changed');
    assertEq(r.close.code, 4000, 'CloseEvent.code after close(4000)');
    assertEq(r.close.wasClean, true, 'CloseEvent.wasClean');
    assertEq(r.tooBig.code, 1009, 'CloseEvent.code after sending 16 MiB + 1 bytes');
    await probe.close();
  }, 30000);

  // ---- the chat page in two tabs -------------------------------------------------
  let two;
  await checks.run('two chat pages: typed message reaches both (sender included), screenshot', async () => {
    // Page one is the tab the browser started with (about:blank), page two a new one.
    const [first] = await pageTargets(cdp);
    const one = first ? await Page.attach(cdp, first.targetId, pageErrors) : await Page.create(cdp, pageErrors);
    two = await Page.create(cdp, pageErrors);
    for (const p of [one, two]) {
      assertEq(await p.goto(`${origin}/`), 200, 'GET / status');
      assertEq(await p.title(), 'duplex chat', 'page title');
    }
    // The page logs "open (subprotocol: chat, extensions: permessage-deflate)" once its
    // WebSocket opened with `chat` (RFC 6455 §4.2.2) and compression (RFC 7692 §5).
    for (const p of [one, two]) await p.waitForText('#log .sys', OPEN_LINE);
    const text = 'Hello from page one — ✓ 日本語 🎉';
    await one.type('#text', text);
    await one.click('#form button');
    for (const [name, p] of [['page two', two], ['page one (the sender)', one]]) {
      await p.waitForText('#log .msg', text).catch(() => { throw new Error(`${name} never showed the message`); });
    }
    assertEq(await one.inputValue('#text'), '', 'input cleared after submit');
    // And back the other way, submitted with Enter.
    const reply = 'Reply from page two';
    await two.fill('#text', reply);
    await two.pressEnter('#text');
    for (const p of [one, two]) await p.waitForText('#log .msg', reply);
    const logTwo = await two.textContents('#log > div');
    assertEq(JSON.stringify(logTwo), JSON.stringify([OPEN_LINE, text, reply]), "page two's log");
    const bytes = await two.screenshot(screenshot);
    console.log(`screenshot of page two: ${path.resolve(screenshot)} (${bytes} bytes)`);
    // Closing a tab closes its WebSocket (1001 going away); the other keeps chatting.
    await one.close();
    const last = 'still here';
    await two.fill('#text', last);
    await two.pressEnter('#text');
    await two.waitForText('#log .msg', last);
  }, 45000);

  await checks.run('no JavaScript errors on the pages, chat_server still running', async () => {
    assertEq(pageErrors.length, 0, `page errors ${JSON.stringify(pageErrors)}`);
    assert(chat.proc.exitCode === null && chat.proc.signalCode === null, 'chat_server is gone');
  });
  await checks.run('SIGTERM: the open page logs "close 1001 server shutting down", chat_server exits 0', async () => {
    assert(two && (await pageTargets(cdp)).some((t) => t.targetId === two.targetId && t.url.startsWith(origin)),
      'page two is gone');
    await expectCleanExit(chat); // server.stop(): 1001 going away to every connection (§7.4.1)
    await two.waitForText('#log .sys', 'close 1001 server shutting down');
  });
} catch (e) {
  console.log(`FAIL setup: ${e.stack || e}`);
  checks.failed.push('setup');
} finally {
  await cleanup();
  clearTimeout(watchdog);
}
process.exit(checks.summary() ? 0 : 1);
