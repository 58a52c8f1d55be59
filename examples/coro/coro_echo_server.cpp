// Echo server written with C++20 coroutines (duplex/coro.hpp): one coroutine per
// connection reads with co_await and sends every message back with its own type.
//   coro_echo_server [port]      then connect to ws://localhost:9003
#include <duplex/coro.hpp>

#include <asio/signal_set.hpp>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace {

asio::awaitable<void> echo(std::shared_ptr<duplex::server::connection> conn) {
    const std::string peer = conn->remote_address(); // the socket is gone once it has closed
    std::error_code ec;
    for (;;) {
        duplex::owned_message msg = co_await duplex::receive(*conn, ec);
        if (ec) break; // closed: errc::closed after a clean close, or the failure
        conn->send(msg);
    }
    const duplex::close_status end = duplex::close_info(*conn);
    std::printf("%s closed: %u %s\n", peer.c_str(), end.code,
                end.error ? end.error.message().c_str() : end.reason.c_str());
    std::fflush(stdout);
}

} // namespace

int main(int argc, char** argv) {
    if (argc > 1 && (std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h")) {
        std::puts("usage: coro_echo_server [port]   (default 9003; port 0 picks a free one)\n"
                  "Echoes every message back to its sender; Ctrl-C closes every connection with 1001.");
        return 0;
    }
    const auto port = static_cast<unsigned short>(argc > 1 ? std::atoi(argv[1]) : 9003);

    asio::io_context io;
    duplex::server server(io);
    duplex::serve(server, echo);

    if (auto ec = server.listen(port)) {
        std::fprintf(stderr, "coro_echo_server: cannot listen on port %u: %s\n", port, ec.message().c_str());
        return 1;
    }
    asio::signal_set signals(io, SIGINT, SIGTERM); // Ctrl-C: close every connection with 1001
    signals.async_wait([&](std::error_code, int) { server.stop(); });
    std::printf("coro_echo_server listening on ws://127.0.0.1:%u\n", server.port());
    std::fflush(stdout);

    io.run();
}
