// Stream-socket transports on a standalone Asio socket: plain TCP (IPv4 and IPv6),
// and Unix domain sockets (transport/unix.hpp names that one).
#pragma once
#include <asio/ip/tcp.hpp>
#include <asio/post.hpp>

#include <new>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>

#include "../detail/completion.hpp"
#include "../detail/read_park.hpp"
#include "transport.hpp"

namespace duplex {

/// A transport on a connected stream socket of `Protocol`: asio::ip::tcp
/// (tcp_transport) or asio::local::stream_protocol (unix_transport).
template <class Protocol>
class basic_socket_transport {
public:
    using protocol_type = Protocol;
    using socket_type = typename Protocol::socket;
    using executor_type = typename socket_type::executor_type;
    static constexpr bool reads_buffer_pairs = true; // async_read_some takes two buffers

    explicit basic_socket_transport(socket_type socket) : socket_(std::move(socket)) {
        if constexpr (is_tcp) {
            std::error_code ignored;
            socket_.set_option(asio::ip::tcp::no_delay(true), ignored); // frames are already batched
        }
    }
    explicit basic_socket_transport(const executor_type& ex) : socket_(ex) {}
#ifdef DUPLEX_HAS_READ_PARK
    basic_socket_transport(basic_socket_transport&& other) noexcept
        : socket_(std::move(other.socket_)), park_ticket_(std::exchange(other.park_ticket_, 0)),
          released_(std::exchange(other.released_, -1)), flags_(std::exchange(other.flags_, 0)) {
        if (park_ticket_) park::of(socket_.get_executor()).moved(park_ticket_, socket_);
    }
    basic_socket_transport& operator=(basic_socket_transport&& other) noexcept {
        if (this == &other) return *this;
        close_quietly(); // this socket's wait ends aborted as it closes, as with Asio's move
        socket_ = std::move(other.socket_);
        park_ticket_ = std::exchange(other.park_ticket_, 0);
        released_ = std::exchange(other.released_, -1);
        flags_ = std::exchange(other.flags_, 0);
        if (park_ticket_) park::of(socket_.get_executor()).moved(park_ticket_, socket_);
        return *this;
    }
    ~basic_socket_transport() { close_quietly(); }
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
        reacquire();
        socket_.async_read_some(buffer, std::forward<Handler>(handler));
    }
    template <class ConstBuffers, class Handler>
    void async_write_some(const ConstBuffers& buffers, Handler&& handler) {
        reacquire();
#ifdef DUPLEX_HAS_READ_PARK
        flags_ |= write_pending; // until the next try_write_some: then it is over
#endif
        socket_.async_write_some(buffers, std::forward<Handler>(handler));
    }
    /// Writes what the kernel takes now, without waiting (would_block if
    /// nothing): most writes finish here, with no completion handler to run.
    template <class ConstBuffers>
    std::size_t try_write_some(const ConstBuffers& buffers, std::error_code& ec) {
#ifdef DUPLEX_HAS_READ_PARK
        flags_ = static_cast<std::uint8_t>(flags_ & ~write_pending); // the connection writes one at a time: none is in flight
        if (released_ >= 0) return detail::send_now(released_, buffers, ec);
#endif
        if (!set_non_blocking(ec)) return 0;
        return socket_.write_some(buffers, ec);
    }
    /// h(std::error_code) once bytes (or EOF) can be read: the connection then
    /// reads into a buffer of its thread, so an idle one owns none. Once woken, read
    /// (read_some_now) until a read comes back short or would block, then wait again.
    template <class Handler>
    void async_wait_readable(Handler&& handler) {
#ifdef DUPLEX_HAS_READ_PARK
        // duplex's own connections wait in their io_context's epoll set
        // (detail/read_park.hpp), and with no write in flight the socket leaves Asio's
        // reactor meanwhile: some 300 bytes less per idle connection.
        if constexpr (std::is_same_v<std::decay_t<Handler>, detail::completion>) {
            detail::completion done = std::forward<Handler>(handler);
            if (flags_ & more_to_read) { // the last read filled its buffer
                flags_ = static_cast<std::uint8_t>(flags_ & ~more_to_read);
                return asio::post(socket_.get_executor(), std::move(done));
            }
            using result = typename park::wait_result;
            auto& set = park::of(socket_.get_executor());
            switch (set.wait(park_ticket_, released_ >= 0 ? released_ : socket_.native_handle(), socket_, done)) {
            case result::parked:
                if (released_ < 0 && !(flags_ & write_pending)) release();
                return;
            case result::ready:
                return asio::post(socket_.get_executor(), std::move(done));
            case result::refused:
                reacquire();
                return socket_.async_wait(socket_type::wait_read, std::move(done));
            }
        }
#endif
        reacquire();
        socket_.async_wait(socket_type::wait_read, std::forward<Handler>(handler));
    }
    /// Reads what is there now, without waiting (would_block if nothing).
    std::size_t read_some_now(asio::mutable_buffer buffer, std::error_code& ec) {
#ifdef DUPLEX_HAS_READ_PARK
        const std::size_t n = released_ >= 0 ? detail::receive_now(released_, buffer, ec) : read_with_asio(buffer, ec);
        if (n != 0 && n == buffer.size()) flags_ |= more_to_read; // no edge may come for the rest
        return n;
#else
        return read_with_asio(buffer, ec);
#endif
    }
#ifdef DUPLEX_HAS_READ_PARK
    /// Every read waits for readability first, then reads what is there: with the
    /// epoll set's edges that is one recv per batch of bytes (connection.hpp).
    static constexpr bool waits_every_read = true;
#endif
    void shutdown_send() noexcept {
#ifdef DUPLEX_HAS_READ_PARK
        if (released_ >= 0) return (void)::shutdown(released_, SHUT_WR);
#endif
        std::error_code ignored;
        socket_.shutdown(socket_type::shutdown_send, ignored);
    }
    /// Cuts with a reset: for a peer that stopped reading, whose unsent bytes
    /// would otherwise sit in the kernel (up to the socket buffer) after close.
    void abort() noexcept {
        reacquire();
        unpark();
        std::error_code ignored;
        socket_.set_option(asio::socket_base::linger(true, 0), ignored);
        socket_.close(ignored);
    }
    void close() noexcept {
        reacquire();
        unpark();
        std::error_code ignored;
        socket_.shutdown(socket_type::shutdown_both, ignored);
        socket_.close(ignored);
    }

#ifdef DUPLEX_HAS_READ_PARK
    /// True while the socket waits parked with no write in flight, out of Asio's
    /// reactor (detail/read_park.hpp); socket() and asynchronous calls bring it back.
    bool released() const noexcept { return released_ >= 0; }
#endif
    /// The descriptor, for system calls that Asio has no name for (e.g. SO_PEERCRED);
    /// it stays the transport's. -1 once closed.
    int native_handle() noexcept {
#ifdef DUPLEX_HAS_READ_PARK
        if (released_ >= 0) return released_;
#endif
        return socket_.is_open() ? static_cast<int>(socket_.native_handle()) : -1;
    }
    /// The socket, for options and queries (on get_executor() only).
    socket_type& socket() noexcept {
        reacquire();
        return socket_;
    }
    /// "address:port" of the peer (TCP), "unix:" and the peer's path if it has one
    /// (Unix domain; "@" for Linux's abstract namespace), or empty once closed.
    std::string remote_address() const {
        std::error_code ec;
        const auto ep = peer(ec);
        if (ec) return {};
        if constexpr (is_tcp) {
            const auto a = ep.address();
            return (a.is_v6() ? "[" + a.to_string() + "]" : a.to_string()) + ":" + std::to_string(ep.port());
        } else {
            std::string path = ep.path();
            if (!path.empty() && path[0] == '\0') path[0] = '@';
            return "unix:" + path;
        }
    }

private:
    static constexpr bool is_tcp = std::is_same_v<Protocol, asio::ip::tcp>;
#ifdef DUPLEX_HAS_READ_PARK
    using park = detail::basic_read_park<socket_type>;
#endif

