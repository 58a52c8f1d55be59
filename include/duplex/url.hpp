// ws:// and wss:// URLs (RFC 6455 §3), sans-I/O: what a client needs to
// connect (host, port, TLS or not) and to write its upgrade request (Host, target).
//
// Accepted:  ws://host[:port][/path][?query]   and the same with wss://
//   - the scheme is case-insensitive; default ports 80 (ws) and 443 (wss);
//   - host: a DNS name (letters, digits, '-', '.', '_', '~'; stored lower-case),
//     an IPv4 address, or a bracketed IPv6 literal ("[::1]", stored without brackets);
//   - an empty port after ':' means the default port (as in the WHATWG URL spec);
//   - an empty path becomes "/"; bytes that may not appear in a request target
//     (controls, space, DEL, non-ASCII) are percent-encoded.
// Rejected with errc::bad_url:
//   - any other scheme (http://, https://, ...), a missing host, port 0 or > 65535;
//   - userinfo ("ws://user:pass@host/"): credentials in URLs leak into logs; send an
//     Authorization header instead;
//   - a fragment ("#..."): RFC 6455 §3 says fragment identifiers MUST NOT be used;
//   - a host whose last label is a number but that is not a dotted-quad IPv4 address
//     ("127.1", "010.0.0.1", "0x7f.0.0.1", "example.123": libc would read some of them
//     as other addresses); a dot after a dotted quad is dropped ("1.2.3.4." is 1.2.3.4);
//   - IPv6 zone identifiers ("[fe80::1%25eth0]"), percent-encoded or non-ASCII host
//     names (convert an internationalized name to punycode first), whitespace anywhere.
//
// Proxy URLs (parse_proxy_url, for client_options::proxy: http://, socks5://) are below
// parse_url.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>

#include "core/error.hpp"
#include "core/ip_address.hpp"

namespace duplex {

/// A parsed ws:// or wss:// URL.
struct url {
    bool secure = false;        ///< wss://
    std::string host;           ///< lower-case name or address; IPv6 without brackets
    std::uint16_t port = 80;
    std::string target = "/";   ///< path and query: the request target

    std::uint16_t default_port() const noexcept { return secure ? 443 : 80; }
    bool is_ipv6() const noexcept { return host.find(':') != std::string::npos; }

