// Stream-socket read waits (TCP, Unix domain), parked in one epoll set per
// io_context and socket type.
//
// A connection waits for its next bytes after every batch it reads. Asio would keep
// that wait as an operation of its own per socket (144 bytes, in a 176-byte malloc
// chunk), and read speculatively before each one: two recv calls per batch, the
// second one EAGAIN. Here each socket joins this epoll set once, edge-triggered,
// as a 40-byte entry, and one Asio wait on the set's descriptor serves them all.
// When bytes come, a waiting entry's completion runs on the socket's executor, as
// Asio would run it; bytes that come while nothing waits mark the entry ready, and
// its next wait completes at once.
//
// Per batch that is one recv (the connection reads once woken, and waits again
// after a short read: any later bytes raise a new edge), where Asio makes two,
// and no epoll_ctl; plus one epoll_wait for all the connections woken together.
// Linux only; elsewhere, or with DUPLEX_NO_READ_PARK, or when the set cannot take
// a descriptor, the transport (transport/tcp.hpp) waits and reads the usual way.
#pragma once
#if defined(__linux__) && !defined(DUPLEX_NO_READ_PARK)
#define DUPLEX_HAS_READ_PARK 1

#include <asio/dispatch.hpp>
#include <asio/execution_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/posix/stream_descriptor.hpp>
#include <asio/post.hpp>
#include <asio/strand.hpp>

#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <mutex>
#include <new>
#include <system_error>

#include "completion.hpp"
#include "owned.hpp"
#include "plain_vector.hpp"

namespace duplex::detail {

// One service per socket type (asio::use_service finds each by its type): TCP
// sockets and Unix domain sockets each have their own set.
template <class Socket>
class basic_read_park final : public asio::execution_context::service {
public:
    using key_type = basic_read_park;
    using socket_type = Socket;
    /// A socket's place in the set: generation << 32 | slot. 0 is none (generations start at 1).
    using ticket = std::uint64_t;

    explicit basic_read_park(asio::execution_context& ctx) : asio::execution_context::service(ctx) {}

    static basic_read_park& of(const typename socket_type::executor_type& ex) {
        return asio::use_service<basic_read_park>(asio::query(ex, asio::execution::context_as<asio::execution_context&>));
    }

    enum class wait_result {
        parked,  // `done` runs, with no error, once `fd` can be read or hangs up
        ready,   // bytes came since the last read: run `done` now (it was left as it was)
        refused, // the set cannot take the socket: wait the usual way (`done` left as it was)
    };

    /// Waits for `fd` (`socket`'s descriptor, which may have left Asio's reactor) to
    /// be readable. `t` is the socket's ticket: 0 the first time, when the socket joins
    /// the set (edge-triggered) and `t` is set; it stays there until it closes. Once
    /// woken, the caller reads until a read comes back short or would block before it
    /// waits again: only bytes that come after that raise the next edge.
    wait_result wait(ticket& t, int fd, socket_type& socket, completion& done) {
        std::lock_guard<std::mutex> lock(mutex_);
        if (shut_down_ || (!watcher_ && !open(socket.get_executor()))) return wait_result::refused;
        entry* e = find(t);
        if (!e) {
            const std::uint32_t slot = join(fd, socket);
            if (slot == none) return wait_result::refused;
            e = &entries_[slot];
            t = ticket{e->generation} << 32 | slot;
        }
        if (e->ready) {
            e->ready &= hung_up; // a hang-up stays: EOF or the error is there for every read
            return wait_result::ready;
        }
        if (!waiting_ && !watch()) return wait_result::refused; // no memory for the set's wait
        e->done = std::move(done);
        ++parked_;
        return wait_result::parked;
    }

    /// The socket of `t` is about to close, which takes it out of the set: its slot is
    /// free again. Returns true with `done` the wait that was parked (not run), if any.
    bool leave(ticket t, completion& done) {
        std::lock_guard<std::mutex> lock(mutex_);
        entry* e = find(t);
        if (!e) return false;
        const bool had_wait = e->done.target != nullptr;
        if (had_wait) {
            done = std::move(e->done);
            --parked_;
        }
        release(static_cast<std::uint32_t>(t));
        if (parked_ == 0 && waiting_) { // nothing to wait for: io.run() may return
            std::error_code ignored;
            watcher_->cancel(ignored);
        }
        return had_wait;
    }

    /// The socket of `t` moved (its transport was moved).
    void moved(ticket t, socket_type& socket) {
        std::lock_guard<std::mutex> lock(mutex_);
        if (entry* e = find(t)) e->socket = &socket;
    }

