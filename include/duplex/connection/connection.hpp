// A WebSocket connection over a transport: one read loop, one gathered write
// loop and one timer pump a sans-I/O basic_protocol. Used by the server (role
// server, after accept) and the client (role client, after connect).
#pragma once
#include <algorithm>
#include <any>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <asio/any_io_executor.hpp>
#include <asio/buffer.hpp>
#include <asio/error.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/socket_base.hpp>
#include <asio/strand.hpp>

#include "../core/handshake.hpp"
#include "../core/http.hpp"
#include "../core/proxy_protocol.hpp"
#include "../core/random.hpp"
#include "../detail/buffer_list.hpp"
#include "../detail/completion.hpp"
#include "../detail/owned.hpp"
#include "../detail/plain_vector.hpp"
#include "../detail/rare_string.hpp"
#include "../detail/unique_function.hpp"
#include "../transport/transport.hpp"
#include "deadlines.hpp"
#include "drain_waiters.hpp"
#include "message.hpp"
#include "protocol.hpp"
#include "stats.hpp"

namespace duplex {

/// What a server's plain-HTTP hook answers (non-Upgrade requests on the same port).
struct http_reply {
    int status = 200;                                          ///< HTTP status code
    std::string content_type = "text/plain; charset=utf-8";    ///< Content-Type of the body
    std::string body;                                          ///< response body
    std::vector<std::pair<std::string, std::string>> headers;  ///< extra response headers
};

/// What a server's handshake hook decides about an upgrade request.
struct handshake_decision {
    bool accepted = true;
    int status = 403;             ///< HTTP status when rejected
    std::string body;             ///< response body when rejected
    std::string subprotocol;      ///< preselected from the server's list; may be changed
    /// Extra response headers: on the 101, or on the refusal (e.g. Location with
    /// reject(302) to send the client elsewhere, WWW-Authenticate with reject(401)).
    std::vector<std::pair<std::string, std::string>> headers;

    /// Refuses the upgrade with `http_status` and `response_body`.
    void reject(int http_status = 403, std::string response_body = {}) {
        accepted = false;
        status = http_status;
        body = std::move(response_body);
    }
};

/// Handlers and settings shared by every connection of one endpoint.
template <class Connection>
struct endpoint_config {
    connection_options connection; ///< limits, timeouts, heartbeat, backpressure

    std::function<void(Connection&)> on_open;                    ///< the handshake succeeded
    std::function<void(Connection&, const message&)> on_message; ///< a message (bytes valid during the call)
    std::function<void(Connection&, std::uint16_t code, std::string_view reason)> on_close; ///< once, at the end
    std::function<void(Connection&, std::error_code)> on_error;  ///< the failure, before on_close
    std::function<void(Connection&, std::string_view)> on_ping;  ///< a ping (the pong is already queued)
    std::function<void(Connection&, std::string_view)> on_pong;  ///< a pong

    // Server side.
    http_limits limits;
    std::vector<std::string> subprotocols;    ///< in order of preference
    std::vector<std::string> allowed_origins; ///< empty: any Origin
    std::function<void(Connection&, const http_request&, handshake_decision&)> on_handshake;
    std::function<void(const http_request&, http_reply&)> on_http;
    std::function<void(Connection&)> on_detach; ///< the server's bookkeeping
    void* server = nullptr; ///< the server these connections belong to, while it exists
    log_hook on_log;                            ///< duplex's own messages; it never prints
    bool keep_request = false; ///< request() stays valid after on_open (costs the request's bytes)
    bool one_thread = false; ///< one thread runs every connection (no strands): sends batch their flushes
    bool proxy_protocol = false; ///< each connection starts with a PROXY protocol header (server_options::proxy_protocol)