    /// The Host header value: host[:port], the port only when not the default, brackets
    /// kept for IPv6.
    std::string host_header() const {
        std::string h = is_ipv6() ? "[" + host + "]" : host;
        if (port != default_port()) h += ":" + std::to_string(port);
        return h;
    }
    /// The URL written back out in normal form.
    std::string str() const { return (secure ? "wss://" : "ws://") + host_header() + target; }
};

namespace detail {

constexpr bool url_is_digit(char c) noexcept { return c >= '0' && c <= '9'; }
constexpr bool url_is_hex(char c) noexcept {
    return url_is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}
constexpr char url_lower(char c) noexcept { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; }

/// Dotted-quad IPv4 (four decimal parts 0-255, no leading zeros).
inline bool is_ipv4_literal(std::string_view s) noexcept {
    std::uint8_t bytes[4];
    return parse_ipv4(s, bytes);
}

/// True when the last label of `host` is a number ("127.1", "0x7f.1", "2130706433"):
/// libc reads such names as IPv4 addresses in old forms (octal "010.0.0.1" is 8.0.0.1),
/// so only the dotted-quad form is taken (WHATWG URL's "ends in a number").
inline bool ends_in_number(std::string_view host) noexcept {
    if (!host.empty() && host.back() == '.') host.remove_suffix(1);
    const std::size_t dot = host.rfind('.');
    const std::string_view last = dot == std::string_view::npos ? host : host.substr(dot + 1);
    if (last.empty()) return false;
    bool digits = true;
    for (char c : last) digits = digits && url_is_digit(c);
    if (digits) return true;
    if (last.size() < 2 || last[0] != '0' || (last[1] != 'x' && last[1] != 'X')) return false;
    for (char c : last.substr(2))
        if (!url_is_digit(c) && !((c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))) return false;
    return true;
}

/// RFC 4291 §2.2 text form: eight groups of 1-4 hex digits, at most one "::",
/// optionally ending in a dotted-quad IPv4 address.
inline bool is_ipv6_literal(std::string_view s) noexcept {
    std::uint8_t bytes[16];
    return parse_ipv6(s, bytes);
}

inline bool is_host_name_char(char c) noexcept {
    return url_is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-' || c == '.' ||
           c == '_' || c == '~';
}

/// host[:port] of a URL's authority (no userinfo): the host checked and lower-cased
/// (an IPv6 literal without its brackets), the port `default_port` when absent or empty.
inline bool parse_host_port(std::string_view authority, std::uint16_t default_port, std::string& host_out,
                            std::uint16_t& port_out) {
    // Host: a bracketed IPv6 literal or a name / IPv4 address.
    std::string_view host, port;
    if (!authority.empty() && authority.front() == '[') {
        const std::size_t close = authority.find(']');
        if (close == std::string_view::npos) return false;
        host = authority.substr(1, close - 1);
        if (!is_ipv6_literal(host)) return false;
        authority.remove_prefix(close + 1);
        if (!authority.empty() && authority.front() != ':') return false;
    } else {
        host = authority.substr(0, authority.find(':'));
        if (host.empty()) return false;
        for (char c : host)
            if (!is_host_name_char(c)) return false;
        authority.remove_prefix(host.size());
        if (ends_in_number(host)) {
            if (host.back() == '.') host.remove_suffix(1); // "1.2.3.4." is 1.2.3.4 (WHATWG URL)
            if (!is_ipv4_literal(host)) return false;
        }
    }
    if (!authority.empty()) port = authority.substr(1); // after ':'

    host_out.clear();
    for (char c : host) host_out += url_lower(c);
    port_out = default_port;
    if (!port.empty()) {
        if (port.size() > 5) return false;
        unsigned long v = 0;
        for (char c : port) {
            if (!url_is_digit(c)) return false;
            v = v * 10 + static_cast<unsigned long>(c - '0');
        }
        if (v == 0 || v > 65535) return false;
        port_out = static_cast<std::uint16_t>(v);
    }
    return true;
}

/// Percent-decodes `in` (RFC 3986 §2.1) into `out`; false on a bad escape or a control
/// character (none may appear in Basic credentials, RFC 7617 §2).
inline bool percent_decode_credential(std::string_view in, std::string& out) {
    out.clear();
    for (std::size_t i = 0; i < in.size(); ++i) {
        char c = in[i];
        if (c == '%') {
            if (i + 2 >= in.size() || !url_is_hex(in[i + 1]) || !url_is_hex(in[i + 2])) return false;
            const auto nibble = [](char h) { return url_is_digit(h) ? h - '0' : (url_lower(h) - 'a' + 10); };
            c = static_cast<char>(nibble(in[i + 1]) * 16 + nibble(in[i + 2]));
            i += 2;
        }
        const auto u = static_cast<unsigned char>(c);
        if (u < 0x20 || u == 0x7F) return false;
        out += c;
    }
    return true;
}

} // namespace detail

/// Parses `text` into `out`. Returns errc::bad_url (and leaves `out` unspecified) when
/// it is not a URL this client can connect to; see the rules at the top of this file.
inline std::error_code parse_url(std::string_view text, url& out) {
    const auto bad = make_error_code(errc::bad_url);
    const std::size_t colon = text.find("://");
    if (colon == std::string_view::npos) return bad;
    std::string scheme;
    for (char c : text.substr(0, colon)) scheme += detail::url_lower(c);
    if (scheme == "ws") out.secure = false;
    else if (scheme == "wss") out.secure = true;
    else return bad;
    text.remove_prefix(colon + 3);
    if (text.find('#') != std::string_view::npos) return bad;

    const std::size_t authority_end = text.find_first_of("/?");
    std::string_view authority = text.substr(0, authority_end);
    const std::string_view rest = authority_end == std::string_view::npos ? std::string_view() : text.substr(authority_end);
    if (authority.find('@') != std::string_view::npos) return bad;

    if (!detail::parse_host_port(authority, out.default_port(), out.host, out.port)) return bad;

    // Target: path (default "/") and query, with unsafe bytes percent-encoded.
    out.target.clear();
    if (rest.empty() || rest.front() == '?') out.target = "/";
    static constexpr char hex[] = "0123456789ABCDEF";
    for (char c : rest) {
        const auto u = static_cast<unsigned char>(c);
        if (u <= 0x20 && (c == ' ' || c == '\t' || c == '\r' || c == '\n')) return bad; // whitespace: a typo
        if (u <= 0x20 || u >= 0x7F) {
            out.target += '%';
            out.target += hex[u >> 4];
            out.target += hex[u & 0xF];
        } else {
            out.target += c;
        }
    }
    return {};
}

/// Throwing overload: duplex::error(errc::bad_url) for a URL parse_url rejects.
inline url parse_url(std::string_view text) {
    url u;
    throw_if(parse_url(text, u));
    return u;
}

/// Where a redirect's Location (RFC 9110 §10.2.2) sends a client that connected to
/// `from` (client_options::max_redirects). Accepted: a ws:// or wss:// URL; an http://
/// or https:// one, taken as ws:// or wss:// (web servers write those); an absolute
/// path ("/next?x"), on the same host. A fragment is dropped. Anything else (a relative
/// path, "//host", another scheme, a URL parse_url refuses) is errc::bad_redirect, and
/// so is leaving wss:// for ws://: what TLS protected would go in the clear.
inline std::error_code resolve_redirect(const url& from, std::string_view location, url& to) {
    const auto bad = make_error_code(errc::bad_redirect);
    location = location.substr(0, location.find('#'));
    std::string absolute;
    if (!location.empty() && location.front() == '/') {
        if (location.size() > 1 && location[1] == '/') return bad; // "//host/...": a network-path reference
        absolute = (from.secure ? "wss://" : "ws://") + from.host_header();
        absolute.append(location);
    } else {
        const std::size_t colon = location.find("://");
        if (colon == std::string_view::npos) return bad;
        std::string scheme;
        for (char c : location.substr(0, colon)) scheme += detail::url_lower(c);
        if (scheme == "http") absolute = "ws";
        else if (scheme == "https") absolute = "wss";
        else if (scheme == "ws" || scheme == "wss") absolute = scheme;
        else return bad;
        absolute.append(location.substr(colon));
    }
    url next;
    if (parse_url(absolute, next) || (from.secure && !next.secure)) return bad;
    to = std::move(next);
    return {};
}

/// A proxy that a client reaches its server through (client_options::proxy).
struct proxy_url {
    bool socks5 = false;        ///< SOCKS5 (RFC 1928), else HTTP CONNECT
    std::string host;           ///< lower-case name or address; IPv6 without brackets
    std::uint16_t port = 80;
    std::string username;       ///< decoded; credentials are sent when not empty
    std::string password;       ///< decoded
};

/// Parses a proxy URL: http://[user[:password]@]host[:port][/] (HTTP CONNECT, default
/// port 80; the scheme may be left out: "host:port"), or the same with socks5:// or
/// socks5h:// (SOCKS5, default port 1080; both let the proxy resolve the server's name).
/// The host follows the rules of parse_url; user and password are percent-decoded
/// (write '@' as %40, ':' as %3A) and may hold no control characters, nor the user a ':'
/// (RFC 7617 §2); for SOCKS5 both are needed, 1 to 255 bytes each (RFC 1929). Anything
/// else (https:// proxies, socks4://, a path, a query) is errc::bad_proxy_url.
inline std::error_code parse_proxy_url(std::string_view text, proxy_url& out) {
    const auto bad = make_error_code(errc::bad_proxy_url);
    out.socks5 = false;
    const std::size_t colon = text.find("://");
    if (colon != std::string_view::npos) {
        std::string scheme;
        for (char c : text.substr(0, colon)) scheme += detail::url_lower(c);
        if (scheme == "socks5" || scheme == "socks5h") out.socks5 = true;
        else if (scheme != "http") return bad;
        text.remove_prefix(colon + 3);
    }
    if (!text.empty() && text.back() == '/') text.remove_suffix(1);
    const std::size_t at = text.rfind('@');
    out.username.clear();
    out.password.clear();
    if (at != std::string_view::npos) {
        const std::string_view userinfo = text.substr(0, at);
        const std::size_t sep = userinfo.find(':');
        if (!detail::percent_decode_credential(userinfo.substr(0, sep), out.username) || out.username.empty() ||
            out.username.find(':') != std::string::npos)
            return bad;
        if (sep != std::string_view::npos && !detail::percent_decode_credential(userinfo.substr(sep + 1), out.password))
            return bad;
        text.remove_prefix(at + 1);
    }
    if (out.socks5 && at != std::string_view::npos &&
        (out.password.empty() || out.username.size() > 255 || out.password.size() > 255))
        return bad;
    if (text.find_first_of("/?#@ \t") != std::string_view::npos) return bad;
    if (!detail::parse_host_port(text, out.socks5 ? 1080 : 80, out.host, out.port)) return bad;
    return {};
}

} // namespace duplex
