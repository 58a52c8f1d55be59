// A real browser against duplex: Debian's headless Chromium, driven by
// playwright-core, uses examples/chat_server's own page in two tabs.
//
//   node tests/interop/chromium_chat.mjs <path/to/chat_server> <screenshot.png>
//
// Starts chat_server on port 0, checks the browser's WebSocket API against it
// (subprotocols, binary, close codes), then opens the chat page twice, types a
// message in page one and checks both pages show it; saves a screenshot of
// page two. Kills the browser and the server whatever happens.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Checks, assert, assertEq, expectCleanExit, killServers, requirePackage, startServer } from './lib.mjs';

const [chatExe, screenshot] = process.argv.slice(2);
if (!chatExe || !screenshot) {
  console.error('usage: node chromium_chat.mjs <chat_server> <screenshot.png>');
  process.exit(2);
}
const CHROMIUM = process.env.DUPLEX_CHROMIUM || '/usr/bin/chromium';
const OPEN_LINE = 'open (subprotocol: chat, extensions: permessage-deflate)'; // RFC 7692 negotiated
if (!fs.existsSync(CHROMIUM)) {
  console.error(`FAIL: no browser at ${CHROMIUM}. Install Debian's Chromium with:  apt-get install chromium\n` +
    '(or: bash scripts/install-deps.sh). Browser downloads (npx playwright install) do not work here.');
  process.exit(1);
}
const { chromium } = await requirePackage('playwright-core');

let context;
const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'duplex-chromium-'));
async function cleanup() {
  if (context) await context.close().catch(() => {});
  context = undefined;
  await killServers();
  fs.rmSync(userDataDir, { recursive: true, force: true });
}
const watchdog = setTimeout(async () => {
  console.error('FAIL: chromium_chat.mjs watchdog: the whole run took over 100 s');
  await cleanup();
  process.exit(1);
}, 100000);

const checks = new Checks();
try {
  const chat = await startServer(chatExe, 'chat_server');
  checks.servers.push(chat);
  const origin = `http://127.0.0.1:${chat.port}`;
  const wsUrl = `ws://127.0.0.1:${chat.port}/`;

  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    // This machine's closed network: no background connections, no GPU, root needs --no-sandbox.
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--no-first-run', '--disable-sync', '--disable-quic'],
    viewport: { width: 900, height: 700 },
    timeout: 30000,
  });
  console.log(`Chromium ${context.browser()?.version() ?? '(persistent context)'}, chat_server on ${chat.port}`);
  const pageErrors = [];
  context.on('page', (p) => p.on('pageerror', (e) => pageErrors.push(e.message)));

  // ---- the browser's WebSocket API, before any chat tab is open (chat broadcasts) ----
  await checks.run('browser WebSocket API against chat_server: protocols, binary, close codes', async () => {
    const probe = await context.newPage();
    probe.on('pageerror', (e) => pageErrors.push(e.message));
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
    assertEq(r.extensions, 'permessage-deflate', 'extensions');
    assert(r.binaryOk, '70000-byte binary message came back changed');
    assert(r.textOk, '1.3 MB text message came back changed');
    assertEq(r.close.code, 4000, 'CloseEvent.code after close(4000)');
    assertEq(r.close.wasClean, true, 'CloseEvent.wasClean');
    assertEq(r.tooBig.code, 1009, 'CloseEvent.code after sending 16 MiB + 1 bytes');
    await probe.close();
  }, 30000);

  // ---- the chat page in two tabs -------------------------------------------------
  await checks.run('two chat pages: typed message reaches both (sender included), screenshot', async () => {
    const one = context.pages()[0] ?? await context.newPage();
    const two = await context.newPage();
    for (const p of [one, two]) {
      const res = await p.goto(`${origin}/`);
      assertEq(res.status(), 200, 'GET / status');
      assertEq(await p.title(), 'duplex chat', 'page title');
    }
    // The page logs "open (subprotocol: chat, extensions: permessage-deflate)" once its
    // WebSocket opened with `chat` (RFC 6455 §4.2.2) and compression (RFC 7692 §5).
    for (const p of [one, two]) {
      await p.locator('#log .sys', { hasText: OPEN_LINE }).waitFor({ timeout: 10000 });
    }
    const text = 'Hello from page one — ✓ 日本語 🎉';
    await one.locator('#text').pressSequentially(text);
    await one.locator('#form button').click();
    for (const [name, p] of [['page two', two], ['page one (the sender)', one]]) {
      await p.locator('#log .msg', { hasText: text }).waitFor({ timeout: 10000 })
        .catch(() => { throw new Error(`${name} never showed the message`); });
    }
    assertEq(await one.locator('#text').inputValue(), '', 'input cleared after submit');
    // And back the other way, submitted with Enter.
    const reply = 'Reply from page two';
    await two.locator('#text').fill(reply);
    await two.locator('#text').press('Enter');
    for (const p of [one, two]) await p.locator('#log .msg', { hasText: reply }).waitFor({ timeout: 10000 });
    const logTwo = await two.locator('#log > div').allTextContents();
    assertEq(JSON.stringify(logTwo), JSON.stringify([OPEN_LINE, text, reply]), "page two's log");
    fs.mkdirSync(path.dirname(path.resolve(screenshot)), { recursive: true });
    await two.screenshot({ path: screenshot, fullPage: true });
    console.log(`screenshot of page two: ${path.resolve(screenshot)}`);
    // Closing a tab closes its WebSocket (1001 going away); the other keeps chatting.
    await one.close();
    const last = 'still here';
    await two.locator('#text').fill(last);
    await two.locator('#text').press('Enter');
    await two.locator('#log .msg', { hasText: last }).waitFor({ timeout: 10000 });
  }, 45000);

  await checks.run('no JavaScript errors on the pages, chat_server still running', async () => {
    assertEq(pageErrors.length, 0, `page errors ${JSON.stringify(pageErrors)}`);
    assert(chat.proc.exitCode === null && chat.proc.signalCode === null, 'chat_server is gone');
  });
  await checks.run('SIGTERM: the open page logs "close 1001 server shutting down", chat_server exits 0', async () => {
    const two = context.pages().find((p) => p.url().startsWith(origin));
    assert(two, 'page two is gone');
    await expectCleanExit(chat); // server.stop(): 1001 going away to every connection (§7.4.1)
    await two.locator('#log .sys', { hasText: 'close 1001 server shutting down' }).waitFor({ timeout: 10000 });
  });
} catch (e) {
  console.log(`FAIL setup: ${e.stack || e}`);
  checks.failed.push('setup');
} finally {
  await cleanup();
  clearTimeout(watchdog);
}
process.exit(checks.summary() ? 0 : 1);
