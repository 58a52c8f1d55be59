// Compile-time benchmark (a): the echo server of examples/echo_server.cpp with duplex.
#include <duplex/server.hpp>

#include <asio/signal_set.hpp>
#include <cstdio>
#include <cstdlib>
#include <string>

int main(int argc, char** argv) {
    const auto port = static_cast<unsigned short>(argc > 1 ? std::atoi(argv[1]) : 9001);
    asio::io_context io;
    duplex::server server(io);
    server.on_message([](auto& conn, const duplex::message& msg) { conn.send(msg); });
    if (auto ec = server.listen(port)) {
        std::fprintf(stderr, "cannot listen on port %u: %s\n", port, ec.message().c_str());
        return 1;
    }
    asio::signal_set signals(io, SIGINT, SIGTERM);
    signals.async_wait([&](std::error_code, int) { server.stop(); });
    io.run();
}
