// duplex errors: one std::error_code value per rule, each knowing the close
// code (RFC 6455 §7.4.1) or HTTP status it answers with.
#pragma once
#include <cstdint>
#include <stdexcept>
#include <string>
#include <system_error>

namespace duplex {

/// Close status codes (RFC 6455 §7.4.1, IANA registry).
namespace close_code {
enum : std::uint16_t {
    normal = 1000,
    going_away = 1001,
    protocol_error = 1002,
    unsupported_data = 1003,
    no_status = 1005,       // never sent: "the close frame had no code"
    abnormal = 1006,        // never sent: "the connection dropped without a close frame"
    invalid_payload = 1007, // e.g. text that is not UTF-8
    policy_violation = 1008,
    message_too_big = 1009,
    mandatory_extension = 1010,
    internal_error = 1011,
    service_restart = 1012,
    try_again_later = 1013,
    bad_gateway = 1014,
    tls_handshake = 1015,   // never sent
};
} // namespace close_code

/// Every error duplex reports. Zero is success. The values are fixed (logs and metrics
/// may store them): a new error takes the next free value of its group.
enum class errc {
    // Frame rules (RFC 6455 §5): fail the connection with 1002 unless noted.
    reserved_bits = 1,        // RSV1-3 set without a negotiated extension
    reserved_opcode = 2,      // opcode 0x3-0x7 or 0xB-0xF
    fragmented_control = 3,   // control frame without FIN
    control_too_long = 4,     // control frame payload over 125 bytes
    bad_length = 5,           // 64-bit length with the top bit set, or not minimally encoded
    mask_required = 6,        // a server received an unmasked frame
    mask_forbidden = 7,       // a client received a masked frame
    unexpected_continuation = 8, // continuation frame with no message to continue
    expected_continuation = 9, // new data frame inside a fragmented message
    bad_close_size = 10,      // close payload of 1 byte
    bad_close_code = 11,      // close code that may not be sent
    message_too_big = 12,     // 1009: message over the configured maximum
    frame_too_big = 13,       // 1009: data frame over the configured maximum (max_frame_size)
    invalid_utf8 = 14,        // 1007: text message that is not UTF-8
    invalid_close_reason = 15, // 1007: close reason that is not UTF-8
    bad_compressed_data = 16, // 1007: permessage-deflate data that does not inflate

    // Opening handshake, server side (RFC 6455 §4.2.1): answered with an HTTP status.
    bad_http_request = 100,   // 400: not parseable as an HTTP/1.1 request
    header_too_large = 101,   // 431: request head over the size limit (client: the response head)
    too_many_headers = 102,   // 431: more header fields than the limit (client: in the response)
    bad_method = 103,         // 405: the upgrade request is not a GET
    bad_http_version = 104,   // 400: not HTTP/1.1 or later
    no_host = 105,            // 400: no Host header, or more than one
    no_upgrade = 106,         // 400 (a plain HTTP request, with no Upgrade at all, gets 426)
    no_connection_upgrade = 107, // 400: Connection does not list "upgrade"
    bad_version = 108,        // 426: Sec-WebSocket-Version is not 13
    bad_key = 109,            // 400: Sec-WebSocket-Key is not Base64 of 16 bytes
    bad_target = 110,         // 400: target neither "/path" nor an absolute URI naming the Host
    unexpected_body = 111,    // 400: the upgrade request has a body
    rejected = 112,           // the application declined the request
    forbidden_origin = 113,   // 403: Origin not on the allowed list
    bad_proxy_header = 114,   // no answer: server_options::proxy_protocol, and no valid PROXY header came first

    // Opening handshake, client side (RFC 6455 §4.1).
    bad_status = 200,         // server answered with a status other than 101
    bad_accept = 201,         // Sec-WebSocket-Accept does not match the key
    bad_upgrade_response = 202, // 101 without Upgrade: websocket
    bad_connection_response = 203, // 101 without Connection: upgrade
    bad_subprotocol = 204,    // server picked a subprotocol that was not offered
    bad_extension = 205,      // server answered with an extension that was not offered
    bad_http_response = 206,  // not parseable as an HTTP/1.1 response
    bad_url = 207,            // not a ws:// or wss:// URL
    tls_unavailable = 208,    // wss:// but duplex was built without OpenSSL
    bad_proxy_url = 209,      // client_options::proxy is not an http:// or socks5:// proxy URL
    proxy_refused = 210,      // the proxy would not open the tunnel (HTTP: a status other than 2xx)
    proxy_auth_required = 211, // the proxy wants credentials (HTTP 407, SOCKS5): none or wrong ones
    bad_proxy_response = 212, // the proxy's answer breaks its protocol
    bad_redirect = 213,       // a redirect to follow whose Location is unusable, or leaves wss:// for ws://
    too_many_redirects = 214, // more redirects in a row than client_options::max_redirects

