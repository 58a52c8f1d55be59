// permessage-deflate (RFC 7692) negotiation (§5, §7.1), sans I/O and without
// zlib: the options a side offers or accepts, what was agreed, and the
// Sec-WebSocket-Extensions offer/answer logic. The codec is in permessage_deflate.hpp.
#pragma once

#include <algorithm>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "../core/error.hpp"
#include "../core/handshake.hpp"

namespace duplex {

/// The extension token (RFC 7692 §7).
inline constexpr std::string_view permessage_deflate_name = "permessage-deflate";

/// One side's permessage-deflate policy. For a client it is also its offer:
///  - server_no_context_takeover: ask the server to reset its compressor per message;
///  - client_no_context_takeover: we reset ours per message (and tell the server so);
///  - server_max_window_bits < 15: ask the server to compress with at most that window;
///  - client_max_window_bits: the largest window our compressor uses; the offer always
///    carries client_max_window_bits (without value when 15) so the server may lower it.
/// For a server it is what it imposes on every accepted offer: the two
/// no_context_takeover flags are added to the response, server_max_window_bits caps
/// our compressor's window, client_max_window_bits caps the client's (when the client
/// offered the parameter; a client that did not is accepted with a 15-bit window).
/// Window bits outside 8..15 are clamped into it.
struct deflate_options {
    bool enabled = true;
    bool server_no_context_takeover = false;
    bool client_no_context_takeover = false;
    int server_max_window_bits = 15;
    int client_max_window_bits = 15;
    int compression_level = -1;                ///< zlib level, -1 (default, = 6) or 0..9
    int mem_level = 8;                              ///< zlib memLevel 1..9 (deflate memory)
    std::size_t threshold = 32; ///< messages shorter than this are sent uncompressed (RSV1 is per message)
};

/// What the handshake agreed (RFC 7692 §7.1), resolved to concrete values. Window
/// bits are 8..15: server_* governs the server's compressor and the client's
/// inflater, client_* the other direction.
struct deflate_params {
    bool enabled = false; ///< false: the extension is not in use on this connection
    bool server_no_context_takeover = false;
    bool client_no_context_takeover = false;
    int server_max_window_bits = 15;
    int client_max_window_bits = 15;

