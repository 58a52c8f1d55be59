// libFuzzer target: request head parsing, upgrade validation and the extension
// grammar on whatever the parser accepts. Invariants: the head size never exceeds
// the input, every view points into the input, and the incremental scanner agrees
// with the parser on where the head ends.
#include <duplex/core/handshake.hpp>

#include <cstdint>
#include <cstdlib>
#include <string_view>

namespace {

void check_inside(std::string_view v, std::string_view buf) {
    if (v.empty()) return;
    if (v.data() < buf.data() || v.data() + v.size() > buf.data() + buf.size()) std::abort();
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view buf(reinterpret_cast<const char*>(data), size);
    duplex::http_limits limits;
    limits.max_header_bytes = 4096; // small enough that the fuzzer reaches the limit
    limits.max_header_count = 16;

    duplex::http_request req;
    std::error_code ec;
    const std::size_t n = duplex::parse_request(buf, req, ec, limits);
    if (n > size || n > limits.max_header_bytes) std::abort();
    if (ec && n != 0) std::abort();

    // The scanner must never call a head complete that the parser says is longer or
    // shorter; where the parser succeeded, the scanner finds the same end.
    duplex::http_head_scanner scanner;
    std::error_code scan_ec;
    const std::size_t scanned = scanner.scan(buf, scan_ec, limits);
    if (n != 0 && scanned != n) std::abort();

    if (n == 0) return 0;
    if (req.fields.size() > limits.max_header_count) std::abort();
    check_inside(req.method, buf);
    check_inside(req.target, buf);
    check_inside(req.path(), buf);
    check_inside(req.query(), buf);
    check_inside(req.origin_form(), buf);
    if (duplex::is_absolute_http_target(req.target) && req.path().empty()) std::abort(); // at least "/"
    for (const auto& f : req) {
        check_inside(f.name, buf.substr(0, n));
        check_inside(f.value, buf.substr(0, n));
        if (f.name.empty()) std::abort();
    }
    check_inside(req.cookie("sid"), buf);
    // Decoding only shrinks: a parameter's value is never longer than the query.
    if (req.query_param("token").size() > req.query().size()) std::abort();

    static const std::vector<std::string> protocols = {"chat", "superchat"};
    const std::error_code check = duplex::check_upgrade_request(req);
    if (!check) {
        if (!duplex::is_websocket_request(req)) std::abort();
        std::string out;
        if (!duplex::write_accept_response(out, req.header("Sec-WebSocket-Key"),
                                           duplex::select_subprotocol(req, protocols)))
            std::abort();
        // Our own answer must parse back and satisfy a client.
        duplex::http_response resp;
        std::error_code rec;
        if (duplex::parse_response(out, resp, rec) != out.size() || rec) std::abort();
        if (duplex::check_upgrade_response(resp, req.header("Sec-WebSocket-Key"), protocols, false, nullptr))
            std::abort();
    } else {
        const int status = duplex::http_status_for(static_cast<duplex::errc>(check.value()));
        std::string out;
        duplex::write_error_response(out, status);
    }

    std::error_code xec;
    const auto offers = duplex::parse_extensions(req, xec);
    for (const auto& o : offers) {
        check_inside(o.name, buf);
        if (!duplex::detail::is_token(o.name)) std::abort();
        for (const auto& p : o.params) {
            check_inside(p.name, buf);
            check_inside(p.value, buf);
            if (p.has_value != !p.value.empty()) std::abort();
        }
    }
    return 0;
}