    // Connection life (RFC 6455 §7).
    closed = 300,             // the connection is closed (or closing): nothing more can be sent
    not_open = 301,           // the opening handshake has not finished yet
    send_queue_full = 302,    // 1008: the peer reads slower than we send, over the limit
    handshake_timeout = 303,  // the opening handshake did not finish in time
    ping_timeout = 304,       // 1006: no pong (or anything) from the peer in time
    idle_timeout = 305,       // 1001: nothing sent or received for the idle period
    close_timeout = 306,      // the peer did not answer our close frame in time
    connection_lost = 307,    // 1006: TCP ended without a close frame
    going_away = 308,         // 1001: the server is shutting down
    too_many_connections = 309, // 503: the server is at its connection limit
    internal_error = 310,     // 1011: out of memory or a zlib failure on our side
};

/// Broad families of errors, for `ec == duplex::condition::...` tests.
enum class condition {
    protocol_violation = 1, // the peer broke RFC 6455: the connection failed with a close code
    handshake_failed,       // the opening handshake did not complete
    timeout,                // a configured deadline passed
    closed,                 // the connection is closed, nothing more happens on it
};

} // namespace duplex

namespace std {
template <> struct is_error_code_enum<duplex::errc> : true_type {};
template <> struct is_error_condition_enum<duplex::condition> : true_type {};
} // namespace std

