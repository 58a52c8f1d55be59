// A WebSocket client shaped like the browser's WebSocket object, on an
// asio::io_context that the application owns.
//
//   asio::io_context io;
//   duplex::client ws(io);
//   ws.on_open([&] { ws.send_text("hello"); });
//   ws.on_message([&](const duplex::message& m) { std::cout << m.text() << "\n"; ws.close(); });
//   ws.on_close([](std::uint16_t code, std::string_view reason) { /* 1000 = clean */ });
//   ws.on_error([](std::error_code ec) { std::cerr << ec.message() << "\n"; });
//   ws.connect_or_throw("ws://127.0.0.1:9001/"); // wss:// too when built with DUPLEX_HAS_TLS
//   io.run();
//
// Through an HTTP proxy: client_options::proxy. Reconnecting by itself, with backoff:
// client_options::reconnect (each automatic attempt reports as a connect() does).
//
// Events, like a browser's: on_open once the handshake succeeded; on_message per
// message; on_error when the connection fails (then on_close follows); on_close
// exactly once per connect() that returned success, with the peer's close code,
// the code duplex failed the connection with (1002, 1007, 1009, ...), or 1006 when
// it dropped or never opened.
// Handlers run on the io_context, one at a time (a strand), never inside connect()
// or close().
//
// Threads and lifetime: send*, ping, close, buffered_amount and ready_state may be
// called from any thread. connect() and the destructor must not race with this
// client's handlers: call them from a handler, or while no other thread runs the
// io_context. Once the destructor has run no handler of this client is called; an
// open connection is then closed with 1001 (going away) in the background, as a
// browser does when a page goes away.
#pragma once
#include "detail/instantiate.hpp"
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <asio/strand.hpp>

#include "connection/connection.hpp"
#include "core/proxy.hpp"
#include "detail/connect_race.hpp"
#include "transport/tcp.hpp"
#include "url.hpp"
#if DUPLEX_HAS_TLS
#include "transport/tls.hpp"
#endif

