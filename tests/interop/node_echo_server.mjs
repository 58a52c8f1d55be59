// Node's `ws` as an echo server for duplex::client (tests/interop/client_driver.cpp).
//
//   node tests/interop/node_echo_server.mjs        prints "node_echo_server listening on ws://127.0.0.1:PORT"
//
// Listens on 127.0.0.1, port 0. Every message goes back with its type, except the text
// "!close CODE REASON", which makes the server close with that code and reason; ws answers pings
// (§5.5.2) and close frames (§5.5.1) itself, and rejects unmasked client frames (§5.1).
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
wss.on('connection', (ws) => {
  ws.on('message', (data, isBinary) => {
    // "!close CODE REASON": the server starts the closing handshake (§7.1.2).
    const m = !isBinary && /^!close (\d+) (.*)$/s.exec(data.toString());
    if (m) return ws.close(Number(m[1]), m[2]);
    ws.send(data, { binary: isBinary });
  });
  ws.on('close', (code, reason) => console.log(`node_echo_server: client closed with ${code} ${reason}`));
  ws.on('error', (e) => console.log(`node_echo_server: connection error: ${e.message}`));
});
wss.on('listening', () => console.log(`node_echo_server listening on ws://127.0.0.1:${wss.address().port}`));
const stop = () => { for (const c of wss.clients) c.terminate(); wss.close(() => process.exit(0)); };
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
setTimeout(() => { console.log('node_echo_server: 120 s are up'); process.exit(1); }, 120000).unref();
