// Compile-time benchmark (e): duplex_echo.cpp as the user's file of a program built
// with DUPLEX_SEPARATE_COMPILATION (duplex's templates are compiled once, elsewhere,
// in the file that includes <duplex/src.hpp>; that file is not timed here).
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