namespace duplex {

/// Reconnecting by itself after a connection ends (off by default), as a web page
/// reopens its WebSocket: exponential backoff with jitter.
struct reconnect_options {
    /// On: a connection that ends without this client's close() (or destructor) is
    /// followed, after a wait, by a new connect() to the same URL with the same options.
    bool enabled = false;
    /// The wait before the first new attempt; it doubles with each attempt that does
    /// not open, up to max_delay, and starts over once a connection opens. Each wait is
    /// drawn between half of that and all of it, so that the clients of a restarted
    /// server do not all come back in the same moment. At least 1 ms.
    std::chrono::milliseconds initial_delay{1000};
    /// The longest wait (at least initial_delay).
    std::chrono::milliseconds max_delay{30000};
    /// Attempts in a row that do not open before the client gives up (its last
    /// on_close is then the last event); 0: no limit.
    unsigned max_attempts = 0;
};

namespace detail {
/// The wait before reconnect attempt `attempt` (1, 2, ...): initial_delay doubled
/// attempt - 1 times, at most max_delay, then scaled into [half, all] by `random`.
inline std::chrono::milliseconds reconnect_delay(const reconnect_options& r, unsigned attempt, std::uint32_t random) noexcept {
    const std::int64_t initial = std::max<std::int64_t>(1, r.initial_delay.count());
    const std::int64_t most = std::max<std::int64_t>(initial, r.max_delay.count());
    std::int64_t d = initial;
    for (unsigned i = 1; i < attempt && d < most; ++i) d *= 2;
    d = std::min(d, most);
    const std::int64_t half = d / 2;
    return std::chrono::milliseconds(d - half + static_cast<std::int64_t>(random % static_cast<std::uint64_t>(half + 1)));
}
} // namespace detail

/// What connect() uses besides the URL.
struct client_options {
    /// Limits, heartbeat and timeouts of the connection (see options.hpp).
    connection_options connection;
    /// Resolve + TCP connect + TLS + opening handshake, all together; 0: no limit
    /// (connection.handshake_timeout still bounds the handshake). Fails with
    /// errc::handshake_timeout.
    std::chrono::milliseconds connect_timeout{10000};
    /// When a host has several addresses: how long one TCP attempt may stay
    /// pending before the next address is tried beside it ("Happy Eyeballs",
    /// RFC 8305 §5, which recommends 250 ms). Families alternate, a failed
    /// attempt starts the next at once, the first to connect wins. 0: one
    /// address at a time, each until it fails; otherwise at least 10 ms (§5).
    std::chrono::milliseconds connect_attempt_delay{250};
    /// Offered in Sec-WebSocket-Protocol, in preference order; see client::subprotocol().
    std::vector<std::string> subprotocols;
    /// Origin header (browsers send the page's origin); empty: none.
    std::string origin;
    /// More request header fields, e.g. {"Authorization", "Bearer ..."}.
    header_list headers;
    /// Reach the server through a proxy: "http://host:port" (HTTP CONNECT, RFC 9110
    /// §9.3.6) or "socks5://host:port" (SOCKS5, RFC 1928; the proxy resolves the server's
    /// name), with "user:password@" before the host for credentials (Basic for HTTP,
    /// RFC 1929 for SOCKS5; see parse_proxy_url). The handshake, and TLS end to end for
    /// wss://, then run through the tunnel. Empty (default): connect directly;
    /// environment variables are not read. A refusal is errc::proxy_refused (or what a
    /// SOCKS5 proxy names: connection refused, host unreachable, ...),
    /// errc::proxy_auth_required when credentials are missing or wrong;
    /// connect_timeout covers the proxy's answers too.
    std::string proxy;
    /// HTTP proxies: more fields for the CONNECT request, e.g. a Proxy-Authorization of
    /// another scheme.
    header_list proxy_headers;
    /// Automatic reconnect with backoff (off by default); see reconnect_options.
    reconnect_options reconnect;
    /// Redirects followed per connect(): answers 301, 302, 303, 307 and 308 with a
    /// Location (RFC 6455 §4.1 lets a client follow them; see resolve_redirect for what
    /// it may name). 0, the default, does as browsers do: a redirect fails with
    /// errc::bad_status. Past the limit: errc::too_many_redirects; a Location that is no
    /// usable URL, or leaves wss:// for ws://: errc::bad_redirect. Nothing is reported
    /// for a redirect followed; url() then names where the client went. To another
    /// host, port or scheme, Authorization and Cookie fields of `headers` are not sent.
    unsigned max_redirects = 0;
#if DUPLEX_HAS_TLS
    /// wss:// only: check the server's certificate (default) or not.
    tls_verify verify = tls_verify::peer;
    /// wss:// only: the TLS context (e.g. with a private CA loaded); null: a shared
    /// context with the system's CA store.
    std::shared_ptr<asio::ssl::context> tls_context;
#endif
};

/// A browser-like WebSocket client; one connection at a time (connect() again once CLOSED).
class client {
public:
#if DUPLEX_HAS_TLS
    using transport_type = tls_or_tcp_transport; ///< ws:// or wss://, chosen per connect()
#else
    using transport_type = tcp_transport;        ///< ws:// only (built without TLS)
#endif
    /// The connection behind the client (see connection_ptr()).
    using connection = basic_connection<role::client, transport_type>;

    /// A client whose handlers and I/O run on `io` (which must outlive it); not connected yet.
    explicit client(asio::io_context& io) : strand_(asio::make_strand(io)) {}
    client(const client&) = delete;            ///< not copyable
    client& operator=(const client&) = delete; ///< not assignable
    /// No handler runs after this; an open connection is closed with 1001 in the background.
    ~client() {
        std::shared_ptr<attempt> a = current();
        if (!a) return;
        a->owner.store(nullptr);
        a->reconnect_pending = false;
        asio::post(a->strand, [a] { a->abandon(); });
    }

    // ---- handlers: set them before connect() ----------------------------------

    /// The handshake succeeded: the state is OPEN and sends work.
    client& on_open(std::function<void()> f) { on_open_ = std::move(f); return *this; }
    /// The message's bytes are valid during the call only (copy with m.str()).
    client& on_message(std::function<void(const message&)> f) {
        on_message_ = f ? std::make_shared<const std::function<void(const message&)>>(std::move(f)) : nullptr;
        return *this;
    }
    /// Once per successful connect(): the peer's close code and reason, the code duplex
    /// failed the connection with (1002, 1007, 1009, ...), or 1006 when it dropped or never opened.
    client& on_close(std::function<void(std::uint16_t code, std::string_view reason)> f) { on_close_ = std::move(f); return *this; }
    /// Why the connection failed (errc::*, an Asio/TLS error); on_close follows.
    client& on_error(std::function<void(std::error_code)> f) { on_error_ = std::move(f); return *this; }
    /// A pong arrived (e.g. answering ping()).
    client& on_pong(std::function<void(std::string_view)> f) { on_pong_ = std::move(f); return *this; }
    /// With client_options::reconnect: reconnect attempt `attempt` (1, 2, ... since the
    /// last open connection) starts after `delay`. Called right after on_close; close()
    /// from here (or any time during the wait) stops reconnecting.
    client& on_reconnecting(std::function<void(unsigned attempt, std::chrono::milliseconds delay)> f) {
        on_reconnecting_ = std::move(f);
        return *this;
    }

