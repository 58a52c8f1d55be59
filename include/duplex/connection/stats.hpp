// Counters a connection keeps and a server sums: cheap enough for the hot
// path (plain stores by the one thread that writes each field).
#pragma once
#include <atomic>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <string>
#include <string_view>
#include <system_error>

namespace duplex {

/// Messages and payload bytes through one connection.
struct connection_stats {
    std::uint64_t messages_in = 0;
    std::uint64_t bytes_in = 0;  ///< payload bytes received, as on the wire (compressed if so)
    std::uint64_t messages_out = 0;
    std::uint64_t bytes_out = 0; ///< payload bytes queued for sending, as on the wire (compressed if so)
    std::uint64_t messages_dropped = 0; ///< queued, then dropped unsent (backpressure_policy::drop_oldest)

    connection_stats& operator+=(const connection_stats& o) noexcept {
        messages_in += o.messages_in;
        bytes_in += o.bytes_in;
        messages_out += o.messages_out;
        bytes_out += o.bytes_out;
        messages_dropped += o.messages_dropped;
        return *this;
    }
};

namespace detail {
// A counter with one writer and any number of readers: a relaxed load + store
// compiles to a plain add (no locked instruction), and readers see no torn values.
class counter {
public:
    void add(std::uint64_t n) noexcept { v_.store(v_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed); }
    std::uint64_t get() const noexcept { return v_.load(std::memory_order_relaxed); }

private:
    std::atomic<std::uint64_t> v_{0};
};
} // namespace detail

/// Severity of a message given to a logging hook. duplex itself never prints.
enum class log_level : std::uint8_t { debug, info, warning, error };

constexpr const char* to_string(log_level l) noexcept {
    switch (l) {
    case log_level::debug: return "debug";
    case log_level::info: return "info";
    case log_level::warning: return "warning";
    case log_level::error: return "error";
    }
    return "?";
}

/// A user callback that receives duplex's log messages. Logging never breaks serving:
/// what the hook throws is ignored.
using log_hook = std::function<void(log_level, std::string_view)>;

namespace detail {
// Gives `hook` the parts, then the error's message if any, as one line. Never
// throws: a log line may be written where memory just ran out (an accept failed
// with ENOBUFS), and the caller must go on.
inline void log_to(const log_hook& hook, log_level level, std::initializer_list<std::string_view> parts,
                   std::error_code ec = {}) noexcept {
    if (!hook) return;
    try {
        std::string line;
        for (auto p : parts) line.append(p);
        if (ec) line.append(ec.message());
        hook(level, line);
    } catch (...) {
    }
}
} // namespace detail

} // namespace duplex
