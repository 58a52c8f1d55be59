// TCP connection attempts over a resolved address list, after "Happy
// Eyeballs" (RFC 8305 §4-5): addresses in turn with the families interleaved,
// the next attempt started when the previous one fails or after a delay while
// it is still pending, the first to connect wins and the others are closed. An
// address that drops SYNs (a broken IPv6 route, a full listen queue) then costs
// the delay, not the whole connect timeout.
#pragma once
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <system_error>
#include <utility>
#include <vector>

#include <asio/any_io_executor.hpp>
#include <asio/error.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/steady_timer.hpp>

namespace duplex::detail {

/// RFC 8305 §4: the first address's family first, then alternating with the
/// other family, each family keeping its resolver order.
inline std::vector<asio::ip::tcp::endpoint> interleave_families(std::vector<asio::ip::tcp::endpoint> in) {
    if (in.empty()) return in;
    const bool first_v6 = in.front().address().is_v6();
    std::vector<asio::ip::tcp::endpoint> same, other, out;
    for (auto& e : in) (e.address().is_v6() == first_v6 ? same : other).push_back(e);
    out.reserve(in.size());
    for (std::size_t i = 0; i < same.size() || i < other.size(); ++i) {
        if (i < same.size()) out.push_back(same[i]);
        if (i < other.size()) out.push_back(other[i]);
    }
    return out;
}

/// One race over a list of endpoints. Create with make_shared, then start();
/// every call (and every handler) runs on the executor given, which must be
/// sequential (a strand, or an io_context run by one thread). The handler
/// runs once: with a connected socket, or with the last failure's error when
/// every address failed; never after cancel(). It may drop the last reference
/// to the race.
class connect_race : public std::enable_shared_from_this<connect_race> {
public:
    using socket_type = asio::ip::tcp::socket;
    using handler_type = std::function<void(std::error_code, socket_type)>;

    /// `delay` <= 0: one attempt at a time, each until it fails. Otherwise at
    /// least 10 ms (RFC 8305 §5: MUST NOT be less).
    connect_race(asio::any_io_executor ex, std::vector<asio::ip::tcp::endpoint> endpoints,
                 std::chrono::milliseconds delay, handler_type handler)
        : ex_(std::move(ex)), endpoints_(std::move(endpoints)),
          delay_(delay.count() > 0 && delay < std::chrono::milliseconds(10) ? std::chrono::milliseconds(10) : delay),
          handler_(std::move(handler)), timer_(ex_) {}

    void start() {
        if (endpoints_.empty()) return finish(make_error_code(asio::error::host_not_found), nullptr);
        launch();
    }

    /// Stops every attempt; the handler is not called (and is released, with
    /// whatever it holds).
    void cancel() {
        if (done_) return;
        done_ = true;
        handler_ = nullptr;
        close_all(nullptr);
    }

    /// Attempts started so far (for tests and logs).
    std::size_t attempts() const noexcept { return tries_.size(); }

private:
    void launch() {
        const std::size_t i = tries_.size();
        tries_.push_back(std::make_unique<socket_type>(ex_));
        ++pending_;
        tries_[i]->async_connect(endpoints_[i],
                                 [self = shared_from_this(), i](std::error_code ec) { self->on_connect(i, ec); });
        if (delay_.count() > 0 && tries_.size() < endpoints_.size()) {
            timer_.expires_after(delay_); // cancels the previous wait, if any
            timer_.async_wait([self = shared_from_this(), n = tries_.size()](std::error_code ec) {
                // Stale if an attempt failed meanwhile and started the next one.
                if (!ec && !self->done_ && self->tries_.size() == n) self->launch();
            });
        }
    }

    void on_connect(std::size_t i, std::error_code ec) {
        --pending_;
        if (done_) return;
        if (!ec) return finish({}, tries_[i].get());
        last_error_ = ec;
        std::error_code ignored;
        tries_[i]->close(ignored);
        if (tries_.size() < endpoints_.size()) return launch(); // a failure starts the next at once (§5)
        if (pending_ == 0) finish(last_error_, nullptr);
    }

    void finish(std::error_code ec, socket_type* winner) {
        const auto keep = shared_from_this(); // the handler may drop the last other reference
        done_ = true;
        socket_type result = winner ? std::move(*winner) : socket_type(ex_);
        close_all(winner);
        auto h = std::move(handler_);
        handler_ = nullptr;
        if (h) h(ec, std::move(result));
    }

    void close_all(socket_type* except) {
        std::error_code ignored;
        timer_.cancel();
        for (auto& t : tries_)
            if (t.get() != except) t->close(ignored); // their handlers then see done_
    }

    asio::any_io_executor ex_;
    std::vector<asio::ip::tcp::endpoint> endpoints_;
    std::chrono::milliseconds delay_;
    handler_type handler_;
    asio::steady_timer timer_;
    std::vector<std::unique_ptr<socket_type>> tries_; // attempt i connects to endpoints_[i]
    std::size_t pending_ = 0;
    std::error_code last_error_;
    bool done_ = false;
};

} // namespace duplex::detail
