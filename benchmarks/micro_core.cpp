// Microbenchmarks for the sans-I/O core: parse+unmask, serialize+mask, UTF-8
// validation, and memcpy of the same sizes as the ceiling.
#include <duplex/core/frame.hpp>
#include <duplex/core/utf8.hpp>

#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

namespace {

constexpr std::size_t total_bytes = 1 << 20; // ~1 MiB of frames per iteration

std::vector<std::uint8_t> masked_frames(std::size_t payload, std::size_t& frames) {
    duplex::client_frame_writer w;
    std::vector<std::uint8_t> body(payload, 0x5a);
    frames = total_bytes / payload;
    if (frames == 0) frames = 1;
    std::vector<std::uint8_t> buf(frames * w.frame_size(payload));
    std::size_t n = 0;
    for (std::size_t i = 0; i < frames; ++i) n += w.write(buf.data() + n, duplex::opcode::binary, body.data(), payload);
    buf.resize(n);
    return buf;
}

// Server parser over a buffer of many masked binary frames (unmasked in place;
// unmasking again on the next iteration is the same work).
void BM_parse_unmask(benchmark::State& state) {
    const auto payload = static_cast<std::size_t>(state.range(0));
    std::size_t frames = 0;
    std::vector<std::uint8_t> buf = masked_frames(payload, frames);
    for (auto _ : state) {
        duplex::server_frame_parser p;
        std::size_t off = 0, got = 0;
        while (off < buf.size()) {
            std::size_t consumed = 0;
            const duplex::parse_event ev = p.parse(buf.data() + off, buf.size() - off, consumed);
            off += consumed;
            got += ev.size;
            if (ev.kind == duplex::parse_event::kind_t::error) state.SkipWithError("parse error");
        }
        benchmark::DoNotOptimize(got);
        benchmark::ClobberMemory();
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * buf.size()));
    state.counters["payload_bytes_per_frame"] = static_cast<double>(payload);
}

// Client writer: header + fresh mask key + copy_masked for each frame.
void BM_serialize_mask(benchmark::State& state) {
    const auto payload = static_cast<std::size_t>(state.range(0));
    std::size_t frames = total_bytes / payload;
    if (frames == 0) frames = 1;
    duplex::client_frame_writer w;
    std::vector<std::uint8_t> body(payload, 0x5a);
    std::vector<std::uint8_t> out(frames * w.frame_size(payload));
    for (auto _ : state) {
        std::size_t n = 0;
        for (std::size_t i = 0; i < frames; ++i)
            n += w.write(out.data() + n, duplex::opcode::binary, body.data(), payload);
        benchmark::DoNotOptimize(out.data());
        benchmark::ClobberMemory();
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * out.size()));
}

std::string make_text(std::size_t n, double multibyte_share) {
    std::mt19937 rng(7);
    std::uniform_real_distribution<double> u(0, 1);
    const char* const mb[] = {"\xc3\xa9", "\xce\xba", "\xe2\x82\xac", "\xe6\x97\xa5", "\xf0\x9f\x98\x80"};
    std::string s;
    while (s.size() < n) {
        if (u(rng) < multibyte_share) s += mb[rng() % 5];
        else s += static_cast<char>('a' + rng() % 26);
    }
    while (!duplex::is_valid_utf8(s.data(), s.size())) s.pop_back();
    return s;
}

void run_utf8(benchmark::State& state, const std::string& s) {
    for (auto _ : state) {
        duplex::utf8_validator v;
        bool ok = v.feed(reinterpret_cast<const std::uint8_t*>(s.data()), s.size()) && v.complete();
        benchmark::DoNotOptimize(ok);
        if (!ok) state.SkipWithError("invalid");
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * s.size()));
}

void BM_utf8_ascii(benchmark::State& state) { run_utf8(state, make_text(64 * 1024, 0.0)); }
// 30% of the characters are multibyte (2-4 bytes).
void BM_utf8_mixed(benchmark::State& state) { run_utf8(state, make_text(64 * 1024, 0.3)); }

void BM_memcpy(benchmark::State& state) {
    const auto n = static_cast<std::size_t>(state.range(0));
    std::vector<std::uint8_t> a(n, 1), b(n);
    for (auto _ : state) {
        std::memcpy(b.data(), a.data(), n);
        benchmark::DoNotOptimize(b.data());
        benchmark::ClobberMemory();
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * n));
}

} // namespace

BENCHMARK(BM_parse_unmask)->Arg(16)->Arg(1024)->Arg(65536);
BENCHMARK(BM_serialize_mask)->Arg(16)->Arg(1024)->Arg(65536);
BENCHMARK(BM_utf8_ascii);
BENCHMARK(BM_utf8_mixed);
BENCHMARK(BM_memcpy)->Arg(65536)->Arg(1 << 20);

BENCHMARK_MAIN();
