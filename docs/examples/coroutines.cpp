// docs/coroutines.md: the echo server and a client written with C++20 coroutines
// (duplex/coro.hpp), and a server that streams 16 MiB with backpressure (co_await send /
// drain). Built as C++20; exits 0 when the round trips, the stream and the closes worked.
#include <duplex/coro.hpp>

#include <cstdio>
#include <string>

// [session]
asio::awaitable<void> echo(std::shared_ptr<duplex::server::connection> conn) {
    for (;;) {
        duplex::owned_message m = co_await duplex::receive(*conn); // throws duplex::error once closed
        conn->send(m);                                             // sending stays non-blocking
    }
}
// [session]

// [client]
asio::awaitable<bool> talk(asio::io_context& io, std::string url) {
    duplex::client ws(io);
    co_await duplex::connect(ws, url); // throws when connecting fails
    bool ok = true;
    for (int i = 0; i < 3; ++i) {
        ws.send_text("ping " + std::to_string(i));
        duplex::owned_message reply = co_await duplex::receive(ws);
        ok = ok && reply.text() == "ping " + std::to_string(i);
    }
    ws.close(duplex::close_code::normal, "done");
    std::error_code ec;
    co_await duplex::receive(ws, ec); // the error_code form: no exception at the end
    const duplex::close_status end = duplex::close_info(ws);
    std::printf("receive after close: %s; close code %u\n", ec.message().c_str(), end.code);
    co_return ok && ec == duplex::errc::closed && end.code == duplex::close_code::normal;
}
// [client]

// [drain]
// Streams 16 MiB while holding at most about 1 MiB of it in the send queue, however
// slowly the client reads.
asio::awaitable<void> stream(std::shared_ptr<duplex::server::connection> conn) {
    std::string chunk(64 * 1024, '.');
    for (int i = 0; i < 256; ++i) {
        chunk.replace(0, 8, std::to_string(10000000 + i)); // something to check on the other side
        // Sends now; past 1 MiB queued, waits until no more than 512 KiB is.
        co_await duplex::send(*conn, duplex::message{duplex::opcode::binary, chunk}, 1024 * 1024);
    }
    co_await duplex::drain(*conn); // everything handed to the socket (throws if it closed)
    conn->close(duplex::close_code::normal, "that's all");
}
// [drain]

// Reads the stream to its end.
asio::awaitable<bool> fetch(asio::io_context& io, std::string url) {
    duplex::client ws(io);
    co_await duplex::connect(ws, url);
    std::size_t bytes = 0;
    int next = 0;
    bool ok = true;
    for (;;) {
        std::error_code ec;
        duplex::owned_message m = co_await duplex::receive(ws, ec);
        if (ec) break;
        ok = ok && m.data.compare(0, 8, std::to_string(10000000 + next++)) == 0;
        bytes += m.data.size();
    }
    std::printf("streamed %zu bytes in %d messages; close code %u\n", bytes, next, duplex::close_info(ws).code);
    co_return ok && bytes == 256 * 64 * 1024 && duplex::close_info(ws).code == duplex::close_code::normal;
}

int main() {
    // [main]
    asio::io_context io;
    duplex::server server(io);
    duplex::serve(server, echo); // one echo() coroutine per connection
    if (server.listen(0)) return 1;

    duplex::server streamer(io);
    duplex::serve(streamer, stream); // one stream() coroutine per connection
    if (streamer.listen(0)) return 1;

    bool ok = false;
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<bool> {
            const bool echoed = co_await talk(io, "ws://127.0.0.1:" + std::to_string(server.port()) + "/");
            const bool streamed = co_await fetch(io, "ws://127.0.0.1:" + std::to_string(streamer.port()) + "/");
            co_return echoed && streamed;
        },
        [&](std::exception_ptr e, bool result) {
            ok = !e && result;
            server.stop();
            streamer.stop();
        });
    io.run_for(std::chrono::seconds(20));
    // [main]
    return ok ? 0 : 1;
}
