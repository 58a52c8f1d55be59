// A small stand-in for Autobahn|Testsuite's fuzzing server (wstest -m fuzzingserver),
// built on Node's `ws`, so that examples/testee_client.cpp is run by a test.
//
//   node mock_fuzzingserver.mjs <testee_client>   runs `testee_client ws://127.0.0.1:PORT AGENT`
//                                                 against it and checks what happened
//   node mock_fuzzingserver.mjs                   serves only, printing
//                                                 "mock_fuzzingserver listening on ws://127.0.0.1:PORT"
//
// Listens on 127.0.0.1, port 0, with the fuzzing server's three endpoints:
//   /getCaseCount                 sends the number of cases as a text message, closes 1000
//   /runCase?case=N&agent=A       sends case N's messages (text, binary, empty, fragmented
//                                 with `fin: false`, a ping; see CASES), checks that every
//                                 message comes back exactly (type and bytes, in order) and
//                                 the ping's pong carries its payload, then closes 1000
//   /updateReports?agent=A        records the agent, closes 1000
// The checks in run mode: testee_client exited 0; getCaseCount was asked once; every case
// 1..N ran once, in order, with the agent; every echo and pong matched and every case
// ended with the client's 1000; updateReports came last, with the agent. A control run
// (a `ws` client that corrupts one echo) shows the echo check does catch a wrong echo.
import { spawn } from 'node:child_process';
import { Checks, assert, assertEq, requirePackage, utf8Bytes } from './lib.mjs';

const wsModule = await requirePackage('ws');
const WebSocket = wsModule.default;
const { WebSocketServer } = wsModule;

const AGENT = 'duplex-mock_1.0'; // all the characters testee_client allows in a name
const CASE_TIMEOUT_MS = 15000;    // a case that has not completed by then fails and is cut

// ---- the cases ---------------------------------------------------------------

const text = (s) => ({ data: Buffer.from(s, 'utf8'), binary: false });
const textBytes = (b) => ({ data: Buffer.from(b), binary: false });
const binary = (b) => ({ data: Buffer.from(b), binary: true });
const bytes = (n, seed = 0) => { const b = Buffer.alloc(n); for (let i = 0; i < n; i++) b[i] = (i * 7 + seed) & 0xff; return b; };
// A message sent as several frames: fin: false on all but the last (RFC 6455 §5.4).
// `pingAfter`: a ping sent after that many fragments, inside the message (§5.4 allows
// control frames between fragments).
const fragmented = (parts, isBinary, pingAfter) => ({
  fragments: parts.map((p) => Buffer.from(p)), binary: isBinary,
  ...(pingAfter !== undefined ? { pingAfter, pingPayload: Buffer.from(`inside, after ${pingAfter}`) } : {}),
});
// `b` cut into `size`-byte pieces (wherever that falls, inside code points too).
const pieces = (b, size) => Array.from({ length: Math.ceil(b.length / size) }, (_, i) => b.subarray(i * size, (i + 1) * size));
const ping = (payload) => ({ ping: Buffer.from(payload) });

// "κόσμε" (Autobahn 6.x's test string): multi-byte code points, split inside one below.
const kosme = Buffer.from('κόσμε', 'utf8');

// One ping per case at most: §5.5.3 lets a peer answer only the latest of several pings.
const CASES = [
  // 1: one of each kind
  [text('Hello, testee'), binary(bytes(256)), text(''), binary([]), fragmented(['frag', 'men', 'ted'], false),
   ping('case 1')],
  // 2: every payload-length encoding (7-bit, 16-bit, 64-bit), text and binary
  [...[0, 1, 125, 126, 127, 65535, 65536].flatMap((n) => [textBytes(utf8Bytes(n)), binary(bytes(n, n))]), ping('')],
  // 3: fragments split inside a UTF-8 code point, empty fragments, a ping between fragments
  [fragmented([kosme.subarray(0, 1), kosme.subarray(1, 5), kosme.subarray(5)], false),
   fragmented(['', 'abc', ''], false),
   fragmented(['', ''], false),
   fragmented([bytes(1000, 1), bytes(1, 2), bytes(70000, 3)], true, 1),
   text('after the fragments')],
  // 4: many small messages, order kept
  [...Array.from({ length: 300 }, (_, i) => (i % 3 === 2 ? binary(bytes(i % 50, i)) : text(`message ${i} ${'x'.repeat(i % 40)}`))),
   ping(bytes(125, 9))],
  // 5: large messages, one fragmented in 16 KiB pieces
  [binary(bytes(1 << 20, 5)),
   fragmented(pieces(utf8Bytes(256 * 1024), 16 * 1024), false),
   text('end of case 5')],
  // 6: nothing to echo, only a ping with the longest payload a control frame allows
  [ping(bytes(125, 6))],
];