    // Client side.
    client_request_options request; ///< what the upgrade request says
};

namespace detail {
// The connection whose handler is running on this thread: its sends are
// flushed once the handler returns, in one write, instead of each posting one.
inline thread_local const void* flushing_after_handler = nullptr;

// A connection marked for a flush, and what flushes it (run it, or post it to its strand).
struct marked_connection {
    std::shared_ptr<void> connection;
    void (*flush)(void*) = nullptr;
};

// Sends from an io thread to other connections (a broadcast, a timer's push) are
// batched the way uWebSockets corks them: the send only marks the connection, and one
// posted handler per burst then flushes every marked one, at once on a one-thread
// server, or posted to each one's strand. It runs after the completions that were
// already ready and those the next reactor pass finds (other senders' reads), so a
// receiver gets all of their messages in one write. In the 500-receiver broadcast
// benchmark that took the frames per sendmsg from 2.3 to 4.7 (of at most 5) on one
// thread; on two threads, sendmsg calls per delivery from 0.62 (each flush posted at
// once) to 0.28.
// A burst belongs to its posted handler, and the thread adding to it holds it weakly,
// so a burst whose handler is destroyed unrun (its io_context destroyed) lets its
// connections go with it. (A thread_local batch kept them until the thread exited,
// after their io_context: a use after free.) Its handler may run on another thread
// than the one still adding to it, hence the lock.
class flush_batch : public std::enable_shared_from_this<flush_batch> {
public:
    /// Marks `connection`; `flush` runs its flush (one thread) or posts it (strands).
    static void add(std::shared_ptr<void> connection, void (*flush)(void*), asio::io_context& io) {
        thread_local std::weak_ptr<flush_batch> open;
        if (const auto b = open.lock()) {
            std::lock_guard<std::mutex> lock(b->mutex_);
            if (!b->closed_ && b->io_ == &io) return b->items_.push_back({std::move(connection), flush});
        }
        const std::shared_ptr<flush_batch> b(new flush_batch(io));
        b->items_ = std::move(spare()); // the last burst's room: no allocation per broadcast once warm
        b->items_.push_back({std::move(connection), flush});
        asio::post(io.get_executor(), complete_with<&flush_batch::run>(b.get(), b));
        open = b;
    }

private:
    explicit flush_batch(asio::io_context& io) : io_(&io) {}
    static plain_vector<marked_connection>& spare() {
        thread_local plain_vector<marked_connection> room;
        return room;
    }
    void run(std::error_code, std::size_t) {
        if (!yielded_) {
            // Once around the scheduler first: its reactor pass (a non-blocking
            // epoll_wait) queues the reads that became ready meanwhile before this
            // run, so their messages join this burst's writes.
            yielded_ = true;
            return asio::post(io_->get_executor(), complete_with<&flush_batch::run>(this, shared_from_this()));
        }
        plain_vector<marked_connection> marked;
        {
            std::lock_guard<std::mutex> lock(mutex_);
            closed_ = true; // sends from now on (a close handler that broadcasts) start the next burst
            marked = std::move(items_);
        }
        std::size_t i = 0;
        try {
            for (; i < marked.size(); ++i) marked[i].flush(marked[i].connection.get());
        } catch (...) { // a user handler threw out of io.run(): the rest is flushed by the next burst
            for (++i; i < marked.size(); ++i) add(std::move(marked[i].connection), marked[i].flush, *io_);
            throw;
        }
        marked.clear();
        spare() = std::move(marked);
    }
    std::mutex mutex_;
    plain_vector<marked_connection> items_; // guarded by mutex_
    bool closed_ = false;                   // guarded by mutex_
    bool yielded_ = false;
    asio::io_context* const io_;
};

// What TCP connections read into: one buffer per thread, used only between a
// read and the end of its handlers (messages are views into it meanwhile).
inline std::uint8_t* thread_read_buffer(std::size_t size) {
    thread_local std::unique_ptr<std::uint8_t[]> buffer;
    thread_local std::size_t capacity = 0;
    if (capacity < size) {
        buffer.reset(new (std::nothrow) std::uint8_t[size]);
        capacity = buffer ? size : 0;
    }
    return buffer.get(); // null when out of memory
}

// Read buffers of busy connections, reused: a connection that goes idle gives
// its buffer back, one that gets busy takes one (no allocation once warm).
// A plain array, not a vector of pairs: every file that uses a server compiles this.
struct read_buffer_pool {
    static std::unique_ptr<std::uint8_t[]> take(std::size_t size) {
        kept& k = list();
        for (std::size_t i = k.count; i-- > 0;) {
            if (k.sizes[i] != size) continue;
            std::unique_ptr<std::uint8_t[]> b = std::move(k.buffers[i]);
            --k.count;
            k.buffers[i] = std::move(k.buffers[k.count]); // the last one fills the gap
            k.sizes[i] = k.sizes[k.count];
            return b;
        }
        return std::unique_ptr<std::uint8_t[]>(new (std::nothrow) std::uint8_t[size]); // null: out of memory
    }
    static void give(std::unique_ptr<std::uint8_t[]> buffer, std::size_t size) {
        kept& k = list();
        if (k.count == max_kept) return; // freed
        k.buffers[k.count] = std::move(buffer);
        k.sizes[k.count++] = size;
    }

private:
    static constexpr std::size_t max_kept = 64;
    struct kept {
        std::unique_ptr<std::uint8_t[]> buffers[max_kept];
        std::size_t sizes[max_kept] = {};
        std::size_t count = 0;
    };
    static kept& list() {
        thread_local kept free;
        return free;
    }
};

// The io_context executor inside `ex` (a pointer into it, valid while ex is),
// when it is one (not a strand) and this thread is running it now.
inline const asio::io_context::executor_type* io_thread_executor(const asio::any_io_executor& ex) noexcept {
    const auto* e = ex.target<asio::io_context::executor_type>();
    return e && e->running_in_this_thread() ? e : nullptr;
}
inline const asio::io_context::executor_type* io_thread_executor(asio::any_io_executor&&) = delete; // would dangle
template <class Executor>
const asio::io_context::executor_type* io_thread_executor(const Executor&) noexcept { return nullptr; }

// The io_context under `ex`, when `ex` is a strand and this thread is running
// that io_context now.
inline asio::io_context* strand_thread_context(const asio::any_io_executor& ex) noexcept {
    const auto* s = ex.target<asio::strand<asio::io_context::executor_type>>();
    if (!s) return nullptr;
    const auto io = s->get_inner_executor();
    return io.running_in_this_thread() ? &io.context() : nullptr;
}
template <class Executor>
asio::io_context* strand_thread_context(const Executor&) noexcept { return nullptr; }
} // namespace detail

/// One WebSocket connection (server or client side) over `Transport`; always owned by a
/// shared_ptr. User code gets it from the server's or client's handlers. Sends, close,
/// buffered_amount, stats and ready_state may be called from any thread; handlers run on
/// get_executor() (the connection's strand, or the io_context of a one-thread server).
template <role R, class Transport>
class basic_connection : public std::enable_shared_from_this<basic_connection<R, Transport>> {
    static_assert(is_transport_v<Transport>, "Transport does not meet the contract in duplex/transport/transport.hpp");

public:
    using transport_type = Transport;               ///< the byte stream under the connection
    using protocol_type = basic_protocol<R>;        ///< its sans-I/O state machine
    using config_type = endpoint_config<basic_connection>; ///< handlers shared with the endpoint
    using clock = std::chrono::steady_clock;        ///< the clock of every timeout

    /// Made by the server or client (with make_shared); nothing runs until start_accept/start_connect.
    basic_connection(Transport transport, std::shared_ptr<const config_type> config)
        : transport_(std::move(transport)),
          config_(config.get()),
          protocol_(std::shared_ptr<const connection_options>(config, &config->connection)),
          deadline_(this, transport_.get_executor()) {}

    basic_connection(const basic_connection&) = delete;            ///< not copyable
    basic_connection& operator=(const basic_connection&) = delete; ///< not assignable

    // ---- what user code calls (any thread) -----------------------------
    //
    // Every send* and ping queues frames and returns at once; a write then follows on
    // the connection's executor (a server's message of 16 KiB or more, sent from one of
    // its own handlers with nothing queued, is written at once instead: no copy).
    // They fail with errc::not_open during the opening
    // handshake, errc::closed once close() was called (or a close frame sent) or the
    // connection closed, and errc::send_queue_full when the queue holds bytes and this
    // message would take it past connection_options::send_queue_limit (with
    // backpressure_policy::close the connection is then failed with 1008 as well).

    /// CONNECTING, OPEN, CLOSING or CLOSED, like the browser's readyState (any thread).
    duplex::ready_state ready_state() const noexcept { return protocol_.state(); }

    /// Queues a text message (the caller ensures UTF-8); the send* errors above.
    std::error_code send_text(std::string_view text) { return send_message(opcode::text, text.data(), text.size()); }
    /// Queues a binary message of `size` bytes from `data`; the send* errors above.
    std::error_code send_binary(const void* data, std::size_t size) { return send_message(opcode::binary, data, size); }
    /// Queues a binary message; the send* errors above.
    std::error_code send_binary(std::string_view data) { return send_binary(data.data(), data.size()); }
    /// Queues a message of type `op` (opcode::text or opcode::binary); the send* errors
    /// above, and errc::expected_continuation while a send_fragment() message is unfinished.
    std::error_code send(opcode op, std::string_view data) { return send_message(op, data.data(), data.size()); }
    /// Sends a received message back out with its own type (text or binary); errors as send(op, data).
    std::error_code send(const message& m) { return send(m.op, m.data); }
    /// Sends a frame encoded once for many connections (see hub.hpp); errors as send(op, data).
    std::error_code send(std::shared_ptr<const prepared_message> m) { return after_send(protocol_.send(std::move(m))); }
    /// Sends one fragment of a message; `fin` ends it (RFC 6455 §5.4); the send* errors above.
    std::error_code send_fragment(opcode op, std::string_view data, bool fin) {
        return after_send(protocol_.send_fragment(op, data.data(), data.size(), fin));
    }
    /// Queues a ping (the pong goes to on_pong); errc::control_too_long past 125 bytes,
    /// errc::not_open / errc::closed as for sends.
    std::error_code ping(std::string_view payload = {}) { return after_send(protocol_.ping(payload)); }
    /// Round-trip time of the last of our pings the peer answered: the heartbeat's (after
    /// ping_interval of silence) or measure_latency()'s; zero before the first. From any
    /// thread; in on_pong it already counts that pong.
    std::chrono::microseconds latency() const noexcept { return protocol_.latency(); }
    /// Pings now to update latency(), for a connection too busy for the heartbeat to ping
    /// (it pings only quiet ones). errc::not_open / errc::closed as for sends.
    std::error_code measure_latency() { return after_send(protocol_.measure_latency()); }

