// Tunnels through a proxy, sans I/O: an HTTP CONNECT tunnel (RFC 9110 §9.3.6) and a
// SOCKS5 one (RFC 1928, with RFC 1929 username/password). The messages a client sends a
// proxy to reach host:port through it, and the checks of the proxy's answers. The
// WebSocket handshake (and TLS, for wss://) then runs through the tunnel as over TCP.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>

#include "base64.hpp"
#include "error.hpp"
#include "handshake.hpp"
#include "http.hpp"

namespace duplex {

/// Appends to `out` the request that asks a proxy for a tunnel to host:port:
/// "CONNECT host:port HTTP/1.1" and the same authority in Host (an IPv6 host in
/// brackets), "Proxy-Authorization: Basic ..." when `username` is not empty (RFC 7617:
/// Base64 of username:password), then `headers`. Returns false and appends nothing when
/// that cannot make a valid request: an empty host, a host with anything but visible
/// ASCII (or with brackets, '/' or '@'), a credential with a control character, a ':'
/// in the username, or an unsafe header.
inline bool write_connect_request(std::string& out, std::string_view host, std::uint16_t port,
                                  std::string_view username = {}, std::string_view password = {},
                                  const header_list* headers = nullptr) {
    if (host.empty() || !detail::is_safe_field_value(username) || !detail::is_safe_field_value(password) ||
        username.find(':') != std::string_view::npos || !detail::are_safe_headers(headers))
        return false;
    for (char c : host) { // a name or an address (IPv6 without brackets): visible ASCII
        const auto u = static_cast<unsigned char>(c);
        if (u <= 0x20 || u >= 0x7F || c == '[' || c == ']' || c == '/' || c == '@') return false;
    }
    std::string authority;
    if (host.find(':') != std::string_view::npos) authority.append("[").append(host).append("]");
    else authority.append(host);
    authority += ':';
    authority += std::to_string(port);

    out += "CONNECT ";
    out += authority;
    out += " HTTP/1.1\r\n";
    detail::append_header(out, "Host", authority);
    if (!username.empty()) {
        std::string credentials;
        credentials.append(username).append(":").append(password);
        out += "Proxy-Authorization: Basic ";
        out += base64_encode(credentials);
        out += "\r\n";
    }
    detail::append_headers(out, headers);
    out += "\r\n";
    return true;
}

/// The proxy's final answer to CONNECT: any 2xx opens the tunnel (§9.3.6; its
/// Content-Length or Transfer-Encoding, if any, is ignored, as the RFC says);
/// 407 is errc::proxy_auth_required; anything else errc::proxy_refused (e.g. 403 for a
/// port the proxy does not tunnel to, 502 when it cannot reach the server).
inline std::error_code check_connect_response(const http_response& resp) noexcept {
    if (resp.status >= 200 && resp.status < 300) return {};
    return make_error_code(resp.status == 407 ? errc::proxy_auth_required : errc::proxy_refused);
}

// ---- SOCKS5 (RFC 1928) -------------------------------------------------------------

/// Appends the greeting: version 5 and the methods offered, "no authentication" and,
/// with `password`, "username/password" (RFC 1928 §3).
inline void write_socks5_greeting(std::string& out, bool password) {
    out += '\x05';
    out += password ? '\x02' : '\x01';
    out += '\x00';
    if (password) out += '\x02';
}

/// The proxy's 2-byte choice of method: sets `send_password` when it asks for
/// username/password (only if `password` was offered). errc::proxy_auth_required when it
/// accepts none of ours (0xFF: it wants credentials), errc::bad_proxy_response for
/// anything that is not a SOCKS5 answer to the greeting.
inline std::error_code check_socks5_method(const std::uint8_t reply[2], bool password, bool& send_password) noexcept {
    send_password = false;
    if (reply[0] != 0x05) return make_error_code(errc::bad_proxy_response);
    if (reply[1] == 0x00) return {};
    if (reply[1] == 0x02 && password) {
        send_password = true;
        return {};
    }
    return make_error_code(reply[1] == 0xFF ? errc::proxy_auth_required : errc::bad_proxy_response);
}

/// Appends the username/password request (RFC 1929 §2). False, nothing appended, when
/// either is empty or longer than 255 bytes.
inline bool write_socks5_password(std::string& out, std::string_view username, std::string_view password) {
    if (username.empty() || username.size() > 255 || password.empty() || password.size() > 255) return false;
    out += '\x01';
    out += static_cast<char>(username.size());
    out.append(username.data(), username.size());
    out += static_cast<char>(password.size());
    out.append(password.data(), password.size());
    return true;
}

/// The 2-byte answer to the username/password request: status 0 is success (RFC 1929
/// §2), anything else errc::proxy_auth_required.
inline std::error_code check_socks5_password_reply(const std::uint8_t reply[2]) noexcept {
    if (reply[0] != 0x01) return make_error_code(errc::bad_proxy_response);
    return reply[1] == 0x00 ? std::error_code() : make_error_code(errc::proxy_auth_required);
}

/// Appends the CONNECT request for host:port (RFC 1928 §4): with `address` (4 bytes for
/// IPv4, 16 for IPv6, network order) that address, else `host` as a name the proxy
/// resolves. False, nothing appended, for another address size, or an empty name or
/// one longer than 255 bytes.
inline bool write_socks5_connect(std::string& out, std::string_view host, std::uint16_t port,
                                 const std::uint8_t* address = nullptr, std::size_t address_size = 0) {
    if (address != nullptr ? (address_size != 4 && address_size != 16) : (host.empty() || host.size() > 255)) return false;
    out += '\x05';
    out += '\x01'; // CONNECT
    out += '\x00';
    if (address != nullptr) {
        out += address_size == 4 ? '\x01' : '\x04';
        out.append(reinterpret_cast<const char*>(address), address_size);
    } else {
        out += '\x03';
        out += static_cast<char>(host.size());
        out.append(host.data(), host.size());
    }
    out += static_cast<char>(port >> 8);
    out += static_cast<char>(port & 0xFF);
    return true;
}

/// How many bytes the proxy's CONNECT reply has in all, from its first 5 (version,
/// reply, reserved, address type, first address byte): 0 when they are not a SOCKS5 reply.
inline std::size_t socks5_reply_size(const std::uint8_t first[5]) noexcept {
    if (first[0] != 0x05 || first[2] != 0x00) return 0;
    switch (first[3]) {
    case 0x01: return 4 + 4 + 2;
    case 0x04: return 4 + 16 + 2;
    case 0x03: return 4 + 1 + std::size_t(first[4]) + 2;
    default: return 0;
    }
}

/// The reply field of a CONNECT reply (RFC 1928 §6): 0 opens the tunnel; the proxy's
/// own reasons come back as the system errors they name (network or host unreachable,
/// connection refused, timed out); a refusal by its rules and anything else is
/// errc::proxy_refused.
inline std::error_code check_socks5_reply(std::uint8_t reply) noexcept {
    switch (reply) {
    case 0x00: return {};
    case 0x03: return std::make_error_code(std::errc::network_unreachable);
    case 0x04: return std::make_error_code(std::errc::host_unreachable);
    case 0x05: return std::make_error_code(std::errc::connection_refused);
    case 0x06: return std::make_error_code(std::errc::timed_out);
    default: return make_error_code(errc::proxy_refused);
    }
}

} // namespace duplex