    friend bool operator==(const deflate_params& a, const deflate_params& b) noexcept {
        return a.enabled == b.enabled && a.server_no_context_takeover == b.server_no_context_takeover &&
               a.client_no_context_takeover == b.client_no_context_takeover &&
               a.server_max_window_bits == b.server_max_window_bits &&
               a.client_max_window_bits == b.client_max_window_bits;
    }
    friend bool operator!=(const deflate_params& a, const deflate_params& b) noexcept { return !(a == b); }
};

namespace detail {

constexpr int clamp_window_bits(int bits) noexcept { return bits < 8 ? 8 : bits > 15 ? 15 : bits; }

// Extension and parameter names are tokens; they compare ASCII case-insensitively
// (detail::iequals from http.hpp).
constexpr bool token_iequals(std::string_view a, std::string_view b) noexcept { return iequals(a, b); }

// §7.1.2.1/§7.1.2.2: "a decimal integer value without leading zeroes between 8 to
// 15, inclusive". 0 when the value is anything else.
constexpr int parse_window_bits(std::string_view v) noexcept {
    if (v.size() == 1 && v[0] >= '8' && v[0] <= '9') return v[0] - '0';
    if (v.size() == 2 && v[0] == '1' && v[1] >= '0' && v[1] <= '5') return 10 + (v[1] - '0');
    return 0;
}

// The parameters of one permessage-deflate element, checked (§7.1: an unknown
// parameter, a parameter given twice, or an invalid value makes the element invalid).
struct deflate_element {
    bool server_no_context_takeover = false;
    bool client_no_context_takeover = false;
    bool has_server_max_window_bits = false;
    bool has_client_max_window_bits = false;
    int server_max_window_bits = 15;
    int client_max_window_bits = 15; // 15 when given without a value (offer only)
};

// In a response client_max_window_bits needs a value; in an offer it may have none.
inline bool read_deflate_element(const extension_offer& e, bool response, deflate_element& out) noexcept {
    out = deflate_element{};
    for (const extension_param& p : e.params) {
        if (token_iequals(p.name, "server_no_context_takeover")) {
            if (p.has_value || out.server_no_context_takeover) return false;
            out.server_no_context_takeover = true;
        } else if (token_iequals(p.name, "client_no_context_takeover")) {
            if (p.has_value || out.client_no_context_takeover) return false;
            out.client_no_context_takeover = true;
        } else if (token_iequals(p.name, "server_max_window_bits")) {
            if (!p.has_value || out.has_server_max_window_bits) return false;
            out.server_max_window_bits = parse_window_bits(p.value);
            if (out.server_max_window_bits == 0) return false;
            out.has_server_max_window_bits = true;
        } else if (token_iequals(p.name, "client_max_window_bits")) {
            if (out.has_client_max_window_bits) return false;
            if (p.has_value) {
                out.client_max_window_bits = parse_window_bits(p.value);
                if (out.client_max_window_bits == 0) return false;
            } else if (response) {
                return false;
            }
            out.has_client_max_window_bits = true;
        } else {
            return false;
        }
    }
    return true;
}

inline void append_window_bits(std::string& s, std::string_view name, int bits) {
    s += "; ";
    s.append(name.data(), name.size());
    s += '=';
    if (bits >= 10) s += '1';
    s += static_cast<char>('0' + bits % 10);
}

} // namespace detail

// ---------------------------------------------------------------------------
// Negotiation (RFC 7692 §5, §7.1)
// ---------------------------------------------------------------------------

/// Client: the Sec-WebSocket-Extensions value offering permessage-deflate with
/// `opts`, e.g. "permessage-deflate; client_max_window_bits". Empty when disabled.
inline std::string make_offer(const deflate_options& opts) {
    std::string s;
    if (!opts.enabled) return s;
    s.assign(permessage_deflate_name.data(), permessage_deflate_name.size());
    if (opts.server_no_context_takeover) s += "; server_no_context_takeover";
    if (opts.client_no_context_takeover) s += "; client_no_context_takeover";
    const int server_bits = detail::clamp_window_bits(opts.server_max_window_bits);
    if (server_bits < 15) detail::append_window_bits(s, "server_max_window_bits", server_bits);
    const int client_bits = detail::clamp_window_bits(opts.client_max_window_bits);
    if (client_bits < 15)
        detail::append_window_bits(s, "client_max_window_bits", client_bits);
    else
        s += "; client_max_window_bits"; // §7.1.2.2: "we support it", no limit of our own
    return s;
}

/// Server: picks the first acceptable permessage-deflate offer, in the client's order
/// of preference (§5.1). An offer with an unknown, repeated or valueless-where-needed
/// parameter, or a window size that is not 8..15 without leading zeros, is declined
/// and the next one tried (§7.1). Other extensions in `offers` are ignored. On success
/// fills `out` (enabled) and `response_value` (the Sec-WebSocket-Extensions value to
/// answer with) and returns true; otherwise `out` is disabled, `response_value`
/// empty, and the connection goes on without compression.
inline bool negotiate(const std::vector<extension_offer>& offers, const deflate_options& server_policy,
                      deflate_params& out, std::string& response_value) {
    out = deflate_params{};
    response_value.clear();
    if (!server_policy.enabled) return false;
    for (const extension_offer& offer : offers) {
        if (!detail::token_iequals(offer.name, permessage_deflate_name)) continue;
        detail::deflate_element e;
        if (!detail::read_deflate_element(offer, false, e)) continue;
        deflate_params p;
        p.enabled = true;
        // §7.1.1.1: the server may always add server_no_context_takeover. §7.1.1.2: it may
        // always add client_no_context_takeover; echoing the client's hint lets our
        // inflater rely on it.
        p.server_no_context_takeover = e.server_no_context_takeover || server_policy.server_no_context_takeover;
        p.client_no_context_takeover = e.client_no_context_takeover || server_policy.client_no_context_takeover;
        // §7.1.2.1: our compressor's window: our cap, and the client's if it asked for
        // one; when the client asked, the response must carry the (same or smaller) value.
        p.server_max_window_bits = detail::clamp_window_bits(server_policy.server_max_window_bits);
        if (e.has_server_max_window_bits)
            p.server_max_window_bits = std::min(p.server_max_window_bits, e.server_max_window_bits);
        const bool send_server_bits = e.has_server_max_window_bits || p.server_max_window_bits < 15;
        // §7.1.2.2: the client's window may only be limited when it offered the parameter
        // (with a value: no more than that value); otherwise it may use 15 bits.
        p.client_max_window_bits = 15;
        if (e.has_client_max_window_bits)
            p.client_max_window_bits =
                std::min(detail::clamp_window_bits(server_policy.client_max_window_bits), e.client_max_window_bits);
        const bool send_client_bits = p.client_max_window_bits < 15;

        response_value.assign(permessage_deflate_name.data(), permessage_deflate_name.size());
        if (p.server_no_context_takeover) response_value += "; server_no_context_takeover";
        if (p.client_no_context_takeover) response_value += "; client_no_context_takeover";
        if (send_server_bits) detail::append_window_bits(response_value, "server_max_window_bits", p.server_max_window_bits);
        if (send_client_bits) detail::append_window_bits(response_value, "client_max_window_bits", p.client_max_window_bits);
        out = p;
        return true;
    }
    return false;
}

/// Client: checks the server's Sec-WebSocket-Extensions answer (all of it, parsed with
/// parse_extensions) against what make_offer(`offered`) sent, and fills `out`.
/// No element: success, `out` disabled (the server declined). Fails with
/// errc::bad_extension — the client must then _Fail the WebSocket Connection_ — when
/// the answer names another extension (duplex offers no other), accepts
/// permessage-deflate twice or when it was not offered, has an unknown, repeated or
/// malformed parameter, a window size that is not 8..15, a client_max_window_bits
/// without value or above the value we offered (§7.1.2.2), or leaves out or raises a
/// server_max_window_bits / server_no_context_takeover we asked for (§7.1.1.1,
/// §7.1.2.1: accepting our offer means including them). Parameters the server may add
/// unasked (both no_context_takeover flags, server_max_window_bits) are accepted.
inline std::error_code accept_response(const std::vector<extension_offer>& response, const deflate_options& offered,
                                       deflate_params& out) {
    out = deflate_params{};
    const extension_offer* accepted = nullptr;
    for (const extension_offer& e : response) {
        if (!detail::token_iequals(e.name, permessage_deflate_name) || accepted != nullptr)
            return make_error_code(errc::bad_extension);
        accepted = &e;
    }
    if (accepted == nullptr) return {};
    if (!offered.enabled) return make_error_code(errc::bad_extension);
    detail::deflate_element e;
    if (!detail::read_deflate_element(*accepted, true, e)) return make_error_code(errc::bad_extension);

    deflate_params p;
    p.enabled = true;
    if (offered.server_no_context_takeover && !e.server_no_context_takeover) return make_error_code(errc::bad_extension);
    p.server_no_context_takeover = e.server_no_context_takeover;
    // Our own hint binds us even if the server did not echo it.
    p.client_no_context_takeover = e.client_no_context_takeover || offered.client_no_context_takeover;

    const int asked_server_bits = detail::clamp_window_bits(offered.server_max_window_bits);
    if (asked_server_bits < 15 && !e.has_server_max_window_bits) return make_error_code(errc::bad_extension);
    if (e.has_server_max_window_bits && e.server_max_window_bits > asked_server_bits)
        return make_error_code(errc::bad_extension);
    p.server_max_window_bits = e.has_server_max_window_bits ? e.server_max_window_bits : 15;

    // make_offer always offers client_max_window_bits, so the server may answer with one
    // no larger than our value (8 is fine: see the note on window bits 8 at the top).
    const int own_client_bits = detail::clamp_window_bits(offered.client_max_window_bits);
    if (e.has_client_max_window_bits && e.client_max_window_bits > own_client_bits)
        return make_error_code(errc::bad_extension);
    p.client_max_window_bits = e.has_client_max_window_bits ? e.client_max_window_bits : own_client_bits;
    out = p;
    return {};
}

// ---------------------------------------------------------------------------
// The codec (RFC 7692 §7.2)
// ---------------------------------------------------------------------------

} // namespace duplex
