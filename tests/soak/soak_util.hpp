// Helpers shared by the soak programs: configuration from the environment,
// process RSS, a peak sampler, and a raw POSIX client socket for the peers no
// well-behaved client library would be (half frames, garbage, never reading).
#pragma once
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <thread>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#if defined(__has_feature)
#if __has_feature(address_sanitizer) && !defined(__SANITIZE_ADDRESS__)
#define __SANITIZE_ADDRESS__ 1
#endif
#if __has_feature(thread_sanitizer) && !defined(__SANITIZE_THREAD__)
#define __SANITIZE_THREAD__ 1
#endif
#endif

namespace soak {

using clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool sanitized = true;
#else
constexpr bool sanitized = false;
#endif
#if defined(__SANITIZE_THREAD__)
constexpr const char* build_kind = "tsan";
#elif defined(__SANITIZE_ADDRESS__)
constexpr const char* build_kind = "asan";
#else
constexpr const char* build_kind = "plain";
#endif

inline long env_long(const char* name, long fallback) {
    const char* v = std::getenv(name);
    if (!v || !*v) return fallback;
    char* end = nullptr;
    const long n = std::strtol(v, &end, 10);
    return (end && *end == '\0' && n > 0) ? n : fallback;
}

/// Resident set size of this process, from /proc/self/statm (bytes).
inline std::size_t rss_bytes() {
    std::FILE* f = std::fopen("/proc/self/statm", "r");
    if (!f) return 0;
    unsigned long size = 0, resident = 0;
    const int n = std::fscanf(f, "%lu %lu", &size, &resident);
    std::fclose(f);
    return n == 2 ? resident * static_cast<std::size_t>(sysconf(_SC_PAGESIZE)) : 0;
}
inline double mib(std::size_t b) { return static_cast<double>(b) / (1024.0 * 1024.0); }

/// Samples the RSS every 20 ms on its own thread and keeps the maximum.
class rss_sampler {
public:
    rss_sampler() : peak_(rss_bytes()), thread_([this] {
        while (!stop_.load()) {
            note();
            std::this_thread::sleep_for(20ms);
        }
    }) {}
    ~rss_sampler() { stop(); }
    void stop() {
        stop_.store(true);
        if (thread_.joinable()) thread_.join();
    }
    void note() {
        const std::size_t now = rss_bytes();
        std::size_t p = peak_.load();
        while (now > p && !peak_.compare_exchange_weak(p, now)) {}
    }
    std::size_t peak() const { return peak_.load(); }

private:
    std::atomic<bool> stop_{false};
    std::atomic<std::size_t> peak_;
    std::thread thread_;
};

/// Raises the soft descriptor limit to the hard limit; returns the new soft limit.
inline rlim_t raise_fd_limit() {
    rlimit rl{};
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    getrlimit(RLIMIT_NOFILE, &rl);
    return rl.rlim_cur;
}

inline const std::string& upgrade_request() {
    static const std::string r =
        "GET /soak HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
    return r;
}

/// A non-blocking loopback TCP client with deadlines on every operation.
class raw_socket {
public:
    raw_socket() = default;
    raw_socket(const raw_socket&) = delete;
    raw_socket& operator=(const raw_socket&) = delete;
    ~raw_socket() { close(); }

    /// Connects to 127.0.0.1:port. rcvbuf > 0 shrinks the receive buffer first
    /// (before the handshake, so the advertised window stays small).
    bool connect(std::uint16_t port, int rcvbuf = 0) {
        fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd_ < 0) return false;
        if (rcvbuf > 0) ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(port);
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (::connect(fd_, reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0) return close(), false;
        const int one = 1;
        ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        ::fcntl(fd_, F_SETFL, ::fcntl(fd_, F_GETFL) | O_NONBLOCK);
        return true;
    }

    enum class io { ok, eof, error, timeout };

    /// Writes everything before the deadline.
    io send_all(const void* data, std::size_t size, clock::time_point deadline) {
        const auto* p = static_cast<const char*>(data);
        while (size > 0) {
            const ssize_t n = ::send(fd_, p, size, MSG_NOSIGNAL);
            if (n > 0) {
                p += n;
                size -= static_cast<std::size_t>(n);
                continue;
            }
            if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) return io::error;
            if (!wait(POLLOUT, deadline)) return io::timeout;
        }
        return io::ok;
    }
    io send_all(std::string_view s, clock::time_point deadline) { return send_all(s.data(), s.size(), deadline); }

    /// Reads what is there (waiting up to the deadline for something) and appends it.
    io read_some(std::string& out, clock::time_point deadline) {
        char buf[16384];
        while (true) {
            const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
            if (n > 0) {
                out.append(buf, static_cast<std::size_t>(n));
                return io::ok;
            }
            if (n == 0) return io::eof;
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) return io::error;
            if (!wait(POLLIN, deadline)) return io::timeout;
        }
    }

    /// Reads until `until` appears in out (ok), EOF, an error or the deadline.
    io read_until(std::string& out, std::string_view until, clock::time_point deadline) {
        while (out.find(until) == std::string::npos) {
            const io r = read_some(out, deadline);
            if (r != io::ok) return r;
        }
        return io::ok;
    }

    /// Closes; `reset` sends an RST instead of a FIN (SO_LINGER 0).
    void close(bool reset = false) {
        if (fd_ < 0) return;
        if (reset) {
            const linger l{1, 0};
            ::setsockopt(fd_, SOL_SOCKET, SO_LINGER, &l, sizeof l);
        }
        ::close(fd_);
        fd_ = -1;
    }
    int fd() const { return fd_; }
    /// "127.0.0.1:port" of our end, as the server sees it as its peer.
    std::string local_address() const {
        sockaddr_in a{};
        socklen_t n = sizeof a;
        if (::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &n) != 0) return {};
        char ip[INET_ADDRSTRLEN] = {};
        ::inet_ntop(AF_INET, &a.sin_addr, ip, sizeof ip);
        return std::string(ip) + ":" + std::to_string(ntohs(a.sin_port));
    }

    /// True once the peer closed or reset the connection, without reading any
    /// data (POLLRDHUP: its FIN arrived; POLLHUP/POLLERR: a reset).
    bool peer_gone() const {
        pollfd p{fd_, POLLRDHUP, 0};
        return ::poll(&p, 1, 0) == 1 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0;
    }
    /// Waits, without reading, until peer_gone() or the deadline.
    bool wait_peer_gone(clock::time_point deadline) const {
        while (!peer_gone()) {
            if (clock::now() >= deadline) return false;
            std::this_thread::sleep_for(5ms);
        }
        return true;
    }

private:
    bool wait(short events, clock::time_point deadline) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now()).count();
        if (left <= 0) return false;
        pollfd p{fd_, events, 0};
        const int r = ::poll(&p, 1, static_cast<int>(std::min<long long>(left, 100)));
        return r >= 0 && clock::now() < deadline + 1ms;
    }
    int fd_ = -1;
};

} // namespace soak