    /// Starts the closing handshake; during the opening handshake, abandons it: a client
    /// gets on_error, then on_close with 1006. Called from another thread just as the
    /// handshake completes, the connection may open first (on_open runs): it is then
    /// closed with this code and reason.
    /// errc::bad_close_code for a code that may not be sent (RFC 6455 §7.4), errc::closed
    /// when a close was already sent or the connection is closed.
    std::error_code close(std::uint16_t code = close_code::normal, std::string_view reason = {}) {
        if (code != close_code::no_status && !is_valid_close_code(code)) return make_error_code(errc::bad_close_code);
        if (protocol_.state() == duplex::ready_state::connecting) {
            // Rare: one small block carries the code and reason to this connection's thread.
            auto request = std::make_shared<abandon_request>(abandon_request{this->shared_from_this(), code, std::string(reason)});
            asio::post(transport_.get_executor(), detail::completion{std::move(request), [](void* p, std::error_code, std::size_t) {
                           auto* req = static_cast<abandon_request*>(p);
                           req->self->on_abandoned(req->code, req->reason);
                       }});
            return {};
        }
        auto ec = protocol_.close(code, reason);
        if (!ec) schedule(true);
        return ec;
    }

    /// Bytes queued but not yet written, like the browser's bufferedAmount.
    std::size_t buffered_amount() const { return protocol_.buffered_amount(); }

    /// Calls `handler(std::error_code)` once buffered_amount() <= low_water: with no error
    /// at once if it already is (even while CONNECTING), else when a write brings it there,
    /// or with the error that ended the connection (errc::closed after a clean close, else
    /// the failure, e.g. errc::connection_lost) if it closes first or has closed. Any
    /// thread; the handler always runs on get_executor(), posted (never inside this call
    /// or a send). Returns an id for cancel_wait_drained(), or 0 when it completed at once.
    /// Costs nothing while no one waits.
    template <class Handler>
    std::uint64_t async_wait_drained(std::size_t low_water, Handler&& handler) {
        drain_handler h(std::forward<Handler>(handler));
        {
            // Under the lock on_write() takes: a write that ends after this check sees us.
            std::lock_guard<send_mutex> lock(protocol_.mutex());
            if (!drains_) drains_.emplace();
            if (!end_ && protocol_.queue().buffered_amount() > low_water) return drains_->wait(low_water, std::move(h));
            drains_->complete(std::move(h), end_);
        }
        post_drained();
        return 0;
    }

    /// Completes the async_wait_drained() wait `id`, if it still waits, with
    /// asio::error::operation_aborted (posted, like any completion); false if it does not
    /// wait any more. Any thread.
    bool cancel_wait_drained(std::uint64_t id) {
        {
            std::lock_guard<send_mutex> lock(protocol_.mutex());
            if (!drains_ || !drains_->cancel(id, asio::error::operation_aborted)) return false;
        }
        post_drained();
        return true;
    }

    /// The subprotocol agreed in the handshake, or empty.
    const std::string& subprotocol() const noexcept { return subprotocol_.get(); }
    /// The upgrade request (server side), from the handshake to the end of on_open (its
    /// views point into bytes the connection then frees); for the connection's life with
    /// server_options::keep_request. Empty afterwards and on a client. Call it on
    /// get_executor(): copy what later handlers need (path, a cookie) into user_data().
    const http_request& request() const noexcept {
        static const http_request none;
        return hs_ ? hs_->request : none;
    }
    /// Client: the server's answer to the upgrade request (status, reason, headers: e.g. a
    /// redirect's Location), from when it came until the connection opens, and for good
    /// when it refused the upgrade (then in on_error and on_close). Empty otherwise.
    const http_response& response() const noexcept {
        static const http_response none;
        return hs_ ? hs_->response : none;
    }
    /// Messages and bytes so far (any thread).
    connection_stats stats() const noexcept { return protocol_.stats(); }
    /// Why the opening handshake failed, if it did (then the connection never opened).
    std::error_code handshake_error() const noexcept { return opened_ ? std::error_code{} : end_; }
    /// The peer's "address:port", for logs and per-client limits; in every handler,
    /// on_close included (the socket closes after it). Behind a load balancer
    /// speaking the PROXY protocol (server_options::proxy_protocol), the client's address
    /// as the balancer reported it; transport().remote_address() is then the balancer's.
    std::string remote_address() const { return proxied_ ? peer_.get() : transport_.remote_address(); }

    /// Per-connection storage for the application.
    std::any& user_data() noexcept { return user_data_; }

    /// The transport (e.g. for socket options); use it only on get_executor(), and do not
    /// read, write or close through it behind the connection's back.
    Transport& transport() noexcept { return transport_; }
    /// The protocol state machine, read-only (options(), close_sent(), was_clean(), ...).
    const protocol_type& protocol() const noexcept { return protocol_; }
    /// The executor the connection's handlers and I/O run on (its strand, or the
    /// io_context's executor on a one-thread server): co_spawn or post there.
    auto get_executor() { return transport_.get_executor(); }

    // ---- started by the server or client --------------------------------

    /// Server: reads and answers the upgrade request, then runs the connection.
    void start_accept() {
        if (config_->on_log) peer_.assign(transport_.remote_address()); // still known when the socket is gone
        hs_.emplace();
        start_handshake_timer();
        if constexpr (detail::has_socket<Transport>::value)
            if (config_->proxy_protocol) return wait_proxy_header();
        transport_.async_start(R, then<&basic_connection::on_started>());
    }

    /// Client: sends the upgrade request and checks the answer.
    void start_connect() {
        if (config_->on_log) peer_.assign(transport_.remote_address());
        hs_.emplace();
        start_handshake_timer();
        transport_.async_start(R, then<&basic_connection::on_started>());
    }

private:
    // What each asynchronous operation completes with (see detail/completion.hpp):
    // (this->*Step)(ec, n), with the connection kept alive until then.
    template <void (basic_connection::*Step)(std::error_code, std::size_t)>
    detail::completion then() { return detail::complete_with<Step>(this, this->shared_from_this()); }

    // ---- PROXY protocol header (server_options::proxy_protocol) -------------
    //
    // It comes before TLS and HTTP, on the TCP socket. Its bytes are peeked, and only
    // those that belong to it are then taken from the socket: all of them while it is
    // incomplete, up to its end once complete. So TLS or HTTP starts on the next byte,
    // whichever transport reads it. Asio's wait re-arms the socket in epoll (no edge
    // is lost), and it uses the wait operation TCP reads compile anyway.

