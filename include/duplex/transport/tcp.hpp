// Plain TCP transport (IPv4 and IPv6) on a standalone Asio socket.
#pragma once
#include <asio/ip/tcp.hpp>
#include <asio/post.hpp>

#include <new>
#include <utility>

#include "../detail/completion.hpp"
#include "../detail/idle_park.hpp"
#include "transport.hpp"

namespace duplex {

class tcp_transport {
public:
    using socket_type = asio::ip::tcp::socket;
    using executor_type = socket_type::executor_type;
    static constexpr bool reads_buffer_pairs = true; // async_read_some takes two buffers

    explicit tcp_transport(socket_type socket) : socket_(std::move(socket)) {
        std::error_code ignored;
        socket_.set_option(asio::ip::tcp::no_delay(true), ignored); // frames are already batched
    }
    explicit tcp_transport(const executor_type& ex) : socket_(ex) {}
#ifdef DUPLEX_HAS_IDLE_PARK
    tcp_transport(tcp_transport&& other) noexcept : socket_(std::move(other.socket_)), parked_(std::exchange(other.parked_, 0)) {
        if (parked_) detail::idle_park::of(socket_.get_executor()).moved(parked_, socket_);
    }
    tcp_transport& operator=(tcp_transport&& other) noexcept {
        if (this == &other) return *this;
        unpark(); // this socket's wait ends aborted as it closes, as with Asio's move
        socket_ = std::move(other.socket_);
        parked_ = std::exchange(other.parked_, 0);
        if (parked_) detail::idle_park::of(socket_.get_executor()).moved(parked_, socket_);
        return *this;
    }
    ~tcp_transport() { unpark(); }
#endif

    executor_type get_executor() { return socket_.get_executor(); }

    template <class Handler>
    void async_start(role, Handler&& handler) {
        if constexpr (std::is_same_v<std::decay_t<Handler>, detail::completion>) // h() is h(no error): no wrapper to compile
            asio::post(socket_.get_executor(), std::forward<Handler>(handler));
        else
            asio::post(socket_.get_executor(), [h = std::forward<Handler>(handler)]() mutable { h(std::error_code{}); });
    }
    template <class MutableBuffer, class Handler>
    void async_read_some(const MutableBuffer& buffer, Handler&& handler) {
        socket_.async_read_some(buffer, std::forward<Handler>(handler));
    }
    template <class ConstBuffers, class Handler>
    void async_write_some(const ConstBuffers& buffers, Handler&& handler) {
        socket_.async_write_some(buffers, std::forward<Handler>(handler));
    }
    /// Writes what the kernel takes now, without waiting (would_block if
    /// nothing): most writes finish here, with no completion handler to run.
    template <class ConstBuffers>
    std::size_t try_write_some(const ConstBuffers& buffers, std::error_code& ec) {
        if (!set_non_blocking(ec)) return 0;
        return socket_.write_some(buffers, ec);
    }
    /// h(std::error_code) once bytes (or EOF) can be read: the connection then
    /// reads into a buffer of its thread, so an idle one owns none.
    template <class Handler>
    void async_wait_readable(Handler&& handler) {
#ifdef DUPLEX_HAS_IDLE_PARK
        // duplex's own connections wait in their io_context's epoll set of idle
        // sockets (detail/idle_park.hpp): some 130 bytes less per idle connection.
        if constexpr (std::is_same_v<std::decay_t<Handler>, detail::completion>) {
            detail::completion done = std::forward<Handler>(handler);
            parked_ = detail::idle_park::of(socket_.get_executor()).park(socket_, done);
            if (!parked_) socket_.async_wait(socket_type::wait_read, std::move(done));
            return;
        }
#endif
        socket_.async_wait(socket_type::wait_read, std::forward<Handler>(handler));
    }
    /// Reads what is there now, without waiting (would_block if nothing).
    std::size_t read_some_now(asio::mutable_buffer buffer, std::error_code& ec) {
        if (!set_non_blocking(ec)) return 0;
        return socket_.read_some(buffer, ec);
    }
    void shutdown_send() noexcept {
        std::error_code ignored;
        socket_.shutdown(socket_type::shutdown_send, ignored);
    }
    /// Cuts with a reset: for a peer that stopped reading, whose unsent bytes
    /// would otherwise sit in the kernel (up to the socket buffer) after close.
    void abort() noexcept {
        unpark();
        std::error_code ignored;
        socket_.set_option(asio::socket_base::linger(true, 0), ignored);
        socket_.close(ignored);
    }
    void close() noexcept {
        unpark();
        std::error_code ignored;
        socket_.shutdown(socket_type::shutdown_both, ignored);
        socket_.close(ignored);
    }

    socket_type& socket() noexcept { return socket_; }
    /// "address:port" of the peer, or empty once closed.
    std::string remote_address() const {
        std::error_code ec;
        const auto ep = socket_.remote_endpoint(ec);
        if (ec) return {};
        const auto a = ep.address();
        return (a.is_v6() ? "[" + a.to_string() + "]" : a.to_string()) + ":" + std::to_string(ep.port());
    }

private:
    // A parked wait goes back to Asio before the socket closes, which then ends it
    // with operation_aborted, as it ends any pending wait.
    void unpark() noexcept {
#ifdef DUPLEX_HAS_IDLE_PARK
        if (!parked_) return;
        detail::completion done;
        if (!detail::idle_park::of(socket_.get_executor()).unpark(std::exchange(parked_, 0), done)) return;
        try {
            socket_.async_wait(socket_type::wait_read, std::move(done)); // closed already: bad_descriptor
        } catch (const std::bad_alloc&) { // no memory for the operation: the wait ends unreported
        }
#endif
    }

    // Only synchronous calls see it; asynchronous ones work as before. The
    // socket keeps the flag (reading it makes no system call).
    bool set_non_blocking(std::error_code& ec) {
        if (socket_.non_blocking()) return true;
        socket_.non_blocking(true, ec);
        return !ec;
    }

    socket_type socket_;
#ifdef DUPLEX_HAS_IDLE_PARK
    detail::idle_park::ticket parked_ = 0; // the read wait parked in idle_park, if any
#endif
};

static_assert(is_transport_v<tcp_transport>, "tcp_transport must meet the transport contract");

} // namespace duplex