/** What the client must send back: every message whole, in order. */
function expectedEchoes(items) {
  return items.filter((it) => !it.ping).map((it) => ({
    data: it.fragments ? Buffer.concat(it.fragments) : it.data, binary: it.binary,
  }));
}
function expectedPongs(items) {
  return items.flatMap((it) => (it.ping ? [it.ping] : it.pingPayload ? [it.pingPayload] : []));
}

function sendCase(ws, items) {
  for (const it of items) {
    if (it.ping) ws.ping(it.ping);
    else if (it.fragments) {
      it.fragments.forEach((f, i) => {
        ws.send(f, { binary: it.binary, fin: i === it.fragments.length - 1 });
        if (it.pingAfter === i + 1) ws.ping(it.pingPayload);
      });
    } else ws.send(it.data, { binary: it.binary });
  }
}

const describe = (b, isBinary) => `${isBinary ? 'binary' : 'text'} of ${b.length} bytes` +
  (b.length <= 40 ? ` ${JSON.stringify(isBinary ? b.toString('hex') : b.toString('utf8'))}` : '');

// ---- the server ---------------------------------------------------------------

const state = { caseCountCalls: 0, runs: [], reports: [], errors: [], log: [] };
const say = (line) => { state.log.push(line); console.log(`mock_fuzzingserver: ${line}`); };

function runCase(ws, n, agent) {
  const run = { case: n, agent, failures: [], echoes: 0, pongs: 0, closeCode: null, done: false };
  state.runs.push(run);
  const items = CASES[n - 1];
  if (!items) {
    run.failures.push(`no case ${n} (there are ${CASES.length})`);
    ws.close(1008, 'no such case');
    return;
  }
  const echoes = expectedEchoes(items);
  const pongs = expectedPongs(items);
  const finishIfComplete = () => {
    if (run.echoes === echoes.length && run.pongs === pongs.length && ws.readyState === WebSocket.OPEN) {
      clearTimeout(timer);
      ws.close(1000, `case ${n} done`);
    }
  };
  const timer = setTimeout(() => {
    run.failures.push(`not complete after ${CASE_TIMEOUT_MS} ms: ${run.echoes}/${echoes.length} echoes, ${run.pongs}/${pongs.length} pongs`);
    ws.terminate();
  }, CASE_TIMEOUT_MS);
  ws.on('message', (data, isBinary) => {
    const i = run.echoes++;
    if (i >= echoes.length) return run.failures.push(`message ${i + 1}: not expected (${describe(data, isBinary)})`);
    const want = echoes[i];
    if (isBinary !== want.binary || !data.equals(want.data))
      run.failures.push(`echo ${i + 1}: expected ${describe(want.data, want.binary)}, got ${describe(data, isBinary)}`);
    finishIfComplete();
  });
  ws.on('pong', (payload) => {
    const i = run.pongs++;
    if (i >= pongs.length) return run.failures.push(`pong ${i + 1}: not expected (${payload.length} bytes)`);
    if (!payload.equals(pongs[i])) run.failures.push(`pong ${i + 1}: payload ${payload.toString('hex')}, expected ${pongs[i].toString('hex')}`);
    finishIfComplete();
  });
  ws.on('close', (code) => {
    clearTimeout(timer);
    run.closeCode = code;
    run.done = true;
    if (run.echoes < echoes.length || run.pongs < pongs.length)
      run.failures.push(`closed (${code}) after ${run.echoes}/${echoes.length} echoes, ${run.pongs}/${pongs.length} pongs`);
    say(`case ${n} (agent ${agent}): ${run.failures.length ? `FAIL: ${run.failures.join('; ')}` : 'ok'}` +
      ` (${run.echoes} echoes, ${run.pongs} pongs, close ${code})`);
  });
  sendCase(ws, items);
  finishIfComplete(); // a case with nothing to answer (none here) would close at once
}

const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false, maxPayload: 64 * 1024 * 1024 });
wss.on('connection', (ws, req) => {
  const u = new URL(req.url, 'http://127.0.0.1');
  ws.on('error', (e) => state.errors.push(`${req.url}: ${e.message}`));
  if (u.pathname === '/getCaseCount') {
    state.caseCountCalls++;
    ws.send(String(CASES.length));
    ws.close(1000);
  } else if (u.pathname === '/runCase') {
    const n = Number(u.searchParams.get('case'));
    runCase(ws, n, u.searchParams.get('agent'));
  } else if (u.pathname === '/updateReports') {
    state.reports.push({ agent: u.searchParams.get('agent'), afterRuns: state.runs.length });
    say(`updateReports (agent ${u.searchParams.get('agent')})`);
    ws.close(1000);
  } else {
    state.errors.push(`unknown endpoint ${req.url}`);
    ws.close(1008, 'unknown endpoint');
  }
});
await new Promise((resolve, reject) => { wss.once('listening', resolve); wss.once('error', reject); });
const base = `ws://127.0.0.1:${wss.address().port}`;
console.log(`mock_fuzzingserver listening on ${base}`);

