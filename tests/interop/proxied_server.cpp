// A duplex server behind a load balancer that speaks the PROXY protocol
// (server_options::proxy_protocol), for run_behind_haproxy.sh:
//
//   proxied_server            ws:// on 127.0.0.1, a free port
//   proxied_server CERT KEY   wss:// with that certificate chain and key (PEM)
//
// Prints "proxied_server listening on PORT". Echoes every message, except the text
// "whoami", answered with remote_address() (the client the balancer names), and
// "stats", answered with "accepted N bad-proxy-header M" (connections accepted, and
// those refused for want of a valid PROXY header). Exits on SIGTERM/SIGINT,
// and by itself after 120 s so that it never outlives a test.
#include <duplex/server.hpp>
#ifdef DUPLEX_HAS_TLS
#include <duplex/transport/tls.hpp>
#endif

#include <asio/signal_set.hpp>
#include <asio/steady_timer.hpp>
#include <cstdio>
#include <memory>
#include <string>

template <class Server>
int serve(asio::io_context& io, Server& server) {
    server.on_message([&server](auto& conn, const duplex::message& msg) {
        if (msg.is_text() && msg.data == "whoami") {
            conn.send_text(conn.remote_address());
        } else if (msg.is_text() && msg.data == "stats") {
            duplex::server_stats s = server.stats();
            const auto bad = s.handshake_failures[make_error_code(duplex::errc::bad_proxy_header).message()];
            conn.send_text("accepted " + std::to_string(s.accepted) + " bad-proxy-header " + std::to_string(bad));
        } else {
            conn.send(msg);
        }
    });
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
