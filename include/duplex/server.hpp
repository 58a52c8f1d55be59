// A WebSocket server on an asio::io_context that the application owns.
//
//   asio::io_context io;
//   duplex::server server(io);
//   server.on_message([](auto& c, const duplex::message& m) { c.send(m); });
//   server.listen_or_throw(9001); // or: if (auto ec = server.listen(9001)) ...
//   io.run();
#pragma once
#include "detail/instantiate.hpp"
#include "detail/tally.hpp"
#include <cstdint>
#include <exception>
#include <stdexcept>
#include <functional>
#include <map>
#include <mutex>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>

#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/steady_timer.hpp>
#include <asio/strand.hpp>

#include "connection/connection.hpp"
#include "hub.hpp"
#include "transport/tcp.hpp"

namespace duplex {

namespace detail {
// The concurrency hint 1 is the application's promise that one thread runs
// this io_context (Asio elides its own cross-thread work for it too).
inline bool made_for_one_thread(asio::io_context& io) {
#if defined(ASIO_HAS_IOCP)
    (void)io;
    return false;
#else
    return asio::use_service<asio::detail::scheduler>(io).concurrency_hint() == ASIO_CONCURRENCY_HINT_1;
#endif
}

// The socket protocol a server accepts on for a transport: its protocol_type
// (tcp_transport, unix_transport), else TCP (TLS).
template <class Transport, class = void>
struct accept_protocol {
    using type = asio::ip::tcp;
};
template <class Transport>
struct accept_protocol<Transport, std::void_t<typename Transport::protocol_type>> {
    using type = typename Transport::protocol_type;
};
} // namespace detail

/// A server's counters: what is open now, and totals over its life.
struct server_stats {
    std::size_t open_connections = 0; ///< now, including those still in their handshake
    std::uint64_t accepted = 0;       ///< TCP (or Unix domain) connections accepted
    std::uint64_t refused = 0;        ///< answered 503 at max_connections
    connection_stats traffic;         ///< messages and payload bytes, open and closed connections
    std::map<std::uint16_t, std::uint64_t> closes_by_code;          ///< opened connections, by on_close code
    std::map<std::string, std::uint64_t> handshake_failures;        ///< refused upgrades, by reason
};

/// Server-wide settings; `connection` applies to every connection.
struct server_options {
    connection_options connection;
    /// Connections at once; past it new ones get 503 until one closes.
    std::size_t max_connections = 10000;
    /// Subprotocols this server speaks, in order of preference (§4.2.2).
    std::vector<std::string> subprotocols;
    /// Accept only these Origin values (Cross-Site WebSocket Hijacking defence); empty: any.
    std::vector<std::string> allowed_origins;
    /// Upgrade request limits (431 past them).
    http_limits limits;
    /// Keep each upgrade request for the connection's life, so that request() works in
    /// every handler, not only up to on_open. Costs its bytes and a 32-byte index entry
    /// per header field, per connection.
    bool keep_request = false;
    /// Behind a load balancer that speaks the PROXY protocol (HAProxy's `send-proxy` or
    /// `send-proxy-v2`, AWS NLB, nginx `proxy_protocol on`, Envoy, Traefik): every
    /// connection must start with its header, version 1 or 2, before TLS or HTTP, and
    /// remote_address() is then the client's address it names. A connection without
    /// a valid header is closed with no answer (errc::bad_proxy_header). Turn it on only
    /// when nothing but the balancer can reach the port: anyone who can connect can
    /// claim any address. Needs a transport with socket() (TCP, TLS).
    bool proxy_protocol = false;
};

template <class Transport = tcp_transport>
class basic_server {
public:
    using connection = basic_connection<role::server, Transport>;
    using connection_ptr = std::shared_ptr<connection>;
    using config_type = typename connection::config_type;
    /// asio::ip::tcp, or asio::local::stream_protocol for a unix_server.
    using protocol_type = typename detail::accept_protocol<Transport>::type;
    using socket_type = typename protocol_type::socket;
    using endpoint_type = typename protocol_type::endpoint;
    static constexpr bool is_ip = std::is_same_v<protocol_type, asio::ip::tcp>;
    /// Wraps an accepted socket in the transport (e.g. a TLS stream).
    using transport_factory = std::function<Transport(socket_type)>;

    explicit basic_server(asio::io_context& io, server_options options = {}, transport_factory make = {})
        : io_(io), acceptor_(io), accept_pause_(io), make_transport_(std::move(make)), max_connections_(options.max_connections) {
        config_->connection = options.connection;
        config_->subprotocols = std::move(options.subprotocols);
        config_->allowed_origins = std::move(options.allowed_origins);
        config_->limits = options.limits;
        config_->keep_request = options.keep_request;
        config_->one_thread = one_thread_;
        config_->proxy_protocol = options.proxy_protocol;
        config_->server = this;
        if constexpr (!detail::has_socket<Transport>::value)
            if (options.proxy_protocol) throw std::invalid_argument("duplex: proxy_protocol needs a transport with socket()");
    }

