// TLS transport (wss://) on asio::ssl::stream over TCP, through OpenSSL.
// This is the only header of duplex that includes asio/ssl; it needs OpenSSL
// (link with -lssl -lcrypto; CMake does that and defines DUPLEX_HAS_TLS).
//
// Server:
//   auto ctx = std::make_shared<asio::ssl::context>(
//       duplex::make_server_tls_context("cert.pem", "key.pem"));
//   duplex::tls_server server(io, {}, duplex::tls_accept(ctx));   // #include <duplex/server.hpp> too
//
// Clients use duplex::client (client.hpp), which takes a tls_or_tcp_transport.
#pragma once
#include "../detail/instantiate.hpp"
#include <cstdint>
#include <memory>
#include <string>
#include <system_error>
#include <utility>
#include <variant>

#include <asio/ip/address.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/post.hpp>
#include <asio/ssl.hpp>

#include "tcp.hpp"
#include "transport.hpp"

namespace duplex {

/// Whether a client checks the server's certificate.
enum class tls_verify : std::uint8_t {
    peer,               ///< chain up to a trusted CA and the URL's host name (the default)
    insecure_no_verify, ///< accept any certificate: for tests and self-signed servers only
};

namespace detail {
inline void set_tls12_minimum(asio::ssl::context& ctx) {
    ctx.set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                    asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                    asio::ssl::context::no_tlsv1_1 | asio::ssl::context::single_dh_use);
    SSL_CTX_set_min_proto_version(ctx.native_handle(), TLS1_2_VERSION);
}
} // namespace detail

/// A server context (TLS 1.2 or later) with a PEM certificate chain and private key.
/// Throws asio::system_error when a file cannot be read or the key does not match.
inline asio::ssl::context make_server_tls_context(const std::string& cert_chain_file,
                                                  const std::string& private_key_file) {
    asio::ssl::context ctx(asio::ssl::context::tls_server);
    detail::set_tls12_minimum(ctx);
    ctx.use_certificate_chain_file(cert_chain_file);
    ctx.use_private_key_file(private_key_file, asio::ssl::context::pem);
    return ctx;
}

/// A client context (TLS 1.2 or later). With `verify_peer` it trusts the system's CA
/// store; add more CAs with `load_verify_file`. (duplex::client sets the verification
/// mode per connection from client_options::verify, whatever the context says.)
inline asio::ssl::context make_client_tls_context(bool verify_peer = true) {
    asio::ssl::context ctx(asio::ssl::context::tls_client);
    detail::set_tls12_minimum(ctx);
    if (verify_peer) {
        ctx.set_default_verify_paths();
        ctx.set_verify_mode(asio::ssl::verify_peer);
    } else {
        ctx.set_verify_mode(asio::ssl::verify_none);
    }
    return ctx;
}

/// TLS over TCP. Construct it from a connected (client) or accepted (server)
/// socket; async_start performs the TLS handshake in the given role.
class tls_transport {
public:
    using stream_type = asio::ssl::stream<asio::ip::tcp::socket>;
    using socket_type = asio::ip::tcp::socket;
    using executor_type = stream_type::executor_type;
    static constexpr bool reads_buffer_pairs = true; // async_read_some takes two buffers

    /// The context is shared: every connection keeps it alive.
    tls_transport(socket_type socket, std::shared_ptr<asio::ssl::context> context)
        : context_(std::move(context)), stream_(std::move(socket), *context_) {
        std::error_code ignored;
        stream_.lowest_layer().set_option(asio::ip::tcp::no_delay(true), ignored);
    }

    executor_type get_executor() { return stream_.get_executor(); }

