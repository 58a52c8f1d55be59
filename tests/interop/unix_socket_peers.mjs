// duplex's unix_server (tests/interop/unix_echo_server.cpp) with clients nobody here
// wrote, over a Unix domain socket: Node's `ws` (its `ws+unix:` URLs) and Python's
// `websockets` (unix_connect, python_unix_client.py); plus a raw client for a frame
// no library sends, and the socket file's life (a second server refused, a stale file
// after a crash replaced, the file removed at a clean stop).
//
//   node tests/interop/unix_socket_peers.mjs <unix_echo_server> <python3>
import {
  Checks, OP, RawClient, assert, assertEq, requirePackage, sleep, utf8Bytes, withTimeout,
} from './lib.mjs';
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const [serverExe, python] = process.argv.slice(2);
if (!serverExe || !python) {
  console.error('usage: node unix_socket_peers.mjs <unix_echo_server> <python3>');
  process.exit(2);
}
const { default: WebSocket } = await requirePackage('ws');
const here = path.dirname(fileURLToPath(import.meta.url));
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'duplex-unix-'));
const sock = path.join(dir, 'ws.sock');

const procs = new Set();
function killAll() { for (const p of procs) try { p.kill('SIGKILL'); } catch {} }
process.on('exit', () => { killAll(); fs.rmSync(dir, { recursive: true, force: true }); });
const watchdog = setTimeout(() => { console.error('FAIL: unix_socket_peers.mjs watchdog: over 100 s'); process.exit(1); }, 100000);

/** Starts unix_echo_server on `at`; resolves once it listens, or to its exit if it fails. */
function startServer(at, ...flags) {
  return new Promise((resolve) => {
    const proc = spawn(serverExe, [at, ...flags], { stdio: ['ignore', 'pipe', 'pipe'] });
    procs.add(proc);
    const s = { proc, stdout: '', stderr: '' };
    s.exited = new Promise((r) => proc.on('exit', (code, signal) => { procs.delete(proc); r({ code, signal }); resolve(s); }));
    proc.stderr.on('data', (d) => { s.stderr += d; });
    proc.stdout.on('data', (d) => { s.stdout += d; if (s.stdout.includes('listening on')) resolve(s); });
  });
}

function open(url, opts = {}) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, opts);
    ws.inbox = [];
    ws.waiters = [];
    ws.on('message', (data, isBinary) => { ws.inbox.push({ data, isBinary }); ws.waiters.splice(0).forEach((f) => f()); });
    ws.closed = new Promise((r) => ws.on('close', (code, reason) => { r({ code, reason: reason.toString() }); ws.waiters.splice(0).forEach((f) => f()); }));
    ws.on('error', reject);
    ws.once('open', () => resolve(ws));
  });
}
async function nextMessage(ws, timeoutMs = 10000) {
  const deadline = Date.now() + timeoutMs;
  while (!ws.inbox.length) {
    if (ws.readyState === WebSocket.CLOSED) throw new Error('closed while waiting for a message');
    const left = deadline - Date.now();
    if (left <= 0) throw new Error('no message in time');
    await Promise.race([new Promise((r) => ws.waiters.push(r)), sleep(left)]);
  }
  return ws.inbox.shift();
}
async function ask(ws, text) {
  ws.send(text);
  return (await nextMessage(ws)).data.toString();
}

// ws's syntax: ws+unix:<socket path>:<request path>
const url = (p = '/echo') => `ws+unix:${sock}:${p}`;
const checks = new Checks();
let server = await startServer(sock, '--deflate');
if (server.proc.exitCode !== null) {
  console.error(`FAIL: unix_echo_server did not start: ${server.stderr}`);
  process.exit(1);
}
console.log(`unix_echo_server listening on ${sock}`);

