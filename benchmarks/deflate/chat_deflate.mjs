#!/usr/bin/env node
// permessage-deflate (RFC 7692) benchmark: a stream of realistic JSON chat
// messages echoed by duplex (examples/testee_server) and by Node's `ws`, each
// with compression off and on. Measures echoes per second, payload bytes, bytes
// on the wire each way (TCP payload incl. frame headers) and the compression
// ratio, plus server and client CPU. See README.md beside this file.
//
//   node benchmarks/deflate/chat_deflate.mjs [--smoke] [options]     (Node 18+)
//
// The client is Node `ws` (from tests/interop/node_modules). It runs in a child
// of this process, pinned to CPU 1 with taskset; the servers are pinned to CPU 0.
// Every child is killed on every exit path; a watchdog ends the whole run at 120 s.
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const SCRIPT = fileURLToPath(import.meta.url);
const HERE = path.dirname(SCRIPT);
const REPO = path.resolve(HERE, '..', '..');
const WS_DIR = path.join(REPO, 'tests', 'interop', 'node_modules');
const SERVER_SCRIPT = path.join(HERE, 'ws_echo_server.mjs');
const RESULTS_DIR = path.join(REPO, 'benchmarks', 'results');
// The whole run is killed after this (CHAT_DEFLATE_WATCHDOG_MS overrides it, to test the watchdog).
const WATCHDOG_MS = Number(process.env.CHAT_DEFLATE_WATCHDOG_MS) || 120_000;
// duplex's default permessage-deflate threshold (deflate_options::threshold in
// include/duplex/extensions/deflate_negotiation.hpp): payloads of >= 32 bytes are
// compressed. ws has the same ">= threshold" rule (default 1024); we give ws 32 too.
// Every message of the stream is >= 32 bytes, so every message is compressed.
const THRESHOLD = 32;
const POOL_SIZE = 16384;

// ---------------------------------------------------------------- arguments
const USAGE = `usage: node benchmarks/deflate/chat_deflate.mjs [options]
  --smoke            each case 1 s (0.25 s warmup); exit 1 on any zero rate, echo
                     mismatch, error or failed negotiation; writes no result files
  --connections N    client connections (default 20)
  --inflight P       messages in flight per connection (default 8)
  --duration S       measured seconds per case (default 5)
  --warmup S         warmup seconds per case before measuring (default 1)
  --servers LIST     comma-separated subset of duplex,ws (default duplex,ws)
  --testee PATH      duplex echo server (default build/examples/testee_server)
  --seed N           PRNG seed of the message stream (default 7692)
  --no-taskset       do not pin client and servers to CPUs
  --no-write         do not write benchmarks/results/deflate_latest.{md,json}
Full runs write benchmarks/results/deflate_latest.md and .json.`;

function parseArgs(argv) {
  const o = { smoke: false, connections: 20, inflight: 8, duration: 5, warmup: 1, servers: ['duplex', 'ws'],
    testee: path.join(REPO, 'build', 'examples', 'testee_server'), seed: 7692, taskset: true, write: true };
  const num = (name, v, { int = false, min = 0 } = {}) => {
    const n = Number(v);
    if (v === undefined || !Number.isFinite(n) || (int && !Number.isInteger(n)) || n < min) {
      fail(`bad value for ${name}: ${v}\n${USAGE}`, 2);
    }
    return n;
  };
  for (let i = 0; i < argv.length; ++i) {
    const a = argv[i];
    switch (a) {
      case '--smoke': o.smoke = true; break;
      case '--connections': o.connections = num(a, argv[++i], { int: true, min: 1 }); break;
      case '--inflight': o.inflight = num(a, argv[++i], { int: true, min: 1 }); break;
      case '--duration': o.duration = num(a, argv[++i], { min: 0.1 }); break;
      case '--warmup': o.warmup = num(a, argv[++i]); break;
      case '--servers': {
        o.servers = String(argv[++i] ?? '').split(',').filter(Boolean);
        if (!o.servers.length || o.servers.some((s) => s !== 'duplex' && s !== 'ws')) fail(`bad --servers\n${USAGE}`, 2);
        break;
      }
      case '--testee': o.testee = path.resolve(String(argv[++i] ?? '')); break;
      case '--seed': o.seed = num(a, argv[++i], { int: true }); break;
      case '--no-taskset': o.taskset = false; break;
      case '--no-write': o.write = false; break;
      case '--help': case '-h': console.log(USAGE); process.exit(0); break;
      default: fail(`unknown argument '${a}'\n${USAGE}`, 2);
    }
  }
  if (o.smoke) { o.duration = 1; o.warmup = 0.25; o.write = false; }
  const perCase = o.warmup + o.duration + 4; // + start, connect, drain, close (generous)
  if (!process.env.CHAT_DEFLATE_WATCHDOG_MS && o.servers.length * 2 * perCase > (WATCHDOG_MS / 1000) - 10) {
    fail(`--duration/--warmup too long: ${o.servers.length * 2} cases must fit in the ${WATCHDOG_MS / 1000} s watchdog`, 2);
  }
  return o;
}

