// Microbenchmarks for the sans-I/O core: parse+unmask, serialize+mask, UTF-8
// validation, and memcpy of the same buffers as the ceiling, all in the same run.
// After the runs a table gives each one's throughput beside its memcpy and the
// ratio between them (GB/s there = 10^9 bytes per CPU second).
#include <duplex/core/frame.hpp>
#include <duplex/core/utf8.hpp>

#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <new>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include <unistd.h>

namespace {

constexpr std::size_t total_bytes = 1 << 20; // ~1 MiB of frames per iteration

// How many frames of `payload` bytes make up the ~1 MiB buffer, and its exact size.
std::size_t frames_for(std::size_t payload) {
    const std::size_t frames = total_bytes / (payload ? payload : 1);
    return frames ? frames : 1;
}
std::size_t frames_buffer_size(std::size_t payload) {
    return frames_for(payload) * duplex::client_frame_writer::frame_size(payload);
}

std::vector<std::uint8_t> masked_frames(std::size_t payload) {
    duplex::client_frame_writer w;
    std::vector<std::uint8_t> body(payload, 0x5a);
    const std::size_t frames = frames_for(payload);
    std::vector<std::uint8_t> buf(frames_buffer_size(payload));
    std::size_t n = 0;
    for (std::size_t i = 0; i < frames; ++i) n += w.write(buf.data() + n, duplex::opcode::binary, body.data(), payload);
    buf.resize(n);
    return buf;
}

// Server parser over a buffer of many masked binary frames (unmasked in place;
// unmasking again on the next iteration is the same work). At 16 B the buffer
// holds 65536 consecutive frames, so the per-frame cost is what is measured.
void BM_parse_unmask(benchmark::State& state) {
    const auto payload = static_cast<std::size_t>(state.range(0));
    std::vector<std::uint8_t> buf = masked_frames(payload);
    for (auto _ : state) {
        duplex::server_frame_parser p;
        std::size_t off = 0, got = 0;
        bool failed = false;
        while (off < buf.size()) {
            std::size_t consumed = 0;
            const duplex::parse_event ev = p.parse(buf.data() + off, buf.size() - off, consumed);
            if (ev.kind == duplex::parse_event::kind_t::error) {
                failed = true; // the parser stays failed and consumes nothing more
                break;
            }
            off += consumed;
            got += ev.size;
        }
        if (failed) {
            state.SkipWithError("parse error");
            break;
        }
        benchmark::DoNotOptimize(got);
        benchmark::ClobberMemory();
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * buf.size()));
    state.counters["payload_bytes_per_frame"] = static_cast<double>(payload);
    state.counters["buffer_bytes"] = static_cast<double>(buf.size());
}

// Client writer: header + fresh mask key + copy_masked for each frame.
void BM_serialize_mask(benchmark::State& state) {
    const auto payload = static_cast<std::size_t>(state.range(0));
    const std::size_t frames = frames_for(payload);
    duplex::client_frame_writer w;
    std::vector<std::uint8_t> body(payload, 0x5a);
    std::vector<std::uint8_t> out(frames_buffer_size(payload));
    for (auto _ : state) {
        std::size_t n = 0;
        for (std::size_t i = 0; i < frames; ++i)
            n += w.write(out.data() + n, duplex::opcode::binary, body.data(), payload);
        benchmark::DoNotOptimize(out.data());
        benchmark::ClobberMemory();
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * out.size()));
    state.counters["buffer_bytes"] = static_cast<double>(out.size());
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

// wide = false: the portable byte/word loop even where AVX2 is available.
void run_utf8(benchmark::State& state, const std::string& s, bool wide = true) {
    state.counters["avx2"] = wide && duplex::detail::cpu_has_avx2() ? 1 : 0;
    for (auto _ : state) {
        duplex::utf8_validator v;
        const auto* p = reinterpret_cast<const std::uint8_t*>(s.data());
        bool ok = duplex::detail::utf8_test_access::feed(v, p, s.size(), wide) && v.complete();
        benchmark::DoNotOptimize(ok);
        if (!ok) {
            state.SkipWithError("invalid");
            break;
        }
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * s.size()));
    state.counters["buffer_bytes"] = static_cast<double>(s.size());
}

void BM_utf8_ascii(benchmark::State& state) { run_utf8(state, make_text(64 * 1024, 0.0)); }
// 30% of the characters are multibyte (2-4 bytes).
void BM_utf8_mixed(benchmark::State& state) { run_utf8(state, make_text(64 * 1024, 0.3)); }
void BM_utf8_ascii_portable(benchmark::State& state) { run_utf8(state, make_text(64 * 1024, 0.0), false); }
void BM_utf8_mixed_portable(benchmark::State& state) { run_utf8(state, make_text(64 * 1024, 0.3), false); }

