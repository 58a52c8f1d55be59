// Node `ws` echo server for chat_deflate.mjs, run as its own process (so it does
// not share an event loop with the client). Echoes every message as it came
// (text as text, binary as binary). permessage-deflate is enabled with ws's
// defaults except the threshold, which chat_deflate.mjs sets to duplex's default
// (32 bytes: payloads of >= 32 bytes are compressed, on both sides).
//   node ws_echo_server.mjs WS_MODULE_DIR THRESHOLD
// Listens on 127.0.0.1, port 0; prints "ws_echo_server listening on 127.0.0.1:PORT".
// Exits when its stdin closes (the parent went away) or on SIGTERM/SIGINT.
import { createRequire } from 'node:module';
import path from 'node:path';

const [wsDir, thresholdArg] = process.argv.slice(2);
const threshold = Number(thresholdArg);
if (!wsDir || !Number.isInteger(threshold) || threshold < 0) {
  console.error('usage: node ws_echo_server.mjs WS_MODULE_DIR THRESHOLD');
  process.exit(2);
}
const { WebSocketServer } = createRequire(path.join(wsDir, 'noop.js'))('ws');

const wss = new WebSocketServer({
  host: '127.0.0.1',
  port: 0,
  backlog: 1024,
  maxPayload: 16 * 1024 * 1024,
  perMessageDeflate: { threshold },
});
wss.on('connection', (ws) => {
  ws.on('error', () => {});
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
});
wss.on('listening', () => {
  process.stdout.write(`ws_echo_server listening on 127.0.0.1:${wss.address().port}\n`);
});
wss.on('error', (err) => {
  console.error(`ws_echo_server: ${err.message}`);
  process.exit(1);
});

const quit = () => process.exit(0);
process.stdin.on('end', quit);
process.stdin.on('close', quit);
process.stdin.on('error', quit);
process.stdin.resume();
process.on('SIGTERM', quit);
process.on('SIGINT', quit);
