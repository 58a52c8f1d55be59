// IP addresses as text, sans I/O: parsed into network-order bytes and printed back
// (RFC 4291 §2.2 in, RFC 5952 out, as Asio and inet_ntop print). URLs (url.hpp) and the
// PROXY protocol (proxy_protocol.hpp) read addresses with these.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace duplex::detail {

/// Dotted-quad IPv4 ("192.0.2.1") into 4 bytes: four decimals of 1 to 3 digits, each at
/// most 255, without leading zeros (libc would read "010" as octal).
inline bool parse_ipv4(std::string_view s, std::uint8_t* out) noexcept {
    for (int i = 0; i < 4; ++i) {
        if (i != 0) {
            if (s.empty() || s[0] != '.') return false;
            s.remove_prefix(1);
        }
        unsigned value = 0;
        std::size_t digits = 0;
        while (digits < s.size() && s[digits] >= '0' && s[digits] <= '9' && digits < 4)
            value = value * 10 + static_cast<unsigned>(s[digits++] - '0');
        if (digits == 0 || digits > 3 || value > 255 || (digits > 1 && s[0] == '0')) return false;
        out[i] = static_cast<std::uint8_t>(value);
        s.remove_prefix(digits);
    }
    return s.empty();
}

inline int hex_digit_value(char c) noexcept {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/// IPv6 text (RFC 4291 §2.2) into 16 bytes: eight groups of 1 to 4 hex digits, "::" once
/// for a run of zero groups, and optionally a dotted IPv4 address for the last 32 bits.
inline bool parse_ipv6(std::string_view s, std::uint8_t* out) noexcept {
    std::uint16_t groups[8] = {};
    int count = 0, gap = -1; // gap: where "::" stands, in groups
    if (s.size() >= 2 && s[0] == ':' && s[1] == ':') {
        gap = 0;
        s.remove_prefix(2);
    } else if (!s.empty() && s[0] == ':') {
        return false;
    }
    while (!s.empty()) {
        if (count == 8) return false;
        std::size_t digits = 0;
        unsigned value = 0;
        while (digits < s.size() && digits < 5 && hex_digit_value(s[digits]) >= 0)
            value = value * 16 + static_cast<unsigned>(hex_digit_value(s[digits++]));
        if (digits < s.size() && s[digits] == '.') { // the IPv4 tail
            if (count > 6) return false;
            std::uint8_t v4[4];
            if (!parse_ipv4(s, v4)) return false;
            groups[count++] = static_cast<std::uint16_t>(v4[0] << 8 | v4[1]);
            groups[count++] = static_cast<std::uint16_t>(v4[2] << 8 | v4[3]);
            s = {};
            break;
        }
        if (digits == 0 || digits > 4) return false;
        groups[count++] = static_cast<std::uint16_t>(value);
        s.remove_prefix(digits);
        if (s.empty()) break;
        if (s[0] != ':') return false;
        s.remove_prefix(1);
        if (!s.empty() && s[0] == ':') {
            if (gap >= 0) return false; // "::" twice
            gap = count;
            s.remove_prefix(1);
        } else if (s.empty()) {
            return false; // a trailing single ':'
        }
    }
    if (gap < 0 ? count != 8 : count > 7) return false;
    std::uint16_t full[8] = {};
    const int tail = gap < 0 ? 0 : count - gap;
    for (int i = 0; i < count - tail; ++i) full[i] = groups[i];
    for (int i = 0; i < tail; ++i) full[8 - tail + i] = groups[gap + i];
    for (int i = 0; i < 8; ++i) {
        out[2 * i] = static_cast<std::uint8_t>(full[i] >> 8);
        out[2 * i + 1] = static_cast<std::uint8_t>(full[i]);
    }
    return true;
}

inline void append_ipv4(std::string& s, const std::uint8_t* b) {
    for (int i = 0; i < 4; ++i) {
        if (i) s += '.';
        s += std::to_string(b[i]);
    }
}

/// `a` (4 bytes, or 16 with `ipv6`) as text: "192.0.2.1", or IPv6 in RFC 5952's form
/// ("2001:db8::1", "::ffff:192.0.2.1" for an IPv4-mapped address).
inline std::string ip_address_string(const std::uint8_t* a, bool ipv6) {
    std::string s;
    if (!ipv6) {
        append_ipv4(s, a);
        return s;
    }
    std::uint16_t g[8];
    for (int i = 0; i < 8; ++i) g[i] = static_cast<std::uint16_t>(a[2 * i] << 8 | a[2 * i + 1]);
    if (g[0] == 0 && g[1] == 0 && g[2] == 0 && g[3] == 0 && g[4] == 0 && g[5] == 0xFFFF) {
        s = "::ffff:";
        append_ipv4(s, a + 12);
        return s;
    }
    int best = -1, best_len = 1; // the longest run of zero groups, of two or more (RFC 5952 §4.2)
    for (int i = 0; i < 8;) {
        int j = i;
        while (j < 8 && g[j] == 0) ++j;
        if (j - i > best_len) best = i, best_len = j - i;
        i = j == i ? i + 1 : j;
    }
    static constexpr char hex[] = "0123456789abcdef";
    for (int i = 0; i < 8; ++i) {
        if (i == best) {
            s += "::";
            i += best_len - 1;
            continue;
        }
        if (i != 0 && i != best + best_len) s += ':';
        bool started = false;
        for (int shift = 12; shift >= 0; shift -= 4) {
            const int d = g[i] >> shift & 0xF;
            if (d || started || shift == 0) s += hex[d], started = true;
        }
    }
    return s;
}

} // namespace duplex::detail
