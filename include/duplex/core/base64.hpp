// Base64 (RFC 4648 §4, standard alphabet, with padding), for Sec-WebSocket-Key
// and Sec-WebSocket-Accept (RFC 6455 §4.1, §4.2.2).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace duplex {

namespace detail {

inline constexpr char base64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

// Value of a Base64 character, or -1 for anything outside the alphabet ('=' included).
constexpr int base64_value(char c) noexcept {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

} // namespace detail

/// Characters base64_encode produces for `size` input bytes (padding included).
constexpr std::size_t base64_encoded_size(std::size_t size) noexcept { return (size + 2) / 3 * 4; }

/// Largest number of bytes `size` Base64 characters can decode to.
constexpr std::size_t base64_decoded_max_size(std::size_t size) noexcept { return size / 4 * 3; }

/// Encodes `size` bytes at `data` into `out`, which must hold base64_encoded_size(size)
/// characters. Writes no terminating NUL; returns the number of characters written.
inline std::size_t base64_encode(char* out, const void* data, std::size_t size) noexcept {
    const auto* in = static_cast<const std::uint8_t*>(data);
    const char* const abc = detail::base64_alphabet;
    char* o = out;
    std::size_t i = 0;
    for (; i + 3 <= size; i += 3) {
        const std::uint32_t v = (std::uint32_t{in[i]} << 16) | (std::uint32_t{in[i + 1]} << 8) | in[i + 2];
        *o++ = abc[(v >> 18) & 63];
        *o++ = abc[(v >> 12) & 63];
        *o++ = abc[(v >> 6) & 63];
        *o++ = abc[v & 63];
    }
    const std::size_t rest = size - i;
    if (rest == 1) {
        const std::uint32_t v = std::uint32_t{in[i]} << 16;
        *o++ = abc[(v >> 18) & 63];
        *o++ = abc[(v >> 12) & 63];
        *o++ = '=';
        *o++ = '=';
    } else if (rest == 2) {
        const std::uint32_t v = (std::uint32_t{in[i]} << 16) | (std::uint32_t{in[i + 1]} << 8);
        *o++ = abc[(v >> 18) & 63];
        *o++ = abc[(v >> 12) & 63];
        *o++ = abc[(v >> 6) & 63];
        *o++ = '=';
    }
    return static_cast<std::size_t>(o - out);
}

/// Base64 of `size` bytes at `data`.
inline std::string base64_encode(const void* data, std::size_t size) {
    std::string out(base64_encoded_size(size), '\0');
    base64_encode(&out[0], data, size);
    return out;
}

/// Base64 of the bytes of `data`.
inline std::string base64_encode(std::string_view data) { return base64_encode(data.data(), data.size()); }

/// Strict decoder: the input must be a whole number of 4-character groups from the
/// standard alphabet, with '=' padding only at the very end (at most two), and the
/// unused bits before the padding must be zero (the canonical encoding, RFC 4648 §3.5).
/// No whitespace, no line breaks. Writes the bytes into `out` (room for `capacity`
/// bytes) and their number into `size`. Returns false on malformed input or when
/// `capacity` is too small; `out` may then hold partial output.
inline bool base64_decode(std::string_view in, void* out, std::size_t capacity, std::size_t& size) noexcept {
    size = 0;
    if (in.size() % 4 != 0) return false;
    auto* o = static_cast<std::uint8_t*>(out);
    for (std::size_t i = 0; i < in.size(); i += 4) {
        const bool last = i + 4 == in.size();
        int pad = 0;
        if (last) {
            if (in[i + 3] == '=') pad = in[i + 2] == '=' ? 2 : 1;
        }
        int v[4] = {0, 0, 0, 0};
        for (int j = 0; j < 4 - pad; ++j) {
            v[j] = detail::base64_value(in[i + static_cast<std::size_t>(j)]);
            if (v[j] < 0) return false; // also catches '=' in the middle of the input
        }
        const std::uint32_t bits = (static_cast<std::uint32_t>(v[0]) << 18) | (static_cast<std::uint32_t>(v[1]) << 12) |
                                   (static_cast<std::uint32_t>(v[2]) << 6) | static_cast<std::uint32_t>(v[3]);
        // Non-canonical: bits that the padding says are unused must be zero.
        if (pad == 1 && (bits & 0xFFu) != 0) return false;
        if (pad == 2 && (bits & 0xFFFFu) != 0) return false;
        const std::size_t n = static_cast<std::size_t>(3 - pad);
        if (capacity - size < n) return false;
        o[size++] = static_cast<std::uint8_t>(bits >> 16);
        if (n > 1) o[size++] = static_cast<std::uint8_t>(bits >> 8);
        if (n > 2) o[size++] = static_cast<std::uint8_t>(bits);
    }
    return true;
}

/// Strict decode into a std::string (see above). Returns false on malformed input.
inline bool base64_decode(std::string_view in, std::string& out) {
    out.assign(base64_decoded_max_size(in.size()), '\0');
    std::size_t size = 0;
    const bool ok = base64_decode(in, &out[0], out.size(), size);
    out.resize(ok ? size : 0);
    return ok;
}

} // namespace duplex
