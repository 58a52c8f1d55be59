// Opening-handshake costs per connection: deriving Sec-WebSocket-Accept, parsing a
// browser's upgrade request, and the whole server side (parse, check, answer).
#include <benchmark/benchmark.h>

#include <duplex/core/handshake.hpp>

#include <string>

namespace {

const std::string browser_request =
    "GET /socket?room=lobby HTTP/1.1\r\n"
    "Host: localhost:8080\r\n"
    "Connection: Upgrade\r\n"
    "Pragma: no-cache\r\n"
    "Cache-Control: no-cache\r\n"
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36\r\n"
    "Upgrade: websocket\r\n"
    "Origin: http://localhost:8080\r\n"
    "Sec-WebSocket-Version: 13\r\n"
    "Accept-Encoding: gzip, deflate, br\r\n"
    "Accept-Language: en-US,en;q=0.9\r\n"
    "Cookie: sid=abc123; theme=dark\r\n"
    "Sec-WebSocket-Key: x3JJHMbDL1EzLkh9GBhXDw==\r\n"
    "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
    "\r\n";

void bm_accept_key(benchmark::State& state) {
    for (auto _ : state) {
        std::string k = duplex::accept_key("x3JJHMbDL1EzLkh9GBhXDw==");
        benchmark::DoNotOptimize(k);
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}
BENCHMARK(bm_accept_key);

void bm_parse_request(benchmark::State& state) {
    duplex::http_request req; // reused: the field vector keeps its capacity
    std::error_code ec;
    for (auto _ : state) {
        std::size_t n = duplex::parse_request(browser_request, req, ec);
        benchmark::DoNotOptimize(n);
        benchmark::DoNotOptimize(req.fields.data());
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * browser_request.size()));
}
BENCHMARK(bm_parse_request);

void bm_server_handshake(benchmark::State& state) {
    duplex::http_request req;
    std::error_code ec;
    std::string out;
    const std::vector<std::string> supported = {"chat"};
    for (auto _ : state) {
        duplex::parse_request(browser_request, req, ec);
        const std::error_code check = duplex::check_upgrade_request(req);
        benchmark::DoNotOptimize(check);
        auto offers = duplex::parse_extensions(req, ec);
        benchmark::DoNotOptimize(offers.data());
        out.clear();
        duplex::write_accept_response(out, req.header("Sec-WebSocket-Key"), duplex::select_subprotocol(req, supported));
        benchmark::DoNotOptimize(out.data());
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}
BENCHMARK(bm_server_handshake);

} // namespace

BENCHMARK_MAIN();