    /// Read waits parked now.
    std::size_t parked() const {
        std::lock_guard<std::mutex> lock(mutex_);
        return parked_;
    }
    /// Sockets in the set.
    std::size_t sockets() const {
        std::lock_guard<std::mutex> lock(mutex_);
        return sockets_;
    }

private:
    static constexpr std::uint32_t none = ~std::uint32_t(0);

    struct entry {
        completion done;               // the parked wait; no target when none waits
        socket_type* socket = nullptr; // on whose executor `done` runs; null while free
        std::uint32_t generation = 1;  // tells the slot's sockets apart
        union {
            std::uint32_t next_free = none; // while free
            std::uint32_t ready;            // in use: bytes_came, hung_up
        };
    };
    enum : std::uint32_t { bytes_came = 1, hung_up = 2 }; // bytes_came: while nothing waited

    std::uint32_t join(int fd, socket_type& socket) { // mutex_ held; the slot, or none
        if (free_ == none && !grow()) return none;
        const std::uint32_t slot = free_;
        entry& e = entries_[slot];
        epoll_event ev{};
        ev.events = EPOLLIN | EPOLLRDHUP | EPOLLET;
        ev.data.u64 = ticket{e.generation} << 32 | slot;
        // Closing a socket takes it out of the set; one that is still there (a dup of
        // its descriptor kept it open) gets this slot's ticket.
        if (::epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev) != 0 &&
            (errno != EEXIST || ::epoll_ctl(epfd_, EPOLL_CTL_MOD, fd, &ev) != 0))
            return none;
        free_ = e.next_free;
        e.socket = &socket;
        e.ready = 0;
        ++sockets_;
        return slot;
    }

    void shutdown() override {
        // The completions may hold the last references to their connections, whose
        // destructors take the lock: they are destroyed after it is released.
        plain_vector<entry, std::uint32_t> gone;
        owned<asio::posix::stream_descriptor> watcher;
        {
            std::lock_guard<std::mutex> lock(mutex_);
            shut_down_ = true;
            gone = std::move(entries_);
            watcher = std::move(watcher_); // closes the epoll set
            parked_ = 0;
            sockets_ = 0;
            free_ = none;
        }
    }

    bool open(const typename socket_type::executor_type& ex) { // mutex_ held
        const int fd = ::epoll_create1(EPOLL_CLOEXEC);
        if (fd < 0) return false;
        std::error_code ec;
        try {
            // The set's wait runs on the io_context, not on the strand of the connection
            // that happened to park first: that serialised every wake behind it, and the
            // wakes dispatched inline onto it ran ahead of its queue (the soak test then
            // lost healthy sessions).
            using strand_type = asio::strand<asio::io_context::executor_type>;
            if (const auto* strand = ex.template target<strand_type>()) watcher_.emplace(strand->get_inner_executor());
            else watcher_.emplace(ex);
            watcher_->assign(fd, ec);
        } catch (const std::bad_alloc&) {
            ec = make_error_code(std::errc::not_enough_memory);
        }
        if (ec) {
            ::close(fd);
            watcher_.reset();
            return false;
        }
        epfd_ = fd;
        return true;
    }

    bool watch() noexcept { // mutex_ held
        try {
            watcher_->async_wait(asio::posix::stream_descriptor::wait_read, complete_with<&basic_read_park::on_ready>(this));
        } catch (const std::bad_alloc&) {
            return false;
        }
        waiting_ = true;
        return true;
    }

    struct woken {
        completion done;
        typename socket_type::executor_type ex;
    };

    void on_ready(std::error_code, std::size_t) {
        {
            std::lock_guard<std::mutex> lock(mutex_);
            waiting_ = false; // this wait is over (woken, or cancelled by leave)
        }
        // Taken out under the lock, run outside it, in rounds of up to 64.
        epoll_event events[64];
        woken ready[64];
        for (int n = 64; n == 64;) {
            std::size_t k = 0;
            {
                std::lock_guard<std::mutex> lock(mutex_);
                if (shut_down_) return;
                n = sockets_ ? ::epoll_wait(epfd_, events, 64, 0) : 0;
                for (int i = 0; i < n; ++i) {
                    entry* e = find(events[i].data.u64);
                    if (!e) continue; // its socket left since
                    // A FIN or an error raises no edge after the bytes that came with it: a
                    // short read would not mean all was read, so each wait from now on completes.
                    if (events[i].events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) e->ready |= hung_up;
                    if (e->done.target == nullptr) {
                        e->ready |= bytes_came; // its next wait completes at once
                        continue;
                    }
                    ready[k++] = {std::move(e->done), e->socket->get_executor()};
                    e->done = {};
                    --parked_;
                }
                if (n < 64) watch_if_parked();
            }
            run(ready, k);
        }
    }

