// What the coroutine tests share: a server's URL, an echo session, and a runner for
// the client side that stops the server when it ends (at most 10 s).
#pragma once
#include <catch2/catch.hpp>

#include <duplex/coro.hpp>

#include <chrono>
#include <exception>
#include <memory>
#include <string>

namespace coro_test {

using connection_ptr = std::shared_ptr<duplex::server::connection>;

inline std::string url_of(const duplex::server& s) { return "ws://127.0.0.1:" + std::to_string(s.port()) + "/"; }

inline asio::awaitable<void> echo(connection_ptr c) {
    for (;;) c->send(co_await duplex::receive(*c));
}

// Runs `client_side` as a coroutine; stops the server when it ends; at most 10 s.
template <class F>
void run_client(asio::io_context& io, duplex::server& srv, F client_side) {
    bool finished = false;
    std::exception_ptr failure;
    asio::co_spawn(io, client_side(), [&](std::exception_ptr e) {
        failure = e;
        finished = true;
        srv.stop();
    });
    io.run_for(std::chrono::seconds(10));
    REQUIRE(finished);
    if (failure) std::rethrow_exception(failure);
}

} // namespace coro_test
