// uWebSockets as shipped inside Bun (Bun.serve with a websocket handler):
// echo or broadcast (server.publish to a topic every client joined: uWS's
// encode-once pub/sub, sender included), no compression, 127.0.0.1.
//   bun bun_server.js PORT echo|broadcast
const port = Number(process.argv[2]);
const mode = process.argv[3] || "echo";

const server = Bun.serve({
  hostname: "127.0.0.1",
  port,
  fetch(req, srv) {
    if (srv.upgrade(req)) return;
    return new Response("WebSocket only", { status: 426 });
  },
  websocket: {
    perMessageDeflate: false,
    maxPayloadLength: 16 * 1024 * 1024,
    open(ws) {
      if (mode === "broadcast") ws.subscribe("all");
    },
    message(ws, msg) {
      if (mode === "broadcast") server.publish("all", msg);
      else ws.send(msg);
    },
  },
});
console.log(`bun_server ${mode} listening on 127.0.0.1:${server.port}`);