    // ---- connecting ---------------------------------------------------------------

    /// Starts connecting to a ws:// (or, with DUPLEX_HAS_TLS, wss://) URL; the state is
    /// CONNECTING from here on. Returns an error, and starts nothing, when the URL is
    /// bad (errc::bad_url), wss:// is used without TLS support (errc::tls_unavailable),
    /// options.proxy is not a proxy URL (errc::bad_proxy_url), the options cannot make
    /// a valid request (invalid_argument), or a connection is
    /// still CONNECTING/OPEN/CLOSING or has not reported on_close yet, e.g. when called
    /// from on_error (operation_in_progress: reconnect from on_close). Everything later
    /// is reported through on_error / on_close.
    [[nodiscard]] std::error_code connect(std::string_view address, client_options options = {}) {
        const std::error_code ec = start(address, std::move(options));
        if (!ec) reconnects_ = 0; // a new series of automatic attempts
        return ec;
    }
    /// Throwing overload: duplex::error / std::system_error for what connect() returns.
    void connect_or_throw(std::string_view address, client_options options = {}) {
        throw_if(connect(address, std::move(options)));
    }

    // ---- the browser's WebSocket API ------------------------------------------------

    /// 0 CONNECTING, 1 OPEN, 2 CLOSING, 3 CLOSED (also before the first connect()).
    duplex::ready_state ready_state() const {
        auto a = current();
        return a ? a->state() : duplex::ready_state::closed;
    }
    // Sends queue the message and return at once (any thread). They fail with
    // errc::not_open while CONNECTING, errc::closed once closing, closed or before the
    // first connect(), and errc::send_queue_full past connection_options::send_queue_limit
    // (with backpressure_policy::close the connection is then failed with 1008 too).

    /// Queues a text message (the caller ensures UTF-8); the send errors above.
    std::error_code send_text(std::string_view text) { return with_connection([&](connection& c) { return c.send_text(text); }); }
    /// Queues a binary message of `size` bytes from `data`; the send errors above.
    std::error_code send_binary(const void* data, std::size_t size) { return with_connection([&](connection& c) { return c.send_binary(data, size); }); }
    /// Queues a binary message; the send errors above.
    std::error_code send_binary(std::string_view data) { return send_binary(data.data(), data.size()); }
    /// Queues a message of type `op` (text or binary); the send errors above, and
    /// errc::expected_continuation while a send_fragment() message is unfinished.
    std::error_code send(opcode op, std::string_view data) { return with_connection([&](connection& c) { return c.send(op, data); }); }
    /// Sends a message with its own type (e.g. echoes a received one); errors as send(op, data).
    std::error_code send(const message& m) { return send(m.op, m.data); }
    /// One fragment of a message; `fin` ends it (RFC 6455 §5.4); the send errors above.
    std::error_code send_fragment(opcode op, std::string_view data, bool fin) {
        return with_connection([&](connection& c) { return c.send_fragment(op, data, fin); });
    }
    /// Queues a ping (the answer goes to on_pong); errc::control_too_long past 125 bytes,
    /// errc::not_open / errc::closed as for sends.
    std::error_code ping(std::string_view payload = {}) { return with_connection([&](connection& c) { return c.ping(payload); }); }
    /// Round-trip time of the last of our pings the server answered (connection::latency());
    /// zero before the first, and for a new connection after a reconnect.
    std::chrono::microseconds latency() const {
        auto c = connection_ptr();
        return c ? c->latency() : std::chrono::microseconds(0);
    }
    /// Pings now to update latency() (connection::measure_latency()).
    std::error_code measure_latency() { return with_connection([](connection& c) { return c.measure_latency(); }); }

    /// Starts the closing handshake; while CONNECTING, abandons the connection
    /// (on_error, then on_close with 1006; should the handshake complete first, on_open
    /// runs and the connection is closed with this code). errc::bad_close_code for a code
    /// that may not be sent; errc::closed when already closing or closed.
    std::error_code close(std::uint16_t code = close_code::normal, std::string_view reason = {}) {
        if (code != close_code::no_status && !is_valid_close_code(code)) return make_error_code(errc::bad_close_code);
        std::shared_ptr<attempt> a;
        {
            // Under the lock that start() takes to replace the attempt: a reconnect
            // either sees this and stops, or has made the new attempt that this closes.
            std::lock_guard<std::mutex> lock(mutex_);
            a = current_;
            if (a) a->user_closed = true; // no automatic reconnect after this connection
        }
        if (!a) return make_error_code(errc::closed);
        if (attempt::stop_waiting(a)) return {};
        if (auto c = a->get()) return c->close(code, reason);
        if (a->state() == duplex::ready_state::closed) return make_error_code(errc::closed);
        asio::post(a->strand, [a, code, reason = std::string(reason)] { a->cancel(code, reason); });
        return {};
    }

