// Autobahn|Testsuite testee (fuzzingclient mode): echoes every message, text as
// text and binary as binary, with limits large enough for every case.
//   testee_server [--host ADDRESS] [port]      defaults: 127.0.0.1, 9001
// Stops cleanly (1001 to every connection) on SIGINT or SIGTERM.
#include <duplex/server.hpp>

#include <asio/signal_set.hpp>
#include <cstdio>
#include <cstdlib>
#include <string>

int main(int argc, char** argv) {
    std::string host = "127.0.0.1";
    long port = 9001;
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        if (arg == "--help" || arg == "-h") {
            std::puts("usage: testee_server [--host ADDRESS] [port]\n"
                      "  Echo server for the Autobahn testsuite (fuzzingclient).\n"
                      "  --host ADDRESS  address to listen on (default 127.0.0.1; 0.0.0.0 or :: for all)\n"
                      "  port            default 9001; 0 picks a free one");
            return 0;
        }
        if (arg == "--host" && i + 1 < argc) {
            host = argv[++i];
        } else {
            char* end = nullptr;
            port = std::strtol(arg.c_str(), &end, 10);
            if (arg.empty() || *end != '\0' || port < 0 || port > 65535) {
                std::fprintf(stderr, "testee_server: bad argument '%s' (try --help)\n", arg.c_str());
                return 2;
            }
        }
    }

    duplex::server_options options;
    auto& c = options.connection;
    c.max_message_size = 128 * 1024 * 1024;      // Autobahn 9.x sends up to 16 MiB
    c.send_queue_limit = 512 * 1024 * 1024;      // echoes of many big messages may queue up
    c.read_buffer_size = 64 * 1024;
    c.ping_interval = std::chrono::milliseconds(0); // no heartbeat pings of our own
    c.handshake_timeout = std::chrono::seconds(60);
    c.close_timeout = std::chrono::seconds(10);
    c.deflate.enabled = true;                    // permessage-deflate (when built with zlib)

    asio::io_context io;
    duplex::server server(io, options);
    server.on_message([](auto& conn, const duplex::message& msg) { conn.send(msg); });

    if (auto ec = server.listen(static_cast<std::uint16_t>(port), host)) {
        std::fprintf(stderr, "testee_server: cannot listen on %s port %ld: %s\n", host.c_str(), port, ec.message().c_str());
        return 1;
    }
    const bool v6 = host.find(':') != std::string::npos;
    std::printf("testee_server listening on ws://%s%s%s:%u\n", v6 ? "[" : "", host.c_str(), v6 ? "]" : "", server.port());
    std::fflush(stdout);

    asio::signal_set signals(io, SIGINT, SIGTERM);
    signals.async_wait([&](std::error_code ec, int) {
        if (ec) return;
        std::puts("testee_server: stopping");
        server.stop();
    });
    io.run(); // returns once every connection has closed
}
