// permessage-deflate (RFC 7692) against real peers: Node's `ws` client, with
// compression on, talks to examples/testee_server (deflate enabled) in several
// negotiated modes, and Python's websockets client (compresses by default) too.
// Each check asserts the extension was actually negotiated, not only that
// messages arrived.
//   node deflate_peers.mjs <testee_server> <python3>
import crypto from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { Checks, assert, assertEq, killServers, requirePackage, startServer } from './lib.mjs';

const [testee, python] = process.argv.slice(2);
if (!testee || !python) {
  console.error('usage: node deflate_peers.mjs <testee_server> <python3 with websockets>');
  process.exit(2);
}
const WebSocket = (await requirePackage('ws')).default;
// The Python peer: Debian's /usr/bin/python3 with python3-websockets. Missing: fail, saying so.
const probe = spawnSync(python, ['-c', 'import websockets'], { encoding: 'utf8', timeout: 30000 });
if (probe.error || probe.status !== 0) {
  const what = probe.error && probe.error.code === 'ENOENT' ? `${python} not found`
    : `${python} cannot import the Python package 'websockets' (${probe.error ? probe.error.message
      : probe.stderr.trim().split('\n').pop() || `exit ${probe.status}`})`;
  console.error(`FAIL: ${what}.\n` +
    'Install it with:  apt-get install python3 python3-websockets   (Debian\'s package, for /usr/bin/python3;\n' +
    'or: bash scripts/install-deps.sh)');
  process.exit(1);
}
const watchdog = setTimeout(async () => { console.error('FAIL: watchdog (100 s)'); await killServers(); process.exit(1); }, 100000);
const checks = new Checks();
const server = await startServer(testee, 'testee_server');
const url = `ws://127.0.0.1:${server.port}/`;

function open(perMessageDeflate) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { perMessageDeflate, maxPayload: 64 * 1024 * 1024 });
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}
function echo(ws, data, binary) {
  return new Promise((resolve, reject) => {
    ws.once('message', (m, isBinary) => resolve({ m, isBinary }));
    ws.once('error', reject);
    ws.send(data, { binary });
  });
}
const texts = ['', 'Hello', '{"user":"ann","text":"hi there","ts":1764000000}'.repeat(50), 'é✓😀'.repeat(5000)];
const binaries = [crypto.randomBytes(1000), Buffer.alloc(70000, 7), crypto.randomBytes(1 << 20), Buffer.alloc(16 << 20, 'a')];

const modes = {
  'defaults (context takeover, 15-bit windows)': { threshold: 0 },
  'no context takeover both ways (§7.1.1)': { threshold: 0, serverNoContextTakeover: true, clientNoContextTakeover: true },
  'server_max_window_bits=9, client_max_window_bits=10 (§7.1.2)': { threshold: 0, serverMaxWindowBits: 9, clientMaxWindowBits: 10 },
};
for (const [name, opts] of Object.entries(modes)) {
  await checks.run(`Node ws client, ${name}: negotiated, every message echoed`, async () => {
    const ws = await open(opts);
    assert(ws.extensions.includes('permessage-deflate'), `extensions '${ws.extensions}'`);
    for (const t of texts) {
      const r = await echo(ws, t, false);
      assertEq(r.isBinary, false, 'text stays text');
      assertEq(r.m.toString(), t, `text of ${t.length} chars`);
    }
    for (const b of binaries) {
      const r = await echo(ws, b, true);
      assert(r.isBinary && Buffer.compare(r.m, b) === 0, `binary of ${b.length} bytes`);
    }
    await new Promise((resolve) => { ws.once('close', (code) => { assertEq(code, 1000, 'close code'); resolve(); }); ws.close(1000); });
  }, 60000);
}

await checks.run('Python websockets client (compression on by default): negotiated, echoed', async () => {
  const script = `
import asyncio, os, sys, websockets
async def main():
    async with websockets.connect(sys.argv[1], max_size=None) as ws:
        ext = ws.response_headers.get("Sec-WebSocket-Extensions") or ""
        assert ext.startswith("permessage-deflate"), ext
        for m in ["hi", "json " * 5000, os.urandom(100000), b"z" * 3000000]:
            await ws.send(m)
            assert await ws.recv() == m
    assert ws.close_code == 1000, ws.close_code
    print("python ok:", ext)
asyncio.run(main())
`;
  const r = spawnSync(python, ['-c', script, url], { encoding: 'utf8', timeout: 60000 });
  assertEq(r.status, 0, `python exit (stderr: ${r.stderr})`);
  assert(r.stdout.includes('python ok'), r.stdout);
}, 70000);

clearTimeout(watchdog);
await killServers();
process.exit(checks.summary() ? 0 : 1);