    void wait_proxy_header() {
        transport_.socket().async_wait(asio::socket_base::wait_read, then<&basic_connection::on_proxy_header_readable>());
    }
    void on_proxy_header_readable(std::error_code ec, std::size_t) {
        if (closed_ || !hs_) return;
        if (ec) return finish(ec);
        auto& socket = transport_.socket();
        std::string& bytes = hs_->head; // its first proxy_bytes are the header's so far
        bytes.resize(proxy_protocol_max_size);
        const std::size_t have = hs_->proxy_bytes;
        socket.non_blocking(true, ec);
        const std::size_t n =
            ec ? 0 : socket.receive(asio::mutable_buffer(&bytes[have], bytes.size() - have), asio::socket_base::message_peek, ec);
        if (ec == asio::error::would_block) return wait_proxy_header();
        if (ec) return finish(ec);
        proxy_protocol_header header;
        const std::size_t size = parse_proxy_protocol({bytes.data(), have + n}, header, ec);
        if (ec) {
            {
                std::lock_guard<send_mutex> lock(protocol_.mutex()); // end_ is read under it
                end_ = ec; // the server counts it among refused handshakes
            }
            log(log_level::info, "connection refused: " + ec.message());
            return finish(ec); // no answer: what came speaks neither PROXY nor HTTP to us
        }
        const std::size_t take = (size != 0 ? size : have + n) - have;
        if (socket.receive(asio::mutable_buffer(&bytes[have], take), 0, ec) != take || ec)
            return finish(ec ? ec : make_error_code(errc::internal_error));
        hs_->proxy_bytes = have + take;
        if (size == 0) return wait_proxy_header();
        bytes.clear();
        if (!header.local) {
            peer_.assign(proxy_source_string(header));
            proxied_ = true;
        }
        transport_.async_start(R, then<&basic_connection::on_started>());
    }

    // ---- opening handshake ---------------------------------------------

    void on_started(std::error_code ec, std::size_t) {
        if (ec) return finish(ec);
        if constexpr (R == role::server) read_handshake();
        else send_client_request();
    }
    // close() during the opening handshake. Called from another thread, it may have
    // seen CONNECTING just before the handshake completed here: an open connection is
    // then closed with the closing handshake and the caller's code, not cut.
    struct abandon_request {
        std::shared_ptr<basic_connection> self;
        std::uint16_t code;
        std::string reason;
    };
    void on_abandoned(std::uint16_t code, std::string_view reason) {
        if (closed_) return;
        if (protocol_.state() == duplex::ready_state::connecting) return finish(make_error_code(errc::closed));
        if (!protocol_.close(code, reason)) after_io();
    }

    void read_handshake() { read_next(read_target::handshake); }

    void on_handshake_read(std::error_code ec, std::uint8_t* data, std::size_t n) {
        if (ec) return finish(ec);
        if (closed_ || !hs_) return;
        try {
            on_handshake_bytes(data, n);
        } catch (const std::bad_alloc&) { // no memory for this handshake: it fails, the server goes on
            finish(make_error_code(errc::internal_error));
        }
    }

    void on_handshake_bytes(const std::uint8_t* data, std::size_t n) {
        std::string& bytes = hs_->head;
        bytes.append(reinterpret_cast<const char*>(data), n);
        // The scanner looks at each byte once (a head dribbled in byte by byte
        // costs O(n)); the full parse runs once the head is complete.
        std::error_code perr;
        std::size_t head_size = 0;
        if constexpr (R == role::server) {
            head_size = hs_->scanner.scan(bytes, perr, config_->limits);
            // Refuse at once what cannot become a request line (a TLS hello on
            // ws://, binary noise) instead of waiting for the timeout.
            if (!perr && head_size == 0 && !plausible_method(bytes)) perr = make_error_code(errc::bad_http_request);
            if (head_size != 0) {
                const std::string_view head(bytes.data(), head_size);
                // Kept for life: room for its fields (a line each, at most the limit) and no
                // more, made before parsing (shrink_to_fit compiled ~35 functions more).
                if (config_->keep_request) {
                    std::size_t lines = 0;
                    for (char ch : head) lines += ch == '\n';
                    hs_->request.fields.reserve(std::min(lines > 2 ? lines - 2 : 0, config_->limits.max_header_count));
                }
                head_size = parse_request(head, hs_->request, perr, config_->limits);
            }
        } else {
            // The final answer; interim ones (100 Continue, 103 Early Hints) before the
            // 101 are read past.
            head_size = scan_final_response(bytes, hs_->scanner, hs_->response, perr, config_->limits);
        }
        if (perr) {
            if constexpr (R == role::server) return reject(perr, http_status_for(static_cast<errc>(perr.value())), {});
            else return finish(perr);
        }
        if (head_size == 0) return read_handshake();
        if constexpr (R == role::server) answer_request(head_size);
        else check_response(head_size);
    }

    void answer_request(std::size_t head_size) {
        const http_request& req = hs_->request;
        if (!is_websocket_request(req)) {
            std::string out;
            if (config_->on_http) {
                http_reply reply;
                config_->on_http(req, reply);
                if (!write_http_response(out, reply.status, reply.content_type, reply.body, &reply.headers))
                    write_error_response(out, 500, "invalid response header\n");
            } else {
                write_error_response(out, 426, "This is a WebSocket endpoint.\n");
            }
            return respond_and_close(out);
        }
        if (auto ec = check_upgrade_request(req))
            return reject(ec, http_status_for(static_cast<errc>(ec.value())), {});
        // One Origin (RFC 6454 §7.3): with two, a proxy and we could read different ones.
        if (!config_->allowed_origins.empty() && (req.header_count("Origin") > 1 || !origin_allowed(req.origin())))
            return reject(make_error_code(errc::forbidden_origin), 403, "Origin not allowed\n");

        handshake_decision decision;
        decision.subprotocol = std::string(select_subprotocol(req, config_->subprotocols));
        if (config_->on_handshake) config_->on_handshake(*this, req, decision);
        if (!decision.accepted) return reject(make_error_code(errc::rejected), decision.status, decision.body, &decision.headers);
        if (!decision.subprotocol.empty() && !offered(decision.subprotocol)) // §4.2.2: one the client offered
            return reject(make_error_code(errc::bad_subprotocol), 500, "handshake hook chose a subprotocol the client did not offer\n");

        subprotocol_.assign(decision.subprotocol);
        const std::string extensions = negotiate_extensions();
        std::string out;
        if (!write_accept_response(out, req.header("Sec-WebSocket-Key"), subprotocol(), extensions, &decision.headers))
            return reject(make_error_code(errc::rejected), 500, "invalid handshake response header\n");
        open(out, head_size);
    }

