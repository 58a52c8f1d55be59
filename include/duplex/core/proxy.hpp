// An HTTP CONNECT tunnel (RFC 9110 §9.3.6), sans I/O: the request a client sends an
// HTTP proxy to reach host:port through it, and the check of the proxy's answer. The
// WebSocket handshake (and TLS, for wss://) then runs through the tunnel as over TCP.
#pragma once
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

} // namespace duplex
