// The coroutine API (duplex/coro.hpp) over loopback TCP: serve() on the server,
// connect() + receive() on the client, one io_context, every test bounded by run_for.
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>

#include <duplex/coro.hpp>

#include "coro_fixture.hpp"

#include <asio/experimental/awaitable_operators.hpp>
#include <asio/steady_timer.hpp>

#include <chrono>
#include <string>

using namespace std::chrono_literals;
using namespace coro_test;


TEST_CASE("coro: echo round trips, text and binary") {
    asio::io_context io;
    duplex::server srv(io);
    duplex::serve(srv, echo);
    REQUIRE_FALSE(srv.listen(0));
    duplex::client ws(io);
    int round_trips = 0;
    run_client(io, srv, [&]() -> asio::awaitable<void> {
        co_await duplex::connect(ws, url_of(srv));
        CHECK(ws.ready_state() == duplex::ready_state::open);
        for (int i = 0; i < 100; ++i) {
            const std::string payload = "message " + std::to_string(i) + std::string(std::size_t(i) * 100, 'x');
            if (i % 2) REQUIRE_FALSE(ws.send_text(payload));
            else REQUIRE_FALSE(ws.send_binary(payload));
            duplex::owned_message m = co_await duplex::receive(ws);
            CHECK(m.data == payload);
            CHECK(m.is_text() == (i % 2 == 1));
            ++round_trips;
        }
        // Several in flight at once come back in order.
        for (int i = 0; i < 10; ++i) ws.send_text(std::to_string(i));
        for (int i = 0; i < 10; ++i) {
            auto m = co_await duplex::receive(ws); // never co_await inside CHECK: the macro
            CHECK(m.data == std::to_string(i));    // would run it twice with GCC 12
        }
        ws.close();
        std::error_code ec;
        co_await duplex::receive(ws, ec);
        CHECK(ec == duplex::errc::closed);
        CHECK(duplex::close_info(ws).code == duplex::close_code::normal);
    });
    CHECK(round_trips == 100);
}

TEST_CASE("coro: receive() ends with the peer's close code") {
    asio::io_context io;
    duplex::server srv(io);
    duplex::close_status server_saw;
    std::string server_error;
    duplex::serve(srv, [&](connection_ptr c) -> asio::awaitable<void> {
        auto m = co_await duplex::receive(*c);
        if (m.text() == "close me") {
            c->close(4001, "done");
        } else {
            try {
                for (;;) co_await duplex::receive(*c); // throws once the client closes
            } catch (const duplex::error& e) {
                server_error = e.code() == duplex::errc::closed ? "closed" : e.code().message();
                server_saw = duplex::close_info(*c);
            }
        }
        std::error_code ec;
        co_await duplex::receive(*c, ec); // after the close: at once, again
        CHECK(ec);
    });
    REQUIRE_FALSE(srv.listen(0));

    SECTION("the server closes") {
        duplex::client ws(io);
        run_client(io, srv, [&]() -> asio::awaitable<void> {
            co_await duplex::connect(ws, url_of(srv));
            ws.send_text("close me");
            std::error_code ec;
            co_await duplex::receive(ws, ec);
            CHECK(ec == duplex::errc::closed);
            const auto st = duplex::close_info(ws);
            CHECK(st.code == 4001);
            CHECK(st.reason == "done");
            CHECK_FALSE(st.error);
            // The throwing form throws duplex::error with the same code.
            bool threw = false;
            try {
                co_await duplex::receive(ws);
            } catch (const duplex::error& e) {
                threw = e.code() == duplex::errc::closed;
            }
            CHECK(threw);
        });
    }
    SECTION("the client closes") {
        duplex::client ws(io);
        run_client(io, srv, [&]() -> asio::awaitable<void> {
            co_await duplex::connect(ws, url_of(srv));
            ws.send_text("hello");
            ws.close(4000, "bye");
            std::error_code ec;
            co_await duplex::receive(ws, ec);
            CHECK(ec == duplex::errc::closed);
            CHECK(duplex::close_info(ws).code == 4000); // the server echoes the code
        });
        CHECK(server_error == "closed");
        CHECK(server_saw.code == 4000);
        CHECK(server_saw.reason == "bye");
    }
}