    // Server: accept the client's first acceptable permessage-deflate offer
    // (RFC 7692 §5.1); returns the Sec-WebSocket-Extensions answer, or empty.
    std::string negotiate_extensions() {
        std::string answer;
#if DUPLEX_HAS_DEFLATE
        if (!config_->connection.deflate.enabled) return answer;
        std::error_code ec;
        const auto offers = parse_extensions(hs_->request, ec);
        deflate_params params;
        if (!ec && negotiate(offers, config_->connection.deflate, params, answer)) protocol_.enable_deflate(params);
        else answer.clear(); // a malformed header: decline every extension
#endif
        return answer;
    }

    void send_client_request() {
        mask_generator random;
        std::array<std::uint8_t, 16> nonce{};
        random.fill(nonce.data(), nonce.size());
        hs_->key = make_client_key(nonce);
        const client_request_options* request = &config_->request;
#if DUPLEX_HAS_DEFLATE
        client_request_options with_offer;
        if (config_->connection.deflate.enabled && request->extensions.empty()) {
            with_offer = *request;
            with_offer.extensions = make_offer(config_->connection.deflate);
            request = &with_offer;
        }
#endif
        hs_->extensions_offered = !request->extensions.empty();
        std::string out;
        if (!write_client_request(out, *request, hs_->key)) return finish(make_error_code(errc::bad_url));
        queue_raw(out);
        flush();
        if (!closed_) read_handshake(); // flush() may have cut it (out of memory)
    }

    void check_response(std::size_t head_size) {
        std::string chosen;
        if (auto ec = check_upgrade_response(hs_->response, hs_->key, config_->request.subprotocols,
                                             hs_->extensions_offered, &chosen))
            return finish(ec);
#if DUPLEX_HAS_DEFLATE
        if (hs_->extensions_offered) { // RFC 7692 §5: the client fails on anything it did not offer
            std::error_code ec;
            const auto answer = parse_extensions(hs_->response, ec);
            deflate_params params;
            if (!ec) ec = accept_response(answer, config_->connection.deflate, params);
            if (ec) return finish(make_error_code(errc::bad_extension));
            if (params.enabled) protocol_.enable_deflate(params);
        }
#endif
        subprotocol_.assign(chosen);
        open({}, head_size);
    }

    // The handshake succeeded: queue the 101 (server), go OPEN, tell the
    // application, then treat the bytes after the head as frames.
    void open(std::string_view response, std::size_t head_size) {
        if (!response.empty()) queue_raw(response);
        const auto now = clock::now();
        protocol_.open(now);
        opened_ = true;
        rearm_timer(); // from the handshake deadline to the heartbeat's
        std::string rest = hs_->head.substr(head_size);
        {
            handler_scope scope(this);
            if (config_->on_open) config_->on_open(*this);
            // Open connections keep nothing of the handshake (unless asked to keep the request).
            if (R == role::server && config_->keep_request) hs_->head.resize(head_size); // the views stay valid
            else hs_.reset();
            if (!rest.empty()) {
                event_adapter adapter{*this};
                protocol_.receive(reinterpret_cast<std::uint8_t*>(rest.data()), rest.size(), adapter, now);
            }
        }
        after_io();
        if (!closed_) read_frames();
    }

    void reject(std::error_code ec, int status, std::string_view body, const header_list* headers = nullptr) {
        std::string out;
        if (!write_error_response(out, status, body.empty() ? std::string_view(ec.message()) : body, headers))
            write_error_response(out, 500, "invalid response header\n");
        {
            std::lock_guard<send_mutex> lock(protocol_.mutex()); // end_ is read under it
            end_ = ec; // the application never sees it; the server counts it
        }
        log(log_level::info, "handshake refused with " + std::to_string(status) + ": " + ec.message());
        respond_and_close(out);
    }

    void respond_and_close(std::string_view response) {
        queue_raw(response);
        close_after_flush_ = true;
        flush();
    }

    // The bytes so far start like "METHOD SP": a token, then a space.
    static bool plausible_method(std::string_view head) noexcept {
        for (char c : head) {
            if (c == ' ') return true;
            if (!detail::is_tchar(c)) return false;
        }
        return head.size() <= 32; // no method is longer
    }

    bool offered(const std::string& subprotocol) const {
        const std::vector<std::string> only{subprotocol};
        return !select_subprotocol(hs_->request, only).empty();
    }

    bool origin_allowed(std::string_view origin) const {
        for (const auto& o : config_->allowed_origins)
            if (o == origin) return true;
        return false;
    }

    void queue_raw(std::string_view bytes) {
        std::lock_guard<send_mutex> lock(protocol_.mutex());
        std::memcpy(protocol_.queue().append(bytes.size()), bytes.data(), bytes.size());
    }

    // ---- frames ------------------------------------------------------------

    struct event_adapter {
        basic_connection& c;
        void on_message(opcode op, std::string_view data, bool last) {
            if (c.config_->on_message) c.config_->on_message(c, message{op, data, last});
        }
        void on_ping(std::string_view p) {
            if (c.config_->on_ping) c.config_->on_ping(c, p);
        }
        void on_pong(std::string_view p) {
            c.arm_timer(); // the next ping is now ping_interval away, maybe before pong_timeout
            if (c.config_->on_pong) c.config_->on_pong(c, p);
        }
        void on_close_frame(std::uint16_t, std::string_view) {}
        void on_protocol_error(std::error_code ec) { c.report_error(ec); }
    };

    // Marks this connection's handlers as running so sends wait for one flush.
    struct handler_scope {
        const void* saved;
        explicit handler_scope(const void* c) : saved(detail::flushing_after_handler) { detail::flushing_after_handler = c; }
        ~handler_scope() { detail::flushing_after_handler = saved; }
    };

    // What the pending read completes into: a byte, not a 16-byte member-function
    // pointer, in every connection.
    enum class read_target : std::uint8_t { handshake, frames, discard };
    using read_handler = void (basic_connection::*)(std::error_code, std::uint8_t*, std::size_t);
    read_handler after_read() const noexcept {
        switch (read_target_) {
        case read_target::frames: return &basic_connection::on_read;
        case read_target::discard: return &basic_connection::on_discarded;
        default: return &basic_connection::on_handshake_read;
        }
    }