    /// Bytes queued but not yet written (the browser's bufferedAmount).
    std::size_t buffered_amount() const {
        auto c = connection_ptr();
        return c ? c->buffered_amount() : 0;
    }
    /// The subprotocol the server chose, or empty.
    std::string subprotocol() const {
        auto c = connection_ptr();
        return c && c->ready_state() != duplex::ready_state::connecting ? c->subprotocol() : std::string();
    }
    /// The URL of the last connect(), in normal form.
    std::string url() const {
        auto a = current();
        return a ? a->target.str() : std::string();
    }
    /// The underlying connection once TCP is up (null before), for advanced use.
    std::shared_ptr<connection> connection_ptr() const {
        auto a = current();
        return a ? a->get() : nullptr;
    }

private:
    // connect() without resetting the count of automatic attempts. An automatic one
    // passes the attempt it follows (`resuming`), and starts nothing if that is no longer
    // the current one or close() was called meanwhile, maybe from another thread.
    std::error_code start(std::string_view address, client_options options, const void* resuming = nullptr) {
        duplex::url u;
        if (auto ec = parse_url(address, u)) return ec;
#if !DUPLEX_HAS_TLS
        if (u.secure) return make_error_code(errc::tls_unavailable);
#endif
        // Until on_close has come (even from inside on_error, CLOSED already): on_close
        // comes once per successful connect(), so the next attempt starts from it.
        if (auto a = current(); a && (a->state() != duplex::ready_state::closed || !a->close_reported))
            return std::make_error_code(std::errc::operation_in_progress);
        client_request_options request;
        request.subprotocols = options.subprotocols;
        request.origin = options.origin;
        request.headers = options.headers;
        proxy_url proxy;
        if (!options.proxy.empty())
            if (auto ec = parse_proxy_url(options.proxy, proxy)) return ec;
        if (auto ec = aim(request, u, options, proxy)) return ec;

        auto a = std::make_shared<attempt>(strand_, this, std::move(u), std::move(options), std::move(request),
                                           std::move(proxy));
        std::shared_ptr<attempt> old;
        {
            std::lock_guard<std::mutex> lock(mutex_);
            if (resuming != nullptr && (current_.get() != resuming || current_->user_closed)) return {};
            old = std::exchange(current_, a);
        }
        if (old) { // a closed connection: forget it, and a reconnect it waited for
            old->owner.store(nullptr);
            attempt::stop_waiting(old);
        }
        asio::post(a->strand, [a] { a->start(); });
        return {};
    }

    // Points `request` at `u`, and checks that the upgrade request (and the proxy's, if
    // any) can be written: invalid_argument otherwise.
    static std::error_code aim(client_request_options& request, const duplex::url& u, const client_options& options,
                               const proxy_url& proxy) {
        request.host = u.host_header();
        request.target = u.target;
        std::string probe;
        if (!write_client_request(probe, request, "dGhlIHNhbXBsZSBub25jZQ=="))
            return std::make_error_code(std::errc::invalid_argument);
        if (!proxy.host.empty()) {
            const bool valid = proxy.socks5 ? write_socks5_connect(probe, u.host, u.port) // a name up to 255 bytes
                                            : write_connect_request(probe, u.host, u.port, proxy.username,
                                                                    proxy.password, &options.proxy_headers);
            if (!valid) return std::make_error_code(std::errc::invalid_argument);
        }
        return {};
    }

    // One connect(): resolve, TCP connect, then a basic_connection does TLS and the
    // handshake. Everything here runs on `strand`; handlers reach the client through
    // `owner`, which the client's destructor clears.
    struct attempt : std::enable_shared_from_this<attempt> {
        attempt(asio::strand<asio::io_context::executor_type> s, client* c, duplex::url u, client_options o,
                client_request_options r, proxy_url p)
            : strand(s), owner(c), target(std::move(u)), requested(target.str()), options(std::move(o)),
              request(std::move(r)), proxy(std::move(p)), resolver(s), timer(s), socket(s) {}

