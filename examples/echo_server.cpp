// Echo server: every message comes back to its sender, text as text, binary as binary.
//   echo_server [port]      then connect to ws://localhost:9001
#include <duplex/server.hpp>

#include <asio/signal_set.hpp>
#include <cstdio>
#include <cstdlib>
#include <string>

int main(int argc, char** argv) {
    if (argc > 1 && std::string(argv[1]) == "--help") {
        std::puts("usage: echo_server [port]   (default 9001; port 0 picks a free one)");
        return 0;
    }
    const auto port = static_cast<unsigned short>(argc > 1 ? std::atoi(argv[1]) : 9001);

    asio::io_context io;
    duplex::server server(io);
    server.on_message([](auto& conn, const duplex::message& msg) { conn.send(msg); });

    if (auto ec = server.listen(port)) {
        std::fprintf(stderr, "echo_server: cannot listen on port %u: %s\n", port, ec.message().c_str());
        return 1;
    }

    asio::signal_set signals(io, SIGINT, SIGTERM); // Ctrl-C: close every connection with 1001
    signals.async_wait([&](std::error_code, int) { server.stop(); });
    // Printed once Ctrl-C is handled, so a script may stop us as soon as it reads this.
    std::printf("echo_server listening on ws://127.0.0.1:%u\n", server.port());
    std::fflush(stdout);
    io.run();
}
