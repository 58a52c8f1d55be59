// Close frame payloads (RFC 6455 §5.5.1, §7.4).
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>
#include <system_error>

#include "duplex/core/detail/endian.hpp"
#include "duplex/core/error.hpp"
#include "duplex/core/utf8.hpp"

namespace duplex {

/// Longest close reason: a control payload is at most 125 bytes (§5.5), two
/// of which hold the code.
constexpr std::size_t max_close_reason_size = 123;

/// May `code` appear in a close frame on the wire? (§7.4.1, §7.4.2)
/// 1000-1003 and 1007-1014 are defined, 3000-4999 are for libraries and
/// applications. 1004 is reserved, 1005/1006/1015 must never be sent, and
/// the rest of 0-2999 is reserved or unassigned; 5000+ is outside the range.
inline bool is_valid_close_code(std::uint16_t code) noexcept {
    if (code >= 1000 && code <= 1003) return true;
    if (code >= 1007 && code <= 1014) return true;
    return code >= 3000 && code <= 4999;
}

/// Writes code (big endian) + reason into out (at least 125 bytes) and
/// returns the payload size. The reason is cut to 123 bytes at a UTF-8
/// boundary (it is assumed to be UTF-8). code 1005 (no_status) writes an
/// empty payload, which is how "no code" is sent (§5.5.1). The code is not
/// checked; see is_valid_close_code.
inline std::size_t write_close_payload(std::uint8_t* out, std::uint16_t code,
                                       std::string_view reason) noexcept {
    if (code == close_code::no_status) return 0;
    detail::store_be16(out, code);
    std::size_t n = reason.size();
    if (n > max_close_reason_size) {
        n = max_close_reason_size;
        // reason[n] is the first byte left out; if it continues a code point,
        // back off to that code point's lead byte.
        while (n > 0 && (static_cast<std::uint8_t>(reason[n]) & 0xC0) == 0x80) --n;
    }
    if (n > 0) std::memcpy(out + 2, reason.data(), n);
    return 2 + n;
}

/// Reads a received close payload (§5.5.1): sets `code` (1005 when the
/// payload is empty) and `reason`. Errors: bad_close_size (1 byte),
/// bad_close_code, invalid_close_reason (not UTF-8).
inline std::error_code parse_close_payload(const std::uint8_t* data, std::size_t size,
                                           std::uint16_t& code, std::string_view& reason) noexcept {
    code = close_code::no_status;
    reason = {};
    if (size == 0) return {};
    if (size == 1) return errc::bad_close_size;
    const std::uint16_t c = detail::load_be16(data);
    if (!is_valid_close_code(c)) return errc::bad_close_code;
    if (!is_valid_utf8(data + 2, size - 2)) return errc::invalid_close_reason;
    code = c;
    reason = std::string_view(reinterpret_cast<const char*>(data + 2), size - 2);
    return {};
}

} // namespace duplex
