// An in-memory transport pair: the whole protocol runs in tests without
// sockets, deterministically, with chunked delivery and injected failures.
#pragma once
#include <algorithm>
#include <cstring>
#include <limits>
#include <memory>
#include <mutex>
#include <string>
#include <utility>

#include <asio/any_io_executor.hpp>
#include <asio/buffer.hpp>
#include <asio/error.hpp>
#include <asio/post.hpp>

#include "../detail/unique_function.hpp"
#include "transport.hpp"

namespace duplex {

struct memory_options {
    /// Each read completes with at most this many bytes (1: byte by byte).
    std::size_t max_read_chunk = std::numeric_limits<std::size_t>::max();
    /// The n-th write (counted per side, from 1) fails with connection_reset; 0: never.
    std::size_t fail_on_write = 0;
};

/// One end of an in-memory byte pipe. Make them with `make_memory_pair`.
class memory_transport {
    using handler_t = detail::unique_function<void(std::error_code, std::size_t)>;
    struct direction {        // bytes flowing towards one side
        std::string bytes;
        std::size_t read_pos = 0;
        bool eof = false;     // the writer closed
        asio::mutable_buffer pending_buffer;
        handler_t pending;    // a read waiting for bytes
    };
    struct state {
        std::mutex mutex;
        direction inbox[2];
        bool closed[2] = {false, false};
        asio::any_io_executor executor[2];
        memory_options options;
    };

public:
    using executor_type = asio::any_io_executor;

    memory_transport(std::shared_ptr<state> s, int side) : state_(std::move(s)), side_(side) {}

    executor_type get_executor() const { return state_->executor[side_]; }

    template <class Handler>
    void async_start(role, Handler&& handler) {
        asio::post(get_executor(), [h = std::forward<Handler>(handler)]() mutable { h(std::error_code{}); });
    }

    template <class Handler>
    void async_read_some(asio::mutable_buffer buffer, Handler&& handler) {
        std::lock_guard<std::mutex> lock(state_->mutex);
        direction& in = state_->inbox[side_];
        if (state_->closed[side_]) return complete(side_, handler_t(std::forward<Handler>(handler)), asio::error::bad_descriptor, 0);
        if (in.read_pos < in.bytes.size() || in.eof || buffer.size() == 0) {
            const std::size_t n = take(in, buffer);
            return complete(side_, handler_t(std::forward<Handler>(handler)), n == 0 && in.eof ? asio::error::eof : std::error_code{}, n);
        }
        in.pending_buffer = buffer;
        in.pending = handler_t(std::forward<Handler>(handler));
    }

    template <class ConstBuffers, class Handler>
    void async_write_some(const ConstBuffers& buffers, Handler&& handler) {
        std::lock_guard<std::mutex> lock(state_->mutex);
        const int peer = 1 - side_;
        handler_t h(std::forward<Handler>(handler));
        if (state_->closed[side_]) return complete(side_, std::move(h), asio::error::bad_descriptor, 0);
        if (state_->closed[peer]) return complete(side_, std::move(h), asio::error::broken_pipe, 0);
        if (++writes_ == state_->options.fail_on_write) return complete(side_, std::move(h), asio::error::connection_reset, 0);
        direction& out = state_->inbox[peer];
        std::size_t total = 0;
        for (auto it = asio::buffer_sequence_begin(buffers); it != asio::buffer_sequence_end(buffers); ++it) {
            const asio::const_buffer b(*it);
            out.bytes.append(static_cast<const char*>(b.data()), b.size());
            total += b.size();
        }
        wake(peer);
        complete(side_, std::move(h), {}, total);
    }

    /// Ends this side's writing: the peer reads EOF after what was sent.
    void shutdown_send() noexcept {
        std::lock_guard<std::mutex> lock(state_->mutex);
        state_->inbox[1 - side_].eof = true;
        wake(1 - side_);
    }

    /// Closes this end: the peer reads EOF once it has drained what was sent.
    void close() noexcept {
        std::lock_guard<std::mutex> lock(state_->mutex);
        if (state_->closed[side_]) return;
        state_->closed[side_] = true;
        direction& in = state_->inbox[side_];
        if (in.pending) complete(side_, std::move(in.pending), asio::error::operation_aborted, 0);
        in.pending = {};
        state_->inbox[1 - side_].eof = true;
        wake(1 - side_);
    }

    std::string remote_address() const { return "memory"; }

    /// Two connected ends; each runs its handlers on its own executor.
    static std::pair<memory_transport, memory_transport> make_pair(asio::any_io_executor a, asio::any_io_executor b,
                                                                   memory_options options = {}) {
        auto s = std::make_shared<state>();
        s->executor[0] = std::move(a);
        s->executor[1] = std::move(b);
        s->options = options;
        return {memory_transport(s, 0), memory_transport(s, 1)};
    }

private:
    std::size_t take(direction& in, asio::mutable_buffer buffer) {
        const std::size_t n = std::min({in.bytes.size() - in.read_pos, buffer.size(), state_->options.max_read_chunk});
        std::memcpy(buffer.data(), in.bytes.data() + in.read_pos, n);
        in.read_pos += n;
        if (in.read_pos == in.bytes.size()) {
            in.bytes.clear();
            in.read_pos = 0;
        }
        return n;
    }
    void wake(int side) {  // a read waiting on `side` may complete now
        direction& in = state_->inbox[side];
        if (!in.pending || (in.read_pos == in.bytes.size() && !in.eof)) return;
        const std::size_t n = take(in, in.pending_buffer);
        complete(side, std::move(in.pending), n == 0 && in.eof ? asio::error::eof : std::error_code{}, n);
        in.pending = {};
    }
    void complete(int side, handler_t h, std::error_code ec, std::size_t n) {
        asio::post(state_->executor[side], [h = std::move(h), ec, n]() mutable { h(ec, n); });
    }

    std::shared_ptr<state> state_;
    int side_;
    std::size_t writes_ = 0;
};

/// Two connected in-memory transports; each runs its handlers on its executor
/// (give each a strand when the io_context runs on several threads).
inline std::pair<memory_transport, memory_transport> make_memory_pair(asio::any_io_executor a, asio::any_io_executor b,
                                                                       memory_options options = {}) {
    return memory_transport::make_pair(std::move(a), std::move(b), options);
}

static_assert(is_transport_v<memory_transport>, "memory_transport must meet the transport contract");

} // namespace duplex