    /// Whether connections share the io_context's executor instead of each
    /// having a strand: true for an io_context made for one thread
    /// (`asio::io_context io(1)`, Asio's concurrency hint), which must then be
    /// run by one thread only. Saves a strand hop per completion and lets a
    /// broadcast flush every receiver right after the handler that sent it.
    bool one_thread() const noexcept { return one_thread_; }
    /// Stops accepting and closes every open connection (1001), as stop() does; they end
    /// as the io_context runs on, without this server. Destroy it where no other thread
    /// runs the io_context (or once stop() and io.run() are done).
    ~basic_server() {
        config_->server = nullptr;    // a stop() still posted finds no server,
        config_->on_detach = nullptr; // and connections that end later do not report to it
        std::error_code ignored;
        acceptor_.close(ignored);
        for (auto& c : clients_.snapshot()) c->close(close_code::going_away, "server shutting down");
    }

    // ---- handlers: set them before listen() ---------------------------------

    basic_server& on_open(std::function<void(connection&)> f) { config_->on_open = std::move(f); return *this; }
    basic_server& on_message(std::function<void(connection&, const message&)> f) { config_->on_message = std::move(f); return *this; }
    basic_server& on_close(std::function<void(connection&, std::uint16_t, std::string_view)> f) { config_->on_close = std::move(f); return *this; }
    basic_server& on_error(std::function<void(connection&, std::error_code)> f) { config_->on_error = std::move(f); return *this; }
    basic_server& on_ping(std::function<void(connection&, std::string_view)> f) { config_->on_ping = std::move(f); return *this; }
    basic_server& on_pong(std::function<void(connection&, std::string_view)> f) { config_->on_pong = std::move(f); return *this; }
    /// Sees every upgrade request (path, query, headers, Origin, cookies) and may reject
    /// it with a status or change the chosen subprotocol: f(request, decision), or
    /// f(connection, request, decision) to also see who asks (remote_address()) and keep
    /// what the check found (user_data(), e.g. the user a token names) for on_open and
    /// later. The connection is still CONNECTING: nothing can be sent on it yet.
    template <class F, std::enable_if_t<std::is_invocable_v<F&, connection&, const http_request&, handshake_decision&>, int> = 0>
    basic_server& on_handshake(F f) {
        config_->on_handshake = std::move(f);
        return *this;
    }
    basic_server& on_handshake(std::function<void(const http_request&, handshake_decision&)> f) {
        if (!f) config_->on_handshake = nullptr; // {} or nullptr: no hook
        else config_->on_handshake = [f = std::move(f)](connection&, const http_request& req, handshake_decision& d) { f(req, d); };
        return *this;
    }
    /// Answers plain HTTP requests on the same port (e.g. the app's page);
    /// without it they get 426 Upgrade Required.
    basic_server& on_http(std::function<void(const http_request&, http_reply&)> f) { config_->on_http = std::move(f); return *this; }
    /// Receives duplex's log messages (refused handshakes, protocol errors,
    /// accept failures) with a level; the library itself never prints.
    basic_server& on_log(log_hook f) { config_->on_log = std::move(f); return *this; }

    connection_options& options() noexcept { return config_->connection; }

    // ---- running ------------------------------------------------------------

    /// Listens on address:port (port 0 picks a free one; see port()). TCP servers only
    /// (a unix_server listens on a path). One listening socket per server: while it
    /// listens, another listen() fails with asio::error::already_open and changes nothing.
    [[nodiscard]] std::error_code listen(std::uint16_t port, std::string_view address = "127.0.0.1") {
        if constexpr (is_ip) {
            std::error_code ec;
            const auto addr = asio::ip::make_address(std::string(address), ec);
            if (ec) return ec;
            return listen(endpoint_type(addr, port));
        } else {
            return std::make_error_code(std::errc::address_family_not_supported);
        }
    }
    /// Listens on an endpoint of the transport's protocol (unix_server: see its listen(path)).
    [[nodiscard]] std::error_code listen(const endpoint_type& ep) {
        const std::error_code ec = bind(ep);
        return ec ? ec : start_listening();
    }
    /// Throwing overload: what() names the address, as in
    /// "listen on 127.0.0.1:9001: Address already in use".
    void listen_or_throw(std::uint16_t port, std::string_view address = "127.0.0.1") {
        if (const std::error_code ec = listen(port, address)) {
            const std::string host(address);
            const bool v6 = host.find(':') != std::string::npos;
            throw error(ec, "listen on " + (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port));
        }
    }