function fail(msg, code = 1) {
  console.error(`chat_deflate: ${msg}`);
  process.exit(code);
}

function loadWs() {
  try {
    return createRequire(path.join(WS_DIR, 'noop.js'))('ws');
  } catch (err) {
    fail(`the Node package 'ws' is missing from tests/interop/node_modules (${err.code || err.message}).\n` +
      'Install it from the repository root with:  npm ci --prefix tests/interop');
  }
}

function checkTestee(opts) {
  if (!opts.servers.includes('duplex')) return;
  try {
    fs.accessSync(opts.testee, fs.constants.X_OK);
  } catch {
    fail(`duplex's echo server ${opts.testee} is missing or not executable.\n` +
      'Build it with:  cmake --build build -j1 --target testee_server   (after cmake -S . -B build)');
  }
}

function cpusAllowed(pid = 'self') {
  try {
    const m = /^Cpus_allowed_list:\s*(\S+)/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? m[1] : '?';
  } catch { return '?'; }
}

function expandCpuList(list) {
  const out = new Set();
  for (const part of list.split(',')) {
    const [a, b] = part.split('-').map(Number);
    if (!Number.isInteger(a)) continue;
    for (let c = a; c <= (Number.isInteger(b) ? b : a); ++c) out.add(c);
  }
  return out;
}

function haveTaskset() {
  try { execFileSync('taskset', ['-c', '0', 'true'], { stdio: 'ignore', timeout: 5000 }); return true; } catch { return false; }
}

// ---------------------------------------------------------------- launcher
// Re-spawns this script as the client ("bench"), under taskset -c 1 when it can,
// forwards signals, keeps the pids of the servers the client starts (sent over
// IPC) and kills whatever is left when the client ends, however it ends.
async function launcher() {
  const major = Number(process.versions.node.split('.')[0]);
  if (major < 18) fail(`Node 18+ needed (this is ${process.version})`);
  loadWs();
  checkTestee(opts);
  const allowed = expandCpuList(cpusAllowed());
  let pin = opts.taskset && allowed.has(0) && allowed.has(1) && haveTaskset();
  const pinNote = !opts.taskset ? 'off (--no-taskset)'
    : pin ? 'client on CPU 1, servers on CPU 0 (taskset)'
      : `off (taskset missing or CPUs 0 and 1 not both allowed: ${cpusAllowed()})`;
  const args = process.argv.slice(2);
  const quote = (s) => (/^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);
  const command = ['node', path.relative(REPO, SCRIPT) || SCRIPT, ...args].map(quote).join(' ');
  const env = { ...process.env, CHAT_DEFLATE_ROLE: 'bench', CHAT_DEFLATE_PIN: pin ? '1' : '0',
    CHAT_DEFLATE_PIN_NOTE: pinNote, CHAT_DEFLATE_COMMAND: command, CHAT_DEFLATE_T0: String(Date.now()) };
  const [cmd, cargs] = pin ? ['taskset', ['-c', '1', process.execPath, SCRIPT, ...args]] : [process.execPath, [SCRIPT, ...args]];
  const child = spawn(cmd, cargs, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], env });
  const servers = new Set();
  child.on('message', (m) => {
    if (m && m.type === 'spawned') servers.add(m.pid);
    if (m && m.type === 'reaped') servers.delete(m.pid);
  });
  const killLeftovers = () => {
    for (const pid of servers) { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } }
    servers.clear();
  };
  process.on('exit', () => { try { child.kill('SIGKILL'); } catch { /* gone */ } killLeftovers(); });
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.on(sig, () => { try { child.kill('SIGTERM'); } catch { /* gone */ } });
  }
  const watchdog = setTimeout(() => {
    console.error(`chat_deflate: FAIL: watchdog, the run took over ${WATCHDOG_MS / 1000} s; killing everything`);
    process.exit(3); // the exit handler kills the client and the servers
  }, WATCHDOG_MS);
  watchdog.unref();
  const { code, signal } = await new Promise((resolve) => child.on('exit', (c, s) => resolve({ code: c, signal: s })));
  killLeftovers();
  if (signal) console.error(`chat_deflate: FAIL: the client process was killed (${signal})`);
  process.exit(code ?? 1);
}

