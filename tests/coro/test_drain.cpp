// Waiting for the send queue to drain (duplex::drain, async_drain, co_await send) over
// loopback TCP: against a client that reads slowly at first, after and during the close,
// and on an empty queue. Every test bounded by run_for.
#include <catch2/catch.hpp>

#include <duplex/coro.hpp>

#include "coro_fixture.hpp"

#include <asio/experimental/awaitable_operators.hpp>
#include <asio/read_until.hpp>
#include <asio/steady_timer.hpp>
#include <asio/streambuf.hpp>
#include <asio/write.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <string>
#include <thread>

using namespace std::chrono_literals;
using namespace coro_test;

namespace {


// A duplex::client on an io_context and thread of its own. It says "go" once open,
// sleeps in on_message for the first `slow` messages (it reads slowly at first, so the
// server's socket and then its send queue fill up), checks that message i starts with i,
// and closes on "done". Catch2 is not used on its thread: look at the results after join().
class slow_reader {
public:
    slow_reader(const std::string& url, int slow) {
        ws.on_open([this] { ws.send_text("go"); });
        ws.on_message([this, slow](const duplex::message& m) {
            if (m.is_text()) {
                done = m.text() == "done";
                ws.close();
                return;
            }
            int index = -1;
            if (m.data.size() == message_size) std::memcpy(&index, m.data.data(), sizeof index);
            in_order = in_order && index == received;
            if (received++ < slow) std::this_thread::sleep_for(3ms);
        });
        ws.on_close([this](std::uint16_t code, std::string_view) { close_code = code; });
        connect_error = ws.connect(url);
        thread = std::thread([this] { io.run_for(20s); });
    }
    ~slow_reader() { join(); }
    void join() {
        if (thread.joinable()) thread.join();
    }

    static constexpr std::size_t message_size = 64 * 1024;
    asio::io_context io;
    duplex::client ws{io};
    std::thread thread;
    std::error_code connect_error;
    // Written on the client's thread, read after join().
    int received = 0;
    bool in_order = true;
    bool done = false;
    std::uint16_t close_code = 0;
};

// Sends 200 x 64 KiB to a slow_reader, waiting on the queue past `high` bytes, either
// with drain(c, low) or with co_await send(c, m[, high]) (high == 0: its default mark).
struct bounded_sender {
    enum class how { drain, send_with_mark, send_default } mode;
    std::size_t high = 512 * 1024;
    std::size_t low = 128 * 1024;
    static constexpr int count = 200;

    std::size_t max_buffered = 0; // right after each send
    int waits = 0;                // sends after which the queue was past `high`
    bool finished = false;

    asio::awaitable<void> operator()(connection_ptr c) {
        // A small kernel buffer, so the bytes wait in duplex's queue, not in the socket.
        c->transport().socket().set_option(asio::socket_base::send_buffer_size(64 * 1024));
        auto go = co_await duplex::receive(*c);
        REQUIRE(go.text() == "go");
        std::string payload(slow_reader::message_size, 'x');
        for (int i = 0; i < count; ++i) {
            std::memcpy(payload.data(), &i, sizeof i);
            const duplex::message m{duplex::opcode::binary, payload};
            if (mode == how::drain) {
                REQUIRE_FALSE(c->send(m));
                const std::size_t queued = c->buffered_amount();
                max_buffered = std::max(max_buffered, queued);
                if (queued > high) {
                    ++waits;
                    co_await duplex::drain(*c, low);
                    REQUIRE(c->buffered_amount() <= low + slow_reader::message_size); // at most one sent since
                }
            } else {
                // Nothing else writes meanwhile (the writes run on this executor): right
                // after its send, co_await send() sees the queue at `after`.
                const std::size_t after = c->buffered_amount() + slow_reader::message_size + 10;
                max_buffered = std::max(max_buffered, after);
                if (mode == how::send_with_mark) co_await duplex::send(*c, m, high);
                else co_await duplex::send(*c, m);
                if (after > high) { // it waited down to high / 2
                    ++waits;
                    REQUIRE(c->buffered_amount() <= high / 2);
                }
            }
        }
        c->send_text("done");
        std::error_code ec;
        co_await duplex::receive(*c, ec); // the client closes
        finished = true;
    }
};

void run_bounded(bounded_sender& sender, duplex::server_options options) {
    options.connection.deflate.enabled = false; // the bytes as sent are the bytes queued
    asio::io_context io;
    duplex::server srv(io, options);
    duplex::serve(srv, [&](connection_ptr c) -> asio::awaitable<void> {
        co_await sender(c);
        srv.stop();
    });
    REQUIRE_FALSE(srv.listen(0));
    slow_reader reader(url_of(srv), 60);
    REQUIRE_FALSE(reader.connect_error);
    io.run_for(20s);
    reader.join();
    CHECK(sender.finished);
    CHECK(reader.received == bounded_sender::count);
    CHECK(reader.in_order);
    CHECK(reader.done);
    CHECK(reader.close_code == duplex::close_code::normal);
}

} // namespace