        asio::strand<asio::io_context::executor_type> strand;
        std::atomic<client*> owner;
        duplex::url target;    // where this attempt connects (after redirects)
        std::string requested; // the URL given to connect(): reconnects go there again
        client_options options;
        client_request_options request;
        proxy_url proxy; // host empty: none
        asio::ip::tcp::resolver resolver;
        asio::steady_timer timer;
        asio::ip::tcp::socket socket; // until the connection takes it
        std::shared_ptr<detail::connect_race> race; // while TCP connects
        std::string tunnel; // through a proxy: the CONNECT request, then the answer as it comes
        std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max();
        bool failed = false;          // ended before a connection existed
        std::atomic<bool> close_reported{false}; // on_close is running or ran: connect() may start anew
        std::atomic<bool> user_closed{false};    // close() was called: no automatic reconnect
        std::atomic<bool> reconnect_pending{false}; // `timer` waits to reconnect
        unsigned redirects = 0;      // followed so far (client_options::max_redirects)
        bool redirect_pending = false; // on_close of this connection starts one to next_target
        duplex::url next_target;

        mutable std::mutex mutex;
        std::shared_ptr<connection> conn;

        std::shared_ptr<connection> get() const {
            std::lock_guard<std::mutex> lock(mutex);
            return conn;
        }
        duplex::ready_state state() const {
            std::lock_guard<std::mutex> lock(mutex);
            if (conn) return conn->ready_state();
            return failed ? duplex::ready_state::closed : duplex::ready_state::connecting;
        }

        void start() {
            if (failed) return;
            if (options.connect_timeout.count() > 0) {
                if (deadline == std::chrono::steady_clock::time_point::max()) // redirects: the same one
                    deadline = detail::later(std::chrono::steady_clock::now(), options.connect_timeout);
                timer.expires_at(deadline);
                timer.async_wait([self = this->shared_from_this()](std::error_code ec) {
                    // Expired just as TCP connected (too late to cancel): the
                    // connection's own handshake timer has taken over.
                    if (!ec && !self->get()) self->fail(make_error_code(errc::handshake_timeout));
                });
            }
            const bool via_proxy = !proxy.host.empty();
            resolver.async_resolve(via_proxy ? proxy.host : target.host, std::to_string(via_proxy ? proxy.port : target.port),
                [self = this->shared_from_this()](std::error_code ec, asio::ip::tcp::resolver::results_type results) {
                    if (self->failed) return;
                    if (ec) return self->fail(ec);
                    std::vector<asio::ip::tcp::endpoint> endpoints;
                    for (const auto& r : results) endpoints.push_back(r.endpoint());
                    // The race's handler holds the attempt weakly: the attempt holds the race,
                    // and the client (or the posted abandon()) keeps the attempt alive.
                    std::weak_ptr<attempt> weak = self;
                    self->race = std::make_shared<detail::connect_race>(
                        self->strand, detail::interleave_families(std::move(endpoints)),
                        self->options.connect_attempt_delay, [weak](std::error_code ec2, asio::ip::tcp::socket s) {
                            const auto a = weak.lock();
                            if (!a) return;
                            a->race.reset();
                            if (a->failed) return;
                            if (ec2) return a->fail(ec2);
                            a->socket = std::move(s);
                            if (a->proxy.host.empty()) a->open_connection();
                            else a->open_tunnel();
                        });
                    self->race->start();
                });
        }

        // TCP to the proxy is up: ask it for a tunnel to the server.
        void open_tunnel() {
            tunnel.clear();
            if (proxy.socks5) {
                write_socks5_greeting(tunnel, !proxy.username.empty());
                return tunnel_send(tunnel_step::socks5_method, 2);
            }
            write_connect_request(tunnel, target.host, target.port, proxy.username, proxy.password, &options.proxy_headers);
            tunnel_send(tunnel_step::http_answer);
        }

        // The tunnel's I/O: `tunnel` is written whole, then the answer for `step` is read
        // into it: an HTTP proxy's a piece at a time (never past its head: nothing else
        // may come before the client speaks), a SOCKS5 proxy's to its exact length. One
        // handler type and the plain read_some/write_some for every step: a lambda per
        // step with Asio's async_read/async_write compiled 326 functions more into every
        // file that includes the client (examples/echo_client.cpp: 8,458 against 8,132).
        enum class tunnel_step : std::uint8_t { http_answer, socks5_method, socks5_password, socks5_reply_head, socks5_reply_rest };
        struct tunnel_io {
            std::shared_ptr<attempt> self;
            void operator()(std::error_code ec, std::size_t n) const { self->on_tunnel_io(ec, n); }
        };
        tunnel_step step = tunnel_step::http_answer;
        bool writing = false;
        std::size_t done = 0;        // bytes of `tunnel` written, or of the answer read
        std::size_t answer_size = 0; // SOCKS5: the answer's length
        http_head_scanner scanner;   // HTTP: what of the answer it has seen

