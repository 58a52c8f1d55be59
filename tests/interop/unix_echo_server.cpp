// A duplex server on a Unix domain socket (unix_server.hpp), for the interop tests
// unix_socket_peers.mjs (Node's ws and Python's websockets as clients) and
// run_behind_haproxy.sh (HAProxy's `server ... unix@PATH send-proxy-v2`):
//
//   unix_echo_server PATH [--proxy-protocol] [--deflate]
//
// Prints "unix_echo_server listening on PATH". Answers as echo_with_whoami.hpp says
// ("whoami", "stats", else an echo). Exits on SIGTERM/SIGINT (stop() removes
// the socket file), and by itself after 120 s so that it never outlives a test.
#include <duplex/unix_server.hpp>

#include "echo_with_whoami.hpp"

#include <asio/signal_set.hpp>
#include <asio/steady_timer.hpp>
#include <cstdio>
#include <cstring>
#include <string>

int main(int argc, char** argv) {
    if (argc < 2) {
        std::fprintf(stderr, "usage: unix_echo_server PATH [--proxy-protocol] [--deflate]\n");
        return 2;
    }
    duplex::server_options options;
    options.connection.max_message_size = 32 * 1024 * 1024;
    for (int i = 2; i < argc; ++i) {
        if (std::strcmp(argv[i], "--proxy-protocol") == 0) options.proxy_protocol = true;
        if (std::strcmp(argv[i], "--deflate") == 0) options.connection.deflate.enabled = true;
    }
    asio::io_context io(1);
    duplex::unix_server server(io, options);
    echo_with_whoami(server);
    if (auto ec = server.listen(argv[1])) {
        std::fprintf(stderr, "unix_echo_server: cannot listen on %s: %s\n", argv[1], ec.message().c_str());
        return 1;
    }
    asio::steady_timer watchdog(io, std::chrono::seconds(120));
    asio::signal_set signals(io, SIGINT, SIGTERM);
    signals.async_wait([&](std::error_code, int) { server.stop(), watchdog.cancel(); });
    watchdog.async_wait([&](std::error_code ec) { if (!ec) server.stop(), signals.cancel(); });
    std::printf("unix_echo_server listening on %s\n", server.path().c_str());
    std::fflush(stdout);
    io.run();
    return 0;
}
