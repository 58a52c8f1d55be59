// The PROXY protocol (HAProxy's proxy-protocol.txt, versions 1 and 2), sans I/O: the
// header a load balancer (HAProxy, AWS NLB, nginx, Envoy, Traefik) writes at the start
// of each TCP connection it relays, naming the client it came from. A server behind
// one sees the balancer's address on its socket; this header gives it the client's.
// Version 1 is one text line ("PROXY TCP4 192.0.2.1 198.51.100.7 56324 443\r\n");
// version 2 is binary (a 12-byte signature, then version, command, family, length and
// the addresses, then optional TLVs). A receiver detects which one it is by the first
// bytes, and must refuse a connection that does not start with one or the other.
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>

#include "error.hpp"
#include "ip_address.hpp"

namespace duplex {

/// What a PROXY protocol header says about the connection it starts.
struct proxy_protocol_header {
    std::uint8_t version = 0; ///< 1 (text) or 2 (binary)
    /// True when the header carries no client address to use: version 2's LOCAL command
    /// (the balancer's own health checks), version 1's "UNKNOWN", or a family other than
    /// TCP over IPv4 or IPv6 (AF_UNIX, UDP, unspecified). The connection's own
    /// addresses then stand (the spec's rule for LOCAL, and its advice for the rest).
    bool local = true;
    bool ipv6 = false; ///< the addresses below are IPv6 (16 bytes), else IPv4 (the first 4)
    std::array<std::uint8_t, 16> source_address{};      ///< the client, network order
    std::array<std::uint8_t, 16> destination_address{}; ///< the address the client reached
    std::uint16_t source_port = 0;
    std::uint16_t destination_port = 0;
};

/// The largest header accepted: version 1's limit is 107 bytes; version 2's may reach
/// 16 + 65535, but its addresses take at most 232 and the TLVs that balancers add
/// (AWS's VPC endpoint, TLS details, a unique ID) a few hundred more.
inline constexpr std::size_t proxy_protocol_max_size = 4096;

namespace detail {

inline constexpr char proxy_v2_signature[12] = {'\r', '\n', '\r', '\n', '\0', '\r', '\n', 'Q', 'U', 'I', 'T', '\n'};

inline std::size_t refuse_proxy_header(std::error_code& ec) {
    ec = make_error_code(errc::bad_proxy_header);
    return 0;
}

// The next space-separated field of `line` into `field`; false when it was the last.
inline bool next_proxy_field(std::string_view& line, std::string_view& field) noexcept {
    const std::size_t sp = line.find(' ');
    field = line.substr(0, sp);
    line = sp == std::string_view::npos ? std::string_view{} : line.substr(sp + 1);
    return sp != std::string_view::npos;
}


// A port in decimal: 1 to 5 digits, at most 65535.
inline bool parse_port(std::string_view s, std::uint16_t& out) noexcept {
    if (s.empty() || s.size() > 5) return false;
    unsigned value = 0;
    for (char c : s) {
        if (c < '0' || c > '9') return false;
        value = value * 10 + static_cast<unsigned>(c - '0');
    }
    if (value > 65535) return false;
    out = static_cast<std::uint16_t>(value);
    return true;
}

// "PROXY TCP4 src dst sport dport\r\n", "PROXY TCP6 ...", or "PROXY UNKNOWN...\r\n";
// single spaces; at most 107 bytes with the CRLF.
inline std::size_t parse_proxy_v1(std::string_view in, proxy_protocol_header& out, std::error_code& ec) {
    constexpr std::size_t max_line = 107 - 2; // without the CRLF
    const std::size_t cr = in.substr(0, max_line + 1).find('\r');
    if (cr == std::string_view::npos) return in.size() > max_line ? refuse_proxy_header(ec) : 0;
    if (cr + 1 == in.size()) return 0; // the LF is still to come
    if (in[cr + 1] != '\n') return refuse_proxy_header(ec);
    std::string_view line = in.substr(0, cr);
    out = proxy_protocol_header{};
    out.version = 1;
    std::string_view proxy, family, src, dst, sport, dport;
    if (!next_proxy_field(line, proxy) || proxy != "PROXY") return refuse_proxy_header(ec);
    const bool more = next_proxy_field(line, family);
    if (family == "UNKNOWN") return cr + 2; // anything may follow; the connection's own addresses stand
    if (!more || (family != "TCP4" && family != "TCP6")) return refuse_proxy_header(ec);
    out.ipv6 = family == "TCP6";
    if (!next_proxy_field(line, src) || !next_proxy_field(line, dst) || !next_proxy_field(line, sport) || next_proxy_field(line, dport)) return refuse_proxy_header(ec);
    const bool addresses_ok = out.ipv6 ? parse_ipv6(src, out.source_address.data()) && parse_ipv6(dst, out.destination_address.data())
                                       : parse_ipv4(src, out.source_address.data()) && parse_ipv4(dst, out.destination_address.data());
    if (!addresses_ok || !parse_port(sport, out.source_port) || !parse_port(dport, out.destination_port)) return refuse_proxy_header(ec);
    out.local = false;
    return cr + 2;
}

inline std::size_t parse_proxy_v2(std::string_view in, proxy_protocol_header& out, std::error_code& ec) {
    if (in.size() < 16) return 0;
    const auto* byte = reinterpret_cast<const std::uint8_t*>(in.data());
    const std::uint8_t version = byte[12] >> 4, command = byte[12] & 0x0F;
    const std::uint8_t family = byte[13] >> 4, transport = byte[13] & 0x0F;
    const std::size_t length = std::size_t{byte[14]} << 8 | byte[15];
    // Unassigned values must be refused (the spec, §2.2).
    if (version != 2 || command > 1 || family > 3 || transport > 2) return refuse_proxy_header(ec);
    if (16 + length > proxy_protocol_max_size) return refuse_proxy_header(ec);
    static constexpr std::size_t address_sizes[4] = {0, 12, 36, 216}; // UNSPEC, INET, INET6, UNIX
    if (command == 1 && length < address_sizes[family]) return refuse_proxy_header(ec);
    if (in.size() < 16 + length) return 0;
    out = proxy_protocol_header{};
    out.version = 2;
    // LOCAL, or an address that is not a TCP one: the connection's own addresses stand.
    // What follows the addresses (TLVs) is skipped.
    if (command == 0 || transport != 1 || (family != 1 && family != 2)) return 16 + length;
    out.ipv6 = family == 2;
    const std::size_t size = out.ipv6 ? 16 : 4;
    for (std::size_t i = 0; i < size; ++i) {
        out.source_address.data()[i] = byte[16 + i];
        out.destination_address.data()[i] = byte[16 + size + i];
    }
    const std::uint8_t* ports = byte + 16 + 2 * size;
    out.source_port = static_cast<std::uint16_t>(ports[0] << 8 | ports[1]);
    out.destination_port = static_cast<std::uint16_t>(ports[2] << 8 | ports[3]);
    out.local = false;
    return 16 + length;
}

} // namespace detail

/// Parses the PROXY protocol header at the start of `bytes`, version 1 or 2. Returns its
/// size once it is complete (the bytes after it are the relayed stream), or 0: with `ec`
/// clear, more bytes are needed; with errc::bad_proxy_header, the bytes are not a valid
/// header (or one over proxy_protocol_max_size). The first byte decides the version, so
/// anything else (an HTTP request, a TLS hello) is refused as soon as it is seen.
inline std::size_t parse_proxy_protocol(std::string_view bytes, proxy_protocol_header& out, std::error_code& ec) {
    ec.clear();
    static constexpr std::string_view v1_prefix = "PROXY ";
    const std::string_view v2_prefix(detail::proxy_v2_signature, sizeof detail::proxy_v2_signature);
    if (bytes.empty()) return 0;
    // Both prefixes are compared as far as the bytes go: a partial one waits for more.
    if (v1_prefix.substr(0, bytes.size()) == bytes.substr(0, v1_prefix.size()))
        return bytes.size() < v1_prefix.size() ? 0 : detail::parse_proxy_v1(bytes, out, ec);
    if (v2_prefix.substr(0, bytes.size()) == bytes.substr(0, v2_prefix.size()))
        return bytes.size() < v2_prefix.size() ? 0 : detail::parse_proxy_v2(bytes, out, ec);
    return detail::refuse_proxy_header(ec);
}

/// The address as text: "192.0.2.1", or IPv6 in RFC 5952's form ("2001:db8::1", with
/// "::ffff:192.0.2.1" for an IPv4-mapped one), as Asio and inet_ntop print it.
inline std::string proxy_address_string(const std::array<std::uint8_t, 16>& a, bool ipv6) {
    return detail::ip_address_string(a.data(), ipv6);
}

/// The client's "address:port" ("[address]:port" for IPv6), as the server's
/// remote_address() prints a socket's; empty for a header that names no client (local).
inline std::string proxy_source_string(const proxy_protocol_header& h) {
    if (h.local) return {};
    std::string s = h.ipv6 ? "[" : "";
    s += proxy_address_string(h.source_address, h.ipv6);
    s += h.ipv6 ? "]:" : ":";
    s += std::to_string(h.source_port);
    return s;
}

} // namespace duplex
