// Chat room: every message goes to every connected client, sender included.
// Serves its own page on GET /, so this is the whole demo:
//
//   chat_server 3000        then open http://localhost:3000 in two browser tabs
//
// Copy this file to start your own server (see the README for a 5-line CMakeLists.txt).
#include <duplex/server.hpp>

#include <asio/signal_set.hpp>
#include <cstdio>
#include <cstdlib>
#include <string>

// The browser side: a log of open/message/close events and a box to send from.
static const char* const page = R"html(<!doctype html>
<html><head><meta charset="utf-8"><title>duplex chat</title>
<style>
  body { font: 15px system-ui, sans-serif; max-width: 40em; margin: 2em auto; }
  #log { border: 1px solid #ccc; height: 20em; overflow-y: auto; padding: .5em; }
  #log .sys { color: #888; } form { display: flex; gap: .5em; margin-top: .5em; } #text { flex: 1; }
</style></head>
<body>
<h1>duplex chat</h1>
<div id="log"></div>
<form id="form"><input id="text" autocomplete="off" placeholder="Say something"><button>Send</button></form>
<script>
  const log = (text, cls) => {
    const line = document.createElement("div");
    line.textContent = text;
    if (cls) line.className = cls;
    document.getElementById("log").append(line);
    line.scrollIntoView();
  };
  const ws = new WebSocket(`ws://${location.host}/`, "chat");
  ws.onopen = () => log(`open (subprotocol: ${ws.protocol || "none"}, extensions: ${ws.extensions || "none"})`, "sys");
  ws.onmessage = (e) => log(e.data, "msg");
  ws.onclose = (e) => log(`close ${e.code} ${e.reason}`, "sys");
  document.getElementById("form").onsubmit = (e) => {
    e.preventDefault();
    const input = document.getElementById("text");
    if (input.value && ws.readyState === WebSocket.OPEN) ws.send(input.value);
    input.value = "";
  };
</script>
</body></html>
)html";

int main(int argc, char** argv) {
    if (argc > 1 && std::string(argv[1]) == "--help") {
        std::puts("usage: chat_server [port]   (default 3000; port 0 picks a free one)");
        return 0;
    }
    const auto port = static_cast<unsigned short>(argc > 1 ? std::atoi(argv[1]) : 3000);

    asio::io_context io(1);                 // one thread runs it (below): no strands needed
    duplex::server_options options;
    options.subprotocols = {"chat"};        // answered when the client offers it
    options.connection.deflate.enabled = true; // permessage-deflate, as browsers offer,
    options.connection.deflate.server_no_context_takeover = true; // and each broadcast compressed once
    duplex::server server(io, options);

    // Plain HTTP on the same port: the page itself.
    server.on_http([](const duplex::http_request& req, duplex::http_reply& res) {
        if (req.path() == "/") {
            res.content_type = "text/html; charset=utf-8";
            res.body = page;
        } else {
            res.status = 404;
            res.body = "not found\n";
        }
    });
    // Every message to everyone; the frame is encoded (and compressed) once for all receivers.
    server.on_message([&](auto&, const duplex::message& msg) { server.broadcast(msg); });

    if (auto ec = server.listen(port)) {
        std::fprintf(stderr, "chat_server: cannot listen on port %u: %s\n", port, ec.message().c_str());
        return 1;
    }

    asio::signal_set signals(io, SIGINT, SIGTERM); // Ctrl-C: close every connection with 1001
    signals.async_wait([&](std::error_code, int) { server.stop(); });
    // Printed once Ctrl-C is handled, so a script may stop us as soon as it reads this.
    std::printf("chat_server: open http://localhost:%u in a browser\n", server.port());
    std::fflush(stdout);
    io.run();
}
