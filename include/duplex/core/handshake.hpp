// The WebSocket opening handshake (RFC 6455 §4), sans I/O: validate a parsed
// upgrade request and write the 101 (or an error) answer on the server side;
// write the request and validate the 101 on the client side. Parsing the HTTP
// head itself is http.hpp's job.
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "base64.hpp"
#include "error.hpp"
#include "http.hpp"
#include "sha1.hpp"

namespace duplex {

/// The GUID a server appends to the client's key (RFC 6455 §1.3, §4.2.2).
inline constexpr std::string_view websocket_guid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// Length of a Sec-WebSocket-Accept value: Base64 of a 20-byte SHA-1 digest.
inline constexpr std::size_t accept_key_size = 28;

/// Length of a Sec-WebSocket-Key value: Base64 of 16 bytes.
inline constexpr std::size_t client_key_size = 24;

using header_list = std::vector<std::pair<std::string, std::string>>;

namespace detail {

// Base64(SHA-1(key + GUID)) into out[0..28) without allocating (§4.2.2 step 5.4).
inline void write_accept_key(char* out, std::string_view client_key) noexcept {
    sha1_hasher h;
    h.update(client_key.data(), client_key.size());
    h.update(websocket_guid.data(), websocket_guid.size());
    const auto digest = h.finish();
    base64_encode(out, digest.data(), digest.size());
}

// A header value must not be able to end the line or the head: no CR, LF or other
// control characters except HTAB (RFC 7230 §3.2, and the classic response-splitting hole).
constexpr bool is_safe_field_value(std::string_view v) noexcept {
    for (char c : v)
        if (!is_field_char(c)) return false;
    return true;
}

inline bool are_safe_headers(const header_list* headers) noexcept {
    if (headers == nullptr) return true;
    for (const auto& h : *headers)
        if (!is_token(h.first) || !is_safe_field_value(h.second)) return false;
    return true;
}

inline void append_header(std::string& out, std::string_view name, std::string_view value) {
    out.append(name.data(), name.size());
    out += ": ";
    out.append(value.data(), value.size());
    out += "\r\n";
}

inline void append_headers(std::string& out, const header_list* headers) {
    if (headers == nullptr) return;
    for (const auto& h : *headers) append_header(out, h.first, h.second);
}

inline void append_status_line(std::string& out, int status) {
    out += "HTTP/1.1 ";
    out += std::to_string(status);
    out += ' ';
    out += http_reason_phrase(status);
    out += "\r\n";
}

} // namespace detail

/// Sec-WebSocket-Accept for a client's Sec-WebSocket-Key (RFC 6455 §4.2.2 step 5.4):
/// Base64(SHA-1(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")).
inline std::string accept_key(std::string_view client_key) {
    std::string out(accept_key_size, '\0');
    detail::write_accept_key(&out[0], client_key);
    return out;
}

// ---------------------------------------------------------------------------
// Server side (§4.2)
// ---------------------------------------------------------------------------

/// Whether the request asks for a WebSocket upgrade at all (an Upgrade field listing
/// "websocket"), so a server can tell plain HTTP from a WebSocket attempt. It does not
/// validate the rest: use check_upgrade_request for that.
inline bool is_websocket_request(const http_request& req) noexcept {
    return req.has_token("Upgrade", "websocket");
}

/// Checks an upgrade request against RFC 6455 §4.2.1, in this order: GET (bad_method),
/// HTTP/1.1 or later (bad_http_version), a target that is a path or an absolute http(s)
/// or ws(s) URI, without a fragment (bad_target), exactly one non-empty Host (no_host) that
/// is the absolute URI's authority, byte for byte but for case, when there is one (so
/// "http://h:80/" wants "Host: h:80"; bad_target), no body (unexpected_body),
/// `Upgrade: websocket` (no_upgrade), `Connection: upgrade` (no_connection_upgrade),
/// exactly one `Sec-WebSocket-Version: 13` (bad_version), exactly one Sec-WebSocket-Key
/// that is Base64 of 16 bytes (bad_key). Tokens compare case-insensitively. Answer a
/// failure with write_error_response(out, http_status_for(e)).
inline std::error_code check_upgrade_request(const http_request& req) noexcept {
    if (req.method != "GET") return errc::bad_method;                               // §4.2.1 item 1
    if (req.version_minor < 1) return errc::bad_http_version;                       // item 1
    // Item 1: a Request-URI (origin-form) or an absolute http/https URI, not "*" or
    // "host:port" (RFC 7230 §5.3).
    // A fragment is never part of a request target (RFC 7230 §5.3; RFC 6455 §3): "/#/x"
    // would be "/" to a proxy and "/" or "/x" to an application, depending on who parses.
    if (req.target.empty() || req.target.find('#') != std::string_view::npos ||
        (req.target[0] != '/' && !is_absolute_http_target(req.target)))
        return errc::bad_target;
    // Item 2; RFC 7230 §5.4: a server MUST answer 400 to more than one Host field.
    if (req.header_count("Host") != 1 || req.header("Host").empty()) return errc::no_host;
    // RFC 7230 §5.4: with an absolute target a server uses its authority and a client
    // sends the same in Host; two different names would let a proxy in front check one
    // while the application checks the other.
    if (req.target[0] != '/' && !detail::iequals(absolute_target_authority(req.target), req.header("Host")))
        return errc::bad_target;
    // The new protocol starts after the whole request (RFC 7230 §3.3.3, §6.7): bytes of
    // a body would be read as frames.
    if (req.header_count("Transfer-Encoding") != 0) return errc::unexpected_body;
    for (const auto& f : req.fields) // Content-Length = 1*DIGIT (§3.3.2): "0" and "00" are no body
        if (detail::iequals(f.name, "Content-Length") &&
            (f.value.empty() || f.value.find_first_not_of('0') != std::string_view::npos))
            return errc::unexpected_body;
    if (!req.has_token("Upgrade", "websocket")) return errc::no_upgrade;            // item 3
    if (!req.has_token("Connection", "upgrade")) return errc::no_connection_upgrade; // item 4
    // item 6; §11.3.5: the field must not appear more than once in a request.
    if (req.header_count("Sec-WebSocket-Version") != 1 || req.header("Sec-WebSocket-Version") != "13")
        return errc::bad_version;
    // item 5; §11.3.1: likewise at most once.
    if (req.header_count("Sec-WebSocket-Key") != 1) return errc::bad_key;
    const std::string_view key = req.header("Sec-WebSocket-Key");
    std::uint8_t nonce[18]; // room for 18 so that an unpadded 24-char key decodes and is caught by size
    std::size_t n = 0;
    if (key.size() != client_key_size || !base64_decode(key, nonce, sizeof nonce, n) || n != 16)
        return errc::bad_key;
    return {};
}

/// The subprotocol to answer with: the first one in the server's preference order
/// (`supported`) that the client listed in Sec-WebSocket-Protocol (§4.2.2 step 5.5 /
/// §11.3.4). Names compare case-sensitively. Empty if none matches; then send no
/// Sec-WebSocket-Protocol field. The view points into `supported`.
inline std::string_view select_subprotocol(const http_request& req, const std::vector<std::string>& supported) noexcept {
    for (const std::string& s : supported) {
        if (s.empty()) continue;
        for (std::string_view v : req.header_values("Sec-WebSocket-Protocol")) {
            if (detail::find_list_element(v, [&](std::string_view e) { return e == s; }))
                return s;
        }
    }
    return {};
}
/// The result would point into a temporary list.
std::string_view select_subprotocol(const http_request&, std::vector<std::string>&&) = delete;

// ---------------------------------------------------------------------------
// Sec-WebSocket-Extensions grammar (§9.1)
// ---------------------------------------------------------------------------

/// One extension parameter: `name` or `name=value` (value unquoted).
struct extension_param {
    std::string_view name;
    std::string_view value;
    bool has_value = false;
};

/// One offered (or accepted) extension with its parameters, e.g.
/// `permessage-deflate; client_max_window_bits`.
struct extension_offer {
    std::string_view name;
    std::vector<extension_param> params;
};

namespace detail {

inline void skip_ows(std::string_view s, std::size_t& pos) noexcept {
    while (pos < s.size() && is_ows(s[pos])) ++pos;
}

inline std::string_view read_token(std::string_view s, std::size_t& pos) noexcept {
    const std::size_t begin = pos;
    while (pos < s.size() && is_tchar(s[pos])) ++pos;
    return s.substr(begin, pos - begin);
}

} // namespace detail

/// Parses one Sec-WebSocket-Extensions value (§9.1) and appends its offers to `out`:
///   extension-list = 1#( token *( ";" token [ "=" ( token / quoted-string ) ] ) )
/// with optional whitespace around ',', ';' and '='. Empty list elements (", ,") are
/// skipped (RFC 7230 §7). A quoted value must unquote to a token (§9.1); since no token
/// character needs escaping, a quoted-pair ('\') is rejected so the value stays a view.
/// On malformed input sets errc::bad_extension; `out` then holds what parsed so far.
/// The views point into `value`.
inline void parse_extensions(std::string_view value, std::vector<extension_offer>& out, std::error_code& ec) {
    ec.clear();
    std::size_t pos = 0;
    const auto fail = [&] { ec = errc::bad_extension; };
    while (true) {
        detail::skip_ows(value, pos);
        if (pos >= value.size()) return;
        if (value[pos] == ',') { // empty element
            ++pos;
            continue;
        }
        extension_offer offer;
        offer.name = detail::read_token(value, pos);
        if (offer.name.empty()) return fail();
        detail::skip_ows(value, pos);
        while (pos < value.size() && value[pos] == ';') {
            ++pos;
            detail::skip_ows(value, pos);
            extension_param param;
            param.name = detail::read_token(value, pos);
            if (param.name.empty()) return fail();
            detail::skip_ows(value, pos);
            if (pos < value.size() && value[pos] == '=') {
                ++pos;
                detail::skip_ows(value, pos);
                param.has_value = true;
                if (pos < value.size() && value[pos] == '"') {
                    const std::size_t close = value.find('"', pos + 1);
                    if (close == std::string_view::npos) return fail();
                    param.value = value.substr(pos + 1, close - pos - 1);
                    if (!detail::is_token(param.value)) return fail(); // also rejects '\' and ""
                    pos = close + 1;
                } else {
                    param.value = detail::read_token(value, pos);
                    if (param.value.empty()) return fail();
                }
                detail::skip_ows(value, pos);
            }
            offer.params.push_back(param);
        }
        out.push_back(std::move(offer));
        if (pos >= value.size()) return;
        if (value[pos] != ',') return fail();
        ++pos;
    }
}

/// Parses one Sec-WebSocket-Extensions value; see the appending overload.
inline std::vector<extension_offer> parse_extensions(std::string_view value, std::error_code& ec) {
    std::vector<extension_offer> out;
    parse_extensions(value, out, ec);
    return out;
}

/// Parses every Sec-WebSocket-Extensions field of a request or response, in order (a
/// sender may split the list over several lines, RFC 7230 §3.2.2). Views point into
/// the parsed buffer.
inline std::vector<extension_offer> parse_extensions(const http_headers& msg, std::error_code& ec) {
    std::vector<extension_offer> out;
    ec.clear();
    for (std::string_view v : msg.header_values("Sec-WebSocket-Extensions")) {
        parse_extensions(v, out, ec);
        if (ec) break;
    }
    return out;
}

// ---------------------------------------------------------------------------
// Server responses
// ---------------------------------------------------------------------------

/// Appends the 101 Switching Protocols answer (§4.2.2 step 5) to `out`: Upgrade,
/// Connection, Sec-WebSocket-Accept for `client_key`, and Sec-WebSocket-Protocol /
/// Sec-WebSocket-Extensions when non-empty, then `extra_headers`. Returns false and
/// appends nothing if a caller-supplied name is not a token or a value holds CR, LF or
/// another control character (it would let a value forge headers).
inline bool write_accept_response(std::string& out, std::string_view client_key, std::string_view subprotocol = {},
                                  std::string_view extensions = {}, const header_list* extra_headers = nullptr) {
    if (!detail::is_safe_field_value(subprotocol) || !detail::is_safe_field_value(extensions) ||
        !detail::are_safe_headers(extra_headers))
        return false;
    char accept[accept_key_size];
    detail::write_accept_key(accept, client_key);
    out += "HTTP/1.1 101 Switching Protocols\r\n"
           "Upgrade: websocket\r\n"
           "Connection: Upgrade\r\n";
    detail::append_header(out, "Sec-WebSocket-Accept", std::string_view(accept, sizeof accept));
    if (!subprotocol.empty()) detail::append_header(out, "Sec-WebSocket-Protocol", subprotocol);
    if (!extensions.empty()) detail::append_header(out, "Sec-WebSocket-Extensions", extensions);
    detail::append_headers(out, extra_headers);
    out += "\r\n";
    return true;
}

/// Appends a complete response with a body to `out`: status line with the standard
/// reason phrase, Content-Type (if non-empty), Content-Length and `extra_headers`. For
/// a server's own pages (the HTTP that is not an upgrade). A status outside 100..999
/// is sent as 500. Returns false and appends nothing on an unsafe header (see
/// write_accept_response).
inline bool write_http_response(std::string& out, int status, std::string_view content_type, std::string_view body,
                                const header_list* extra_headers = nullptr) {
    if (!detail::is_safe_field_value(content_type) || !detail::are_safe_headers(extra_headers)) return false;
    if (status < 100 || status > 999) status = 500;
    detail::append_status_line(out, status);
    if (!content_type.empty()) detail::append_header(out, "Content-Type", content_type);
    detail::append_header(out, "Content-Length", std::to_string(body.size()));
    detail::append_headers(out, extra_headers);
    out += "\r\n";
    out.append(body.data(), body.size());
    return true;
}

/// Appends the answer to a failed upgrade (status usually http_status_for(errc)) to
/// `out`: text/plain body (`body`, or the reason phrase when empty), Content-Length,
/// and `Connection: close` — the server closes after sending it. 426 also carries
/// `Sec-WebSocket-Version: 13` (§4.2.2 /version/, §4.4) and `Upgrade: websocket` (RFC 7231
/// §6.5.15), hence `Connection: Upgrade, close` (RFC 7230 §6.7); 405 carries
/// `Allow: GET` (RFC 7231 §6.5.5). `extra_headers` follow (e.g. Location for a
/// redirect, WWW-Authenticate for a 401); returns false and appends nothing when one
/// of them is unsafe (see write_http_response).
inline bool write_error_response(std::string& out, int status, std::string_view body = {},
                                 const header_list* extra_headers = nullptr) {
    if (!detail::are_safe_headers(extra_headers)) return false;
    if (status < 100 || status > 999) status = 500;
    std::string default_body;
    if (body.empty()) {
        default_body = std::to_string(status);
        default_body += ' ';
        default_body += http_reason_phrase(status);
        default_body += '\n';
        body = default_body;
    }
    detail::append_status_line(out, status);
    out += "Content-Type: text/plain; charset=utf-8\r\n";
    detail::append_header(out, "Content-Length", std::to_string(body.size()));
    if (status == 426) {
        out += "Upgrade: websocket\r\n"
               "Connection: Upgrade, close\r\n"
               "Sec-WebSocket-Version: 13\r\n";
    } else {
        out += "Connection: close\r\n";
    }
    if (status == 405) out += "Allow: GET\r\n";
    detail::append_headers(out, extra_headers);
    out += "\r\n";
    out.append(body.data(), body.size());
    return true;
}

// ---------------------------------------------------------------------------
// Client side (§4.1)
// ---------------------------------------------------------------------------

/// Sec-WebSocket-Key from 16 random bytes the caller drew (§4.1 item 7: a nonce
/// "randomly selected" for each connection — use a CSPRNG such as mask_generator).
inline std::string make_client_key(const std::array<std::uint8_t, 16>& nonce) {
    return base64_encode(nonce.data(), nonce.size());
}

/// What goes into a client's upgrade request besides the fixed fields.
struct client_request_options {
    std::string host;                      ///< host[:port] as it goes into Host (required)
    std::string target = "/";              ///< origin-form target: path and query
    std::vector<std::string> subprotocols; ///< Sec-WebSocket-Protocol, in preference order
    std::string extensions;                ///< Sec-WebSocket-Extensions value, as is
    std::string origin;                    ///< Origin, for browser-like clients
    header_list headers;                   ///< more fields (e.g. Authorization, Cookie)
};

/// Appends the upgrade request (§4.1) to `out`: GET target HTTP/1.1, Host, Upgrade,
/// Connection, Sec-WebSocket-Key `key`, Sec-WebSocket-Version: 13, then Origin,
/// Sec-WebSocket-Protocol, Sec-WebSocket-Extensions when set, then `headers`. Returns
/// false and appends nothing when the options cannot make a valid request: empty host,
/// a target that is not "/..." or holds SP/controls, subprotocols that are not unique
/// tokens (§4.1 item 10), or an unsafe header name/value.
inline bool write_client_request(std::string& out, const client_request_options& opts, std::string_view key) {
    const std::string_view target = opts.target.empty() ? std::string_view("/") : std::string_view(opts.target);
    if (target.front() != '/') return false;
    for (char c : target)
        if (!detail::is_target_char(c)) return false;
    if (opts.host.empty() || !detail::is_safe_field_value(opts.host) || !detail::is_safe_field_value(key) ||
        !detail::is_safe_field_value(opts.extensions) || !detail::is_safe_field_value(opts.origin) ||
        !detail::are_safe_headers(&opts.headers))
        return false;
    for (std::size_t i = 0; i < opts.subprotocols.size(); ++i) {
        if (!detail::is_token(opts.subprotocols[i])) return false;
        for (std::size_t j = 0; j < i; ++j)
            if (opts.subprotocols[j] == opts.subprotocols[i]) return false;
    }
    out += "GET ";
    out.append(target.data(), target.size());
    out += " HTTP/1.1\r\n";
    detail::append_header(out, "Host", opts.host);
    out += "Upgrade: websocket\r\n"
           "Connection: Upgrade\r\n";
    detail::append_header(out, "Sec-WebSocket-Key", key);
    out += "Sec-WebSocket-Version: 13\r\n";
    if (!opts.origin.empty()) detail::append_header(out, "Origin", opts.origin);
    if (!opts.subprotocols.empty()) {
        out += "Sec-WebSocket-Protocol: ";
        for (std::size_t i = 0; i < opts.subprotocols.size(); ++i) {
            if (i != 0) out += ", ";
            out += opts.subprotocols[i];
        }
        out += "\r\n";
    }
    if (!opts.extensions.empty()) detail::append_header(out, "Sec-WebSocket-Extensions", opts.extensions);
    detail::append_headers(out, &opts.headers);
    out += "\r\n";
    return true;
}

/// Validates the server's answer to our upgrade request (§4.1, "the client MUST
/// validate the server's response"), in this order: status 101 (bad_status), Upgrade
/// lists websocket (bad_upgrade_response), Connection lists upgrade
/// (bad_connection_response), exactly one Sec-WebSocket-Accept equal to
/// accept_key(key) (bad_accept), at most one Sec-WebSocket-Protocol naming one of
/// `offered_subprotocols` exactly (bad_subprotocol; any answer when none was offered is
/// one), Sec-WebSocket-Extensions only if `extensions_offered` and then well-formed
/// (bad_extension). Matching the accepted extensions to the offer is left to the
/// extension's own negotiation. On success `*chosen_subprotocol` (if given) is set to the
/// server's choice, or cleared.
inline std::error_code check_upgrade_response(const http_response& resp, std::string_view key,
                                              const std::vector<std::string>& offered_subprotocols,
                                              bool extensions_offered, std::string* chosen_subprotocol = nullptr) {
    if (resp.status != 101) return errc::bad_status;                                       // §4.1 item 1
    if (!resp.has_token("Upgrade", "websocket")) return errc::bad_upgrade_response;        // item 2
    if (!resp.has_token("Connection", "upgrade")) return errc::bad_connection_response;    // item 3
    char expected[accept_key_size];                                                       // item 4
    detail::write_accept_key(expected, key);
    if (resp.header_count("Sec-WebSocket-Accept") != 1 ||
        resp.header("Sec-WebSocket-Accept") != std::string_view(expected, sizeof expected))
        return errc::bad_accept;
    std::string_view chosen;                                                              // item 6
    const std::size_t protocol_fields = resp.header_count("Sec-WebSocket-Protocol");
    if (protocol_fields > 1) return errc::bad_subprotocol;
    if (protocol_fields == 1) {
        chosen = resp.header("Sec-WebSocket-Protocol");
        bool offered = false;
        for (const std::string& p : offered_subprotocols)
            if (!p.empty() && p == chosen) offered = true;
        if (!offered) return errc::bad_subprotocol;
    }
    bool any_extension = false;                                                           // item 5
    for (std::string_view v : resp.header_values("Sec-WebSocket-Extensions"))
        if (!v.empty()) any_extension = true;
    if (any_extension) {
        if (!extensions_offered) return errc::bad_extension;
        std::error_code ec;
        parse_extensions(resp, ec);
        if (ec) return ec;
    }
    if (chosen_subprotocol != nullptr) chosen_subprotocol->assign(chosen.data(), chosen.size());
    return {};
}

} // namespace duplex