    // Calls the target's handler (ec, data, n) once bytes came. TCP on Linux waits
    // for readability, then reads into its thread's buffer, busy or idle (except inside
    // a large frame, below). With other transports a busy connection reads into a
    // buffer of its own (from a per-thread pool), with Asio's speculative read; an
    // idle one, with a transport that can wait for readability, gives it back and
    // waits. Idle connections cost a few hundred bytes, not a page.
    void read_next(read_target next) {
        read_target_ = next;
        if constexpr (detail::has_scatter_read<Transport>::value) {
            // Inside a large frame: its payload is read into the message it belongs
            // to, and only what follows (the next frame's header and first bytes)
            // into a small part of the read buffer, so that most of each large
            // frame is never copied (64 KiB echo: memmove 20.6% of the CPU -> under 2%).
            // Only while bytes come fast (busy_): a connection stalled inside a large
            // frame waits without a read buffer, its message holding at most about twice
            // what came (the room reserved for the next read, at most 256 KiB). Asio's
            // speculative read, even over TCP on Linux: more of the frame is usually
            // there already (waiting for its edge first cost 9% of the 64 KiB echo).
            if (next == read_target::frames && busy_) {
                const auto place = protocol_.placed_read(placed_read_min, config_->connection.read_buffer_size);
                if (place.first) {
                    if (!read_buf_ && !take_read_buffer()) return cut(errc::internal_error); // out of memory
                    const std::array<asio::mutable_buffer, 2> buffers{
                        asio::buffer(place.first, place.second),
                        asio::buffer(read_buf_.get(), std::min<std::size_t>(read_size_, placed_read_spill))};
                    transport_.async_read_some(buffers, then<&basic_connection::on_read_placed>());
                    return;
                }
            }
        }
        if constexpr (detail::has_wait_readable<Transport>::value) {
            // TCP on Linux (read_park.hpp): one recv per batch of bytes, where Asio's
            // speculative read makes two.
            if (detail::waits_every_read<Transport>::value || (!busy_ && detail::can_wait_readable(transport_))) {
                if (read_buf_) detail::read_buffer_pool::give(std::move(read_buf_), read_size_);
                transport_.async_wait_readable(then<&basic_connection::on_readable>());
                return;
            }
        }
        if constexpr (!detail::waits_every_read<Transport>::value) {
            if (!read_buf_ && !take_read_buffer()) return cut(errc::internal_error); // out of memory
            transport_.async_read_some(asio::buffer(read_buf_.get(), read_size_), then<&basic_connection::on_read_some>());
        }
    }

    bool take_read_buffer() {
        // No read buffer is 4 GiB: the size fits in 32 bits (fewer bytes per connection).
        read_size_ = static_cast<std::uint32_t>(std::min<std::size_t>(config_->connection.read_buffer_size, 0xffffffffu));
        read_buf_ = detail::read_buffer_pool::take(read_size_);
        return static_cast<bool>(read_buf_);
    }
    // Placed reads: below this many bytes left in a frame a copy costs less than
    // the read that would save it; the spill holds what follows the frame.
    static constexpr std::size_t placed_read_min = 4096;
    static constexpr std::size_t placed_read_spill = 1024;

    void on_readable(std::error_code ec, std::size_t) {
        std::uint8_t* data = nullptr;
        std::size_t n = 0;
        if constexpr (detail::has_wait_readable<Transport>::value) { // only they wait for readability
            if (!ec && !closed_) {
                const std::size_t size = config_->connection.read_buffer_size;
                data = detail::thread_read_buffer(size);
                if (!data) return cut(errc::internal_error); // out of memory
                n = transport_.read_some_now(asio::buffer(data, size), ec);
                if (ec == asio::error::would_block || ec == asio::error::try_again) return read_next(read_target_);
            }
        }
        (this->*after_read())(ec, data, n);
    }
    void on_read_some(std::error_code ec, std::size_t n) { (this->*after_read())(ec, read_buf_.get(), n); }

    void read_frames() { read_next(read_target::frames); }

    void on_read(std::error_code ec, std::uint8_t* data, std::size_t n) { on_frames_read(ec, data, n, 0); }
    void on_read_placed(std::error_code ec, std::size_t n) {
        const std::size_t size = protocol_.placed_read_size(config_->connection.read_buffer_size); // as at the start
        const std::size_t placed = n < size ? n : size;
        on_frames_read(ec, read_buf_.get(), n - placed, placed);
    }
    // `placed` bytes were read into place (placed_read()), then `n` into data.
    void on_frames_read(std::error_code ec, std::uint8_t* data, std::size_t n, std::size_t placed) {
        if (closed_) return;
        if (ec) return finish(ec);
        const auto now = clock::now();
        busy_ = read_once_ && now - protocol_.last_received() < busy_window; // the previous read's time
        read_once_ = true;
        try {
            handler_scope scope(this);
            event_adapter adapter{*this};
            if (placed > 0) protocol_.receive_placed(placed, adapter, now);
            if (n > 0) protocol_.receive(data, n, adapter, now);
        } catch (const std::bad_alloc&) {
            // No memory for this connection's message: it fails with 1011;
            // the process and the other connections carry on.
            const auto oom = make_error_code(errc::internal_error);
            protocol_.fail_connection(oom);
            report_error(oom);
        }
        after_io();
        if (!closed_) read_frames();
    }

    // After reading or a handler: write what was queued, close if done, and
    // move the timer if the state changed.
    void after_io() {
        if (closed_) return;
        flush();
        if (protocol_.state() != duplex::ready_state::open) {
            if (protocol_.may_close_transport()) return end_transport();
            arm_timer();
        }
    }

    // A large message sent from this connection's own handler, with nothing
    // queued, is written at once from the caller's bytes (no copy into the
    // queue); others are queued and flushed after the handler.
    static constexpr std::size_t write_through_min = 16 * 1024;
    std::error_code send_message(opcode op, const void* data, std::size_t size) {
        if constexpr (R == role::server && detail::has_try_write<Transport>::value) {
            if (size >= write_through_min && detail::flushing_after_handler == this && !closed_) {
                return after_send(protocol_.send_through(op, data, size,
                    [this](const std::uint8_t* header, std::size_t header_size, const void* payload, std::size_t n) {
                        const std::array<asio::const_buffer, 2> b{asio::buffer(header, header_size), asio::buffer(payload, n)};
                        std::error_code ec;
                        const std::size_t written = transport_.try_write_some(b, ec);
                        return ec ? std::size_t(0) : written;
                    }));
            }
        }
        return after_send(protocol_.send(op, data, size));
    }

    std::error_code after_send(std::error_code ec) {
        if (!ec) schedule(false);
        else if (ec == errc::send_queue_full) schedule(true); // a close frame may be queued
        return ec;
    }

    // Makes sure queued frames get written: right after the running handler if
    // it is this connection's; from an io thread, with the next batch of flushes
    // (run there on a one-thread server, posted to the strands otherwise);
    // from any other thread, through one posted flush.
    void schedule(bool state_changed) {
        if (detail::flushing_after_handler == this && !state_changed) return;
        if (flush_posted_.exchange(true, std::memory_order_acq_rel)) return;
        const auto ex = transport_.get_executor(); // io points into it
        if (config_->one_thread) {
            if (const auto* io = detail::io_thread_executor(ex))
                return detail::flush_batch::add(this->shared_from_this(), [](void* c) { static_cast<basic_connection*>(c)->run_posted_flush(); }, io->context());
        } else if (auto* io = detail::strand_thread_context(ex)) {
            return detail::flush_batch::add(this->shared_from_this(), [](void* c) { static_cast<basic_connection*>(c)->post_flush(); }, *io);
        }
        post_flush();
    }
    void on_flush_posted(std::error_code, std::size_t) { run_posted_flush(); }