    typename Protocol::endpoint peer(std::error_code& ec) const {
#ifdef DUPLEX_HAS_READ_PARK
        if (released_ >= 0) return detail::peer_of<typename Protocol::endpoint>(released_, ec);
#endif
        return socket_.remote_endpoint(ec);
    }

#ifdef DUPLEX_HAS_READ_PARK
    // A socket that left Asio's reactor while parked comes back before anything
    // else Asio does with it: one epoll_ctl to register, one ioctl for the
    // non-blocking flag Asio keeps. Reads and writes that do not wait go to the
    // descriptor directly and keep it out.
    void reacquire() noexcept {
        if (released_ < 0) return;
        std::error_code ec;
        try {
            socket_.assign(protocol(), released_, ec);
        } catch (const std::bad_alloc&) {
            ec = make_error_code(std::errc::not_enough_memory);
        }
        if (ec) ::close(released_); // Asio's calls then fail on a closed socket
        else set_non_blocking_quietly();
        released_ = -1;
    }
    // Asio forgets the descriptor's family (TCP: v4 or v6) and non-blocking flag:
    // the first is kept here, the second stays set on the descriptor itself.
    Protocol protocol() const noexcept {
        if constexpr (is_tcp) return flags_ & v6 ? asio::ip::tcp::v6() : asio::ip::tcp::v4();
        else return Protocol();
    }
    void release() noexcept {
        std::error_code ec;
        if constexpr (is_tcp) {
            if (!(flags_ & family_known)) {
                const bool is_v6 = socket_.local_endpoint(ec).protocol() == asio::ip::tcp::v6();
                if (ec) return;
                flags_ = static_cast<std::uint8_t>(flags_ | family_known | (is_v6 ? v6 : 0));
            }
        }
        if (!set_non_blocking(ec)) return;
        const int fd = socket_.release(ec);
        if (!ec) released_ = fd;
    }
    void set_non_blocking_quietly() noexcept {
        std::error_code ignored;
        set_non_blocking(ignored);
    }
    void close_quietly() noexcept {
        reacquire();
        unpark();
        std::error_code ignored;
        socket_.close(ignored);
    }
#else
    void reacquire() noexcept {}
#endif

