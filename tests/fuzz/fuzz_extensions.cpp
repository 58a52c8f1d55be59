// libFuzzer target: the Sec-WebSocket-Extensions grammar (RFC 6455 §9.1).
// Invariants: views inside the input, names and values are tokens, and a value
// that parsed re-serializes to something that parses to the same offers.
#include <duplex/core/handshake.hpp>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

namespace {

void check_inside(std::string_view v, std::string_view buf) {
    if (v.empty()) return;
    if (v.data() < buf.data() || v.data() + v.size() > buf.data() + buf.size()) std::abort();
}

std::string serialize(const std::vector<duplex::extension_offer>& offers) {
    std::string s;
    for (const auto& o : offers) {
        if (!s.empty()) s += ", ";
        s.append(o.name.data(), o.name.size());
        for (const auto& p : o.params) {
            s += "; ";
            s.append(p.name.data(), p.name.size());
            if (p.has_value) {
                s += '=';
                s.append(p.value.data(), p.value.size());
            }
        }
    }
    return s;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view buf(reinterpret_cast<const char*>(data), size);
    std::error_code ec;
    const auto offers = duplex::parse_extensions(buf, ec);
    if (ec && ec != duplex::errc::bad_extension) std::abort();
    for (const auto& o : offers) {
        check_inside(o.name, buf);
        if (!duplex::detail::is_token(o.name)) std::abort();
        for (const auto& p : o.params) {
            check_inside(p.name, buf);
            check_inside(p.value, buf);
            if (!duplex::detail::is_token(p.name)) std::abort();
            if (p.has_value != duplex::detail::is_token(p.value)) std::abort();
        }
    }
    if (ec) return 0;
    const std::string again = serialize(offers);
    std::error_code ec2;
    const auto reparsed = duplex::parse_extensions(again, ec2);
    if (ec2 || reparsed.size() != offers.size()) std::abort();
    for (std::size_t i = 0; i < offers.size(); ++i) {
        if (reparsed[i].name != offers[i].name || reparsed[i].params.size() != offers[i].params.size()) std::abort();
        for (std::size_t j = 0; j < offers[i].params.size(); ++j) {
            const auto& a = offers[i].params[j];
            const auto& b = reparsed[i].params[j];
            if (a.name != b.name || a.value != b.value || a.has_value != b.has_value) std::abort();
        }
    }
    return 0;
}