        void tunnel_send(tunnel_step next, std::size_t size = 0) {
            step = next;
            answer_size = size;
            writing = true;
            done = 0;
            tunnel_io_next();
        }
        void tunnel_receive(tunnel_step next, std::size_t size) { // SOCKS5: exactly `size` bytes
            step = next;
            writing = false;
            done = 0;
            tunnel.assign(size, '\0');
            tunnel_io_next();
        }
        void tunnel_io_next() {
            if (writing) return socket.async_write_some(asio::buffer(&tunnel[done], tunnel.size() - done), tunnel_io{this->shared_from_this()});
            if (step == tunnel_step::http_answer) tunnel.resize(done + 512);
            socket.async_read_some(asio::buffer(&tunnel[done], tunnel.size() - done), tunnel_io{this->shared_from_this()});
        }
        void on_tunnel_io(std::error_code ec, std::size_t n) {
            if (failed) return;
            if (ec) return fail(!writing && ec == asio::error::eof ? make_error_code(errc::proxy_refused) : ec);
            done += n;
            if (writing) {
                if (done < tunnel.size()) return tunnel_io_next();
                if (step != tunnel_step::http_answer) return tunnel_receive(step, answer_size);
                writing = false; // the HTTP answer: read from an empty buffer
                done = 0;
                tunnel.clear();
                return tunnel_io_next();
            }
            if (step == tunnel_step::http_answer) {
                tunnel.resize(done);
                return on_http_answer();
            }
            if (done < tunnel.size()) return tunnel_io_next();
            on_socks5_answer();
        }

        void on_http_answer() {
            http_response answer;
            std::error_code ec;
            const std::size_t head = scan_final_response(tunnel, scanner, answer, ec); // past interim answers
            if (ec == errc::bad_http_response) ec = make_error_code(errc::bad_proxy_response);
            if (!ec && head != 0) ec = check_connect_response(answer);
            if (!ec && head != 0 && tunnel.size() != head) ec = make_error_code(errc::bad_proxy_response); // bytes before we spoke
            if (ec) return fail(ec);
            if (head != 0) return tunnel_open();
            done = tunnel.size(); // interim answers may have gone
            tunnel_io_next();
        }

        // SOCKS5 (RFC 1928): the greeting (sent by open_tunnel), username/password if the
        // proxy asks for it (RFC 1929), then CONNECT.
        void on_socks5_answer() {
            const auto* b = reinterpret_cast<const std::uint8_t*>(tunnel.data());
            std::error_code ec;
            switch (step) {
            case tunnel_step::socks5_method: {
                bool send_password = false;
                ec = check_socks5_method(b, !proxy.username.empty(), send_password);
                if (ec) break;
                if (!send_password) return socks5_connect();
                tunnel.clear();
                write_socks5_password(tunnel, proxy.username, proxy.password);
                return tunnel_send(tunnel_step::socks5_password, 2);
            }
            case tunnel_step::socks5_password:
                ec = check_socks5_password_reply(b);
                if (ec) break;
                return socks5_connect();
            case tunnel_step::socks5_reply_head: {
                const std::size_t size = socks5_reply_size(b);
                ec = size == 0 ? make_error_code(errc::bad_proxy_response) : check_socks5_reply(b[1]);
                if (ec) break;
                return tunnel_receive(tunnel_step::socks5_reply_rest, size - 5); // the address the proxy bound: unused
            }
            case tunnel_step::socks5_reply_rest:
                return tunnel_open();
            case tunnel_step::http_answer:
                break;
            }
            fail(ec);
        }
        void socks5_connect() {
            tunnel.clear();
            std::error_code ec;
            const asio::ip::address ip = asio::ip::make_address(target.host, ec);
            if (ec) {
                write_socks5_connect(tunnel, target.host, target.port); // a name: the proxy resolves it
            } else if (ip.is_v4()) {
                const auto bytes = ip.to_v4().to_bytes();
                write_socks5_connect(tunnel, target.host, target.port, bytes.data(), bytes.size());
            } else {
                const auto bytes = ip.to_v6().to_bytes();
                write_socks5_connect(tunnel, target.host, target.port, bytes.data(), bytes.size());
            }
            tunnel_send(tunnel_step::socks5_reply_head, 5); // enough to know the reply's length
        }

        void tunnel_open() {
            std::string().swap(tunnel);
            open_connection();
        }