    // The socket leaves the epoll set before it closes; a parked wait goes back to
    // Asio, which then ends it with operation_aborted, as it ends any pending wait.
    void unpark() noexcept {
#ifdef DUPLEX_HAS_READ_PARK
        if (!park_ticket_) return;
        detail::completion done;
        if (!park::of(socket_.get_executor()).leave(std::exchange(park_ticket_, 0), done)) return;
        try {
            socket_.async_wait(socket_type::wait_read, std::move(done)); // closed already: bad_descriptor
        } catch (const std::bad_alloc&) { // no memory for the operation: the wait ends unreported
        }
#endif
    }

    std::size_t read_with_asio(asio::mutable_buffer buffer, std::error_code& ec) {
        if (!set_non_blocking(ec)) return 0;
        return socket_.read_some(buffer, ec);
    }

    // Only synchronous calls see it; asynchronous ones work as before. The
    // socket keeps the flag (reading it makes no system call).
    bool set_non_blocking(std::error_code& ec) {
        if (socket_.non_blocking()) return true;
        socket_.non_blocking(true, ec);
        return !ec;
    }

    socket_type socket_;
#ifdef DUPLEX_HAS_READ_PARK
    enum : std::uint8_t { write_pending = 1, family_known = 2, v6 = 4, more_to_read = 8 };
    typename park::ticket park_ticket_ = 0; // the socket's place in read_park's epoll set, if any
    int released_ = -1;      // the descriptor, while Asio's reactor has let go of it
    std::uint8_t flags_ = 0; // write_pending: an async_write_some may be in flight (the
                             // socket stays with Asio); v6: the family to come back as;
                             // more_to_read: the last read filled its buffers
#endif
};

/// Plain TCP, IPv4 and IPv6.
using tcp_transport = basic_socket_transport<asio::ip::tcp>;

static_assert(is_transport_v<tcp_transport>, "tcp_transport must meet the transport contract");

} // namespace duplex
