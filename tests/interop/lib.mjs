// Shared helpers of the Node.js interop tests: start a duplex example server on
// port 0 and read its port from stdout, always kill it, run named checks with a
// timeout each, and a raw-socket WebSocket client for frames no library will send.
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import net from 'node:net';

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11'; // RFC 6455 §1.3

// These scripts use nothing newer than Node.js 18 (Debian 12's nodejs); older: say so.
if (Number(process.versions.node.split('.')[0]) < 18) {
  console.error(`FAIL: Node.js ${process.version} is too old for the interop tests (18 or newer needed).\n` +
    'Install it with:  apt-get install nodejs npm   (Debian 12 has 18; or: bash scripts/install-deps.sh)');
  process.exit(1);
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Rejects with `what` when `promise` takes longer than `ms`. */
export function withTimeout(promise, ms, what) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** Imports an npm package from tests/interop/node_modules, or exits 1 saying how to install it. */
export async function requirePackage(name) {
  try {
    return await import(name);
  } catch (e) {
    console.error(`FAIL: cannot load the npm package '${name}' (${e.code || e.message}).\n` +
      `Install the interop peers with:  npm ci --prefix tests/interop --no-audit --no-fund\n` +
      `(or: bash scripts/install-deps.sh)`);
    process.exit(1);
  }
}

const servers = new Set();

/** SIGTERM, then SIGKILL after 3 s; resolves to how it ended: { code, signal, killed }. */
export async function stopServer(s) {
  servers.delete(s);
  if (s.proc.exitCode !== null || s.proc.signalCode !== null) return { code: s.proc.exitCode, signal: s.proc.signalCode, killed: false };
  s.expectedExit = true;
  const exited = new Promise((r) => s.proc.once('exit', (code, signal) => r({ code, signal, killed: false })));
  s.proc.kill('SIGTERM');
  const r = await Promise.race([exited, sleep(3000).then(() => null)]);
  if (r) return r;
  s.proc.kill('SIGKILL');
  await Promise.race([exited, sleep(2000)]);
  return { code: null, signal: 'SIGKILL', killed: true };
}

/** Kills every server this process started. */
export async function killServers() {
  await Promise.all([...servers].map(stopServer));
}

/** A check: the examples stop gracefully on SIGTERM (server.stop(), io.run() returns, exit 0). */
export async function expectCleanExit(s) {
  const r = await stopServer(s);
  if (r.killed) throw new Error(`${s.name} ignored SIGTERM for 3 s and was killed`);
  if (r.code !== 0) throw new Error(`${s.name} exited with code ${r.code}, signal ${r.signal} after SIGTERM; stderr:\n${s.stderr}`);
}

// Never leave a server behind: on a normal exit, a signal, or an uncaught error.
process.on('exit', () => { for (const s of servers) try { s.proc.kill('SIGKILL'); } catch {} });
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => { for (const s of servers) try { s.proc.kill('SIGKILL'); } catch {} process.exit(1); });
}

/**
 * Starts `exe 0` and resolves once it printed its port (the examples print
 * "... ws://127.0.0.1:PORT" or "... http://localhost:PORT ...").
 */
export function startServer(exe, name = exe) {
  return new Promise((resolve, reject) => {
    const proc = spawn(exe, ['0'], { stdio: ['ignore', 'pipe', 'pipe'] });
    const s = { proc, name, port: 0, stderr: '', stdout: '', expectedExit: false };
    servers.add(s);
    const timer = setTimeout(() => reject(new Error(`${name} printed no port within 10 s; stdout: ${s.stdout}`)), 10000);
    proc.on('error', (e) => { clearTimeout(timer); reject(new Error(`cannot start ${exe}: ${e.message}`)); });
    proc.stderr.on('data', (d) => { s.stderr += d; });
    proc.stdout.on('data', (d) => {
      s.stdout += d;
      const m = /(?:ws|http):\/\/(?:127\.0\.0\.1|localhost):(\d+)/.exec(s.stdout);
      if (m && !s.port) {
        s.port = Number(m[1]);
        clearTimeout(timer);
        resolve(s);
      }
    });
    proc.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (!s.expectedExit) {
        s.died = `${name} exited unexpectedly (code ${code}, signal ${signal}); stderr:\n${s.stderr}`;
        console.error(s.died);
      }
      reject(new Error(`${name} exited before printing its port (code ${code}, signal ${signal}): ${s.stderr}`));
    });
  });
}

