// docs/coroutines.md: the echo server and a client written with C++20 coroutines
// (duplex/coro.hpp). Built as C++20; exits 0 when the round trips and the close worked.
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

int main() {
    // [main]
    asio::io_context io;
    duplex::server server(io);
    duplex::serve(server, echo); // one echo() coroutine per connection
    if (server.listen(0)) return 1;

    bool ok = false;
    asio::co_spawn(io, talk(io, "ws://127.0.0.1:" + std::to_string(server.port()) + "/"),
                   [&](std::exception_ptr e, bool result) {
                       ok = !e && result;
                       server.stop();
                   });
    io.run_for(std::chrono::seconds(5));
    // [main]
    return ok ? 0 : 1;
}