// A page-aligned buffer. Two heap blocks in a row (vector, vector) lie 16 bytes
// apart modulo 4 KiB, where glibc's memcpy (rep movsb) on some AMD CPUs runs at
// a twentieth of its speed: 64 KiB at ~2 GB/s instead of ~45 here. The ceiling
// is memcpy at its best, so source and destination both start on a page.
struct page_buffer {
    explicit page_buffer(std::size_t n, std::uint8_t fill) {
        const std::size_t rounded = (n + 4095) / 4096 * 4096;
        p = static_cast<std::uint8_t*>(std::aligned_alloc(4096, rounded ? rounded : 4096));
        if (!p) throw std::bad_alloc();
        std::memset(p, fill, n);
    }
    ~page_buffer() { std::free(p); }
    page_buffer(const page_buffer&) = delete;
    page_buffer& operator=(const page_buffer&) = delete;
    std::uint8_t* p;
};

void run_memcpy(benchmark::State& state, std::size_t n) {
    page_buffer a(n, 1), b(n, 0);
    for (auto _ : state) {
        std::memcpy(b.p, a.p, n);
        benchmark::DoNotOptimize(b.p);
        benchmark::ClobberMemory();
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * n));
    state.counters["buffer_bytes"] = static_cast<double>(n);
}

// memcpy of range(0) bytes (64 KiB: the ceiling for the UTF-8 runs on 64 KiB of text).
void BM_memcpy(benchmark::State& state) { run_memcpy(state, static_cast<std::size_t>(state.range(0))); }

// memcpy of the whole buffer BM_parse_unmask / BM_serialize_mask use for
// range(0)-byte payloads (e.g. /16: 65536 16-byte frames, 1441792 bytes), in one call.
void BM_memcpy_frames(benchmark::State& state) {
    run_memcpy(state, frames_buffer_size(static_cast<std::size_t>(state.range(0))));
}

// ---- the ratio table ---------------------------------------------------------

struct measured {
    double bytes_per_second = 0;
    double buffer_bytes = 0;
    bool from_median = false;
};
std::map<std::string, measured> results; // "BM_parse_unmask/16" -> figures

using run_t = benchmark::BenchmarkReporter::Run;

// Google Benchmark 1.7 says error_occurred, 1.8 replaced it with skipped.
template <class R>
auto run_failed(const R& r, int) -> decltype(static_cast<bool>(r.error_occurred)) {
    return r.error_occurred;
}
template <class R>
bool run_failed(const R& r, long) {
    return static_cast<int>(r.skipped) != 0;
}

void capture(const std::vector<run_t>& runs) {
    for (const run_t& r : runs) {
        if (run_failed(r, 0)) continue;
        // With --benchmark_repetitions the median stands for the runs; otherwise the one run.
        const bool median = r.run_type == run_t::RT_Aggregate;
        if (median && r.aggregate_name != "median") continue;
        const auto bps = r.counters.find("bytes_per_second");
        if (bps == r.counters.end()) continue;
        const auto size = r.counters.find("buffer_bytes");
        std::string key = r.run_name.function_name;
        if (!r.run_name.args.empty()) key += "/" + r.run_name.args;
        measured& m = results[key];
        if (m.from_median && !median) continue;
        m.bytes_per_second = bps->second.value;
        m.buffer_bytes = size == r.counters.end() ? 0 : size->second.value;
        m.from_median = median;
    }
}

// The display reporter of the chosen format, capturing every run it shows.
template <class Base>
class capturing_reporter final : public Base {
public:
    using Base::Base;
    void ReportRuns(const std::vector<run_t>& runs) override {
        capture(runs);
        Base::ReportRuns(runs);
    }
};

void print_ratios(std::FILE* out) {
    struct row {
        const char* group; // the measured column's title
        const char* label;
        const char* name;
        const char* ceiling;
    };
    static const row rows[] = {
        {"parse+unmask", "16 B", "BM_parse_unmask/16", "BM_memcpy_frames/16"},
        {"parse+unmask", "1 KiB", "BM_parse_unmask/1024", "BM_memcpy_frames/1024"},
        {"parse+unmask", "64 KiB", "BM_parse_unmask/65536", "BM_memcpy_frames/65536"},
        {"serialize+mask", "16 B", "BM_serialize_mask/16", "BM_memcpy_frames/16"},
        {"serialize+mask", "1 KiB", "BM_serialize_mask/1024", "BM_memcpy_frames/1024"},
        {"serialize+mask", "64 KiB", "BM_serialize_mask/65536", "BM_memcpy_frames/65536"},
        {"utf8 validation", "ascii", "BM_utf8_ascii", "BM_memcpy/65536"},
        {"utf8 validation", "mixed", "BM_utf8_mixed", "BM_memcpy/65536"},
        {"utf8 validation", "ascii, portable", "BM_utf8_ascii_portable", "BM_memcpy/65536"},
        {"utf8 validation", "mixed, portable", "BM_utf8_mixed_portable", "BM_memcpy/65536"},
    };
    const char* group = nullptr;
    for (const row& r : rows) {
        const auto a = results.find(r.name), b = results.find(r.ceiling);
        if (a == results.end() || b == results.end()) continue; // filtered out, or failed
        if (!group) {
            std::fprintf(out, "\nRatio to memcpy of the same bytes, measured in this run "
                              "(GB/s = 1e9 bytes per CPU second; buffer = bytes per iteration):\n");
        }
        if (!group || std::strcmp(group, r.group) != 0) {
            group = r.group;
            std::fprintf(out, "%-16s %10s %21s %12s %8s\n", "size", "buffer", (std::string(r.group) + " GB/s").c_str(),
                         "memcpy GB/s", "ratio");
        }
        const double x = a->second.bytes_per_second / 1e9, c = b->second.bytes_per_second / 1e9;
        std::fprintf(out, "%-16s %10.0f %21.3f %12.3f %8.3f\n", r.label, a->second.buffer_bytes, x, c,
                     c > 0 ? x / c : 0.0);
    }
    std::fflush(out);
}

