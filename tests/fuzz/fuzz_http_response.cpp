// libFuzzer target: response head parsing and the client's validation of it.
// The first byte picks what the client "offered", the rest is the response.
#include <duplex/core/handshake.hpp>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

namespace {

void check_inside(std::string_view v, std::string_view buf) {
    if (v.empty()) return;
    if (v.data() < buf.data() || v.data() + v.size() > buf.data() + buf.size()) std::abort();
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    const std::uint8_t flags = data[0];
    const std::string_view buf(reinterpret_cast<const char*>(data + 1), size - 1);

    duplex::http_limits limits;
    limits.max_header_bytes = 4096;
    limits.max_header_count = 16;
    duplex::http_response resp;
    std::error_code ec;
    const std::size_t n = duplex::parse_response(buf, resp, ec, limits);
    if (n > buf.size() || n > limits.max_header_bytes) std::abort();
    if (ec && n != 0) std::abort();
    if (n == 0) return 0;
    if (resp.status < 100 || resp.status > 999) std::abort();
    check_inside(resp.reason, buf);
    for (const auto& f : resp) {
        check_inside(f.name, buf.substr(0, n));
        check_inside(f.value, buf.substr(0, n));
    }

    const std::vector<std::string> offered =
        (flags & 1) ? std::vector<std::string>{"chat", "superchat"} : std::vector<std::string>{};
    const bool extensions_offered = (flags & 2) != 0;
    std::string chosen = "unset";
    const std::error_code check =
        duplex::check_upgrade_response(resp, "dGhlIHNhbXBsZSBub25jZQ==", offered, extensions_offered, &chosen);
    if (!check) {
        if (resp.status != 101) std::abort();
        if (resp.header("Sec-WebSocket-Accept") != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=") std::abort();
        if (!chosen.empty() && chosen != "chat" && chosen != "superchat") std::abort();
        if (chosen.empty() && resp.has_header("Sec-WebSocket-Protocol")) std::abort();
    } else if (chosen != "unset") {
        std::abort(); // untouched on failure
    }
    return 0;
}
