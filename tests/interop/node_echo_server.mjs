// Node's `ws` as an echo server for duplex::client (tests/interop/client_driver.cpp).
//
//   node tests/interop/node_echo_server.mjs        prints "node_echo_server listening on ws://127.0.0.1:PORT"
//
// Listens on 127.0.0.1, port 0. Every message goes back with its type, except the text
// "!close CODE REASON", which makes the server close with that code and reason; ws answers pings
// (§5.5.2) and close frames (§5.5.1) itself, and rejects unmasked client frames (§5.1).
//
// Misbehaving on request, so client_driver can check how duplex::client fails the
// connection (§7.1.7): the text "!bad CASE" makes the server break a rule (CASES below:
// ws never sends invalid frames, so most are raw bytes written to the socket), and it
// remembers the close code the client answered with (1006: no close frame came). A later
// connection asks for it with "!closecode CASE" and gets the text "CASE CODE" back (once
// that connection has ended; "CASE none" after 5 s).
// Subprotocol: `chat` is chosen when the client offers it (§4.2.2), none
// otherwise. permessage-deflate (RFC 7692) is accepted only with DUPLEX_DEFLATE set, so
// the plain run stays uncompressed and the deflate run asserts compression. Exits on
// SIGTERM/SIGINT, and by itself after 120 s so it can never outlive a test.
import { requirePackage } from './lib.mjs';

const { WebSocketServer } = await requirePackage('ws');
const wss = new WebSocketServer({
  host: '127.0.0.1', port: 0, maxPayload: 64 * 1024 * 1024,
  perMessageDeflate: process.env.DUPLEX_DEFLATE ? { threshold: 0 } : false,
  // Called only when the request has Sec-WebSocket-Protocol; false: answer without one.
  handleProtocols: (offered) => (offered.has('chat') ? 'chat' : false),
});
// Each case: what the server does to the connection (ws: the WebSocket, raw: write bytes
// to its TCP socket, bypassing ws).
const raw = (ws, bytes) => ws._socket.write(Buffer.from(bytes));
const CASES = {
  // §8.1: a text message that is not UTF-8 (0xff never is). ws.send does not check text,
  // and with permessage-deflate it compresses it (the inflated text is checked then).
  'bad-utf8': (ws) => ws.send(Buffer.from([0x68, 0x69, 0xff, 0x21]), { binary: false }),
  // §5.2: opcode 0x3 is reserved (FIN, opcode 3, 2 bytes of payload).
  'reserved-opcode': (ws) => raw(ws, [0x83, 0x02, 0x68, 0x69]),
  // §5.1: a server must not mask; RFC 6455 §5.7's masked "Hello".
  'masked-frame': (ws) => raw(ws, [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58]),
  // §7.4.1/§10.4: 2 MiB (the client's limit is 1 MiB for this case). Zeros: with
  // permessage-deflate they shrink to a few KB and the limit applies while inflating.
  'too-big': (ws) => ws.send(Buffer.alloc(2 * 1024 * 1024), { binary: true }),
  // §7.4.1: 1005 must never be sent in a close frame; 999 is not a status code at all.
  'close-1005': (ws) => raw(ws, [0x88, 0x02, 0x03, 0xed]),
  'close-999': (ws) => raw(ws, [0x88, 0x02, 0x03, 0xe7]),
  // §5.5.1: a 1-byte close payload (a code is 2 bytes).
  'close-1-byte': (ws) => raw(ws, [0x88, 0x01, 0x03]),
  // §5.5.1/§8.1: the close reason must be UTF-8 (code 1000, reason 0xff 0xfe).
  'close-bad-reason': (ws) => raw(ws, [0x88, 0x04, 0x03, 0xe8, 0xff, 0xfe]),
  // §7.1.5: TCP ends without a close frame: a FIN (destroy), or a RST.
  'drop-tcp': (ws) => ws.terminate(),
  'reset-tcp': (ws) => ws._socket.resetAndDestroy(),
};
const closeCodes = new Map(); // case -> close code the client sent back (1006: none)
const closeWaiters = new Map(); // case -> [resolve]
const recordClose = (name, code) => {
  closeCodes.set(name, code);
  for (const resolve of closeWaiters.get(name) || []) resolve();
  closeWaiters.delete(name);
};
const closeCodeOf = async (name) => {
  if (!closeCodes.has(name)) {
    await new Promise((resolve) => {
      closeWaiters.set(name, [...(closeWaiters.get(name) || []), resolve]);
      setTimeout(resolve, 5000).unref();
    });
  }
  return closeCodes.has(name) ? closeCodes.get(name) : 'none';
};

wss.on('connection', (ws) => {
  let misbehaved = null; // the case this connection is running
  ws.on('message', async (data, isBinary) => {
    if (misbehaved) return; // whatever comes after the violation
    // "!close CODE REASON": the server starts the closing handshake (§7.1.2).
    const m = !isBinary && /^!close (\d+) (.*)$/s.exec(data.toString());
    if (m) return ws.close(Number(m[1]), m[2]);
    const bad = !isBinary && /^!bad (.*)$/s.exec(data.toString());
    if (bad) {
      if (!CASES[bad[1]]) return ws.send(`unknown case ${bad[1]}`);
      misbehaved = bad[1];
      console.log(`node_echo_server: misbehaving: ${misbehaved}`);
      return CASES[misbehaved](ws);
    }
    const q = !isBinary && /^!closecode (.*)$/s.exec(data.toString());
    if (q) return ws.send(`${q[1]} ${await closeCodeOf(q[1])}`);
    ws.send(data, { binary: isBinary });
  });
  ws.on('close', (code, reason) => {
    console.log(`node_echo_server: client closed with ${code} ${reason}`);
    if (misbehaved) recordClose(misbehaved, code);
  });
  ws.on('error', (e) => console.log(`node_echo_server: connection error: ${e.message}`));
});
wss.on('listening', () => console.log(`node_echo_server listening on ws://127.0.0.1:${wss.address().port}`));
const stop = () => { for (const c of wss.clients) c.terminate(); wss.close(() => process.exit(0)); };
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
setTimeout(() => { console.log('node_echo_server: 120 s are up'); process.exit(1); }, 120000).unref();
