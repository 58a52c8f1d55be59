// Node's `ws` library (tests/interop/node_modules) as the client of duplex's
// examples/echo_server and examples/chat_server.
//
//   node tests/interop/node_client.mjs <path/to/echo_server> <path/to/chat_server>
//
// Starts both servers on port 0, runs every check (each with its own timeout),
// kills the servers and exits 1 if any check failed.
//
// perMessageDeflate is off here, so these checks see duplex's uncompressed framing
// (e.g. RSV1 set without an extension is a protocol error, §5.2). permessage-deflate
// (RFC 7692), which duplex negotiates, is checked with ws by deflate_peers.mjs and by the
// browser in chromium_chat.mjs.
import {
  Checks, OP, RawClient, assert, assertEq, closePayload, encodeFrame, expectCleanExit, killServers, requirePackage,
  sleep, startServer, utf8Bytes, withTimeout,
} from './lib.mjs';
import crypto from 'node:crypto';
import net from 'node:net';

const [echoExe, chatExe] = process.argv.slice(2);
if (!echoExe || !chatExe) {
  console.error('usage: node node_client.mjs <echo_server> <chat_server>');
  process.exit(2);
}
const { default: WebSocket } = await requirePackage('ws');

const MiB = 1024 * 1024;
const SERVER_MAX_MESSAGE = 16 * MiB; // connection_options::max_message_size default
// §5.2 payload length encodings: 7-bit up to 125, 16-bit from 126 to 65535, 64-bit from 65536.
const SIZES = [0, 1, 125, 126, 65535, 65536, SERVER_MAX_MESSAGE];

// A watchdog below ctest's TIMEOUT so the servers are always killed by us.
const watchdog = setTimeout(async () => {
  console.error('FAIL: node_client.mjs watchdog: the whole run took over 150 s');
  await killServers();
  process.exit(1);
}, 150000);

/** Opens a ws client; rejects on 'error' or a non-101 answer. */
function open(url, protocols, opts = {}) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, protocols, { perMessageDeflate: false, ...opts });
    ws.inbox = [];
    ws.waiters = [];
    ws.errors = [];
    ws.on('message', (data, isBinary) => {
      ws.inbox.push({ data, isBinary });
      ws.waiters.splice(0).forEach((f) => f());
    });
    ws.closed = new Promise((r) => ws.on('close', (code, reason) => {
      r({ code, reason: reason.toString() });
      ws.waiters.splice(0).forEach((f) => f());
    }));
    ws.on('error', (e) => { ws.errors.push(e); reject(e); });
    ws.on('unexpected-response', (req, res) => reject(new Error(`HTTP ${res.statusCode} instead of 101`)));
    ws.once('open', () => resolve(ws));
  });
}

async function nextMessage(ws, timeoutMs = 10000) {
  const deadline = Date.now() + timeoutMs;
  while (!ws.inbox.length) {
    if (ws.readyState === WebSocket.CLOSED) throw new Error('connection closed while waiting for a message');
    const left = deadline - Date.now();
    if (left <= 0) throw new Error('no message in time');
    await Promise.race([new Promise((r) => ws.waiters.push(r)), sleep(left)]);
  }
  return ws.inbox.shift();
}

function nextPong(ws) { return new Promise((r) => ws.once('pong', r)); }

async function expectEcho(ws, payload, binary, what) {
  ws.send(payload, { binary });
  const m = await nextMessage(ws, 30000);
  assertEq(m.isBinary, binary, `${what}: echoed message type (binary?)`); // §5.6 opcode preserved
  assertEq(m.data.length, payload.length, `${what}: echoed size`);
  assert(Buffer.compare(m.data, payload) === 0, `${what}: echoed bytes differ`);
}

async function expectClosedWith(ws, code, what) {
  const c = await withTimeout(ws.closed, 10000, `${what}: close event`);
  assertEq(c.code, code, `${what}: close code seen by ws`);
}

