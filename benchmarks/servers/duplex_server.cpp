// duplex under test: echo or broadcast (chat: every message to every client,
// sender included), one thread, no compression, 127.0.0.1.
//   duplex_server PORT echo|broadcast [--read-buffer BYTES]
#include <duplex/server.hpp>

#include <asio/signal_set.hpp>

#include <cstdio>
#include <cstdlib>
#include <string>

int main(int argc, char** argv) {
    if (argc < 3) {
        std::fprintf(stderr, "usage: duplex_server PORT echo|broadcast [--read-buffer BYTES]\n");
        return 2;
    }
    const auto port = static_cast<unsigned short>(std::atoi(argv[1]));
    const std::string mode = argv[2];

    duplex::server_options options;
    options.max_connections = 1000000; // the idle-memory scenario opens 10,000
    for (int i = 3; i + 1 < argc; i += 2)
        if (std::string(argv[i]) == "--read-buffer") options.connection.read_buffer_size = std::strtoul(argv[i + 1], nullptr, 10);

    asio::io_context io(1);
    duplex::server server(io, options);
    if (mode == "broadcast")
        server.on_message([&](auto&, const duplex::message& m) { server.broadcast(m); });
    else
        server.on_message([](auto& c, const duplex::message& m) { c.send(m); });

    if (auto ec = server.listen(port)) {
        std::fprintf(stderr, "duplex_server: cannot listen on %u: %s\n", port, ec.message().c_str());
        return 1;
    }
    std::printf("duplex_server %s listening on 127.0.0.1:%u\n", mode.c_str(), server.port());
    std::fflush(stdout);
    // SIGINT/SIGTERM end io.run() so the process exits normally (profilers and
    // the allocation counter of the profile build report at exit).
    asio::signal_set signals(io, SIGINT, SIGTERM);
    signals.async_wait([&](std::error_code, int) { io.stop(); });
    io.run();
}