namespace duplex {

namespace detail {

inline const char* errc_message(errc e) noexcept {
    switch (e) {
    case errc::reserved_bits: return "frame has RSV bits set without a negotiated extension";
    case errc::reserved_opcode: return "frame uses a reserved opcode";
    case errc::fragmented_control: return "control frame is fragmented (FIN not set)";
    case errc::control_too_long: return "control frame payload is longer than 125 bytes";
    case errc::bad_length: return "frame payload length is invalid (top bit set or not minimally encoded)";
    case errc::mask_required: return "client frame is not masked";
    case errc::mask_forbidden: return "server frame is masked";
    case errc::unexpected_continuation: return "continuation frame without a message to continue";
    case errc::expected_continuation: return "new data frame while a fragmented message is unfinished";
    case errc::bad_close_size: return "close frame payload of one byte";
    case errc::bad_close_code: return "close frame carries an invalid status code";
    case errc::message_too_big: return "message is larger than the configured maximum";
    case errc::frame_too_big: return "frame is larger than the configured maximum";
    case errc::invalid_utf8: return "text message is not valid UTF-8";
    case errc::invalid_close_reason: return "close reason is not valid UTF-8";
    case errc::bad_compressed_data: return "compressed message does not inflate";
    case errc::bad_http_request: return "malformed HTTP request";
    case errc::header_too_large: return "HTTP header is larger than the limit";
    case errc::too_many_headers: return "HTTP header has more fields than the limit";
    case errc::bad_method: return "WebSocket upgrade must be a GET request";
    case errc::bad_http_version: return "WebSocket upgrade needs HTTP/1.1 or later";
    case errc::no_host: return "request needs exactly one Host header";
    case errc::no_upgrade: return "request has no 'Upgrade: websocket' header";
    case errc::no_connection_upgrade: return "request has no 'Connection: Upgrade' header";
    case errc::bad_version: return "unsupported Sec-WebSocket-Version (13 is required)";
    case errc::bad_key: return "Sec-WebSocket-Key is missing or not Base64 of 16 bytes";
    case errc::bad_target: return "request target is neither a path nor an absolute URI whose authority is the Host";
    case errc::unexpected_body: return "upgrade request has a body (Content-Length or Transfer-Encoding)";
    case errc::rejected: return "the application rejected the WebSocket request";
    case errc::forbidden_origin: return "Origin is not allowed";
    case errc::bad_proxy_header: return "connection did not start with a valid PROXY protocol header";
    case errc::bad_status: return "server did not answer 101 Switching Protocols";
    case errc::bad_accept: return "Sec-WebSocket-Accept does not match the key sent";
    case errc::bad_upgrade_response: return "server response lacks 'Upgrade: websocket'";
    case errc::bad_connection_response: return "server response lacks 'Connection: Upgrade'";
    case errc::bad_subprotocol: return "server chose a subprotocol that was not offered";
    case errc::bad_extension: return "server accepted an extension that was not offered";
    case errc::bad_http_response: return "malformed HTTP response";
    case errc::bad_url: return "URL is not a valid ws:// or wss:// URL";
    case errc::tls_unavailable: return "wss:// needs TLS, and duplex was built without OpenSSL";
    case errc::bad_proxy_url: return "proxy is not a valid http:// or socks5:// proxy URL";
    case errc::proxy_refused: return "proxy refused to open a tunnel to the server";
    case errc::proxy_auth_required: return "proxy requires authentication: no or wrong credentials";
    case errc::bad_proxy_response: return "proxy's answer is malformed";
    case errc::bad_redirect: return "redirect Location is not a usable ws:// or wss:// URL (or leaves wss:// for ws://)";
    case errc::too_many_redirects: return "too many redirects";
    case errc::closed: return "connection is closed";
    case errc::not_open: return "connection is not open yet (handshake in progress)";
    case errc::send_queue_full: return "send queue is over its limit (peer reads too slowly)";
    case errc::handshake_timeout: return "opening handshake timed out";
    case errc::ping_timeout: return "peer did not answer a ping in time";
    case errc::idle_timeout: return "connection was idle too long";
    case errc::close_timeout: return "peer did not answer the close frame in time";
    case errc::connection_lost: return "connection lost without a close frame";
    case errc::going_away: return "server is going away";
    case errc::too_many_connections: return "server is at its connection limit";
    case errc::internal_error: return "internal error (out of memory or compression failure)";
    }
    return "unknown duplex error";
}

class error_category_impl final : public std::error_category {
public:
    const char* name() const noexcept override { return "duplex"; }
    std::string message(int ev) const override { return errc_message(static_cast<errc>(ev)); }
    std::error_condition default_error_condition(int ev) const noexcept override;
};

class condition_category_impl final : public std::error_category {
public:
    const char* name() const noexcept override { return "duplex.condition"; }
    std::string message(int ev) const override {
        switch (static_cast<condition>(ev)) {
        case condition::protocol_violation: return "WebSocket protocol violation";
        case condition::handshake_failed: return "WebSocket handshake failed";
        case condition::timeout: return "WebSocket timeout";
        case condition::closed: return "WebSocket connection closed";
        }
        return "unknown duplex condition";
    }
};

} // namespace detail

inline const std::error_category& error_category() noexcept {
    static const detail::error_category_impl instance;
    return instance;
}
inline const std::error_category& condition_category() noexcept {
    static const detail::condition_category_impl instance;
    return instance;
}
inline std::error_code make_error_code(errc e) noexcept { return {static_cast<int>(e), error_category()}; }
inline std::error_condition make_error_condition(condition c) noexcept {
    return {static_cast<int>(c), condition_category()};
}

/// The close code to send when the connection fails with `e` (RFC 6455 §7.4.1).
constexpr std::uint16_t close_code_for(errc e) noexcept {
    switch (e) {
    case errc::message_too_big:
    case errc::frame_too_big: return close_code::message_too_big;
    case errc::invalid_utf8:
    case errc::invalid_close_reason:
    case errc::bad_compressed_data: return close_code::invalid_payload;
    case errc::send_queue_full: return close_code::policy_violation;
    case errc::idle_timeout:
    case errc::going_away: return close_code::going_away;
    case errc::ping_timeout:
    case errc::close_timeout:
    case errc::connection_lost:
    case errc::handshake_timeout: return close_code::abnormal;
    default:
        return e < errc::bad_http_request ? close_code::protocol_error : close_code::internal_error;
    }
}
/// Close code for any error_code: duplex errors map as above, anything else is 1006/1011.
inline std::uint16_t close_code_for(const std::error_code& ec) noexcept {
    if (ec.category() == error_category()) return close_code_for(static_cast<errc>(ec.value()));
    return ec ? close_code::abnormal : close_code::normal;
}

/// The HTTP status a server answers a failed upgrade request with.
constexpr int http_status_for(errc e) noexcept {
    switch (e) {
    case errc::header_too_large:
    case errc::too_many_headers: return 431;
    case errc::bad_method: return 405;
    case errc::bad_version: return 426;
    case errc::rejected:
    case errc::forbidden_origin: return 403;
    case errc::too_many_connections: return 503;
    default: return 400;
    }
}

inline std::error_condition detail::error_category_impl::default_error_condition(int ev) const noexcept {
    const auto e = static_cast<errc>(ev);
    if (e >= errc::reserved_bits && e <= errc::bad_compressed_data) return make_error_condition(condition::protocol_violation);
    if (e >= errc::bad_http_request && e <= errc::too_many_redirects) return make_error_condition(condition::handshake_failed);
    if (e == errc::handshake_timeout || e == errc::ping_timeout || e == errc::idle_timeout || e == errc::close_timeout)
        return make_error_condition(condition::timeout);
    if (e == errc::closed || e == errc::connection_lost || e == errc::going_away)
        return make_error_condition(condition::closed);
    return {ev, *this};
}

/// Thrown by the convenience overloads that do not take an error_code.
class error : public std::system_error {
public:
    using std::system_error::system_error;
    explicit error(errc e) : std::system_error(make_error_code(e)) {}
};

/// Throws duplex::error when `ec` holds an error.
inline void throw_if(const std::error_code& ec) {
    if (ec) throw error(ec);
}

} // namespace duplex

