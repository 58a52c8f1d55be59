// libFuzzer target: permessage-deflate negotiation (RFC 7692 §7.1) on arbitrary
// Sec-WebSocket-Extensions values, as a server (negotiate) and as a client
// (accept_response). Invariants: results stay in range, a server answer parses and
// is accepted by a client that made the offer it answers when that offer was ours,
// and both ends then agree on the parameters.
//
// Input: byte 0 and 1 pick the server policy and the client's options; the rest is
// the header value.
#include <duplex/extensions/permessage_deflate.hpp>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

namespace {

duplex::deflate_options options_from(std::uint8_t b) {
    duplex::deflate_options o;
    o.server_no_context_takeover = (b & 1) != 0;
    o.client_no_context_takeover = (b & 2) != 0;
    o.server_max_window_bits = (b & 4) ? 8 + ((b >> 3) & 7) : 15;
    o.client_max_window_bits = (b & 64) ? 8 + ((b >> 3) & 7) : 15;
    o.enabled = (b & 128) == 0 || (b & 7) != 7;
    return o;
}

void check_range(const duplex::deflate_params& p) {
    if (!p.enabled) return;
    if (p.server_max_window_bits < 8 || p.server_max_window_bits > 15) std::abort();
    if (p.client_max_window_bits < 8 || p.client_max_window_bits > 15) std::abort();
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 2) return 0;
    const duplex::deflate_options server_policy = options_from(data[0]);
    const duplex::deflate_options client_opts = options_from(data[1]);
    const std::string_view value(reinterpret_cast<const char*>(data + 2), size - 2);

    std::error_code ec;
    const auto offers = duplex::parse_extensions(value, ec);

    // Server: whatever it answers must parse and be within range.
    duplex::deflate_params sp;
    std::string response;
    const bool accepted = duplex::negotiate(offers, server_policy, sp, response);
    if (accepted != sp.enabled || accepted == response.empty()) std::abort();
    check_range(sp);
    if (accepted) {
        std::error_code ec2;
        const auto parsed = duplex::parse_extensions(response, ec2);
        if (ec2 || parsed.size() != 1) std::abort();
        // The fuzzed offer need not be client_opts' offer, so a client may refuse the
        // answer; one that accepts it must read the server's side of it the same way.
        duplex::deflate_params cp;
        if (!duplex::accept_response(parsed, client_opts, cp)) {
            check_range(cp);
            if (cp.server_max_window_bits != sp.server_max_window_bits) std::abort();
            if (cp.server_no_context_takeover != sp.server_no_context_takeover) std::abort();
        }
    }

    // Client: the value as a server response.
    duplex::deflate_params cp;
    const std::error_code ec3 = duplex::accept_response(offers, client_opts, cp);
    if (ec3 && ec3 != duplex::errc::bad_extension) std::abort();
    if (ec3 && cp.enabled) std::abort();
    check_range(cp);
    if (!ec3 && cp.enabled) {
        if (cp.client_max_window_bits > duplex::detail::clamp_window_bits(client_opts.client_max_window_bits)) std::abort();
        if (cp.server_max_window_bits > duplex::detail::clamp_window_bits(client_opts.server_max_window_bits)) std::abort();
        if (client_opts.server_no_context_takeover && !cp.server_no_context_takeover) std::abort();
    }

    // Our own offer always round-trips through this server policy.
    const std::string offer = duplex::make_offer(client_opts);
    if (!offer.empty()) {
        std::error_code ec4;
        const auto own = duplex::parse_extensions(offer, ec4);
        duplex::deflate_params s2, c2;
        std::string r2;
        if (ec4 || duplex::negotiate(own, server_policy, s2, r2) != server_policy.enabled) std::abort();
        if (server_policy.enabled) {
            const auto answer = duplex::parse_extensions(r2, ec4);
            if (ec4 || duplex::accept_response(answer, client_opts, c2) || !(s2 == c2)) std::abort();
        }
    }
    return 0;
}