    /// Client side, before async_start: sends `host` as SNI (names only, never IP
    /// addresses: RFC 6066 §3) and, with tls_verify::peer, makes the handshake fail
    /// unless the certificate chains to a trusted CA and matches `host` (RFC 6125;
    /// IP addresses against IP subjectAltNames).
    std::error_code set_client_host(std::string host, tls_verify verify) {
        // "example.com." names the same host, but SNI carries no trailing dot
        // (RFC 6066 §3) and certificates name hosts without one.
        if (!host.empty() && host.back() == '.') host.pop_back();
        std::error_code ec;
        (void)asio::ip::make_address(host, ec);
        const bool is_address = !ec;
        SSL* ssl = stream_.native_handle();
        // OpenSSL's error, or invalid_argument when it left none (never a success code).
        const auto ssl_error = [] {
            const unsigned long e = ::ERR_get_error();
            return e != 0 ? std::error_code(static_cast<int>(e), asio::error::get_ssl_category())
                          : std::make_error_code(std::errc::invalid_argument);
        };
        if (!is_address && !SSL_set_tlsext_host_name(ssl, host.c_str())) return ssl_error();
        if (verify == tls_verify::peer) {
            // OpenSSL's own host check (what asio::ssl::host_name_verification calls, with
            // the same flags), so that a mismatch is a verify result of its own: the peer
            // gets a bad_certificate alert and verify_error() says "hostname mismatch". The
            // callback only passes OpenSSL's verdict on, as Asio's did: one the context may
            // have cannot overrule the checks.
            X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
            const int ok = is_address ? X509_VERIFY_PARAM_set1_ip_asc(param, host.c_str())
                                      : X509_VERIFY_PARAM_set1_host(param, host.c_str(), host.size());
            if (ok != 1) return ssl_error(); // e.g. an address with a zone ("fe80::1%1"): fail closed
            SSL_set_verify(ssl, SSL_VERIFY_PEER, [](int preverified, X509_STORE_CTX*) { return preverified; });
            return {};
        }
        stream_.set_verify_mode(asio::ssl::verify_none, ec);
        return ec;
    }

    /// Client side, after a handshake that failed on the server's certificate: why it
    /// was refused, in OpenSSL's words ("hostname mismatch", "self-signed certificate",
    /// ...). Empty when the certificate was not checked (tls_verify::insecure_no_verify)
    /// or the TLS handshake completed.
    std::string verify_error() const {
        SSL* ssl = const_cast<stream_type&>(stream_).native_handle(); // OpenSSL's getters take const SSL*
        if ((SSL_get_verify_mode(ssl) & SSL_VERIFY_PEER) == 0 || SSL_is_init_finished(ssl)) return {};
        const long result = SSL_get_verify_result(ssl);
        return result == X509_V_OK ? std::string() : X509_verify_cert_error_string(result);
    }

    /// The TLS handshake. A certificate that fails verification completes with an
    /// asio::error::get_ssl_category() error whose message is "certificate verify failed".
    template <class Handler>
    void async_start(role r, Handler&& handler) {
        stream_.async_handshake(r == role::client ? stream_type::client : stream_type::server,
                                std::forward<Handler>(handler));
    }

    /// A peer that cuts TCP without a TLS close_notify reads as plain EOF: WebSocket has
    /// its own close handshake, so truncation is already detected one level up.
    template <class MutableBuffer, class Handler>
    void async_read_some(const MutableBuffer& buffer, Handler&& handler) {
        stream_.async_read_some(buffer, [h = std::forward<Handler>(handler)](std::error_code ec, std::size_t n) mutable {
            if (ec == asio::ssl::error::stream_truncated) ec = asio::error::eof;
            h(ec, n);
        });
    }
    template <class ConstBuffers, class Handler>
    void async_write_some(const ConstBuffers& buffers, Handler&& handler) {
        stream_.async_write_some(buffers, std::forward<Handler>(handler)); // linearises up to 16 KiB
    }

    /// Half-closes TCP under TLS: the peer reads our last records, then EOF.
    void shutdown_send() noexcept {
        std::error_code ignored;
        stream_.lowest_layer().shutdown(socket_type::shutdown_send, ignored);
    }

    /// Cuts the TCP connection at once (no TLS close_notify exchange, which could
    /// wait on the peer); pending operations complete with an error.
    void close() noexcept {
        std::error_code ignored;
        stream_.lowest_layer().shutdown(socket_type::shutdown_both, ignored);
        stream_.lowest_layer().close(ignored);
    }
    /// Cuts with a reset, as tcp_transport::abort (a peer that stopped reading).
    void abort() noexcept {
        std::error_code ignored;
        stream_.lowest_layer().set_option(asio::socket_base::linger(true, 0), ignored);
        stream_.lowest_layer().close(ignored);
    }

    stream_type& stream() noexcept { return stream_; }
    /// The TCP socket under TLS, for options and queries; read or write it only before
    /// async_start (a PROXY protocol header comes there, ahead of the TLS handshake).
    socket_type& socket() noexcept { return stream_.next_layer(); }
    std::string remote_address() const {
        std::error_code ec;
        const auto ep = stream_.next_layer().remote_endpoint(ec);
        if (ec) return {};
        const auto a = ep.address();
        return (a.is_v6() ? "[" + a.to_string() + "]" : a.to_string()) + ":" + std::to_string(ep.port());
    }

private:
    std::shared_ptr<asio::ssl::context> context_;
    stream_type stream_;
};

static_assert(is_transport_v<tls_transport>, "tls_transport must meet the transport contract");