const testee = process.argv[2];
if (!testee) {
  // Serve-only mode: until SIGTERM/SIGINT, or 120 s.
  const stop = () => { for (const c of wss.clients) c.terminate(); wss.close(() => process.exit(0)); };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  setTimeout(() => { console.log('mock_fuzzingserver: 120 s are up'); process.exit(1); }, 120000).unref();
} else {
  await runChecks(testee);
}

// ---- run mode -------------------------------------------------------------------

/** Runs testee_client; resolves to { code, signal, stdout, stderr }; SIGKILLs it after `ms`. */
function runTestee(exe, args, ms) {
  return new Promise((resolve, reject) => {
    const child = spawn(exe, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const out = { code: null, signal: null, stdout: '', stderr: '', killed: false };
    const killIt = () => { try { child.kill('SIGKILL'); } catch {} };
    process.on('exit', killIt);
    const timer = setTimeout(() => { out.killed = true; killIt(); }, ms);
    child.stdout.on('data', (d) => { out.stdout += d; });
    child.stderr.on('data', (d) => { out.stderr += d; });
    child.on('error', (e) => { clearTimeout(timer); reject(new Error(`cannot start ${exe}: ${e.message}`)); });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      process.off('exit', killIt);
      Object.assign(out, { code, signal });
      resolve(out);
    });
  });
}

/** A `ws` client that runs case 1 but sends the second echo back with one byte changed. */
function corruptingClient(agent) {
  return new Promise((resolve, reject) => {
    const c = new WebSocket(`${base}/runCase?case=1&agent=${agent}`, { perMessageDeflate: false });
    let n = 0;
    c.on('message', (data, isBinary) => {
      const copy = Buffer.from(data);
      if (++n === 2 && copy.length > 0) copy[copy.length - 1] ^= 0x01;
      c.send(copy, { binary: isBinary });
    });
    c.on('close', (code) => resolve(code));
    c.on('error', reject);
  });
}

async function runChecks(exe) {
  const watchdog = setTimeout(() => { console.error('FAIL: watchdog (100 s)'); process.exit(1); }, 100000);
  const checks = new Checks();
  let r;
  await checks.run('testee_client runs against the mock and exits 0', async () => {
    r = await runTestee(exe, [base, AGENT], 60000);
    if (r.code !== 0) {
      throw new Error(`testee_client ${r.killed ? 'was killed after 60 s' : `exited with code ${r.code}, signal ${r.signal}`}\n` +
        `stdout:\n${r.stdout}\nstderr:\n${r.stderr}`);
    }
    assert(r.stdout.includes(`${CASES.length} cases`), `stdout says "${CASES.length} cases": ${r.stdout}`);
    assert(r.stdout.includes('reports updated'), `stdout says "reports updated": ${r.stdout}`);
  }, 70000);
  const testeeRuns = () => state.runs.filter((x) => x.agent === AGENT);
  await checks.run('getCaseCount asked once', () => assertEq(state.caseCountCalls, 1, 'getCaseCount calls'));
  await checks.run(`all ${CASES.length} cases ran, once each, in order, with the agent`, () => {
    assertEq(state.runs.length, CASES.length, 'runCase connections');
    assertEq(JSON.stringify(state.runs.map((x) => x.case)), JSON.stringify(CASES.map((_, i) => i + 1)), 'cases run');
    assertEq(testeeRuns().length, CASES.length, `runs with agent ${AGENT}`);
    for (const x of state.runs) assert(x.done, `case ${x.case} finished`);
  });
  await checks.run('every echo and pong matched, every case closed with 1000', () => {
    const bad = state.runs.filter((x) => x.failures.length || x.closeCode !== 1000);
    assert(bad.length === 0, bad.map((x) => `case ${x.case}: close ${x.closeCode}; ${x.failures.join('; ')}`).join('\n'));
    const total = CASES.reduce((s, items) => s + expectedEchoes(items).length, 0);
    assertEq(state.runs.reduce((s, x) => s + x.echoes, 0), total, 'echoes received in all');
  });
  await checks.run('updateReports called last, with the agent', () => {
    assertEq(JSON.stringify(state.reports), JSON.stringify([{ agent: AGENT, afterRuns: CASES.length }]), 'updateReports calls');
  });
  await checks.run('no connection errors, no unknown endpoints', () => {
    assert(state.errors.length === 0, state.errors.join('\n'));
  });
  await checks.run('control: a corrupted echo is caught', async () => {
    const code = await corruptingClient('control');
    const run = state.runs.find((x) => x.agent === 'control');
    assert(run !== undefined, 'the control run was recorded');
    assertEq(code, 1000, 'close code the control client got');
    assertEq(run.failures.length, 1, `failures of the control run (${run.failures.join('; ')})`);
    assert(/^echo 2: expected binary of 256 bytes, got binary of 256 bytes$/.test(run.failures[0]), run.failures[0]);
  });
  clearTimeout(watchdog);
  const ok = checks.summary();
  await new Promise((resolve) => { for (const c of wss.clients) c.terminate(); wss.close(resolve); });
  process.exit(ok ? 0 : 1);
}