/** Runs named checks; each one gets a timeout, a PASS/FAIL line and a timing. */
export class Checks {
  constructor() { this.failed = []; this.passed = 0; this.servers = []; }
  async run(name, fn, timeoutMs = 10000) {
    const t0 = Date.now();
    try {
      await withTimeout(Promise.resolve().then(fn), timeoutMs, name);
      for (const s of this.servers) if (s.died) throw new Error(s.died);
      this.passed++;
      console.log(`ok   ${name} (${Date.now() - t0} ms)`);
    } catch (e) {
      this.failed.push(name);
      console.log(`FAIL ${name} (${Date.now() - t0} ms): ${e && e.stack ? e.stack : e}`);
    }
  }
  summary() {
    console.log(`\n${this.passed} passed, ${this.failed.length} failed`);
    for (const f of this.failed) console.log(`  failed: ${f}`);
    return this.failed.length === 0;
  }
}

export function assert(cond, msg) { if (!cond) throw new Error(`assertion failed: ${msg}`); }
export function assertEq(actual, expected, msg) {
  if (actual !== expected) throw new Error(`${msg}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`);
}

/** Exactly `n` bytes of valid UTF-8 mixing 1-, 2-, 3- and 4-byte code points. */
export function utf8Bytes(n) {
  const pattern = Buffer.from('duplex é ü → ✓ 𝄞 日本語 ', 'utf8');
  const out = Buffer.alloc(n);
  for (let i = 0; i < n; i += pattern.length) pattern.copy(out, i, 0, Math.min(pattern.length, n - i));
  // Replace a code point cut off at the end with ASCII.
  let i = n - 1;
  while (i >= 0 && (out[i] & 0xc0) === 0x80) i--;
  if (i >= 0 && out[i] >= 0xc0) {
    const len = out[i] >= 0xf0 ? 4 : out[i] >= 0xe0 ? 3 : 2;
    if (i + len > n) out.fill(0x61, i);
  }
  return out;
}

// ---- a raw WebSocket client over net.Socket --------------------------------

export const OP = { cont: 0, text: 1, binary: 2, close: 8, ping: 9, pong: 10 };

/** One client frame (RFC 6455 §5.2), masked unless mask === false. */
export function encodeFrame(op, payload = Buffer.alloc(0), { fin = true, mask = true, rsv = 0, length } = {}) {
  payload = Buffer.from(payload);
  const len = length ?? payload.length; // `length` may lie, to announce a huge frame
  let head;
  if (len < 126) { head = Buffer.alloc(2); head[1] = len; }
  else if (len < 65536) { head = Buffer.alloc(4); head[1] = 126; head.writeUInt16BE(len, 2); }
  else { head = Buffer.alloc(10); head[1] = 127; head.writeBigUInt64BE(BigInt(len), 2); }
  head[0] = (fin ? 0x80 : 0) | (rsv << 4) | op;
  if (!mask) return Buffer.concat([head, payload]);
  head[1] |= 0x80;
  const key = crypto.randomBytes(4);
  const body = Buffer.from(payload);
  for (let i = 0; i < body.length; i++) body[i] ^= key[i & 3];
  return Buffer.concat([head, key, body]);
}

export function closePayload(code, reason = '') {
  const b = Buffer.alloc(2 + Buffer.byteLength(reason));
  b.writeUInt16BE(code, 0);
  b.write(reason, 2);
  return b;
}

export class RawClient {
  /** Connects and performs the opening handshake (§4.1), checking the server's answer (§4.2.2). */
  // rawHead: send this request head instead (its key is read back from it);
  // firstFrame: bytes written in the same write() as the request head.
  static async connect(port, { path = '/', headers = {}, rawHead, firstFrame } = {}) {
    const c = new RawClient();
    await c._open(port, path, headers, rawHead, firstFrame);
    return c;
  }