TEST_CASE("coro: a session that returns closes its connection with 1000") {
    asio::io_context io;
    duplex::server srv(io);
    duplex::serve(srv, [](connection_ptr c) -> asio::awaitable<void> {
        c->send_text("hi and bye");
        co_return;
    });
    REQUIRE_FALSE(srv.listen(0));
    duplex::client ws(io);
    run_client(io, srv, [&]() -> asio::awaitable<void> {
        co_await duplex::connect(ws, url_of(srv));
        auto m = co_await duplex::receive(ws);
        CHECK(m.data == "hi and bye");
        std::error_code ec;
        co_await duplex::receive(ws, ec);
        CHECK(ec == duplex::errc::closed);
        CHECK(duplex::close_info(ws).code == duplex::close_code::normal);
    });
}

TEST_CASE("coro: an exception in a session closes with 1011 and reaches on_exception") {
    asio::io_context io;
    duplex::server srv(io);
    std::string caught;
    duplex::serve(
        srv,
        [](connection_ptr c) -> asio::awaitable<void> {
            co_await duplex::receive(*c);
            throw std::runtime_error("bug");
        },
        {}, [&](std::exception_ptr e) {
            try {
                std::rethrow_exception(e);
            } catch (const std::exception& x) {
                caught = x.what();
            }
        });
    REQUIRE_FALSE(srv.listen(0));
    duplex::client ws(io);
    run_client(io, srv, [&]() -> asio::awaitable<void> {
        co_await duplex::connect(ws, url_of(srv));
        ws.send_text("boom");
        std::error_code ec;
        co_await duplex::receive(ws, ec);
        CHECK(ec == duplex::errc::closed);
        CHECK(duplex::close_info(ws).code == duplex::close_code::internal_error);
    });
    CHECK(caught == "bug");
}

TEST_CASE("coro: connect() reports a refused connection") {
    asio::io_context io;
    duplex::server srv(io); // only to stop; not listening
    std::uint16_t port = 0;
    {
        asio::ip::tcp::acceptor a(io, {asio::ip::make_address("127.0.0.1"), 0});
        port = a.local_endpoint().port(); // closed again: nothing listens there
    }
    duplex::client ws(io);
    run_client(io, srv, [&]() -> asio::awaitable<void> {
        std::error_code ec;
        co_await duplex::connect(ws, "ws://127.0.0.1:" + std::to_string(port) + "/", ec);
        CHECK(ec == asio::error::connection_refused);
        CHECK(duplex::close_info(ws).code == 0); // no connection was ever made
        bool threw = false;
        try {
            co_await duplex::connect(ws, "ws://127.0.0.1:" + std::to_string(port) + "/");
        } catch (const std::system_error& e) {
            threw = e.code() == asio::error::connection_refused;
        }
        CHECK(threw);
        co_await duplex::connect(ws, "http://nope", ec);
        CHECK(ec == duplex::errc::bad_url);
    });
}

TEST_CASE("coro: connect() to a server that refuses the upgrade names the status") {
    asio::io_context io;
    duplex::server srv(io);
    srv.on_handshake([](const duplex::http_request& req, duplex::handshake_decision& d) {
        if (req.query_param("token") != "secret") d.reject(401);
    });
    REQUIRE_FALSE(srv.listen(0));
    duplex::client ws(io);
    run_client(io, srv, [&]() -> asio::awaitable<void> {
        std::string what;
        std::error_code code;
        try {
            co_await duplex::connect(ws, url_of(srv) + "?token=wrong");
        } catch (const duplex::error& e) {
            what = e.what();
            code = e.code();
        }
        CHECK(code == duplex::errc::bad_status);
        CHECK(what.rfind("HTTP 401 Unauthorized: ", 0) == 0); // the status first, then the code's message
        CHECK(what.find(code.message()) != std::string::npos);
        std::error_code ec;
        co_await duplex::connect(ws, url_of(srv) + "?token=secret", ec);
        CHECK_FALSE(ec);
        CHECK_FALSE(ws.close());
    });
}

