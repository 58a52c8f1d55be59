// What permessage-deflate costs per connection: RSS growth of N codecs (one
// deflater + one inflater each, as one endpoint of a connection holds) after one
// message and after many, for a few settings.
//
//   deflate_memory [connections=1000] [messages=200]
//
// Each codec inflates its own output (the same window bits both ways make that
// a valid stream), so both halves of every codec have run, with context
// takeover unless the row says otherwise. Messages are JSON chat lines.
#include <duplex/extensions/permessage_deflate.hpp>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

namespace {

long rss_kib() {
    std::ifstream f("/proc/self/statm");
    long pages = 0, resident = 0;
    f >> pages >> resident;
    return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

std::string chat_line(unsigned i) {
    static const char* const words[] = {"hello", "world", "meeting", "at", "noon", "sounds", "good", "see",
                                        "you", "there", "thanks", "the", "build", "is", "green", "again"};
    std::string text;
    for (unsigned w = 0; w < 8 + i % 24; ++w) text += std::string(words[(i * 7 + w * 3) % 16]) + " ";
    return "{\"type\":\"message\",\"room\":\"general\",\"user\":\"user" + std::to_string(i % 97) +
           "\",\"ts\":" + std::to_string(1733070000000ULL + i * 137) + ",\"text\":\"" + text + "\"}";
}

struct setting {
    const char* name;
    int window_bits;
    int mem_level;
    bool no_context_takeover;
};

} // namespace

int main(int argc, char** argv) {
    const int n = argc > 1 ? std::atoi(argv[1]) : 1000;
    const int messages = argc > 2 ? std::atoi(argv[2]) : 200;
    const setting settings[] = {
        {"defaults (15 bits, mem_level 8)", 15, 8, false},
        {"12 bits, mem_level 5", 12, 5, false},
        {"9 bits, mem_level 8", 9, 8, false},
        {"9 bits, mem_level 1", 9, 1, false},
        {"15 bits, mem_level 8, no context takeover", 15, 8, true},
    };
    std::printf("%d codecs (deflater + inflater each), JSON chat lines, RSS from /proc/self/statm\n\n", n);
    std::printf("| setting | after 1 message (B/conn) | after %d messages (B/conn) | zlib estimate (B) |\n", messages);
    std::printf("|---|---:|---:|---:|\n");
    for (const setting& s : settings) {
        // Each setting in a child process, so memory freed by one (kept by malloc)
        // is not counted again by the next.
        std::fflush(stdout);
        const pid_t child = fork();
        if (child < 0) return 1;
        if (child > 0) {
            int status = 0;
            waitpid(child, &status, 0);
            if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return 1;
            continue;
        }
        duplex::deflate_params params;
        params.enabled = true;
        params.server_max_window_bits = params.client_max_window_bits = s.window_bits;
        params.server_no_context_takeover = params.client_no_context_takeover = s.no_context_takeover;
        duplex::deflate_options options;
        options.mem_level = s.mem_level;
        options.server_max_window_bits = options.client_max_window_bits = s.window_bits;

        const long before = rss_kib();
        std::vector<std::unique_ptr<duplex::deflate_codec>> codecs;
        codecs.reserve(static_cast<std::size_t>(n));
        for (int i = 0; i < n; ++i)
            codecs.push_back(std::make_unique<duplex::deflate_codec>(duplex::role::server, params, options));
        std::string wire, inflated;
        long after_one = 0;
        for (int m = 0; m < messages; ++m) {
            for (int i = 0; i < n; ++i) {
                const std::string line = chat_line(static_cast<unsigned>(m * 31 + i));
                wire.clear();
                inflated.clear();
                if (codecs[i]->compress(line.data(), line.size(), wire) ||
                    codecs[i]->decompress(wire.data(), wire.size(), true, inflated, 1 << 20) || inflated != line) {
                    std::fprintf(stderr, "deflate_memory: round trip failed (%s)\n", s.name);
                    return 1;
                }
            }
            if (m == 0) after_one = rss_kib();
        }
        const long after_all = rss_kib();
        std::printf("| %s | %ld | %ld | %zu |\n", s.name, (after_one - before) * 1024 / n,
                    (after_all - before) * 1024 / n, codecs[0]->memory_estimate());
        std::fflush(stdout);
        _exit(0);
    }
    return 0;
}