        // TCP is up (to the server, or through the proxy's tunnel): hand the socket to a
        // connection, which does TLS and the handshake.
        void open_connection() {
            auto config = std::make_shared<typename connection::config_type>();
            config->connection = options.connection;
            // The connection's handshake timer bounds what is left of connect_timeout.
            auto& limit = config->connection.handshake_timeout;
            if (limit.count() <= 0) limit = std::chrono::hours(24 * 365); // 0: no limit (options.hpp)
            if (deadline != std::chrono::steady_clock::time_point::max()) {
                const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
                limit = std::max(std::chrono::milliseconds(1), std::min(left, limit));
            }
            config->request = request;
            std::weak_ptr<attempt> weak = this->shared_from_this();
            config->on_open = [weak](connection&) {
                if (auto a = weak.lock())
                    if (client* c = a->owner.load()) c->reconnects_ = 0; // opened: the backoff starts over
                emit(weak, [](client& c) { return c.on_open_; });
            };
            config->on_message = [weak](connection&, const message& m) {
                // A reference to the handler, not a copy of it (no allocation per
                // message), that keeps it alive should it replace itself or destroy
                // the client.
                if (auto a = weak.lock())
                    if (client* c = a->owner.load())
                        if (auto f = c->on_message_) (*f)(m);
            };
            config->on_pong = [weak](connection&, std::string_view p) { emit(weak, [](client& c) { return c.on_pong_; }, p); };
            config->on_error = [weak](connection& c, std::error_code ec) {
                if (auto a = weak.lock(); a && ec == errc::bad_status && a->options.max_redirects != 0)
                    if (!(ec = a->take_redirect(c.response()))) return; // followed from on_close: no error
                emit(weak, [](client& cl) { return cl.on_error_; }, ec);
            };
            config->on_close = [weak](connection&, std::uint16_t code, std::string_view reason) {
                if (auto a = weak.lock(); a && a->redirect_pending) return a->follow_redirect();
                if (auto a = weak.lock()) a->close_reported = true;
                emit(weak, [](client& c) { return c.on_close_; }, code, reason);
                if (auto a = weak.lock()) a->after_close();
            };
            std::error_code ec;
            transport_type transport = make_transport(ec);
            if (ec) return fail(ec);
            timer.cancel(); // the connection's handshake timer takes over
            auto c = std::make_shared<connection>(std::move(transport), std::move(config));
            {
                std::lock_guard<std::mutex> lock(mutex);
                conn = c;
            }
            c->start_connect();
        }

        // A refused handshake (bad_status) that is a redirect to follow: no error when
        // it is (on_close then follows it), else why not.
        std::error_code take_redirect(const http_response& answer) {
            const int s = answer.status;
            if (s != 301 && s != 302 && s != 303 && s != 307 && s != 308) return make_error_code(errc::bad_status);
            if (redirects >= options.max_redirects) return make_error_code(errc::too_many_redirects);
            duplex::url next;
            if (auto ec = resolve_redirect(target, answer.header("Location"), next)) return ec;
#if !DUPLEX_HAS_TLS
            if (next.secure) return make_error_code(errc::tls_unavailable);
#endif
            const bool same_origin = next.secure == target.secure && next.host == target.host && next.port == target.port;
            if (!same_origin) { // credentials stay with the host they were meant for
                auto& h = request.headers;
                h.erase(std::remove_if(h.begin(), h.end(), [](const auto& f) {
                            return detail::iequals(f.first, "Authorization") || detail::iequals(f.first, "Cookie");
                        }), h.end());
            }
            if (auto ec = aim(request, next, options, proxy)) return ec;
            ++redirects;
            next_target = std::move(next);
            redirect_pending = true;
            return {};
        }
        // The redirected connection has ended (on_close, on the strand): a new one to
        // next_target, within the same connect() (CONNECTING all along).
        void follow_redirect() {
            redirect_pending = false;
            target = std::move(next_target);
            {
                std::lock_guard<std::mutex> lock(mutex);
                conn.reset();
            }
            asio::post(strand, [self = this->shared_from_this()] { self->start(); });
        }

        transport_type make_transport(std::error_code& ec) {
#if DUPLEX_HAS_TLS
            if (target.secure) {
                tls_transport t(std::move(socket), options.tls_context ? options.tls_context : default_tls_context());
                ec = t.set_client_host(target.host, options.verify);
                return transport_type(std::move(t));
            }
#endif
            (void)ec;
            return transport_type(tcp_transport(std::move(socket)));
        }

#if DUPLEX_HAS_TLS
        static std::shared_ptr<asio::ssl::context> default_tls_context() {
            static const auto ctx = std::make_shared<asio::ssl::context>(make_client_tls_context(true));
            return ctx;
        }
#endif