TEST_CASE("coro: drain bounds the send queue against a client that reads slowly at first") {
    const std::size_t frame = slow_reader::message_size + 10; // a server's 64 KiB frame header: 10 bytes
    SECTION("drain(c, low_water) once over a high-water mark") {
        bounded_sender sender{bounded_sender::how::drain};
        run_bounded(sender, {});
        CHECK(sender.waits > 0); // the queue did fill up: the drains waited
        CHECK(sender.max_buffered > sender.high);
        CHECK(sender.max_buffered <= sender.high + frame);
    }
    SECTION("co_await send(c, m, high_water)") {
        bounded_sender sender{bounded_sender::how::send_with_mark};
        run_bounded(sender, {});
        CHECK(sender.waits > 0);
        CHECK(sender.max_buffered <= sender.high + frame);
    }
    SECTION("co_await send(c, m): the mark is send_queue_limit / 2") {
        duplex::server_options options;
        options.connection.send_queue_limit = 1024 * 1024; // past it the connection would fail (1008)
        bounded_sender sender{bounded_sender::how::send_default};
        sender.high = options.connection.send_queue_limit / 2;
        run_bounded(sender, options);
        CHECK(sender.waits > 0);
        CHECK(sender.max_buffered <= sender.high + frame);
    }
}

TEST_CASE("coro: drain after the close completes with the close error") {
    asio::io_context io;
    duplex::server srv(io);
    duplex::serve(srv, echo);
    REQUIRE_FALSE(srv.listen(0));
    duplex::client ws(io);
    run_client(io, srv, [&]() -> asio::awaitable<void> {
        std::error_code ec;
        co_await duplex::drain(ws, 0, ec); // never connected
        CHECK(ec == duplex::errc::closed);
        duplex::client other(io);
        REQUIRE_FALSE(other.connect(url_of(srv)));
        co_await duplex::drain(other, 0, ec); // resolving: no connection yet
        CHECK(ec == duplex::errc::not_open);
        other.close(); // abandons that attempt

        co_await duplex::connect(ws, url_of(srv));
        ws.send_text(std::string(100000, 'a'));
        ws.close();
        co_await duplex::receive(ws, ec); // the echo came before the close
        CHECK_FALSE(ec);
        co_await duplex::receive(ws, ec);
        REQUIRE(ec == duplex::errc::closed);
        co_await duplex::drain(ws, 0, ec);
        CHECK(ec == duplex::errc::closed);
        co_await duplex::drain(ws, 1 << 30, ec); // whatever the mark
        CHECK(ec == duplex::errc::closed);
        bool threw = false;
        try {
            co_await duplex::drain(ws);
        } catch (const duplex::error& e) {
            threw = e.code() == duplex::errc::closed;
        }
        CHECK(threw);
        threw = false;
        try {
            co_await duplex::send(ws, duplex::message{duplex::opcode::text, "late"});
        } catch (const duplex::error& e) {
            threw = e.code() == duplex::errc::closed;
        }
        CHECK(threw);
    });
}

