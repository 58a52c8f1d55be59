// Plain TCP transport (IPv4 and IPv6) on a standalone Asio socket.
#pragma once
#include <asio/ip/tcp.hpp>
#include <asio/post.hpp>

#include "../detail/completion.hpp"
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
        std::error_code ignored;
        socket_.set_option(asio::socket_base::linger(true, 0), ignored);
        socket_.close(ignored);
    }
    void close() noexcept {
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
    // Only synchronous calls see it; asynchronous ones work as before. The
    // socket keeps the flag (reading it makes no system call).
    bool set_non_blocking(std::error_code& ec) {
        if (socket_.non_blocking()) return true;
        socket_.non_blocking(true, ec);
        return !ec;
    }

    socket_type socket_;
};

static_assert(is_transport_v<tcp_transport>, "tcp_transport must meet the transport contract");

} // namespace duplex