    /// The port listened on (0 if none, or not a TCP server).
    std::uint16_t port() const {
        std::error_code ec;
        if constexpr (is_ip) return local_endpoint(ec).port();
        else return 0;
    }
    /// The endpoint listened on (a default one, with `ec` set, when not listening).
    endpoint_type local_endpoint(std::error_code& ec) const { return acceptor_.local_endpoint(ec); }

    /// Graceful stop: no new connections; every open one gets a 1001 close and
    /// is cut off if its peer does not answer within close_timeout.
    void stop(std::uint16_t code = close_code::going_away, std::string_view reason = "server shutting down") {
        // The server may be gone when this runs: it goes through the shared config,
        // whose `server` the destructor clears.
        asio::post(acceptor_.get_executor(), detail::completion{config_, [](void* config, std::error_code ec, std::size_t n) {
                       if (void* s = static_cast<config_type*>(config)->server) static_cast<basic_server*>(s)->stop_accepting(ec, n);
                   }});
        for (auto& c : clients_.snapshot()) c->close(code, reason);
    }

    /// Counters: open connections, traffic, closes by code, refused handshakes by reason.
    server_stats stats() const {
        std::lock_guard<std::mutex> lock(stats_mutex_);
        server_stats s;
        s.traffic = retired_traffic_;
        for (const auto& e : retired_closes_) s.closes_by_code[static_cast<std::uint16_t>(e.key)] += e.count;
        for (const auto& e : retired_failures_) s.handshake_failures[std::error_code(e.key, *e.category).message()] += e.count;
        s.accepted = accepted_.load(std::memory_order_relaxed);
        s.refused = refused_.load(std::memory_order_relaxed);
        clients_.for_each([&](const connection& c) {
            ++s.open_connections;
            s.traffic += c.stats();
        });
        return s;
    }

    /// Every open connection (the `wss.clients` of Node's ws).
    const hub<connection>& clients() const noexcept { return clients_; }
    std::size_t connection_count() const { return clients_.size(); }
    /// Sends to every open connection; the frame is encoded once (and, with
    /// permessage-deflate and server_no_context_takeover on, compressed once).
    std::size_t broadcast(opcode op, std::string_view data) const { return clients_.broadcast(prepare_message(op, data)); }
    std::size_t broadcast(const message& m) const { return broadcast(m.op, m.data); }
    /// The frame broadcast() sends, for a room of your own (`room.broadcast(frame)`):
    /// encoded once, and compressed once when the server's connection options have
    /// deflate enabled with server_no_context_takeover (see hub.hpp).
    std::shared_ptr<const prepared_message> prepare_message(opcode op, std::string_view data) const {
#if DUPLEX_HAS_DEFLATE
        return duplex::prepare_message(op, data, config_->connection.deflate);
#else
        return duplex::prepare_message(op, data);
#endif
    }

protected:
    // listen() in two steps, so that a unix_server can set its socket file's mode in
    // between, before anyone can connect. A failed step closes the acceptor.
    std::error_code bind(const endpoint_type& ep) {
        if (acceptor_.is_open()) return asio::error::already_open; // listening already: leave it be
        std::error_code ec;
        acceptor_.open(ep.protocol(), ec);
        if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
        if (!ec) acceptor_.bind(ep, ec);
        if (ec) close_acceptor();
        return ec;
    }
    std::error_code start_listening() {
        std::error_code ec;
        acceptor_.listen(asio::socket_base::max_listen_connections, ec);
        if (ec) return close_acceptor(), ec;
        install_detach();
        accept();
        return {};
    }
    void close_acceptor() noexcept {
        std::error_code ignored;
        acceptor_.close(ignored);
    }

private:
    void stop_accepting(std::error_code, std::size_t) {
        std::error_code ignored;
        acceptor_.close(ignored);
        accept_pause_.cancel();
    }

    void install_detach() {
        config_->on_detach = [this](connection& c) {
            std::lock_guard<std::mutex> lock(stats_mutex_); // then the hub's: same order as stats()
            retired_traffic_ += c.stats();
            if (c.handshake_error()) retired_failures_.add(c.handshake_error());
            else retired_closes_.add(c.protocol().close_status_code());
            clients_.remove(c.shared_from_this());
        };
        shared_config_ = config_;
    }