TEST_CASE("coro: a drain waiting when the connection fails completes with the failure") {
    using namespace asio::experimental::awaitable_operators;
    asio::io_context io;
    duplex::server_options options;
    options.connection.deflate.enabled = false; // 2 MiB of 'z' stays 2 MiB
    duplex::server srv(io, options);
    bool timer_won = false;
    std::size_t queued_then = 0;
    std::error_code drained, again;
    duplex::close_status seen;
    bool session_done = false;
    duplex::serve(srv, [&](connection_ptr c) -> asio::awaitable<void> {
        c->transport().socket().set_option(asio::socket_base::send_buffer_size(64 * 1024));
        const std::string payload(64 * 1024, 'z');
        for (int i = 0; i < 32; ++i) REQUIRE_FALSE(c->send_binary(payload));
        // The peer reads nothing: a drain with a timeout is cancelled, the queue stays.
        asio::steady_timer t(co_await asio::this_coro::executor, 50ms);
        auto first = co_await (duplex::drain(*c) || t.async_wait(asio::use_awaitable));
        timer_won = first.index() == 1;
        queued_then = c->buffered_amount();
        co_await duplex::drain(*c, 0, drained); // until the peer resets the connection
        seen = duplex::close_info(*c);
        co_await duplex::drain(*c, 0, again); // after the end: at once
        session_done = true;
    });
    REQUIRE_FALSE(srv.listen(0));

    // A raw TCP client: the handshake by hand, then it reads nothing and resets.
    asio::ip::tcp::socket raw(io);
    run_client(io, srv, [&]() -> asio::awaitable<void> {
        co_await raw.async_connect({asio::ip::make_address("127.0.0.1"), srv.port()}, asio::use_awaitable);
        const std::string request =
            "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
        co_await asio::async_write(raw, asio::buffer(request), asio::use_awaitable);
        asio::streambuf head;
        co_await asio::async_read_until(raw, head, "\r\n\r\n", asio::use_awaitable);
        asio::steady_timer t(co_await asio::this_coro::executor, 300ms);
        co_await t.async_wait(asio::use_awaitable);
        raw.set_option(asio::socket_base::linger(true, 0));
        raw.close(); // a reset
        for (int i = 0; i < 200 && !session_done; ++i) {
            t.expires_after(10ms);
            co_await t.async_wait(asio::use_awaitable);
        }
    });
    CHECK(session_done);
    CHECK(timer_won);
    CHECK(queued_then > 0);
    CHECK(drained);
    CHECK(drained != asio::error::operation_aborted);
    CHECK(drained == seen.error); // what on_error reported
    CHECK(again == drained);
}

TEST_CASE("coro: drain on an empty queue completes at once") {
    asio::io_context io;
    duplex::server srv(io);
    std::error_code server_side = make_error_code(duplex::errc::internal_error);
    duplex::serve(srv, [&](connection_ptr c) -> asio::awaitable<void> {
        co_await duplex::drain(*c, 0, server_side); // the 101 went out with the handshake
        co_await echo(c);
    });
    REQUIRE_FALSE(srv.listen(0));
    duplex::client ws(io);
    run_client(io, srv, [&]() -> asio::awaitable<void> {
        co_await duplex::connect(ws, url_of(srv));
        auto ex = co_await asio::this_coro::executor;
        // Nothing is queued, so nothing will be written: it completes without a write,
        // though never inside async_drain itself.
        bool done = false;
        std::error_code ec = make_error_code(duplex::errc::internal_error);
        duplex::async_drain(ws, 0, [&](std::error_code e) {
            done = true;
            ec = e;
        });
        CHECK_FALSE(done);
        for (int i = 0; i < 100 && !done; ++i) co_await asio::post(ex, asio::use_awaitable);
        CHECK(done);
        CHECK_FALSE(ec);
        co_await duplex::drain(ws); // the throwing form

        // At or under the mark counts as drained too, with bytes still queued.
        const std::string big(1024 * 1024, 'b');
        REQUIRE_FALSE(ws.send_binary(big));
        done = false;
        duplex::async_drain(ws, 2 * big.size(), [&](std::error_code e) {
            done = true;
            ec = e;
        });
        for (int i = 0; i < 100 && !done; ++i) co_await asio::post(ex, asio::use_awaitable);
        CHECK(done);
        CHECK_FALSE(ec);
        co_await duplex::drain(ws); // and all of it, once written
        CHECK(ws.buffered_amount() == 0);
        auto m = co_await duplex::receive(ws);
        CHECK(m.data.size() == big.size());
        ws.close();
        co_await duplex::receive(ws, ec);
        CHECK(ec == duplex::errc::closed);
    });
    CHECK_FALSE(server_side);
}
