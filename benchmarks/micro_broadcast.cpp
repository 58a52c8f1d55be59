// What a broadcast costs before any socket sees it: encoding the frame once
// (prepare_message), and, with permessage-deflate and server_no_context_takeover,
// compressing it once for every receiver (zlib's setup included, paid per broadcast).
#include <benchmark/benchmark.h>

#include <duplex/hub.hpp>

#include <string>

namespace {

const std::string chat_line = R"({"user":"alice","text":"hello everyone in the room, how are you all today?"})";

std::string json_of(std::size_t size) {
    std::string s = "[";
    for (int i = 0; s.size() < size; ++i) s += R"({"user":"alice","n":)" + std::to_string(i) + R"(,"text":"hello, room"},)";
    s.resize(size - 1);
    return s + "]";
}

void bm_prepare_plain(benchmark::State& state) {
    const std::string text = state.range(0) == 0 ? chat_line : json_of(static_cast<std::size_t>(state.range(0)));
    for (auto _ : state) benchmark::DoNotOptimize(duplex::prepare_message(duplex::opcode::text, text));
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * text.size()));
}
BENCHMARK(bm_prepare_plain)->Arg(0)->Arg(4096)->Arg(65536); // 0: a 76-byte chat line

#if DUPLEX_HAS_DEFLATE
void bm_prepare_compressed(benchmark::State& state) {
    const std::string text = state.range(0) == 0 ? chat_line : json_of(static_cast<std::size_t>(state.range(0)));
    duplex::deflate_options o;
    o.enabled = true;
    o.server_no_context_takeover = true;
    std::size_t wire = 0;
    for (auto _ : state) {
        auto m = duplex::prepare_message(duplex::opcode::text, text, o);
        wire = m->compressed() ? m->compressed()->wire_size() : m->wire_size();
        benchmark::DoNotOptimize(m);
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * text.size()));
    state.counters["wire_bytes"] = static_cast<double>(wire);
}
BENCHMARK(bm_prepare_compressed)->Arg(0)->Arg(4096)->Arg(65536);
#endif

} // namespace

BENCHMARK_MAIN();