    void post_flush() { asio::post(transport_.get_executor(), then<&basic_connection::on_flush_posted>()); }

public:
    // For the flush batch (and the posted flush): writes what was queued.
    void run_posted_flush() {
        flush_posted_.store(false, std::memory_order_release);
        after_io();
    }
    // For the deadline service: the deadline expired; handled on this connection's executor.
    static void on_deadline(std::shared_ptr<void> self) {
        auto* c = static_cast<basic_connection*>(self.get());
        asio::post(c->transport_.get_executor(), detail::complete_with<&basic_connection::on_timer>(c, std::move(self)));
    }

private:
    void flush() {
        if (closed_) return;
        std::size_t total = 0;
        try {
            std::lock_guard<send_mutex> lock(protocol_.mutex());
            send_queue& q = protocol_.queue();
            if (q.writing() || !q.has_pending()) return;
            write_buffers_.clear();
            write_buffers_.reserve(q.pending_segments()); // may throw: before the queue changes
            const send_queue::batch& b = q.begin_write();
            for (const auto& s : b.segments) write_buffers_.push_back(b.data(s), s.size);
            total = b.total;
        } catch (const std::bad_alloc&) {
            // No memory to describe the write: nothing queued can go out, not even a
            // close frame, so the connection is cut (1006); the others carry on.
            return cut(errc::internal_error);
        }
        if constexpr (detail::has_try_write<Transport>::value) {
            // Most writes fit in the socket buffer at once: then no completion
            // handler runs. What is left waits for the socket to drain.
            std::error_code ec;
            const std::size_t n = transport_.try_write_some(write_buffers_.span(), ec);
            if (!ec && n == total) return on_write({});
            if (ec && ec != asio::error::would_block && ec != asio::error::try_again) return on_write(ec);
            write_buffers_.consume(n);
        }
        transport_.async_write_some(write_buffers_.span(), then<&basic_connection::on_wrote_some>());
    }

    // A loop of write_some rather than asio::async_write: the buffers are ours
    // to consume, and there is no composed operation to compile.
    void on_wrote_some(std::error_code ec, std::size_t n) {
        if (!ec && n == 0) ec = make_error_code(errc::connection_lost); // no progress: would loop forever
        if (!ec) {
            write_buffers_.consume(n);
            if (!write_buffers_.empty())
                return transport_.async_write_some(write_buffers_.span(), then<&basic_connection::on_wrote_some>());
        }
        on_write(ec);
    }

    void on_write(std::error_code ec) {
        bool more = false;
        bool drain_waiting = false;
        bool close_now = false;
        {
            std::lock_guard<send_mutex> lock(protocol_.mutex());
            protocol_.queue().end_write();
            more = protocol_.queue().has_pending();
            drain_waiting = drains_ && drains_->any_waiting(); // all the hot path pays for async_wait_drained
            close_now = protocol_.should_close_transport_locked();
        }
        if (closed_) return;
        if (ec) return finish(ec);
        if (drain_waiting) wake_drained();
        if (more) return flush();
        if (release_when_idle_) release_send_buffers();
        if (close_after_flush_ || close_now) return end_transport();
    }

    // Everything we had to say is written. After a clean close handshake the
    // transport is closed at once (the server closes TCP first, §7.1.1). After
    // we failed the connection or refused a handshake, the peer may still be
    // sending: closing now would make the kernel answer with a reset that can
    // destroy our close frame or HTTP error before it is read. So half-close,
    // read and discard until the peer closes, bounded by close_timeout.
    void end_transport() {
        const bool clean = !close_after_flush_ && protocol_.close_received();
        if (clean || protocol_.state() == duplex::ready_state::closed) return finish({});
        if (lingering_) return;
        lingering_ = true;
        transport_.shutdown_send();
        const auto deadline = detail::later(clock::now(), config_->connection.close_timeout);
        if (!timer_armed_ || timer_expiry_ > deadline) start_timer_at(deadline);
        if (close_after_flush_) discard_reads(); // the frame read loop is not running yet
    }

    void discard_reads() { read_next(read_target::discard); }
    void on_discarded(std::error_code ec, std::uint8_t*, std::size_t) {
        if (closed_) return;
        if (ec) return finish({});
        discard_reads();
    }

    // ---- time ------------------------------------------------------------------

    void start_timer_at(clock::time_point t) {
        timer_armed_ = true;
        timer_expiry_ = t;
        deadline_.set(t, transport_.get_executor());
    }

    void start_handshake_timer() {
        if (config_->connection.handshake_timeout.count() > 0) // zero disables it
            start_timer_at(detail::later(clock::now(), config_->connection.handshake_timeout));
    }

    void rearm_timer() {
        const auto t = protocol_.next_deadline();
        if (t != clock::time_point::max()) return start_timer_at(t);
        timer_armed_ = false;
        deadline_.clear();
    }

    void arm_timer() {
        if (closed_) return;
        const auto t = protocol_.next_deadline();
        if (t == clock::time_point::max()) return;
        if (timer_armed_ && timer_expiry_ <= t) return; // fires first; re-armed then
        start_timer_at(t);
    }

    void on_timer(std::error_code, std::size_t) {
        // An expiry posted before the deadline was moved or cleared is stale.
        if (closed_ || !timer_armed_ || deadline_.pending()) return;
        timer_armed_ = false;
        const auto now = clock::now();
        if (protocol_.state() == duplex::ready_state::connecting) {
            if (lingering_) return finish({}); // a refused handshake's peer never closed
            if (now >= timer_expiry_) return finish(make_error_code(errc::handshake_timeout));
            return start_timer_at(timer_expiry_);
        }
        // finish() reports the first failure (e.g. send_queue_full rather than
        // the close_timeout that followed it); an idle timeout is a normal 1001 close.
        const tick_result r = protocol_.tick(now);
        if (r.abort) return finish(r.ec, true); // the peer stopped reading or answering: don't leave its bytes in the kernel
        after_io();
        arm_timer();
        // Once per tick (a heartbeat interval, typically) the send buffers go back as
        // soon as nothing is left to write: an idle connection holds none, a busy one
        // pays one allocation per interval.
        release_when_idle_ = true;
        release_send_buffers();
    }

    void release_send_buffers() {
        std::lock_guard<send_mutex> lock(protocol_.mutex());
        send_queue& q = protocol_.queue();
        if (q.writing() || q.has_pending()) return; // on_write() comes back here
        q.release_buffers();
        write_buffers_.release();
        release_when_idle_ = false;
    }

    // ---- waiting for the send queue to drain -----------------------------------

    using drain_handler = detail::drain_waiters::handler;

    // Runs the completed waits' handlers, posted (never inside the call that completed them).
    void post_drained() { asio::post(transport_.get_executor(), then<&basic_connection::on_drained>()); }
    void on_drained(std::error_code, std::size_t) {
        while (true) {
            detail::drain_waiters::node* n;
            {
                std::lock_guard<send_mutex> lock(protocol_.mutex());
                n = drains_->pop_ready();
            }
            if (!n) return;
            try {
                detail::drain_waiters::run(n);
            } catch (...) { // out of io.run(): the others run on the next post
                post_drained();
                throw;
            }
        }
    }