  _open(port, path, headers, rawHead, firstFrame) {
    return new Promise((resolve, reject) => {
      const key = rawHead ? /Sec-WebSocket-Key: (\S+)/i.exec(rawHead)[1] : crypto.randomBytes(16).toString('base64');
      // A port on 127.0.0.1, or a string: the path of a Unix domain socket.
      const sock = typeof port === 'string' ? net.connect(port) : net.connect(port, '127.0.0.1');
      this.sock = sock;
      this.buf = Buffer.alloc(0);
      this.ended = false;
      this.waiters = [];
      let handshaken = false;
      sock.on('error', (e) => { this.error = e; if (!handshaken) reject(e); this._wake(); });
      sock.on('close', () => { this.ended = true; if (!handshaken) reject(new Error('closed during handshake')); this._wake(); });
      sock.on('data', (d) => {
        this.buf = Buffer.concat([this.buf, d]);
        if (!handshaken) {
          const end = this.buf.indexOf('\r\n\r\n');
          if (end < 0) return;
          const head = this.buf.subarray(0, end).toString('latin1');
          this.buf = this.buf.subarray(end + 4);
          handshaken = true;
          const [status, ...lines] = head.split('\r\n');
          this.status = status;
          this.headers = {};
          for (const l of lines) {
            const i = l.indexOf(':');
            this.headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
          }
          const accept = crypto.createHash('sha1').update(key + GUID).digest('base64');
          if (!/^HTTP\/1\.1 101/.test(status)) return reject(new Error(`handshake answered '${status}'`));
          if ((this.headers.upgrade || '').toLowerCase() !== 'websocket') return reject(new Error('101 without Upgrade: websocket'));
          if (!/\bupgrade\b/i.test(this.headers.connection || '')) return reject(new Error('101 without Connection: Upgrade'));
          if (this.headers['sec-websocket-accept'] !== accept) return reject(new Error('wrong Sec-WebSocket-Accept'));
          resolve();
        }
        this._wake();
      });
      const extra = Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('');
      const host = typeof port === 'string' ? 'localhost' : `127.0.0.1:${port}`;
      const head = rawHead ?? `GET ${path} HTTP/1.1\r\nHost: ${host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n${extra}\r\n`;
      sock.write(firstFrame ? Buffer.concat([Buffer.from(head, 'latin1'), firstFrame]) : head);
    });
  }

  _wake() { const w = this.waiters; this.waiters = []; for (const f of w) f(); }
  _changed() { return new Promise((r) => this.waiters.push(r)); }

  write(bytes) { if (!this.sock.destroyed) this.sock.write(bytes); }
  send(op, payload, opts) { this.write(encodeFrame(op, payload, opts)); }

  /** The next server frame; server frames must not be masked (§5.1). */
  async frame(timeoutMs = 5000) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const f = this._parse();
      if (f) return f;
      if (this.ended) throw new Error(`connection ended before a frame arrived${this.error ? ` (${this.error.code})` : ''}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error('no frame from the server in time');
      await Promise.race([this._changed(), sleep(left)]);
    }
  }

  _parse() {
    const b = this.buf;
    if (b.length < 2) return null;
    let len = b[1] & 0x7f, off = 2;
    if (len === 126) { if (b.length < 4) return null; len = b.readUInt16BE(2); off = 4; }
    else if (len === 127) { if (b.length < 10) return null; len = Number(b.readBigUInt64BE(2)); off = 10; }
    if (b[1] & 0x80) throw new Error('server sent a masked frame (§5.1 forbids it)');
    if (b.length < off + len) return null;
    const f = { fin: !!(b[0] & 0x80), rsv: (b[0] >> 4) & 7, op: b[0] & 0x0f, payload: b.subarray(off, off + len) };
    this.buf = b.subarray(off + len);
    if (f.op === OP.close) {
      f.code = len >= 2 ? f.payload.readUInt16BE(0) : 1005;
      f.reason = f.payload.subarray(2).toString('utf8');
    }
    return f;
  }

  /** Reads frames up to the server's close frame, answers it (§5.5.1), and waits for TCP to end. */
  async expectClose(expectedCode, timeoutMs = 5000) {
    let f;
    do f = await this.frame(timeoutMs); while (f.op !== OP.close);
    assertEq(f.code, expectedCode, 'close code in the server\'s close frame');
    this.send(OP.close, closePayload(f.code));
    await this.waitEnd(timeoutMs);
    return f;
  }

  async waitEnd(timeoutMs = 5000) {
    const deadline = Date.now() + timeoutMs;
    while (!this.ended) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error('the server did not close the TCP connection');
      await Promise.race([this._changed(), sleep(left)]);
    }
  }

  destroy() { this.sock.destroy(); }
}
