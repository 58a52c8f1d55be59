// Node.js `ws` under test: echo or broadcast (every message to every client,
// sender included, as in ws's README), perMessageDeflate off, 127.0.0.1.
//   node node_ws_server.mjs PORT echo|broadcast
import { WebSocketServer, WebSocket } from "ws";

const port = Number(process.argv[2]);
const mode = process.argv[3] || "echo";
const wss = new WebSocketServer({ host: "127.0.0.1", port, perMessageDeflate: false, backlog: 4096, clientTracking: true });

wss.on("connection", (ws) => {
  ws.on("error", () => {});
  if (mode === "broadcast") {
    ws.on("message", (data, isBinary) => {
      for (const c of wss.clients) if (c.readyState === WebSocket.OPEN) c.send(data, { binary: isBinary });
    });
  } else {
    ws.on("message", (data, isBinary) => ws.send(data, { binary: isBinary }));
  }
});
wss.on("listening", () => console.log(`node_ws_server ${mode} listening on 127.0.0.1:${port}`));
