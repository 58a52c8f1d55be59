// Runs a test's io_context until a condition holds, in 5 ms slices (so that other
// threads' work is seen), for at most `limit`; returns the condition.
#pragma once
#include <asio/io_context.hpp>

#include <chrono>

namespace duplex_test {

template <class Pred>
bool run_until(asio::io_context& io, Pred done, std::chrono::milliseconds limit = std::chrono::seconds(10)) {
    const auto end = std::chrono::steady_clock::now() + limit;
    while (!done() && std::chrono::steady_clock::now() < end) {
        io.restart();
        io.run_for(std::chrono::milliseconds(5));
    }
    return done();
}

} // namespace duplex_test