        // Ends the attempt before a connection exists, like a browser: error, then 1006.
        void fail(std::error_code ec) {
            if (auto c = get()) {
                if (c->ready_state() == duplex::ready_state::connecting) c->close(); // the connection reports
                return;
            }
            if (failed) return;
            {
                std::lock_guard<std::mutex> lock(mutex);
                failed = true;
            }
            std::error_code ignored;
            resolver.cancel();
            timer.cancel();
            if (race) race->cancel(); // closes its sockets and releases its handler
            race.reset();
            socket.close(ignored);
            auto weak = std::weak_ptr<attempt>(this->shared_from_this());
            emit(weak, [](client& c) { return c.on_error_; }, ec);
            close_reported = true;
            emit(weak, [](client& c) { return c.on_close_; }, std::uint16_t(close_code::abnormal), std::string_view("connection failed"));
            after_close();
        }

        // After on_close: with client_options::reconnect, a new connect() after a wait,
        // unless close() was called, connect() was called from on_close, the client is
        // gone or has tried max_attempts times in a row.
        void after_close() {
            client* c = owner.load();
            const reconnect_options& r = options.reconnect;
            if (c == nullptr || !r.enabled || user_closed || c->current().get() != this) return;
            if (r.max_attempts != 0 && c->reconnects_ >= r.max_attempts) return;
            const unsigned n = ++c->reconnects_;
            std::uint32_t random = 0;
            mask_generator().fill(reinterpret_cast<std::uint8_t*>(&random), sizeof random);
            const auto delay = detail::reconnect_delay(r, n, random);
            reconnect_pending = true;
            auto self = this->shared_from_this();
            emit(self, [](client& cl) { return cl.on_reconnecting_; }, n, delay); // may close(), connect(), destroy
            if (!reconnect_pending) return;
            timer.expires_after(delay);
            timer.async_wait([self](std::error_code ec) {
                if (ec || !self->reconnect_pending.exchange(false) || self->user_closed) return;
                if (client* cl = self->owner.load()) // cannot fail: the same URL and options
                    cl->start(self->requested, self->options, self.get());
            });
        }

        // close() from before the connection existed: ends the attempt, or closes
        // the connection made since with the caller's code (it may even be open).
        void cancel(std::uint16_t code, std::string_view reason) {
            if (auto c = get()) {
                const auto state = c->ready_state();
                if (state == duplex::ready_state::open || state == duplex::ready_state::connecting) c->close(code, reason);
                return;
            }
            fail(make_error_code(errc::closed));
        }

        // Stops a wait to reconnect, from any thread; true if there was one.
        static bool stop_waiting(const std::shared_ptr<attempt>& a) {
            if (!a->reconnect_pending.exchange(false)) return false;
            asio::post(a->strand, [a] { a->timer.cancel(); });
            return true;
        }

        // The client is gone: stop, reporting nothing (owner is null), and wait no longer.
        void abandon() {
            reconnect_pending = false;
            timer.cancel();
            cancel(close_code::going_away, {});
        }

        // Calls the client's handler picked by `pick` with `args`, if the client still
        // exists. The handler is copied first, so it may replace itself.
        template <class Pick, class... Args>
        static void emit(const std::weak_ptr<attempt>& weak, Pick pick, Args&&... args) {
            auto a = weak.lock();
            if (!a) return;
            client* c = a->owner.load();
            if (!c) return;
            if (auto f = pick(*c)) f(std::forward<Args>(args)...);
        }
    };

    std::shared_ptr<attempt> current() const {
        std::lock_guard<std::mutex> lock(mutex_);
        return current_;
    }

    template <class F>
    std::error_code with_connection(F&& f) {
        auto a = current();
        if (auto c = a ? a->get() : nullptr) return f(*c);
        return make_error_code(a && a->state() == duplex::ready_state::connecting ? errc::not_open : errc::closed);
    }

    // One strand for every connect(): the handlers of a connection and of the next
    // one (started from on_close, say) never run at the same time.
    asio::strand<asio::io_context::executor_type> strand_;
    mutable std::mutex mutex_;
    std::shared_ptr<attempt> current_;
    std::function<void()> on_open_;
    std::shared_ptr<const std::function<void(const message&)>> on_message_; // shared: see open_connection()
    std::function<void(std::uint16_t, std::string_view)> on_close_;
    std::function<void(std::error_code)> on_error_;
    std::function<void(std::string_view)> on_pong_;
    std::function<void(unsigned, std::chrono::milliseconds)> on_reconnecting_;
    unsigned reconnects_ = 0; // automatic attempts since the last open connection (on the strand)
};

} // namespace duplex

namespace duplex {
DUPLEX_INSTANTIATE(class basic_connection<role::client, client::transport_type>)
} // namespace duplex