    // Dispatched, not posted: on a one-thread io_context a woken read then runs in
    // this pass of the event loop, as Asio's own would, so it still joins the
    // broadcast batch that waits for this pass (connection.hpp, flush_batch). On a
    // strand it goes through the strand's queue, as Asio's own completions do: this
    // runs on the io_context, never on a connection's strand (see open()).
    void run(woken* ready, std::size_t k) {
        std::size_t i = 0;
        try {
            for (; i < k; ++i) asio::dispatch(ready[i].ex, std::move(ready[i].done));
        } catch (...) { // a handler threw out of io.run(): nothing woken is lost
            for (++i; i < k; ++i) asio::post(ready[i].ex, std::move(ready[i].done));
            std::lock_guard<std::mutex> lock(mutex_);
            watch_if_parked();
            throw;
        }
    }

    // Some still parked: watch again. With none, no wait stays pending, so
    // io_context::run() can return. (Out of memory, the next wait tries again.)
    void watch_if_parked() noexcept { // mutex_ held
        if (!shut_down_ && parked_ && !waiting_) watch();
    }

    entry* find(ticket t) { // mutex_ held
        const auto slot = static_cast<std::uint32_t>(t);
        if (t == 0 || slot >= entries_.size()) return nullptr;
        entry& e = entries_[slot];
        return e.generation == t >> 32 && e.socket ? &e : nullptr;
    }
    void release(std::uint32_t slot) { // mutex_ held
        entry& e = entries_[slot];
        e.done = {};
        e.socket = nullptr;
        if (++e.generation == 0) e.generation = 1;
        e.next_free = free_;
        free_ = slot;
        --sockets_;
    }
    bool grow() { // mutex_ held; one free slot more (the array doubles now and then)
        try {
            entries_.push_back({});
        } catch (const std::bad_alloc&) {
            return false;
        }
        free_ = static_cast<std::uint32_t>(entries_.size() - 1);
        return true;
    }

    mutable std::mutex mutex_;
    plain_vector<entry, std::uint32_t> entries_; // slots, indexed by tickets
    std::uint32_t free_ = none; // first free slot
    std::size_t parked_ = 0;    // entries with a wait
    std::size_t sockets_ = 0;   // entries in use
    int epfd_ = -1; // owned by watcher_
    owned<asio::posix::stream_descriptor> watcher_; // waits for the set to be readable
    bool waiting_ = false;   // watcher_ has a wait pending
    bool shut_down_ = false;
};

using read_park = basic_read_park<asio::ip::tcp::socket>;

// What a socket does while it is out of Asio's reactor (transport/tcp.hpp): the calls
// Asio would make, on the descriptor itself, with Asio's error codes.
inline std::error_code last_socket_error() noexcept { return {errno, asio::error::get_system_category()}; }

inline std::size_t receive_now(int fd, asio::mutable_buffer b, std::error_code& ec) {
    ec = {};
    if (b.size() == 0) return 0;
    for (;;) {
        const ssize_t n = ::recv(fd, b.data(), b.size(), 0);
        if (n > 0) return static_cast<std::size_t>(n);
        if (n == 0) {
            ec = asio::error::eof;
            return 0;
        }
        if (errno != EINTR) {
            ec = last_socket_error();
            return 0;
        }
    }
}

template <class ConstBuffers>
std::size_t send_now(int fd, const ConstBuffers& buffers, std::error_code& ec) {
    ec = {};
    iovec iov[64]; // as many as Asio gathers
    std::size_t n = 0;
    for (auto i = asio::buffer_sequence_begin(buffers), end = asio::buffer_sequence_end(buffers); i != end && n < 64; ++i) {
        const asio::const_buffer b(*i);
        if (b.size() == 0) continue;
        iov[n].iov_base = const_cast<void*>(b.data());
        iov[n].iov_len = b.size();
        ++n;
    }
    if (n == 0) return 0;
    msghdr msg{};
    msg.msg_iov = iov;
    msg.msg_iovlen = n;
    for (;;) {
        const ssize_t r = ::sendmsg(fd, &msg, MSG_NOSIGNAL);
        if (r >= 0) return static_cast<std::size_t>(r);
        if (errno != EINTR) {
            ec = last_socket_error();
            return 0;
        }
    }
}

template <class Endpoint>
Endpoint peer_of(int fd, std::error_code& ec) {
    Endpoint ep;
    auto len = static_cast<socklen_t>(ep.capacity());
    if (::getpeername(fd, ep.data(), &len) != 0) {
        ec = last_socket_error();
        return {};
    }
    ep.resize(len);
    ec = {};
    return ep;
}

} // namespace duplex::detail

#endif