TEST_CASE("coro: receive() can be cancelled (a timeout) and works again after") {
    using namespace asio::experimental::awaitable_operators;
    asio::io_context io;
    duplex::server srv(io);
    duplex::serve(srv, [](connection_ptr c) -> asio::awaitable<void> {
        auto m = co_await duplex::receive(*c);
        asio::steady_timer t(co_await asio::this_coro::executor, 200ms);
        co_await t.async_wait(asio::use_awaitable); // answers late
        c->send(m);
        co_await duplex::receive(*c);
    });
    REQUIRE_FALSE(srv.listen(0));
    duplex::client ws(io);
    run_client(io, srv, [&]() -> asio::awaitable<void> {
        co_await duplex::connect(ws, url_of(srv));
        ws.send_text("late");
        asio::steady_timer t(co_await asio::this_coro::executor, 20ms);
        auto first = co_await (duplex::receive(ws) || t.async_wait(asio::use_awaitable));
        CHECK(first.index() == 1); // the timer won; the receive was cancelled
        auto m = co_await duplex::receive(ws);
        CHECK(m.data == "late");
        ws.close();
    });
}

TEST_CASE("coro: async_receive with a plain callback") {
    asio::io_context io;
    duplex::server srv(io);
    duplex::serve(srv, echo);
    REQUIRE_FALSE(srv.listen(0));
    duplex::client ws(io);
    std::string got;
    run_client(io, srv, [&]() -> asio::awaitable<void> {
        co_await duplex::connect(ws, url_of(srv));
        ws.send_text("callback");
        duplex::async_receive(ws, [&](std::error_code ec, duplex::owned_message m) {
            CHECK_FALSE(ec);
            got = m.data;
            ws.close();
        });
        std::error_code ec;
        asio::steady_timer t(co_await asio::this_coro::executor, 5s);
        while (got.empty() && ws.ready_state() == duplex::ready_state::open) {
            t.expires_after(5ms);
            co_await t.async_wait(asio::use_awaitable);
        }
    });
    CHECK(got == "callback");
}

TEST_CASE("coro: the inbox limit closes a connection that does not read with 1008") {
    asio::io_context io;
    duplex::server srv(io);
    duplex::coro_options small;
    small.inbox_limit = 1000;
    duplex::close_status seen;
    duplex::serve(srv, [&](connection_ptr c) -> asio::awaitable<void> {
        asio::steady_timer t(co_await asio::this_coro::executor, 300ms);
        co_await t.async_wait(asio::use_awaitable); // reads nothing for a while
        int n = 0;
        std::error_code ec;
        while (!ec) {
            co_await duplex::receive(*c, ec); // what was queued is still handed out
            n += !ec;
        }
        CHECK(n >= 1);
        seen = duplex::close_info(*c);
    }, small);
    REQUIRE_FALSE(srv.listen(0));
    duplex::client ws(io);
    run_client(io, srv, [&]() -> asio::awaitable<void> {
        co_await duplex::connect(ws, url_of(srv));
        for (int i = 0; i < 10; ++i) ws.send_text(std::string(300, 'a'));
        std::error_code ec;
        co_await duplex::receive(ws, ec);
        CHECK(duplex::close_info(ws).code == duplex::close_code::policy_violation);
        asio::steady_timer t(co_await asio::this_coro::executor, 400ms);
        co_await t.async_wait(asio::use_awaitable); // let the server session finish
    });
    CHECK(seen.code == duplex::close_code::policy_violation);
}

TEST_CASE("coro: a session reads the upgrade request before its first co_await") {
    // The request is freed when on_open returns; serve() co_spawns the session from
    // on_open, and co_spawn runs it up to its first suspension at once when called on
    // the connection's executor (Asio 1.22, Debian 12's). docs/coroutines.md relies on
    // this: should an Asio start sessions later, this fails.
    asio::io_context io;
    duplex::server srv(io);
    std::string path_seen;
    duplex::serve(srv, [&](connection_ptr c) -> asio::awaitable<void> {
        path_seen = std::string(c->request().target); // before any co_await
        for (;;) c->send(co_await duplex::receive(*c));
    });
    REQUIRE_FALSE(srv.listen(0));
    duplex::client ws(io);
    run_client(io, srv, [&]() -> asio::awaitable<void> {
        co_await duplex::connect(ws, url_of(srv) + "room/42?x=1");
        REQUIRE_FALSE(ws.send_text("hi"));
        auto m = co_await duplex::receive(ws);
        CHECK(m.data == "hi");
        ws.close();
    });
    CHECK(path_seen == "/room/42?x=1");
}