// ---------------------------------------------------------------- message stream
function mulberry32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const WORDS = (
  'the a to and of is it you that in for on this with be have not are was just but so what can we do' +
  ' if at my me your all get will about there one like out up from they know think i no yes ok okay' +
  ' good great thanks thank sure maybe today tomorrow yesterday now later time meeting call lunch coffee' +
  ' team project release deploy build test tests branch merge review pull request issue bug fix fixed' +
  ' broken works working server client api endpoint database query cache latency timeout error errors' +
  ' log logs config staging production prod rollback ticket sprint standup demo deadline docs design' +
  ' frontend backend mobile user users customer feature flag metrics dashboard alert incident on-call' +
  ' please check look see let me know sounds agreed lgtm nice cool awesome weird strange again still' +
  ' should could would need want try tried running ran pushed updated changed added removed moved' +
  ' week weekend morning afternoon night minutes hours soon asap quick question anyone here someone' +
  ' because since after before while until also really very much more less than then when where why how'
).split(' ').filter(Boolean);
const SPICE = ['👍', '🎉', '😂', '🙏', '🚀', 'café', 'naïve', 'über', 'déjà vu', '…'];
const NAMES = ['alice', 'bob', 'carol', 'dave', 'erin', 'frank', 'grace', 'heidi', 'ivan', 'judy', 'mallory',
  'niaj', 'olivia', 'peggy', 'rupert', 'sybil', 'trent', 'victor', 'walter', 'yuki', 'zoe', 'amir', 'bea',
  'chen', 'dmitri', 'elif', 'femi', 'gia', 'hana', 'ines', 'jonas', 'kofi', 'lena', 'mei', 'noor', 'omar'];
const ROOMS = ['general', 'random', 'dev', 'ops', 'support', 'design', 'release-2024-12', 'off-topic'];
const EMOJI = ['thumbsup', 'heart', 'tada', 'eyes', 'rocket', 'joy', 'white_check_mark', 'pray'];

/** The deterministic stream: POOL_SIZE JSON chat events as UTF-8 Buffers. */
function makeStream(seed, count) {
  const rnd = mulberry32(seed);
  const int = (lo, hi) => lo + Math.floor(rnd() * (hi - lo + 1));
  const pick = (arr) => arr[Math.floor(rnd() * arr.length)];
  const hex = (n) => { let s = ''; for (let i = 0; i < n; ++i) s += '0123456789abcdef'[Math.floor(rnd() * 16)]; return s; };
  const users = NAMES.map((n) => (rnd() < 0.6 ? `${n}${int(1, 99)}` : n));
  const text = () => {
    const r = rnd();
    const n = r < 0.5 ? int(1, 8) : r < 0.85 ? int(9, 30) : int(35, 80); // short / medium / a few hundred bytes
    const words = [];
    let capital = true;
    for (let i = 0; i < n; ++i) {
      let w = pick(WORDS);
      if (capital) { w = w[0].toUpperCase() + w.slice(1); capital = false; }
      const x = rnd();
      if (x < 0.02) w = `@${pick(users)}`;
      else if (x < 0.03) w = `https://example.com/${pick(WORDS)}/${int(100, 99999)}`;
      else if (x < 0.045) w = pick(SPICE);
      else if (x < 0.06) w = `\`${pick(WORDS)}_${pick(WORDS)}()\``;
      if (i < n - 1 && rnd() < 0.08) { w += pick(['.', ',', '?', '!', ':']); capital = /[.?!]$/.test(w); }
      words.push(w);
    }
    return words.join(' ') + (rnd() < 0.6 ? pick(['', '.', '?', '!', ' :)', '...']) : '');
  };
  const recent = [];
  let ts = 1733070000123;
  const out = [];
  for (let k = 0; k < count; ++k) {
    ts += int(0, 2500);
    const room = rnd() < 0.45 ? 'general' : pick(ROOMS);
    const user = pick(users);
    const r = rnd();
    let ev;
    if (r < 0.82 || recent.length === 0) {
      const id = `msg_${hex(16)}`;
      ev = { type: 'message', room, user, ts, id, text: text() };
      if (rnd() < 0.12) ev.reply_to = pick(recent) ?? id;
      if (rnd() < 0.1) ev.mentions = [pick(users), ...(rnd() < 0.3 ? [pick(users)] : [])];
      recent.push(id);
      if (recent.length > 64) recent.shift();
    } else if (r < 0.9) {
      ev = { type: 'message_edit', room, user, ts, id: pick(recent), text: text(), edited: true };
    } else if (r < 0.96) {
      ev = { type: 'reaction', room, user, ts, message_id: pick(recent), emoji: pick(EMOJI) };
    } else {
      ev = { type: 'typing', room, user, ts };
    }
    out.push(Buffer.from(JSON.stringify(ev), 'utf8'));
  }
  return out;
}