    void accept() {
        // The next connection's socket, on its own strand unless one thread runs everything.
        accepting_ = socket_type(one_thread_ ? asio::any_io_executor(io_.get_executor())
                                                       : asio::any_io_executor(asio::make_strand(io_)));
        acceptor_.async_accept(accepting_, detail::complete_with<&basic_server::on_accept>(this));
    }
    void on_accept(std::error_code ec, std::size_t) {
        if (ec == asio::error::operation_aborted || !acceptor_.is_open()) return;
        if (!ec && one_thread_) {
            // The next accept first: Asio gives its operation the memory of the one
            // that just completed (it recycles per thread), so this connection's
            // long-lived read wait gets a block of its own size (160 B), not the
            // accept's 208. Only with one thread: with more, the next accept could
            // complete while serve() runs, and serve() (the limit check, the
            // transport factory) runs one at a time.
            socket_type socket = std::move(accepting_);
            accept();
            return serve(std::move(socket));
        }
        if (!ec) return serve(std::move(accepting_)), accept();
        detail::log_to(config_->on_log, log_level::error, {"accept failed, pausing 50 ms: "}, ec);
        // Out of descriptors or memory (EMFILE, ENFILE, ENOBUFS): the error
        // would repeat at once, so pause accepting briefly instead of spinning.
        // Connections already open are not affected.
        accept_pause_.expires_after(std::chrono::milliseconds(50));
        accept_pause_.async_wait(detail::complete_with<&basic_server::on_accept_pause>(this));
    }
    void on_accept_pause(std::error_code ec, std::size_t) {
        if (!ec && acceptor_.is_open()) accept();
    }

    void serve(socket_type socket) {
        accepted_.fetch_add(1, std::memory_order_relaxed);
        if (clients_.size() >= max_connections_) {
            refused_.fetch_add(1, std::memory_order_relaxed);
            return refuse(std::move(socket));
        }
        std::shared_ptr<connection> c;
        try {
            c = std::make_shared<connection>(make_transport(std::move(socket)), shared_config_);
            clients_.add(c);
            c->start_accept();
        } catch (...) {
            // Out of memory, or a transport factory that threw (anything): this
            // connection is dropped (its socket closes with it), the server goes on
            // accepting.
            if (c) clients_.remove(c);
            const char* what = "unknown exception";
            try {
                throw;
            } catch (const std::exception& e) {
                what = e.what();
            } catch (...) {
            }
            detail::log_to(config_->on_log, log_level::error, {"dropped a new connection: ", what});
        }
    }

    // Without a factory, a Transport made from the socket (no std::function wrapping
    // a lambda to compile for that); with none and no such constructor, the empty
    // factory throws std::bad_function_call, and the connection is dropped.
    Transport make_transport(socket_type socket) {
        if constexpr (std::is_constructible_v<Transport, socket_type>)
            if (!make_transport_) return Transport(std::move(socket));
        return make_transport_(std::move(socket));
    }

    // 503 for connections over the limit, written straight to the socket: the
    // kernel takes a fresh socket's first hundred bytes at once, so a
    // non-blocking write does it with no operation left pending.
    static void refuse(socket_type socket) {
        static const std::string response = [] {
            std::string r;
            write_error_response(r, 503, "Too many connections\n");
            return r;
        }();
        std::error_code ignored;
        socket.non_blocking(true, ignored);
        if (!ignored) socket.write_some(asio::buffer(response), ignored);
        socket.shutdown(socket_type::shutdown_both, ignored);
        socket.close(ignored);
    }

    asio::io_context& io_;
    typename protocol_type::acceptor acceptor_;
    asio::steady_timer accept_pause_;
    socket_type accepting_{io_};
    transport_factory make_transport_;
    std::size_t max_connections_;
    bool one_thread_ = detail::made_for_one_thread(io_);
    std::shared_ptr<config_type> config_ = std::make_shared<config_type>();
    std::shared_ptr<const config_type> shared_config_;
    hub<connection> clients_;
    mutable std::mutex stats_mutex_;
    // Totals of connections that are gone; stats() makes server_stats' maps of them.
    connection_stats retired_traffic_;
    detail::tally retired_closes_;   // by close code
    detail::tally retired_failures_; // refused handshakes, by error
    std::atomic<std::uint64_t> accepted_{0}, refused_{0};
};

/// A plain ws:// server.
using server = basic_server<tcp_transport>;

} // namespace duplex

namespace duplex {
DUPLEX_INSTANTIATE(class basic_connection<role::server, tcp_transport>)
DUPLEX_INSTANTIATE(class hub<basic_connection<role::server, tcp_transport>>)
DUPLEX_INSTANTIATE(class basic_server<tcp_transport>)
} // namespace duplex
#define DUPLEX_SERVER_HPP_READ 1
#include "detail/tls_server_instances.hpp"