// Command-line flags that pick the display reporter: read here because ours
// replaces the default one (same spellings and defaults as Google Benchmark).
bool truthy(std::string_view v) {
    if (v.empty()) return true;
    std::string s(v);
    for (char& ch : s) ch = static_cast<char>(ch >= 'A' && ch <= 'Z' ? ch - 'A' + 'a' : ch);
    return !(s == "0" || s == "f" || s == "n" || s == "false" || s == "no" || s == "off");
}
bool flag_value(std::string_view arg, std::string_view name, std::string_view& value) {
    while (!arg.empty() && arg.front() == '-') arg.remove_prefix(1);
    if (arg.substr(0, name.size()) != name) return false;
    arg.remove_prefix(name.size());
    if (arg.empty()) {
        value = {};
        return true;
    }
    if (arg.front() != '=') return false;
    value = arg.substr(1);
    return true;
}

} // namespace

// Each memcpy right after what it is the ceiling of, so both see the same load.
BENCHMARK(BM_parse_unmask)->Arg(16);
BENCHMARK(BM_memcpy_frames)->Arg(16);
BENCHMARK(BM_parse_unmask)->Arg(1024);
BENCHMARK(BM_memcpy_frames)->Arg(1024);
BENCHMARK(BM_parse_unmask)->Arg(65536);
BENCHMARK(BM_memcpy_frames)->Arg(65536);
BENCHMARK(BM_serialize_mask)->Arg(16)->Arg(1024)->Arg(65536);
BENCHMARK(BM_utf8_ascii);
BENCHMARK(BM_utf8_mixed);
BENCHMARK(BM_utf8_ascii_portable);
BENCHMARK(BM_utf8_mixed_portable);
BENCHMARK(BM_memcpy)->Arg(65536)->Arg(1 << 20);

int main(int argc, char** argv) {
    std::string format = "console";
    std::string color = "auto";
    bool tabular = false;
    for (int i = 1; i < argc; ++i) {
        std::string_view v;
        if (flag_value(argv[i], "benchmark_format", v)) format = std::string(v);
        else if (flag_value(argv[i], "benchmark_color", v)) color = std::string(v);
        else if (flag_value(argv[i], "benchmark_counters_tabular", v)) tabular = truthy(v);
    }
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;

    std::unique_ptr<benchmark::BenchmarkReporter> reporter;
    if (format == "console") {
        const char* term = std::getenv("TERM");
        const bool use_color = color == "auto" ? isatty(STDOUT_FILENO) && term && std::string_view(term) != "dumb"
                                               : truthy(color);
        int opts = benchmark::ConsoleReporter::OO_None;
        if (use_color) opts |= benchmark::ConsoleReporter::OO_Color;
        if (tabular) opts |= benchmark::ConsoleReporter::OO_Tabular;
        reporter = std::make_unique<capturing_reporter<benchmark::ConsoleReporter>>(
            static_cast<benchmark::ConsoleReporter::OutputOptions>(opts));
    } else if (format == "json") {
        reporter = std::make_unique<capturing_reporter<benchmark::JSONReporter>>();
    } else if (format == "csv") {
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations" // still a --benchmark_format choice in 1.7
        reporter = std::make_unique<capturing_reporter<benchmark::CSVReporter>>();
#pragma GCC diagnostic pop
    } else {
        std::fprintf(stderr, "Unexpected format: '%s'\n", format.c_str());
        return 1;
    }
    benchmark::RunSpecifiedBenchmarks(reporter.get());
    // After the console output on stdout; on stderr when stdout is JSON or CSV.
    print_ratios(format == "console" ? stdout : stderr);
    benchmark::Shutdown();
    return 0;
}
