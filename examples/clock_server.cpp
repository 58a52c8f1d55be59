// Interval push: every client gets the current date and time every second.
//   clock_server [port]     then connect to ws://localhost:9002
#include <duplex/server.hpp>

#include <asio/signal_set.hpp>
#include <asio/steady_timer.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <string>

int main(int argc, char** argv) {
    if (argc > 1 && std::string(argv[1]) == "--help") {
        std::puts("usage: clock_server [port]   (default 9002; port 0 picks a free one)");
        return 0;
    }
    const auto port = static_cast<unsigned short>(argc > 1 ? std::atoi(argv[1]) : 9002);

    asio::io_context io;
    duplex::server_options options;
    // A client that reads slowly gets the latest times, not a growing backlog of old ones.
    options.connection.send_queue_limit = 64 * 1024;
    options.connection.backpressure = duplex::backpressure_policy::drop_oldest;
    duplex::server server(io, options);
    if (auto ec = server.listen(port)) {
        std::fprintf(stderr, "clock_server: cannot listen on port %u: %s\n", port, ec.message().c_str());
        return 1;
    }

    // One timer for all clients; the frame is encoded once per tick.
    asio::steady_timer timer(io);
    std::function<void()> tick = [&] {
        std::time_t now = std::time(nullptr);
        char text[64];
        std::strftime(text, sizeof text, "%Y-%m-%d %H:%M:%S", std::localtime(&now));
        server.broadcast(duplex::opcode::text, text);
        timer.expires_after(std::chrono::seconds(1));
        timer.async_wait([&](std::error_code ec) { if (!ec) tick(); });
    };
    tick();

    asio::signal_set signals(io, SIGINT, SIGTERM);
    signals.async_wait([&](std::error_code, int) {
        timer.cancel();
        server.stop();
    });
    // Printed once Ctrl-C is handled, so a script may stop us as soon as it reads this.
    std::printf("clock_server listening on ws://127.0.0.1:%u\n", server.port());
    std::fflush(stdout);
    io.run();
}