// ---------------------------------------------------------------- bench (client)
async function bench() {
  const { WebSocket } = loadWs();
  const wsVersion = JSON.parse(fs.readFileSync(path.join(WS_DIR, 'ws', 'package.json'), 'utf8')).version;
  const pin = process.env.CHAT_DEFLATE_PIN === '1';
  const t0Launch = Number(process.env.CHAT_DEFLATE_T0) || Date.now();
  const children = new Set();
  const tell = (m) => { try { if (process.connected) process.send(m); } catch { /* launcher gone */ } };
  const killAll = () => { for (const c of children) { try { c.kill('SIGKILL'); } catch { /* gone */ } } };
  process.on('exit', killAll);
  for (const [sig, code] of [['SIGINT', 130], ['SIGTERM', 143], ['SIGHUP', 129]]) {
    process.on(sig, () => { console.error(`chat_deflate: ${sig}, stopping`); process.exit(code); });
  }
  process.on('uncaughtException', (err) => { console.error('chat_deflate: FAIL:', err); process.exit(1); });
  process.on('unhandledRejection', (err) => { console.error('chat_deflate: FAIL:', err); process.exit(1); });
  process.on('disconnect', () => { console.error('chat_deflate: launcher went away, stopping'); process.exit(1); });
  // Our own watchdog, a little before the launcher's, so we clean up ourselves.
  setTimeout(() => {
    console.error(`chat_deflate: FAIL: watchdog (${WATCHDOG_MS / 1000} s), killing the servers`);
    process.exit(3);
  }, Math.max(1000, WATCHDOG_MS - 3000 - (Date.now() - t0Launch))).unref();

  const CLK_TCK = (() => { try { return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8', timeout: 5000 })) || 100; } catch { return 100; } })();
  const cpuSeconds = (pid) => {
    try {
      const s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
      const f = s.slice(s.lastIndexOf(')') + 2).split(' '); // f[0] is field 3 (state)
      return (Number(f[11]) + Number(f[12])) / CLK_TCK;    // utime + stime (fields 14, 15), all threads
    } catch { return NaN; }
  };

  // Busy share of each core (all processes, ours and others') from /proc/stat.
  const coreTicks = () => {
    const out = {};
    try {
      for (const line of fs.readFileSync('/proc/stat', 'utf8').split('\n')) {
        const m = /^cpu(\d+) (.*)$/.exec(line);
        if (!m) continue;
        const v = m[2].trim().split(/\s+/).map(Number);
        const total = v.slice(0, 8).reduce((x, y) => x + y, 0); // guest is already in user
        out[m[1]] = { total, busy: total - v[3] - v[4] };
      }
    } catch { /* no /proc */ }
    return out;
  };
  const coreBusyPct = (a, b) => {
    const out = {};
    for (const k of Object.keys(b)) {
      if (!a[k]) continue;
      const dt = b[k].total - a[k].total;
      out[`cpu${k}`] = dt > 0 ? +(((b[k].busy - a[k].busy) / dt) * 100).toFixed(1) : null;
    }
    return out;
  };

  const pool = makeStream(opts.seed, POOL_SIZE);
  const sizes = pool.map((b) => b.length).sort((a, b) => a - b);
  const stream = {
    seed: opts.seed, messages: POOL_SIZE,
    mean_bytes: +(sizes.reduce((a, b) => a + b, 0) / sizes.length).toFixed(1),
    min_bytes: sizes[0], median_bytes: sizes[sizes.length >> 1],
    p90_bytes: sizes[Math.floor(sizes.length * 0.9)], max_bytes: sizes[sizes.length - 1],
    example: pool[0].toString('utf8'),
  };
  if (sizes[0] < THRESHOLD) throw new Error(`stream has a message below the ${THRESHOLD}-byte threshold`);

  // ---- servers
  async function startServer(kind) {
    const base = kind === 'duplex' ? [opts.testee, ['--host', '127.0.0.1', '0']]
      : [process.execPath, [SERVER_SCRIPT, WS_DIR, String(THRESHOLD)]];
    const [cmd, args] = pin ? ['taskset', ['-c', '0', base[0], ...base[1]]] : base;
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    children.add(child);
    tell({ type: 'spawned', pid: child.pid });
    let stderr = '';
    child.stderr.on('data', (d) => { stderr += d; if (stderr.length > 8192) stderr = stderr.slice(-8192); });
    child.stdin.on('error', () => {});
    const exited = new Promise((resolve) => child.on('exit', (code, signal) => {
      children.delete(child);
      tell({ type: 'reaped', pid: child.pid });
      resolve({ code, signal });
    }));
    const port = await new Promise((resolve, reject) => {
      let out = '';
      const timer = setTimeout(() => reject(new Error(`${kind} server printed no port within 10 s`)), 10000);
      child.stdout.on('data', (d) => {
        out += d;
        const m = /listening on (?:ws:\/\/)?127\.0\.0\.1:(\d+)/.exec(out);
        if (m) { clearTimeout(timer); resolve(Number(m[1])); }
      });
      child.on('error', (err) => { clearTimeout(timer); reject(err); });
      exited.then(({ code, signal }) => { clearTimeout(timer); reject(new Error(`${kind} server exited (${code ?? signal}) before listening: ${stderr.trim()}`)); });
    });
    child.stdout.resume();
    return {
      kind, port, pid: child.pid, exited, stderr: () => stderr,
      async stop() {
        if (child.exitCode !== null || child.signalCode !== null) return exited;
        child.kill('SIGTERM');
        const t = setTimeout(() => child.kill('SIGKILL'), 3000);
        const r = await exited;
        clearTimeout(t);
        return r;
      },
    };
  }

  // ---- one case
  async function runCase(kind, compress) {
    const server = await startServer(kind);
    const url = `ws://127.0.0.1:${server.port}/`;
    const serverCpus = cpusAllowed(server.pid);
    let errors = 0;
    let mismatches = 0;
    const errorNotes = [];
    const note = (s) => { if (errorNotes.length < 5) errorNotes.push(s); };
    let stopping = false;
    let closing = false;
    let inflightTotal = 0;
    let onDrained = null;

    const open = (i) => new Promise((resolve, reject) => {
      const ws = new WebSocket(url, { perMessageDeflate: compress ? { threshold: THRESHOLD } : false, maxPayload: 16 * 1024 * 1024 });
      const c = { ws, i, next: (i * 797) % POOL_SIZE, queue: [], head: 0, inflight: 0,
        sent: 0, recv: 0, sentBytes: 0, recvBytes: 0, header: '' };
      const timer = setTimeout(() => { ws.terminate(); reject(new Error(`connection ${i}: no handshake within 10 s`)); }, 10000);
      ws.on('upgrade', (res) => { c.header = String(res.headers['sec-websocket-extensions'] ?? ''); });
      ws.once('open', () => { clearTimeout(timer); resolve(c); });
      ws.on('error', (err) => {
        clearTimeout(timer);
        if (ws.readyState === WebSocket.CONNECTING) reject(err);
        else { errors++; note(`connection ${i}: ${err.message}`); }
      });
      ws.on('close', (code, reason) => {
        if (!closing) { errors++; note(`connection ${i}: closed early (${code} ${reason})`); }
      });
      ws.on('message', (data, isBinary) => {
        const exp = c.queue[c.head];
        c.queue[c.head++] = undefined;
        if (c.head > 1024) { c.queue = c.queue.slice(c.head); c.head = 0; }
        if (exp === undefined) { errors++; note(`connection ${i}: unexpected message`); return; }
        if (isBinary || !data.equals(exp)) {
          mismatches++;
          note(`connection ${i}: echo mismatch (${isBinary ? 'binary' : 'text'}, ${data.length} bytes, expected ${exp.length}): ${String(data).slice(0, 60)}`);
        }
        c.recv++;
        c.recvBytes += data.length;
        c.inflight--;
        inflightTotal--;
        if (!stopping) send(c);
        else if (inflightTotal === 0 && onDrained) onDrained();
      });
    });
    const send = (c) => {
      const buf = pool[c.next];
      c.next = (c.next + 1) % POOL_SIZE;
      c.queue.push(buf);
      c.inflight++;
      inflightTotal++;
      c.sent++;
      c.sentBytes += buf.length;
      c.ws.send(buf, { binary: false });
    };

    let conns;
    try {
      conns = await Promise.all(Array.from({ length: opts.connections }, (_, i) => open(i)));
    } catch (err) {
      await server.stop();
      throw new Error(`${kind}: cannot connect: ${err.message}`);
    }
    // Negotiation: on means ws.extensions names permessage-deflate on every connection; off means none.
    const negotiatedOn = conns.filter((c) => c.ws.extensions.includes('permessage-deflate')).length;
    const negotiationOk = compress ? negotiatedOn === conns.length : negotiatedOn === 0;
    const header = conns[0].header;

    const snap = () => {
      const s = { t: performance.now(), sent: 0, recv: 0, sentBytes: 0, recvBytes: 0, wireOut: 0, wireIn: 0,
        serverCpu: cpuSeconds(server.pid), clientCpu: cpuSeconds(process.pid), cores: coreTicks() };
      for (const c of conns) {
        s.sent += c.sent; s.recv += c.recv; s.sentBytes += c.sentBytes; s.recvBytes += c.recvBytes;
        s.wireOut += c.ws._socket.bytesWritten; s.wireIn += c.ws._socket.bytesRead;
      }
      return s;
    };
    const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

    for (const c of conns) for (let k = 0; k < opts.inflight; ++k) send(c);
    await sleep(opts.warmup * 1000);
    const a = snap();
    await sleep(opts.duration * 1000);
    const b = snap();
    stopping = true;
    // Let the echoes in flight come back (they are checked too), then close.
    if (inflightTotal > 0) {
      await new Promise((resolve) => { onDrained = resolve; setTimeout(resolve, 3000); });
    }
    const undrained = inflightTotal;
    if (undrained) { errors++; note(`${undrained} echoes never came back`); }
    closing = true;
    await Promise.all(conns.map((c) => new Promise((resolve) => {
      if (c.ws.readyState === WebSocket.CLOSED) return resolve();
      const t = setTimeout(() => { c.ws.terminate(); resolve(); }, 2000);
      c.ws.once('close', () => { clearTimeout(t); resolve(); });
      c.ws.close(1000, 'done');
    })));
    const exit = await server.stop();

    const secs = (b.t - a.t) / 1000;
    const msgs = b.recv - a.recv;
    const sent = b.sent - a.sent;
    const payOut = b.sentBytes - a.sentBytes;
    const payIn = b.recvBytes - a.recvBytes;
    const wireOut = b.wireOut - a.wireOut;
    const wireIn = b.wireIn - a.wireIn;
    const r1 = (x) => +x.toFixed(1);
    const r3 = (x) => +x.toFixed(3);
    return {
      server: kind === 'duplex' ? 'duplex' : `ws ${wsVersion}`,
      compression: compress ? 'on' : 'off',
      negotiated: negotiatedOn > 0,
      negotiation_ok: negotiationOk,
      extensions_header: header,
      seconds: r3(secs),
      echoes: msgs,
      sent,
      msgs_per_s: Math.round(msgs / secs),
      payload_bytes_per_msg: r1((payOut + payIn) / Math.max(1, sent + msgs)),
      wire_bytes_per_msg_c2s: r1(wireOut / Math.max(1, sent)),
      wire_bytes_per_msg_s2c: r1(wireIn / Math.max(1, msgs)),
      payload_bytes_c2s: payOut,
      payload_bytes_s2c: payIn,
      wire_bytes_c2s: wireOut,
      wire_bytes_s2c: wireIn,
      ratio: r3((payOut + payIn) / Math.max(1, wireOut + wireIn)),
      ratio_c2s: r3(payOut / Math.max(1, wireOut)),
      ratio_s2c: r3(payIn / Math.max(1, wireIn)),
      server_cpu_pct: r1(((b.serverCpu - a.serverCpu) / secs) * 100),
      client_cpu_pct: r1(((b.clientCpu - a.clientCpu) / secs) * 100),
      server_cpus: serverCpus,
      core_busy_pct: coreBusyPct(a.cores, b.cores),
      mismatches,
      errors,
      error_notes: errorNotes,
      server_exit: exit.code ?? exit.signal,
    };
  }

  // ---- run
  const started = performance.now();
  const results = [];
  for (const kind of opts.servers) {
    for (const compress of [false, true]) {
      const label = `${kind}, compression ${compress ? 'on' : 'off'}`;
      process.stderr.write(`chat_deflate: ${label} ... `);
      const r = await runCase(kind, compress);
      results.push(r);
      process.stderr.write(`${r.msgs_per_s} msgs/s, ratio ${r.ratio}${r.mismatches || r.errors || !r.negotiation_ok ? ' (PROBLEMS)' : ''}\n`);
    }
  }
  const wall = (performance.now() - started) / 1000;

  // ---- report
  const gitOut = (args) => { try { return execFileSync('git', ['-C', REPO, ...args], { encoding: 'utf8', timeout: 5000 }).trim(); } catch { return ''; } };
  const commit = gitOut(['rev-parse', '--short', 'HEAD']);
  const dirty = gitOut(['status', '--porcelain', '--', 'include', 'examples/testee_server.cpp']) !== '';
  let buildType = '';
  let zlibVersion = '';
  try {
    const cache = fs.readFileSync(path.join(path.dirname(path.dirname(opts.testee)), 'CMakeCache.txt'), 'utf8');
    buildType = (/^CMAKE_BUILD_TYPE:STRING=(.*)$/m.exec(cache) || [])[1] || '';
    zlibVersion = (/^FIND_PACKAGE_MESSAGE_DETAILS_ZLIB:INTERNAL=.*\[v([^\]()]+)/m.exec(cache) || [])[1] || '';
  } catch { /* not a build tree */ }
  const meta = {
    date: new Date().toISOString(),
    command: process.env.CHAT_DEFLATE_COMMAND || `node ${path.relative(REPO, SCRIPT)}`,
    mode: opts.smoke ? 'smoke' : 'full',
    node: process.version, node_zlib: process.versions.zlib, ws: wsVersion,
    duplex_commit: commit + (dirty ? ' (working tree has changes in include/ or testee_server.cpp)' : ''),
    testee: path.relative(REPO, opts.testee), testee_build_type: buildType, testee_zlib: zlibVersion,
    cpu: os.cpus()[0]?.model ?? '?', cpus: os.cpus().length, loadavg_at_end: os.loadavg().map((x) => +x.toFixed(2)),
    pinning: process.env.CHAT_DEFLATE_PIN_NOTE || '?', client_cpus: cpusAllowed(),
    connections: opts.connections, inflight: opts.inflight, warmup_s: opts.warmup, duration_s: opts.duration,
    threshold: THRESHOLD, stream, wall_s: +wall.toFixed(1),
  };
  const problems = [];
  for (const r of results) {
    const where = `${r.server}, compression ${r.compression}`;
    if (!(r.msgs_per_s > 0)) problems.push(`${where}: zero rate`);
    if (r.mismatches) problems.push(`${where}: ${r.mismatches} echo mismatches`);
    if (r.errors) problems.push(`${where}: ${r.errors} errors (${r.error_notes.join('; ')})`);
    if (r.compression === 'on' && r.negotiation_ok && !(r.ratio_s2c > 1)) problems.push(`${where}: the server's echoes were not compressed (s→c ratio ${r.ratio_s2c})`);
    if (!r.negotiation_ok) problems.push(`${where}: permessage-deflate ${r.compression === 'on' ? 'not negotiated' : 'negotiated though not offered'}`);
  }
  const md = renderMarkdown(meta, results, problems);
  process.stdout.write(md);
  if (opts.write) {
    fs.mkdirSync(RESULTS_DIR, { recursive: true });
    fs.writeFileSync(path.join(RESULTS_DIR, 'deflate_latest.md'), md);
    fs.writeFileSync(path.join(RESULTS_DIR, 'deflate_latest.json'), JSON.stringify({ meta, results, problems }, null, 2) + '\n');
    process.stderr.write(`chat_deflate: wrote benchmarks/results/deflate_latest.md and .json\n`);
  }
  process.exit(problems.length ? 1 : 0);
}

function renderMarkdown(meta, results, problems) {
  const L = [];
  L.push(`# permessage-deflate: JSON chat stream, duplex vs Node ws${meta.mode === 'smoke' ? ' (smoke run)' : ''}`, '');
  L.push(`Command (from the repository root): \`${meta.command}\``, '');
  L.push(`${meta.date}; ${meta.cpu}, ${meta.cpus} CPUs, load average at end ${meta.loadavg_at_end.join(' ')}; ` +
    `Node ${meta.node} (zlib ${meta.node_zlib}), ws ${meta.ws}; duplex ${meta.duplex_commit}, ${meta.testee} ` +
    `(${meta.testee_build_type || 'build type ?'}, zlib ${meta.testee_zlib || '?'}). ` +
    `Pinning: ${meta.pinning}.`, '');
  L.push(`${meta.connections} connections x ${meta.inflight} messages in flight, ${meta.warmup_s} s warmup + ${meta.duration_s} s measured per case. ` +
    `Stream: ${meta.stream.messages} JSON chat events (seed ${meta.stream.seed}), ${meta.stream.min_bytes}/${meta.stream.median_bytes}/` +
    `${meta.stream.p90_bytes}/${meta.stream.max_bytes} bytes min/median/p90/max, mean ${meta.stream.mean_bytes}; ` +
    `compression threshold ${meta.threshold} bytes on every side (duplex's default), so every message is compressed when the extension is on.`, '');
  L.push('| Server | Compression | msgs/s | payload B/msg | wire B/msg c→s | wire B/msg s→c | ratio | server CPU % | client CPU % | errors |');
  L.push('|---|---|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const r of results) {
    L.push(`| ${r.server} | ${r.compression} | ${r.msgs_per_s} | ${r.payload_bytes_per_msg} | ${r.wire_bytes_per_msg_c2s} | ` +
      `${r.wire_bytes_per_msg_s2c} | ${r.ratio.toFixed(2)} | ${r.server_cpu_pct} | ${r.client_cpu_pct} | ${r.mismatches + r.errors} |`);
  }
  L.push('');
  L.push('msgs/s: echoes received per second. Wire bytes are TCP payload (frame headers included, handshake excluded) ' +
    'from the client sockets\' bytesWritten (c→s) and bytesRead (s→c), per message sent or echoed. ' +
    'ratio = payload bytes / wire bytes, both directions (below 1 without compression: frame headers and masks). ' +
    'c→s is compressed by the ws client in every case; s→c by the server under test. ' +
    'CPU % is utime+stime from /proc/PID/stat over the measured window (100 = one core).');
  L.push('');
  for (const r of results.filter((x) => x.compression === 'on')) {
    const off = results.find((x) => x.server === r.server && x.compression === 'off');
    const save = off ? (1 - (r.wire_bytes_c2s + r.wire_bytes_s2c) / Math.max(1, r.sent + r.echoes) /
      ((off.wire_bytes_c2s + off.wire_bytes_s2c) / Math.max(1, off.sent + off.echoes))) * 100 : NaN;
    L.push(`- ${r.server}: negotiated \`${r.extensions_header || '(nothing)'}\`; s→c ratio ${r.ratio_s2c}, c→s ratio ${r.ratio_c2s}` +
      (off ? `; ${save.toFixed(0)}% fewer wire bytes per message than without compression, at ${(r.msgs_per_s / Math.max(1, off.msgs_per_s) * 100).toFixed(0)}% of its message rate.` : '.'));
  }
  const busyClient = results.filter((r) => r.client_cpu_pct >= 90);
  if (busyClient.length) {
    L.push(`- The client was at >= 90% of its core in ${busyClient.length} of ${results.length} cases: there the rate is bounded by the Node client, not by the server.`);
  }
  L.push('- Whole-core busy % over each window, all processes (other jobs on the machine included): ' +
    results.map((r) => `${r.server}/${r.compression} ${Object.entries(r.core_busy_pct).map(([k, v]) => `${k} ${v}`).join(', ')}`).join('; ') + '.');
  L.push(`- Run took ${meta.wall_s} s.`);
  if (problems.length) {
    L.push('', '**Problems:**', ...problems.map((p) => `- ${p}`));
  }
  L.push('');
  return L.join('\n');
}

// ---------------------------------------------------------------- main
// (last, so every const above is initialised before it runs)
const opts = parseArgs(process.argv.slice(2));

if (process.env.CHAT_DEFLATE_ROLE !== 'bench') {
  await launcher();
} else {
  await bench();
}