const checks = new Checks();
let echo, chat;
try {
  echo = await startServer(echoExe, 'echo_server');
  chat = await startServer(chatExe, 'chat_server');
  checks.servers.push(echo, chat);
  const url = `ws://127.0.0.1:${echo.port}/`;
  const chatUrl = `ws://127.0.0.1:${chat.port}/`;
  console.log(`echo_server on ${echo.port}, chat_server on ${chat.port}`);

  // ---- data frames: every length encoding, both types (§5.2, §5.6) ----------
  await checks.run('echo: text and binary at 0..16 MiB bytes, type and bytes preserved', async () => {
    const ws = await open(url);
    for (const n of SIZES) {
      await expectEcho(ws, utf8Bytes(n), false, `text ${n} B`);
      await expectEcho(ws, crypto.randomBytes(n), true, `binary ${n} B`);
    }
    ws.close(1000);
    await expectClosedWith(ws, 1000, 'after echoes');
  }, 60000);

  await checks.run('echo: 100 messages pipelined without waiting come back in order', async () => {
    const ws = await open(url);
    const sent = [];
    for (let i = 0; i < 100; i++) {
      const b = crypto.randomBytes(i * 37);
      sent.push(b);
      ws.send(b, { binary: true });
    }
    for (let i = 0; i < 100; i++) {
      const m = await nextMessage(ws);
      assert(m.isBinary && Buffer.compare(m.data, sent[i]) === 0, `message ${i} out of order or changed`);
    }
    ws.close();
  });

  // ---- fragmentation (§5.4) ---------------------------------------------------
  await checks.run('fragmented text message (fin:false, fin:true) echoed as one message', async () => {
    const ws = await open(url);
    ws.send('frag-one ', { fin: false });
    ws.send('fräg-two ', { fin: false });
    ws.send('frag-three', { fin: true });
    const m = await nextMessage(ws);
    assertEq(m.isBinary, false, 'type');
    assertEq(m.data.toString(), 'frag-one fräg-two frag-three', 'reassembled text');
    ws.close();
  });

  await checks.run('fragmented binary message with a ping between fragments (§5.4 control frames interleave)', async () => {
    const ws = await open(url);
    const a = crypto.randomBytes(1000), b = crypto.randomBytes(70000);
    const pong = nextPong(ws);
    ws.send(a, { binary: true, fin: false });
    ws.ping(Buffer.from('between fragments'));
    ws.send(b, { binary: true, fin: true });
    assertEq((await withTimeout(pong, 5000, 'pong')).toString(), 'between fragments', 'pong payload (§5.5.3)');
    const m = await nextMessage(ws);
    assert(m.isBinary, 'binary type preserved');
    assert(Buffer.compare(m.data, Buffer.concat([a, b])) === 0, 'reassembled bytes');
    ws.close();
  });

  await checks.run('a UTF-8 code point split across two fragments is accepted (§8.1 validates the message, not frames)', async () => {
    const ws = await open(url);
    const bytes = Buffer.from('split → here', 'utf8'); // → is 3 bytes at offset 6
    ws.send(bytes.subarray(0, 7), { binary: false, fin: false });
    ws.send(bytes.subarray(7), { binary: false, fin: true });
    const m = await nextMessage(ws);
    assertEq(m.data.toString(), 'split → here', 'reassembled text');
    ws.close();
  });

  // ---- ping/pong (§5.5.2, §5.5.3) ------------------------------------------------
  await checks.run('ping with payload gets a pong with the same payload (§5.5.2, §5.5.3)', async () => {
    const ws = await open(url);
    for (const p of [Buffer.alloc(0), Buffer.from('hello ping'), crypto.randomBytes(125)]) {
      const pong = nextPong(ws);
      ws.ping(p);
      const got = await withTimeout(pong, 5000, 'pong');
      assert(Buffer.compare(got, p) === 0, `pong payload ${got.toString('hex')} != ping payload ${p.toString('hex')}`);
    }
    ws.close();
  });

  // ---- subprotocols (§4.1, §4.2.2, §11.3.4) ------------------------------------
  await checks.run('chat_server: offering [chat] agrees on chat, and broadcasts include the sender', async () => {
    const a = await open(chatUrl, ['chat']);
    const b = await open(chatUrl, ['superchat', 'chat']);
    assertEq(a.protocol, 'chat', 'ws.protocol');
    assertEq(b.protocol, 'chat', 'ws.protocol when chat is second choice');
    a.send('hi from a');
    for (const ws of [a, b]) assertEq((await nextMessage(ws)).data.toString(), 'hi from a', 'broadcast');
    a.close(); b.close();
  });

  // RFC 7692 §7.1.1.1: chat_server adds server_no_context_takeover, so ws resets its
  // inflater per message and one compressed frame serves every receiver that negotiated
  // permessage-deflate (§7.2.1); a receiver that did not gets the same message plain.
  await checks.run('chat_server: a broadcast is compressed once for the deflate receivers, plain for the others', async () => {
    const a = await open(chatUrl, ['chat'], { perMessageDeflate: true });
    const b = await open(chatUrl, ['chat'], { perMessageDeflate: true });
    const raw = await RawClient.connect(chat.port, { headers: { 'Sec-WebSocket-Protocol': 'chat' } });
    try {
      for (const ws of [a, b]) {
        assertEq(ws.extensions, 'permessage-deflate', 'ws.extensions');
        assertEq(ws._extensions['permessage-deflate'].params.server_no_context_takeover, true,
          'server_no_context_takeover in the accepted parameters');
      }
      const text = JSON.stringify(Array.from({ length: 2000 }, (_, i) => ({ user: 'alice', n: i, text: 'hello, room' })));
      const before = b._socket.bytesRead;
      a.send(text);
      for (const ws of [a, b]) assertEq((await nextMessage(ws)).data.toString(), text, 'broadcast through the inflater');
      const wire = b._socket.bytesRead - before;
      assert(wire < text.length / 10, `b read ${wire} bytes for a ${text.length}-byte message: not compressed`);
      console.log(`     compressed broadcast: ${wire} bytes read by ws for a ${text.length}-byte message`);
      const f = await raw.frame();
      assertEq(f.rsv, 0, 'RSV bits to a client without permessage-deflate');
      assertEq(f.payload.toString(), text, 'the plain frame');
      for (let i = 0; i < 3; i++) b.send(`${i}: ${text}`); // a context reset per message: each decodes alone
      for (let i = 0; i < 3; i++) assertEq((await nextMessage(a)).data.toString(), `${i}: ${text}`, `broadcast ${i} to a`);
    } finally {
      a.close(); b.close();
      raw.send(OP.close, closePayload(1000));
    }
  });

  await checks.run('chat_server: offering only [superchat] gets a 101 without Sec-WebSocket-Protocol', async () => {
    // A browser opens with protocol '' here (chromium_chat checks that). ws is
    // stricter than the RFC (§4.1 only fails on a protocol that was *not*
    // offered): it fails a handshake that answers none of the offered ones.
    const raw = await RawClient.connect(chat.port, { headers: { 'Sec-WebSocket-Protocol': 'superchat' } });
    assertEq(raw.headers['sec-websocket-protocol'], undefined, 'Sec-WebSocket-Protocol in the 101');
    raw.send(OP.close, closePayload(1000));
    await raw.expectClose(1000);
    let err;
    try { (await open(chatUrl, ['superchat'])).close(); } catch (e) { err = e; }
    assert(err && /Server sent no subprotocol/.test(err.message),
      `ws's own verdict: expected 'Server sent no subprotocol', got ${err ? err.message : 'an open connection'}`);
    const none = await open(chatUrl); // offering nothing: no protocol
    assertEq(none.protocol, '', 'ws.protocol when none offered');
    none.close();
  });

  // ---- opening handshake edge cases (§4.1, §4.2.1, §4.2.2, §4.4) ---------------------
  const upgradeHead = (over = {}) => {
    const h = { Host: `127.0.0.1:${echo.port}`, Upgrade: 'websocket', Connection: 'Upgrade',
      'Sec-WebSocket-Key': crypto.randomBytes(16).toString('base64'), 'Sec-WebSocket-Version': '13', ...over };
    const method = h.METHOD || 'GET';
    delete h.METHOD;
    return `${method} / HTTP/1.1\r\n` + Object.entries(h).filter(([, v]) => v !== null)
      .map(([k, v]) => `${k}: ${v}\r\n`).join('') + '\r\n';
  };
  for (const [what, over, status, header] of [
    ['Sec-WebSocket-Version: 8 -> 426 with Sec-WebSocket-Version: 13 (§4.2.2, §4.4)', { 'Sec-WebSocket-Version': '8' }, 426, ['sec-websocket-version', '13']],
    ['no Sec-WebSocket-Key -> 400 (§4.2.1)', { 'Sec-WebSocket-Key': null }, 400],
    ['a Sec-WebSocket-Key that is not 16 bytes in base64 -> 400 (§4.2.1)', { 'Sec-WebSocket-Key': 'c2hvcnQ=' }, 400],
    ['POST instead of GET -> 4xx (§4.2.1)', { METHOD: 'POST' }, '4xx'],
    ['plain GET without Upgrade -> 426 (echo_server has no page)', { Upgrade: null, Connection: null, 'Sec-WebSocket-Key': null, 'Sec-WebSocket-Version': null }, 426],
  ]) {
    await checks.run(`handshake: ${what}`, async () => {
      const r = await rawHttp(echo.port, upgradeHead(over));
      if (status === '4xx') assert(r.status >= 400 && r.status < 500, `status ${r.status}, expected 4xx`);
      else assertEq(r.status, status, 'HTTP status');
      if (header) assertEq(r.headers[header[0]], header[1], `${header[0]} header`);
    });
  }

  await checks.run('handshake: Firefox-style "Connection: keep-alive, Upgrade" and "Upgrade: WebSocket" -> 101 (§4.2.1: case-insensitive, token list)', async () => {
    const raw = await RawClient.connect(echo.port, { rawHead: upgradeHead({ Connection: 'keep-alive, Upgrade', Upgrade: 'WebSocket' }) });
    raw.send(OP.text, 'firefox');
    assertEq((await raw.frame()).payload.toString(), 'firefox', 'echo');
    raw.send(OP.close, closePayload(1000));
    await raw.expectClose(1000);
  });

  await checks.run('first frame in the same TCP segment as the upgrade request is not lost (§4.1)', async () => {
    const raw = await RawClient.connect(echo.port, { firstFrame: encodeFrame(OP.text, 'right behind the request') });
    assertEq((await raw.frame()).payload.toString(), 'right behind the request', 'echo');
    raw.send(OP.close, closePayload(1000));
    await raw.expectClose(1000);
  });

  await checks.run('frames dripped one byte per write are reassembled (§5.2 parser is incremental)', async () => {
    const raw = await RawClient.connect(echo.port);
    raw.sock.setNoDelay(true);
    const bytes = Buffer.concat([encodeFrame(OP.text, 'drip ', { fin: false }), encodeFrame(OP.ping, 'p'),
      encodeFrame(OP.cont, Buffer.from('dröp', 'utf8'))]);
    for (const b of bytes) { raw.write(Buffer.from([b])); await sleep(1); }
    const f1 = await raw.frame();
    assertEq(f1.op, OP.pong, 'first frame back is the pong (§5.5.3)');
    const f2 = await raw.frame();
    assertEq(f2.payload.toString(), 'drip dröp', 'echo');
    raw.send(OP.close, closePayload(1000));
    await raw.expectClose(1000);
  });

  await checks.run('50 ws clients at once, 20 messages each, all echoed to their own sender', async () => {
    const clients = await Promise.all(Array.from({ length: 50 }, () => open(url)));
    await Promise.all(clients.map(async (ws, i) => {
      for (let j = 0; j < 20; j++) {
        const body = `client ${i} message ${j} ` + 'x'.repeat((i * 131 + j * 17) % 3000);
        ws.send(body);
        assertEq((await nextMessage(ws)).data.toString(), body, `client ${i} message ${j}`);
      }
      ws.close(1000);
      await expectClosedWith(ws, 1000, `client ${i}`);
    }));
  }, 20000);

  // ---- closing handshake (§5.5.1, §7.1.5, §7.4.1) --------------------------------
  await checks.run('client close(1000, "bye"): clean close, code 1000 on the client', async () => {
    const ws = await open(url);
    ws.close(1000, 'bye');
    await expectClosedWith(ws, 1000, 'close(1000)');
    assertEq(ws.errors.length, 0, 'errors on the client');
  });

  await checks.run('client close(4001): 4001 echoed (§5.5.1, §7.4.2 private-use range)', async () => {
    const ws = await open(url);
    ws.close(4001, 'private');
    await expectClosedWith(ws, 4001, 'close(4001)');
  });

  await checks.run('client close() with no code: server answers, ws sees 1005 (§7.1.5)', async () => {
    const ws = await open(url);
    ws.close();
    await expectClosedWith(ws, 1005, 'close()');
  });

  // ---- protocol errors: Fail the WebSocket Connection with 1002 (§7.1.7, §7.4.1) --
  const protocolErrors = [
    ['unmasked client frame (§5.1)', (r) => r.send(OP.text, 'no mask', { mask: false })],
    ['reserved data opcode 0x3 (§5.2)', (r) => r.send(0x3, 'x')],
    ['reserved control opcode 0xB (§5.2)', (r) => r.send(0xb, 'x')],
    ['RSV1 set with no extension (§5.2)', (r) => r.send(OP.text, 'x', { rsv: 4 })],
    ['RSV3 set (§5.2)', (r) => r.send(OP.binary, 'x', { rsv: 1 })],
    ['ping with a 126-byte payload (§5.5)', (r) => r.send(OP.ping, Buffer.alloc(126))],
    ['fragmented ping, FIN=0 (§5.5)', (r) => r.send(OP.ping, 'x', { fin: false })],
    ['continuation with no message started (§5.4)', (r) => r.send(OP.cont, 'x')],
    ['new text frame inside a fragmented message (§5.4)', (r) => { r.send(OP.text, 'a', { fin: false }); r.send(OP.text, 'b'); }],
    ['close frame with a 1-byte payload (§5.5.1)', (r) => r.send(OP.close, Buffer.from([3]))],
    ['close frame with code 1005 on the wire (§7.4.1)', (r) => r.send(OP.close, closePayload(1005))],
    ['close frame with code 999 (§7.4.2)', (r) => r.send(OP.close, closePayload(999))],
  ];
  for (const [what, sendBad] of protocolErrors) {
    await checks.run(`raw socket, ${what} -> close 1002`, async () => {
      const raw = await RawClient.connect(echo.port);
      sendBad(raw);
      await raw.expectClose(1002);
    });
  }

  await checks.run('ws client sending an unmasked frame (send {mask:false}) -> close 1002 (§5.1)', async () => {
    const ws = await open(url);
    ws.send('not masked', { mask: false });
    await expectClosedWith(ws, 1002, 'unmasked');
  });

  await checks.run('after the protocol errors the echo server serves a second, good connection', async () => {
    const ws = await open(url);
    await expectEcho(ws, Buffer.from('still alive'), false, 'good connection');
    ws.close(1000);
    await expectClosedWith(ws, 1000, 'good connection');
  });

  // ---- invalid UTF-8 (§8.1 -> 1007) ----------------------------------------------
  for (const [what, frames] of [
    ['0xFF 0xFE in a text message', [[OP.text, Buffer.from([0x61, 0xff, 0xfe]), true]]],
    ['an overlong encoding of "/" (C0 AF)', [[OP.text, Buffer.from([0xc0, 0xaf]), true]]],
    ['a UTF-16 surrogate (ED A0 80)', [[OP.text, Buffer.from([0xed, 0xa0, 0x80]), true]]],
    ['a code point cut off at the end of the message', [[OP.text, Buffer.from([0x61, 0xe2, 0x86]), true]]],
    ['bad bytes in the second fragment', [[OP.text, Buffer.from('ok'), false], [OP.cont, Buffer.from([0xff]), true]]],
  ]) {
    await checks.run(`ws sends invalid UTF-8 text (${what}) -> close 1007 (§8.1)`, async () => {
      const ws = await open(url);
      for (const [op, data, fin] of frames) ws.send(data, { binary: op === OP.binary, fin });
      await expectClosedWith(ws, 1007, what);
    });
  }

  await checks.run('raw socket, close frame with an invalid UTF-8 reason -> close 1007 (§5.5.1, §8.1)', async () => {
    const raw = await RawClient.connect(echo.port);
    raw.send(OP.close, Buffer.concat([closePayload(1000), Buffer.from([0xff])]));
    await raw.expectClose(1007);
  });

  // ---- message size limit (§7.4.1 1009, §10.4) -------------------------------------
  await checks.run('ws sends a 16 MiB + 1 binary message -> close 1009', async () => {
    const ws = await open(url);
    ws.send(Buffer.alloc(SERVER_MAX_MESSAGE + 1), { binary: true });
    await expectClosedWith(ws, 1009, 'over the limit');
  }, 30000);

  await checks.run('ws sends 17 fragments of 1 MiB (over the limit in sum) -> close 1009', async () => {
    const ws = await open(url);
    for (let i = 0; i < 17; i++) ws.send(Buffer.alloc(MiB), { binary: true, fin: i === 16 });
    await expectClosedWith(ws, 1009, 'fragments over the limit');
  }, 30000);

  await checks.run('raw socket, frame header announcing 16 MiB + 1 (no payload sent) -> close 1009 at once', async () => {
    const raw = await RawClient.connect(echo.port);
    raw.write(encodeHeaderOnly(SERVER_MAX_MESSAGE + 1));
    await raw.expectClose(1009, 3000);
  });

  // ---- abrupt ends (§7.1.1: the server must survive a peer that vanishes) --------------
  await checks.run('TCP closed without a close frame (FIN, half a frame, RST, ws.terminate) -> server survives', async () => {
    const a = await RawClient.connect(echo.port);
    a.destroy(); // FIN right after the handshake
    const b = await RawClient.connect(echo.port);
    b.write(encodeFrameHead());
    await sleep(50);
    b.destroy(); // FIN in the middle of a frame
    const c = await RawClient.connect(echo.port);
    c.send(OP.binary, crypto.randomBytes(200000));
    c.sock.resetAndDestroy(); // RST while the server echoes
    const d = await open(url);
    d.send(crypto.randomBytes(3 * MiB));
    d.terminate();
    const e = new net.Socket(); // TCP connect, then nothing, then gone
    await new Promise((r, j) => e.connect(echo.port, '127.0.0.1', r).on('error', j));
    e.destroy();
    await sleep(300);
    const ws = await open(url);
    await expectEcho(ws, Buffer.from('next connection'), false, 'next connection');
    ws.close(1000);
    await expectClosedWith(ws, 1000, 'next connection');
  }, 20000);

  await checks.run('echo_server and chat_server are still running', async () => {
    for (const s of [echo, chat]) assert(s.proc.exitCode === null && s.proc.signalCode === null, `${s.name} is gone`);
  });
  await checks.run('SIGTERM: server.stop() closes open connections with 1001 (§7.4.1), then the servers exit 0', async () => {
    const clients = [await open(url), await open(url), await open(chatUrl, ['chat'])];
    await Promise.all([expectCleanExit(echo), expectCleanExit(chat)]);
    for (const ws of clients) await expectClosedWith(ws, 1001, 'server going away');
  });
} catch (e) {
  console.log(`FAIL setup: ${e.stack || e}`);
  checks.failed.push('setup');
} finally {
  await killServers();
  clearTimeout(watchdog);
}
const ok = checks.summary();
process.exit(ok ? 0 : 1);

// A masked binary frame header that announces `len` bytes, with no payload.
function encodeHeaderOnly(len) {
  const head = Buffer.alloc(14);
  head[0] = 0x82;
  head[1] = 0x80 | 127;
  head.writeBigUInt64BE(BigInt(len), 2);
  crypto.randomBytes(4).copy(head, 10);
  return head;
}
// One HTTP exchange on a fresh socket: the response's status and headers (lower-case names).
function rawHttp(port, request) {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    let buf = '';
    const done = () => {
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return false;
      const [statusLine, ...lines] = buf.slice(0, end).split('\r\n');
      const headers = {};
      for (const l of lines) { const i = l.indexOf(':'); headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim(); }
      resolve({ status: Number(statusLine.split(' ')[1]), statusLine, headers });
      sock.destroy();
      return true;
    };
    sock.on('data', (d) => { buf += d.toString('latin1'); done(); });
    sock.on('error', reject);
    sock.on('close', () => { if (!done()) reject(new Error(`connection closed without a response head: ${JSON.stringify(buf)}`)); });
    sock.write(request);
  });
}
// The first 3 bytes of a masked text frame header with a 16-bit length.
function encodeFrameHead() { return Buffer.from([0x81, 0x80 | 126, 0x01]); }
