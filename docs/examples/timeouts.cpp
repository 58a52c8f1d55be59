// docs/timeouts.md: heartbeat pings, the idle timeout and the handshake timeout,
// with short values so it runs in about a second. Exits 0 on success.
#include <duplex/client.hpp>
#include <duplex/server.hpp>

#include <cstdio>
#include <string>

using namespace std::chrono_literals;

int main() {
    asio::io_context io;

    // [server]
    duplex::server_options options;
    options.connection.idle_timeout = 600ms;      // no message either way for this long: 1001
    options.connection.handshake_timeout = 300ms; // upgrade request not complete by then: cut
    options.connection.ping_interval = 20s;       // the defaults: 20 s of silence, then a ping...
    options.connection.pong_timeout = 20s;        // ...and 20 s more before giving up (1006)
    duplex::server server(io, options);
    // [server]
    if (server.listen(0)) return 1;
    int checks = 0;

    // [client]
    duplex::client_options copts;
    copts.connection.ping_interval = 100ms; // ping the server after 100 ms without hearing from it
    copts.connection.pong_timeout = 200ms;  // it answers at once: the connection stays up
    duplex::client ws(io);
    int pongs = 0;
    std::chrono::microseconds rtt{0};
    ws.on_pong([&](std::string_view) {
        ++pongs;
        rtt = ws.latency(); // the round trip of the heartbeat ping this pong answers
    });
    ws.on_close([&](std::uint16_t code, std::string_view reason) {
        // Pings and pongs are not messages: the idle timeout still fires.
        std::printf("closed with %u (%.*s) after %d pongs, latency %lld us\n", code, int(reason.size()), reason.data(),
                    pongs, static_cast<long long>(rtt.count()));
        checks += code == duplex::close_code::going_away && reason == "idle timeout" && pongs >= 2 && rtt.count() > 0;
    });
    ws.connect_or_throw("ws://127.0.0.1:" + std::to_string(server.port()) + "/", copts);
    // [client]

    // A TCP client that never sends its upgrade request is cut after handshake_timeout.
    asio::ip::tcp::socket silent(io);
    silent.connect({asio::ip::make_address("127.0.0.1"), server.port()});
    char byte;
    const auto start = std::chrono::steady_clock::now();
    silent.async_read_some(asio::buffer(&byte, 1), [&](std::error_code ec, std::size_t) {
        const auto waited = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
        std::printf("silent client: %s after %lld ms\n", ec.message().c_str(), static_cast<long long>(waited.count()));
        checks += ec == asio::error::eof && waited >= 250ms;
    });

    asio::steady_timer stop(io, 1500ms);
    stop.async_wait([&](std::error_code) { server.stop(); });
    io.run_for(5s);
    return checks == 2 ? 0 : 1;
}
