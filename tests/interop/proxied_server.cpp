// A duplex server behind a load balancer that speaks the PROXY protocol
// (server_options::proxy_protocol), for run_behind_haproxy.sh:
//
//   proxied_server            ws:// on 127.0.0.1, a free port
//   proxied_server CERT KEY   wss:// with that certificate chain and key (PEM)
//
// Prints "proxied_server listening on PORT". Answers as echo_with_whoami.hpp says:
// "whoami" gets remote_address() (the client the balancer names), "stats" the
// connections accepted and those refused for want of a valid PROXY header; anything
// else is echoed. Exits on SIGTERM/SIGINT,
// and by itself after 120 s so that it never outlives a test.
#include <duplex/server.hpp>
#ifdef DUPLEX_HAS_TLS
#include <duplex/transport/tls.hpp>
#endif

#include "echo_with_whoami.hpp"

#include <asio/signal_set.hpp>
#include <asio/steady_timer.hpp>
#include <cstdio>
#include <memory>
#include <string>

template <class Server>
int serve(asio::io_context& io, Server& server) {
    echo_with_whoami(server);
    if (auto ec = server.listen(0)) {
        std::fprintf(stderr, "proxied_server: cannot listen: %s\n", ec.message().c_str());
        return 1;
    }
    asio::steady_timer watchdog(io, std::chrono::seconds(120));
    asio::signal_set signals(io, SIGINT, SIGTERM);
    signals.async_wait([&](std::error_code, int) { server.stop(), watchdog.cancel(); });
    watchdog.async_wait([&](std::error_code ec) { if (!ec) server.stop(), signals.cancel(); });
    std::printf("proxied_server listening on %u\n", server.port());
    std::fflush(stdout);
    io.run();
    return 0;
}

int main(int argc, char** argv) {
    asio::io_context io(1);
    duplex::server_options options;
    options.proxy_protocol = true;
    options.connection.max_message_size = 32 * 1024 * 1024;
    if (argc == 3) {
#ifdef DUPLEX_HAS_TLS
        auto ctx = std::make_shared<asio::ssl::context>(duplex::make_server_tls_context(argv[1], argv[2]));
        duplex::tls_server server(io, options, duplex::tls_accept(ctx));
        return serve(io, server);
#else
        std::fprintf(stderr, "proxied_server: built without TLS\n");
        return 1;
#endif
    }
    duplex::server server(io, options);
    return serve(io, server);
}