/// A client transport chosen at run time: TLS for wss://, plain TCP for ws://, so one
/// client type serves both schemes.
class tls_or_tcp_transport {
public:
    using executor_type = tcp_transport::executor_type;
    static constexpr bool reads_buffer_pairs = true; // async_read_some takes two buffers
    static_assert(std::is_same_v<executor_type, tls_transport::executor_type>, "one executor type");

    tls_or_tcp_transport(tcp_transport t) : t_(std::move(t)) {}
    tls_or_tcp_transport(tls_transport t) : t_(std::move(t)) {}

    bool is_tls() const noexcept { return t_.index() == 1; }
    tls_transport* tls() noexcept { return std::get_if<tls_transport>(&t_); }
    asio::ip::tcp::socket& socket() noexcept {
        return is_tls() ? std::get<tls_transport>(t_).socket() : std::get<tcp_transport>(t_).socket();
    }

    executor_type get_executor() {
        return std::visit([](auto& t) { return t.get_executor(); }, t_);
    }
    template <class Handler>
    void async_start(role r, Handler&& handler) {
        std::visit([&](auto& t) { t.async_start(r, std::forward<Handler>(handler)); }, t_);
    }
    template <class MutableBuffer, class Handler>
    void async_read_some(const MutableBuffer& buffer, Handler&& handler) {
        std::visit([&](auto& t) { t.async_read_some(buffer, std::forward<Handler>(handler)); }, t_);
    }
    template <class ConstBuffers, class Handler>
    void async_write_some(const ConstBuffers& buffers, Handler&& handler) {
        std::visit([&](auto& t) { t.async_write_some(buffers, std::forward<Handler>(handler)); }, t_);
    }
    void shutdown_send() noexcept {
        std::visit([](auto& t) { t.shutdown_send(); }, t_);
    }
    void close() noexcept {
        std::visit([](auto& t) { t.close(); }, t_);
    }
    std::string remote_address() const {
        return std::visit([](const auto& t) { return t.remote_address(); }, t_);
    }

    // TCP's optional operations (transport.hpp), so that ws:// connections of a TLS
    // build write at once and hold no read buffer while idle, as with tcp_transport.
    // Over TLS: writes report would_block (the asynchronous write follows), and
    // can_wait_readable() says no (OpenSSL may hold decrypted bytes already).
    template <class ConstBuffers>
    std::size_t try_write_some(const ConstBuffers& buffers, std::error_code& ec) {
        if (auto* t = std::get_if<tcp_transport>(&t_)) return t->try_write_some(buffers, ec);
        ec = asio::error::would_block;
        return 0;
    }
    bool can_wait_readable() const noexcept { return !is_tls(); }
    template <class Handler>
    void async_wait_readable(Handler&& handler) { // only when can_wait_readable()
        std::get<tcp_transport>(t_).async_wait_readable(std::forward<Handler>(handler));
    }
    std::size_t read_some_now(asio::mutable_buffer buffer, std::error_code& ec) {
        if (auto* t = std::get_if<tcp_transport>(&t_)) return t->read_some_now(buffer, ec);
        ec = asio::error::operation_not_supported;
        return 0;
    }
    void abort() noexcept {
        std::visit([](auto& t) { t.abort(); }, t_);
    }
    /// See tls_transport::verify_error(); empty for ws://.
    std::string verify_error() const {
        const auto* t = std::get_if<tls_transport>(&t_);
        return t ? t->verify_error() : std::string();
    }

private:
    std::variant<tcp_transport, tls_transport> t_;
};

static_assert(is_transport_v<tls_or_tcp_transport>, "tls_or_tcp_transport must meet the transport contract");
static_assert(detail::has_try_write<tls_or_tcp_transport>::value && detail::has_wait_readable<tls_or_tcp_transport>::value &&
                  detail::has_abort<tls_or_tcp_transport>::value,
              "ws:// clients of a TLS build get TCP's optional operations");

template <class Transport>
class basic_server; // server.hpp

/// A wss:// server: `duplex::tls_server server(io, options, duplex::tls_accept(ctx));`
/// (include duplex/server.hpp as well).
using tls_server = basic_server<tls_transport>;

/// The transport factory of a TLS server: wraps each accepted socket in TLS with `context`.
inline auto tls_accept(std::shared_ptr<asio::ssl::context> context) {
    return [context = std::move(context)](asio::ip::tcp::socket socket) {
        return tls_transport(std::move(socket), context);
    };
}

} // namespace duplex

#define DUPLEX_TLS_HPP_READ 1
#include "../detail/tls_server_instances.hpp"