await checks.run('ws+unix: permessage-deflate negotiated, text and binary of every length encoding echoed (§5.2, RFC 7692)', async () => {
  const ws = await open(url());
  // (a build without zlib negotiates nothing: DUPLEX_EXPECT_DEFLATE=0)
  const deflate = process.env.DUPLEX_EXPECT_DEFLATE !== '0';
  assertEq(ws.extensions.includes('permessage-deflate'), deflate, `permessage-deflate in '${ws.extensions}'`);
  for (const n of [0, 1, 125, 126, 65535, 65536, 4 << 20]) {
    for (const [payload, binary] of [[utf8Bytes(n), false], [crypto.randomBytes(n), true]]) {
      ws.send(payload, { binary });
      const m = await nextMessage(ws, 30000);
      assertEq(m.isBinary, binary, `${n} B: type`);
      assert(Buffer.compare(m.data, payload) === 0, `${n} B (${binary ? 'binary' : 'text'}): bytes differ`);
    }
  }
  const pong = new Promise((r) => ws.once('pong', r));
  ws.ping('over unix');
  assertEq((await withTimeout(pong, 5000, 'pong')).toString(), 'over unix', 'pong payload (§5.5.3)');
  assertEq(await ask(ws, 'whoami'), 'unix:', 'remote_address() of a Unix peer');
  // The server pings (measure_latency()); ws answers by itself (§5.5.2), and latency() is its round trip.
  assertEq(await ask(ws, 'measure'), 'measuring', 'the server pinged');
  await sleep(200);
  const us = Number(await ask(ws, 'latency'));
  assert(us > 0 && us < 200000, `the server measured its ping's round trip: ${us} us`);
  ws.close(1000, 'bye');
  assertEq((await withTimeout(ws.closed, 5000, 'close')).code, 1000, 'close code');
}, 60000);

await checks.run('ws+unix: 50 clients at once, 20 messages each, every one in order', async () => {
  const clients = await Promise.all(Array.from({ length: 50 }, () => open(url(), { perMessageDeflate: false })));
  await Promise.all(clients.map(async (ws, i) => {
    for (let k = 0; k < 20; k++) ws.send(`client ${i} message ${k}`);
    for (let k = 0; k < 20; k++) assertEq((await nextMessage(ws)).data.toString(), `client ${i} message ${k}`, 'order');
  }));
  const stats = await ask(clients[0], 'stats');
  assert(/ open 50 /.test(stats), `the server counts 50 open connections: ${stats}`);
  for (const ws of clients) ws.close(1000);
  await Promise.all(clients.map((ws) => withTimeout(ws.closed, 5000, 'close')));
}, 30000);

await checks.run('an unmasked client frame gets 1002 on its connection only (§5.1); the others go on', async () => {
  const ws = await open(url(), { perMessageDeflate: false });
  const raw = await RawClient.connect(sock);
  raw.send(OP.text, 'not masked', { mask: false });
  await raw.expectClose(1002);
  assertEq(await ask(ws, 'still here'), 'still here', 'the other connection echoes');
  ws.close(1000);
  await withTimeout(ws.closed, 5000, 'close');
});

await checks.run('Python websockets (unix_connect): echo, ping, remote_address, close 1000', async () => {
  const p = spawn(python, [path.join(here, 'python_unix_client.py'), sock], { stdio: ['ignore', 'pipe', 'pipe'] });
  procs.add(p);
  let out = '';
  p.stdout.on('data', (d) => { out += d; });
  p.stderr.on('data', (d) => { out += d; });
  const code = await new Promise((r) => p.on('exit', r));
  procs.delete(p);
  process.stdout.write(out.replace(/^/gm, '     '));
  assertEq(code, 0, 'python_unix_client.py exit code');
}, 60000);

await checks.run('a second server on the same path is refused; the first goes on serving', async () => {
  const second = await startServer(sock);
  const r = await withTimeout(second.exited, 5000, 'second server exit');
  assertEq(r.code, 1, `second server's exit code (stderr: ${second.stderr.trim()})`);
  assert(/in use/i.test(second.stderr), `it says why: ${second.stderr.trim()}`);
  const ws = await open(url(), { perMessageDeflate: false });
  assertEq(await ask(ws, 'ping?'), 'ping?', 'the first server echoes');
  ws.close(1000);
});

await checks.run('after a crash (SIGKILL) the stale socket file is replaced by the next server', async () => {
  server.proc.kill('SIGKILL');
  await server.exited;
  assert(fs.existsSync(sock), 'the killed server left its socket file');
  server = await startServer(sock);
  assert(server.proc.exitCode === null, `the new server started: ${server.stderr}`);
  const ws = await open(url(), { perMessageDeflate: false });
  assertEq(await ask(ws, 'after the crash'), 'after the crash', 'echo');
  ws.close(1000);
  await withTimeout(ws.closed, 5000, 'close');
});

await checks.run('SIGTERM: a clean exit (0) and the socket file removed', async () => {
  server.proc.kill('SIGTERM');
  const r = await withTimeout(server.exited, 5000, 'exit');
  assertEq(r.code, 0, `exit code (stderr: ${server.stderr})`);
  assert(!fs.existsSync(sock), 'the socket file is gone');
});

clearTimeout(watchdog);
killAll();
process.exit(checks.summary() ? 0 : 1);
