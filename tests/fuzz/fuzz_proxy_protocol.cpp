// libFuzzer target: the PROXY protocol header (versions 1 and 2) a server reads first
// behind a load balancer (core/proxy_protocol.hpp).
#include <duplex/core/proxy_protocol.hpp>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view bytes(reinterpret_cast<const char*>(data), size);
    duplex::proxy_protocol_header h;
    std::error_code ec;
    const std::size_t n = duplex::parse_proxy_protocol(bytes, h, ec);
    if (n > size || n > duplex::proxy_protocol_max_size) std::abort();
    if (ec && n != 0) std::abort();
    if (n == 0) return 0;
    if (h.version != 1 && h.version != 2) std::abort();
    if (h.version == 1 && n > 107) std::abort();
    // The header's size does not depend on what follows it, and every shorter prefix
    // asks for more bytes (no header ends early).
    duplex::proxy_protocol_header again;
    if (duplex::parse_proxy_protocol(bytes.substr(0, n), again, ec) != n || ec) std::abort();
    if (again.source_address != h.source_address || again.source_port != h.source_port || again.local != h.local) std::abort();
    for (std::size_t k = 0; k < n; k += 1 + k / 8) {
        if (duplex::parse_proxy_protocol(bytes.substr(0, k), again, ec) != 0 || ec) std::abort();
    }
    // A client address prints, and the printed IPv6 form parses back to the same bytes.
    const std::string source = duplex::proxy_source_string(h);
    if (h.local != source.empty()) std::abort();
    if (!h.local && h.ipv6) {
        std::uint8_t back[16];
        const std::string text = duplex::proxy_address_string(h.source_address, true);
        if (!duplex::detail::parse_ipv6(text, back)) std::abort();
        for (int i = 0; i < 16; ++i)
            if (back[i] != h.source_address[i]) std::abort();
    }
    return 0;
}