    // After a write: completes the waiters whose low-water mark the queue is at or
    // under now (a send from another thread since then only delays them to the
    // next write, which the bytes it queued will get).
    void wake_drained() {
        {
            std::lock_guard<send_mutex> lock(protocol_.mutex());
            if (!drains_ || !drains_->wake(protocol_.queue().buffered_amount())) return;
        }
        post_drained();
    }

    // ---- the end ---------------------------------------------------------------

    void log(log_level level, std::string_view what, std::error_code ec = {}) const noexcept {
        detail::log_to(config_->on_log, level, {peer_.get(), ": ", what}, ec);
    }

    void report_error(std::error_code ec) {
        if (error_reported_) return;
        error_reported_ = true;
        log(ec == condition::protocol_violation ? log_level::warning : log_level::info, {}, ec);
        if (config_->on_error) config_->on_error(*this, ec);
    }

    // Ends the connection at once for a failure that leaves nothing to write (out of
    // memory), reported as that failure (on_error), then on_close with 1006.
    void cut(errc e) {
        const auto ec = make_error_code(e);
        if (protocol_.state() != duplex::ready_state::connecting) protocol_.record_failure(ec);
        finish(ec);
    }

    // Ends the connection once: reports on_error for an unclean end (if not reported
    // yet) and on_close with the code, like a browser, then closes the transport (cuts
    // it with a reset when `cut`: a peer that stopped reading). The protocol is CLOSED
    // before the handlers run, so nothing more is sent; the socket closes after them,
    // so that remote_address() still answers in on_close.
    void finish(std::error_code ec, bool cut = false) {
        if (closed_) return;
        closed_ = true;
        timer_armed_ = false;
        deadline_.clear();
        auto self = this->shared_from_this(); // keep alive through the callbacks and the close
        struct close_at_exit { // also when a handler throws
            Transport& t;
            bool cut;
            ~close_at_exit() {
                if constexpr (detail::has_abort<Transport>::value) {
                    if (cut) {
                        t.abort();
                        return;
                    }
                }
                t.close();
            }
        } closing{transport_, cut};
        const bool was_open = protocol_.state() != duplex::ready_state::connecting;
        std::error_code failure = protocol_.transport_closed();
        // Drain waiters get the error on_error reports (for a failed handshake, why it
        // failed), or errc::closed for a clean end; so does every async_wait_drained()
        // from now on.
        bool drains = false;
        {
            std::lock_guard<send_mutex> lock(protocol_.mutex());
            if (!was_open) {
                if (!end_) end_ = ec && ec != asio::error::eof ? ec : make_error_code(errc::connection_lost);
            }
            else if (failure && failure != errc::idle_timeout) end_ = failure;
            else if (ec && ec != asio::error::eof && ec != asio::error::operation_aborted) end_ = ec;
            else end_ = make_error_code(errc::closed);
            if (drains_ && drains_->any_waiting()) {
                drains_->end(end_);
                drains = true;
            }
        }
        if (drains) post_drained();
        if (!was_open) {
            // A client learns why its handshake failed; a server's application
            // never saw this connection.
            if constexpr (R == role::client) {
                report_error(ec ? ec : make_error_code(errc::connection_lost));
                if (config_->on_close) config_->on_close(*this, close_code::abnormal, refusal_reason());
            }
        } else {
            if (failure && failure != errc::idle_timeout) report_error(failure);
            else if (ec && ec != asio::error::eof && ec != asio::error::operation_aborted) report_error(ec);
            if (config_->on_close) config_->on_close(*this, protocol_.close_status_code(), protocol_.close_status_reason());
        }
        if (config_->on_detach) config_->on_detach(*this);
    }

    Transport transport_;
    const config_type* config_; // kept alive by protocol_'s options pointer, which shares its ownership
    protocol_type protocol_;
    detail::deadline deadline_; // this connection's entry in its io_context's deadline heap
    clock::time_point timer_expiry_{};

    std::unique_ptr<std::uint8_t[]> read_buf_; // only while busy (TCP) or always (other transports)
    // Reads this close together make a connection busy: it keeps a buffer and
    // reads speculatively (one syscall per read instead of a wait and a read).
    static constexpr std::chrono::milliseconds busy_window{10};
    detail::buffer_list write_buffers_;
    std::atomic<bool> flush_posted_{false};
    bool timer_armed_ = false;
    bool opened_ = false;         // the handshake succeeded
    read_target read_target_ = read_target::handshake; // what the pending read completes into
    bool read_once_ = false;      // a frame read happened (the first one is never busy)
    bool busy_ = false;
    // Give the send buffers back once the queue is empty: after the handshake (most
    // connections then idle for a while) and after each timer tick.
    bool release_when_idle_ = true;
    bool close_after_flush_ = false; // an HTTP answer: the connection ends after it
    bool lingering_ = false;         // half-closed, waiting for the peer to close
    bool closed_ = false;
    bool error_reported_ = false;
    bool proxied_ = false; // peer_ is the client's address from a PROXY protocol header
    std::uint32_t read_size_ = 0; // read_buf_'s size (the pool matches sizes)

    // A client's on_close reason when the handshake failed: "HTTP 401 Unauthorized" when
    // the server answered with another status than 101 (its number and the standard
    // phrase, never the server's own text), "TLS: hostname mismatch" (OpenSSL's words)
    // when the server's certificate was refused, else "handshake failed".
    std::string refusal_reason() const {
        if constexpr (detail::has_verify_error<Transport>::value)
            if (std::string why = transport_.verify_error(); !why.empty()) return "TLS: " + why;
        const int status = response().status;
        if (end_ != errc::bad_status || status == 0) return "handshake failed";
        std::string out = "HTTP " + std::to_string(status);
        if (const std::string_view phrase = http_reason_phrase(status); !phrase.empty()) (out += ' ').append(phrase);
        return out;
    }

    // The opening handshake, only while it runs (on a server with keep_request,
    // the request for life): open connections do not pay for its bytes.
    struct handshake_state {
        std::string head;          // the head so far; request's views point into it
        http_head_scanner scanner;
        http_request request;      // server
        http_response response;    // client
        std::string key;           // client: the Sec-WebSocket-Key sent
        bool extensions_offered = false; // client: whether it offered any
        std::size_t proxy_bytes = 0;     // server: the PROXY header's bytes taken so far (in head)
    };
    detail::owned<handshake_state> hs_;
    detail::rare_string subprotocol_;
    detail::rare_string peer_; // the remote address, kept for log messages (only with on_log), or proxied_
    std::any user_data_;

    // async_wait_drained(): guarded by protocol_.mutex() (the lock on_write takes),
    // made on the first wait (most connections never wait).
    detail::owned<detail::drain_waiters> drains_;
    // Why the connection ended (set by finish(); by reject() for a refused handshake):
    // later waits complete with it at once, and before opening it is handshake_error().
    // Guarded by protocol_.mutex().
    std::error_code end_;
};

} // namespace duplex
