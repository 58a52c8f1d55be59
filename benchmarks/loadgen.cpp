// loadgen: a neutral WebSocket load generator (RFC 6455 client side) on raw
// sockets + epoll, single-threaded, C++17, no dependencies (it borrows only the
// sans-I/O SHA-1 and Base64 of duplex/core to check Sec-WebSocket-Accept).
// It does not use duplex's I/O, so every server is measured by the same code.
//
//   loadgen --port P [--mode echo|broadcast|idle] [--conns N] [--pipeline P]
//           [--size S] [--duration SEC] [--warmup SEC] [--senders M]
//           [--hold SEC] [--raw] [--no-verify] [--source-ips K]
//
// echo       N connections; each keeps up to P binary messages of S bytes in
//            flight (the masked frame is built once and written with writev);
//            only whole echoed frames are counted, their payload is compared
//            with what was sent. At P=1 the round trip of every message is timed.
// broadcast  N connections, the first M of them senders. A sender has up to P
//            (default 1) messages in flight and sends its next one as soon as
//            its previous one has reached ALL N connections (closed loop: the
//            pace is the server's fan-out speed, nothing is dropped or queued
//            without bound). Payload: [sender id u32][seq u64][pattern]; each
//            delivery is checked (right sender, right sequence, exactly once).
//            Reports deliveries/s and the send -> last receiver delay.
// idle       opens N connections, waits --settle s, prints one line
//            `READY {...}` and holds them --hold s (answering pings), so the
//            runner can read the server's RSS.
// --raw      no handshake; the peer is a plain TCP echo (the ceiling): the
//            echoed frames come back masked and are parsed as such.
//
// The last stdout line is one JSON object. Exit status 0 only when no error.
// The loadgen reports its own CPU time (getrusage) over the measured window
// next to the wall time, to show it was not the bottleneck.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <random>
#include <string>
#include <vector>

#include "duplex/core/base64.hpp"
#include "duplex/core/sha1.hpp"

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

namespace {

struct options {
    std::string host = "127.0.0.1";
    int port = 0;
    std::string mode = "echo";
    int conns = 100;
    int pipeline = 1;
    std::size_t size = 32;
    double duration = 5.0;
    double warmup = 0.5;
    int senders = 5;
    double hold = 5.0;
    double settle = 1.0;
    double connect_timeout = 60.0;
    int max_connecting = 128;
    int source_ips = 1;
    bool raw = false;
    bool verify = true;
};

std::uint64_t now_ns() {
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return std::uint64_t(ts.tv_sec) * 1000000000ull + std::uint64_t(ts.tv_nsec);
}

double cpu_seconds() {
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    return double(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) + double(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

std::string json_escape(const std::string& s) {
    std::string o;
    for (char ch : s) {
        if (ch == '"' || ch == '\\') o += '\\', o += ch;
        else if (static_cast<unsigned char>(ch) < 0x20) o += ' ';
        else o += ch;
    }
    return o;
}

// Writes a client frame header (FIN, opcode, MASK bit, length); returns its size.
std::size_t write_header(std::uint8_t* out, std::uint8_t op, std::uint64_t len) {
    out[0] = std::uint8_t(0x80 | op);
    if (len < 126) {
        out[1] = std::uint8_t(0x80 | len);
        return 2;
    }
    if (len <= 0xffff) {
        out[1] = 0x80 | 126;
        out[2] = std::uint8_t(len >> 8);
        out[3] = std::uint8_t(len);
        return 4;
    }
    out[1] = 0x80 | 127;
    for (int i = 0; i < 8; ++i) out[2 + i] = std::uint8_t(len >> (56 - 8 * i));
    return 10;
}

// A whole masked client frame with the given payload.
std::vector<std::uint8_t> make_frame(std::uint8_t op, const std::uint8_t* payload, std::size_t len, const std::uint8_t key[4]) {
    std::vector<std::uint8_t> f(14 + len);
    std::size_t h = write_header(f.data(), op, len);
    std::memcpy(f.data() + h, key, 4);
    h += 4;
    for (std::size_t i = 0; i < len; ++i) f[h + i] = payload[i] ^ key[i & 3];
    f.resize(h + len);
    return f;
}

enum class state { idle, connecting, handshake, open, dead };

struct conn {
    int fd = -1;
    int index = 0;
    state st = state::idle;
    std::string request;            // handshake request still to write
    std::size_t request_off = 0;
    std::string expected_accept;
    std::vector<std::uint8_t> in;   // received, not yet parsed bytes live in [rpos, wpos)
    std::size_t rpos = 0, wpos = 0;
    std::string out;                // generic bytes to write (broadcast, pongs)
    std::size_t out_pos = 0;
    std::size_t frames_pending = 0; // echo: whole prebuilt frames still to write...
    std::size_t frame_off = 0;      // ...and bytes of the first one already written
    bool want_write = false;
    int inflight = 0;
    std::uint64_t sent_at = 0;      // P=1: when the message in flight was sent
    std::uint64_t msg_len = 0;      // current (possibly fragmented) message
    std::uint8_t msg_op = 0;
};

struct slot {
    std::uint64_t seq = ~0ull;
    int remaining = 0;
    std::uint64_t sent_at = 0;
};
struct sender_state {
    std::uint64_t next_seq = 0;
    std::vector<slot> slots;
};

class loadgen {
public:
    explicit loadgen(const options& o) : o_(o) {}

    int run() {
        signal(SIGPIPE, SIG_IGN);
        ep_ = epoll_create1(EPOLL_CLOEXEC);
        std::random_device rd;
        rng_.seed((std::uint64_t(rd()) << 32) ^ rd());
        for (auto& k : mask_) k = std::uint8_t(rng_());
        if (o_.mode == "broadcast" && o_.size < 12) o_.size = 12;
        payload_.resize(o_.size);
        for (std::size_t i = 0; i < o_.size; ++i) payload_[i] = std::uint8_t('a' + (i * 7) % 26);
        frame_ = make_frame(0x2, payload_.data(), payload_.size(), mask_);
        masked_payload_.assign(frame_.end() - std::ptrdiff_t(o_.size), frame_.end());
        const std::size_t cap = std::max<std::size_t>(256 * 1024, 2 * (o_.size + 14) * std::size_t(std::max(1, o_.pipeline)));
        in_cap_ = o_.mode == "idle" ? 4096 : cap;

        conns_.resize(std::size_t(o_.conns));
        for (int i = 0; i < o_.conns; ++i) conns_[std::size_t(i)].index = i;
        if (!connect_all()) return finish();
        if (o_.mode == "idle") return run_idle();
        return run_traffic();
    }

private:
    // ---- connecting ------------------------------------------------------

    bool start_connect(conn& c) {
        c.fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (c.fd < 0) return fail("socket: " + std::string(strerror(errno)));
        int one = 1;
        setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (o_.source_ips > 1) {
            setsockopt(c.fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
            sockaddr_in src{};
            src.sin_family = AF_INET;
            src.sin_addr.s_addr = htonl(0x7f000001u + std::uint32_t(c.index % o_.source_ips));
            if (bind(c.fd, reinterpret_cast<sockaddr*>(&src), sizeof src) != 0)
                return fail("bind: " + std::string(strerror(errno)));
        }
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(std::uint16_t(o_.port));
        inet_pton(AF_INET, o_.host.c_str(), &a.sin_addr);
        if (connect(c.fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 && errno != EINPROGRESS)
            return fail("connect: " + std::string(strerror(errno)));
        c.st = state::connecting;
        c.in.resize(in_cap_);
        epoll_event ev{};
        ev.events = EPOLLIN | EPOLLOUT;
        ev.data.u32 = std::uint32_t(c.index);
        c.want_write = true;
        epoll_ctl(ep_, EPOLL_CTL_ADD, c.fd, &ev);
        if (!o_.raw) {
            std::uint8_t nonce[16];
            for (auto& b : nonce) b = std::uint8_t(rng_());
            const std::string key = duplex::base64_encode(nonce, sizeof nonce);
            const std::string cat = key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
            const auto digest = duplex::sha1(cat.data(), cat.size());
            c.expected_accept = duplex::base64_encode(digest.data(), digest.size());
            c.request = "GET / HTTP/1.1\r\nHost: " + o_.host + ":" + std::to_string(o_.port) +
                        "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " + key +
                        "\r\nSec-WebSocket-Version: 13\r\n\r\n";
        }
        return true;
    }

    bool connect_all() {
        const std::uint64_t deadline = now_ns() + std::uint64_t(o_.connect_timeout * 1e9);
        int next = 0, in_progress = 0, open = 0;
        std::vector<epoll_event> evs(1024);
        while (open < o_.conns) {
            while (next < o_.conns && in_progress < o_.max_connecting) {
                if (!start_connect(conns_[std::size_t(next++)])) return false;
                ++in_progress;
            }
            if (now_ns() > deadline)
                return fail("connect timeout: " + std::to_string(open) + " of " + std::to_string(o_.conns) + " open");
            const int n = epoll_wait(ep_, evs.data(), int(evs.size()), 100);
            for (int i = 0; i < n; ++i) {
                conn& c = conns_[evs[std::size_t(i)].data.u32];
                const state before = c.st;
                if (!progress_handshake(c, evs[std::size_t(i)].events)) return false;
                if (before != state::open && c.st == state::open) ++open, --in_progress;
            }
        }
        return true;
    }

    bool progress_handshake(conn& c, std::uint32_t events) {
        if (c.st == state::connecting) {
            int err = 0;
            socklen_t len = sizeof err;
            getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &len);
            if (err) return fail("connect: " + std::string(strerror(err)));
            if (!(events & (EPOLLOUT | EPOLLIN))) return true;
            if (o_.raw) {
                c.st = state::open;
                set_write_interest(c, false);
                return true;
            }
            c.st = state::handshake;
        }
        if (c.st != state::handshake) return true;
        while (c.request_off < c.request.size()) {
            const ssize_t w = send(c.fd, c.request.data() + c.request_off, c.request.size() - c.request_off, MSG_NOSIGNAL);
            if (w < 0) {
                if (errno == EAGAIN) return true;
                return fail("handshake send: " + std::string(strerror(errno)));
            }
            c.request_off += std::size_t(w);
        }
        if (c.want_write) set_write_interest(c, false);
        if (!(events & EPOLLIN)) return true;
        const ssize_t r = recv(c.fd, c.in.data() + c.wpos, c.in.size() - c.wpos, 0);
        if (r == 0) return fail("server closed during handshake");
        if (r < 0) return errno == EAGAIN ? true : fail("handshake recv: " + std::string(strerror(errno)));
        c.wpos += std::size_t(r);
        const std::string head(reinterpret_cast<const char*>(c.in.data()), c.wpos);
        const std::size_t end = head.find("\r\n\r\n");
        if (end == std::string::npos) {
            if (c.wpos == c.in.size()) return fail("handshake response too big");
            return true;
        }
        if (head.compare(0, 13, "HTTP/1.1 101 ") != 0)
            return fail("handshake refused: " + head.substr(0, head.find("\r\n")));
        // Sec-WebSocket-Accept, header name case-insensitive.
        std::string lower = head.substr(0, end + 2);
        for (auto& ch : lower) ch = char(std::tolower(static_cast<unsigned char>(ch)));
        const std::size_t h = lower.find("\r\nsec-websocket-accept:");
        if (h == std::string::npos) return fail("handshake: no Sec-WebSocket-Accept");
        std::size_t v = h + 23;
        while (v < end && (head[v] == ' ' || head[v] == '\t')) ++v;
        std::size_t ve = head.find("\r\n", v);
        while (ve > v && (head[ve - 1] == ' ' || head[ve - 1] == '\t')) --ve;
        if (head.compare(v, ve - v, c.expected_accept) != 0)
            return fail("handshake: wrong Sec-WebSocket-Accept '" + head.substr(v, ve - v) + "'");
        c.rpos = end + 4;
        c.st = state::open;
        std::string().swap(c.request);
        return true;
    }

    // ---- I/O helpers -----------------------------------------------------

    void set_write_interest(conn& c, bool on) {
        if (c.want_write == on) return;
        c.want_write = on;
        epoll_event ev{};
        ev.events = EPOLLIN | (on ? EPOLLOUT : 0u);
        ev.data.u32 = std::uint32_t(c.index);
        epoll_ctl(ep_, EPOLL_CTL_MOD, c.fd, &ev);
    }

    // Writes what is queued; arms EPOLLOUT if the socket is full.
    bool flush(conn& c) {
        while (c.out_pos < c.out.size()) {
            const ssize_t w = send(c.fd, c.out.data() + c.out_pos, c.out.size() - c.out_pos, MSG_NOSIGNAL);
            ++writes_;
            if (w < 0) {
                if (errno == EAGAIN) return set_write_interest(c, true), true;
                return fail("send: " + std::string(strerror(errno)));
            }
            c.out_pos += std::size_t(w);
        }
        c.out.clear();
        c.out_pos = 0;
        const std::size_t flen = frame_.size();
        while (c.frames_pending > 0) {
            iovec iov[256];
            const std::size_t k = std::min<std::size_t>(c.frames_pending, 256);
            std::size_t want = 0;
            for (std::size_t i = 0; i < k; ++i) {
                const std::size_t off = i == 0 ? c.frame_off : 0;
                iov[i].iov_base = const_cast<std::uint8_t*>(frame_.data() + off);
                iov[i].iov_len = flen - off;
                want += flen - off;
            }
            const ssize_t w = writev(c.fd, iov, int(k));
            ++writes_;
            if (w < 0) {
                if (errno == EAGAIN) return set_write_interest(c, true), true;
                return fail("writev: " + std::string(strerror(errno)));
            }
            std::size_t n = std::size_t(w);
            const std::size_t first = flen - c.frame_off;
            if (n < first) {
                c.frame_off += n;
            } else {
                n -= first;
                c.frames_pending -= 1 + n / flen;
                c.frame_off = n % flen;
            }
            if (std::size_t(w) < want) return set_write_interest(c, true), true;
        }
        set_write_interest(c, false);
        return true;
    }

    void send_pong(conn& c, const std::uint8_t* p, std::size_t n) {
        // Only between whole frames (never inside a prebuilt frame being written).
        if (c.frames_pending != 0 || c.frame_off != 0) return;
        const auto f = make_frame(0xA, p, n, mask_);
        c.out.append(reinterpret_cast<const char*>(f.data()), f.size());
    }

    // ---- traffic ---------------------------------------------------------

    bool in_window(std::uint64_t t) const { return t >= measure_start_ && t < measure_end_; }

    void queue_echo(conn& c, std::uint64_t t) {
        c.frames_pending++;
        c.inflight++;
        c.sent_at = t;
    }

    void send_broadcast(int sid, std::uint64_t t) {
        sender_state& s = senders_[std::size_t(sid)];
        const std::uint64_t seq = s.next_seq++;
        slot& sl = s.slots[seq % s.slots.size()];
        if (sl.remaining != 0) return; // (cannot happen: a slot is reused only once complete)
        sl.seq = seq;
        sl.remaining = o_.conns;
        sl.sent_at = t;
        std::memcpy(payload_.data(), &sid, 4);
        std::memcpy(payload_.data() + 4, &seq, 8);
        const auto f = make_frame(0x2, payload_.data(), payload_.size(), mask_);
        conn& c = conns_[std::size_t(sid)];
        c.out.append(reinterpret_cast<const char*>(f.data()), f.size());
        ++sent_;
    }

    // A whole data message arrived on c (payload at p, already in place).
    bool on_message(conn& c, const std::uint8_t* p, std::size_t len, bool single_frame, std::uint64_t t) {
        last_activity_ = t;
        if (o_.mode == "echo") {
            if (len != o_.size) return fail("echo of wrong size " + std::to_string(len));
            if (o_.verify && single_frame &&
                std::memcmp(p, o_.raw ? masked_payload_.data() : payload_.data(), len) != 0)
                return fail("echo payload differs from what was sent");
            c.inflight--;
            if (in_window(t)) {
                ++messages_;
                bytes_ += len;
                if (o_.pipeline == 1) rtt_.push_back(std::uint32_t(std::min<std::uint64_t>(t - c.sent_at, ~0u)));
            }
            if (t < measure_end_) queue_echo(c, t);
            return true;
        }
        if (o_.mode == "broadcast") {
            if (len != o_.size || !single_frame) return fail("broadcast message of wrong size");
            std::uint32_t sid;
            std::uint64_t seq;
            std::memcpy(&sid, p, 4);
            std::memcpy(&seq, p + 4, 8);
            if (sid >= std::uint32_t(senders_.size())) return fail("broadcast: unknown sender id");
            sender_state& s = senders_[sid];
            slot& sl = s.slots[seq % s.slots.size()];
            if (sl.seq != seq || sl.remaining <= 0) return fail("broadcast: unexpected or duplicate delivery");
            if (o_.verify && std::memcmp(p + 12, payload_.data() + 12, len - 12) != 0)
                return fail("broadcast payload corrupted");
            if (in_window(t)) ++deliveries_, bytes_ += len;
            if (--sl.remaining == 0) {
                if (in_window(t)) {
                    ++messages_;
                    rtt_.push_back(std::uint32_t(std::min<std::uint64_t>(t - sl.sent_at, ~0u)));
                }
                if (t < measure_end_) {
                    send_broadcast(int(sid), t);
                    if (!flush(conns_[sid])) return false;
                }
            }
            return true;
        }
        return true; // idle: ignore
    }

    // Parses whole frames in c.in; leaves a partial one for later.
    bool parse(conn& c, std::uint64_t t) {
        for (;;) {
            const std::size_t avail = c.wpos - c.rpos;
            if (avail < 2) break;
            const std::uint8_t* b = c.in.data() + c.rpos;
            const bool fin = b[0] & 0x80;
            const std::uint8_t op = b[0] & 0x0f;
            if (b[0] & 0x70) return fail("frame with RSV bits (no extension was negotiated)");
            const bool masked = b[1] & 0x80;
            std::uint64_t len = b[1] & 0x7f;
            std::size_t hdr = 2;
            if (len == 126) {
                if (avail < 4) break;
                len = (std::uint64_t(b[2]) << 8) | b[3];
                hdr = 4;
            } else if (len == 127) {
                if (avail < 10) break;
                len = 0;
                for (int i = 0; i < 8; ++i) len = (len << 8) | b[2 + i];
                if (len >> 63) return fail("64-bit length with the top bit set");
                hdr = 10;
            }
            if (masked) {
                if (!o_.raw) return fail("server sent a masked frame");
                hdr += 4; // raw echo: our own masked frame comes back; compared masked
            }
            if (len > (1ull << 32)) return fail("absurd frame length");
            if (avail < hdr + len) {
                // Make room for the rest of this frame if the buffer is too small.
                if (hdr + len > c.in.size()) c.in.resize(std::size_t(hdr + len) * 2);
                break;
            }
            const std::uint8_t* p = b + hdr;
            c.rpos += hdr + std::size_t(len);
            if (op >= 0x8) {
                if (op == 0x8) return fail("server sent a close frame");
                if (op == 0x9) send_pong(c, p, std::size_t(len));
                continue;
            }
            if (op == 0x0) {
                if (c.msg_op == 0) return fail("continuation without a message");
                c.msg_len += len;
            } else {
                if (c.msg_op != 0) return fail("new message inside a fragmented one");
                c.msg_op = op;
                c.msg_len = len;
            }
            if (!fin) continue;
            const bool single = op != 0x0;
            const std::size_t total = std::size_t(c.msg_len);
            c.msg_op = 0;
            c.msg_len = 0;
            if (!on_message(c, p, single ? std::size_t(len) : total, single, t)) return false;
        }
        if (c.rpos == c.wpos) {
            c.rpos = c.wpos = 0;
        } else if (c.in.size() - c.wpos < c.in.size() / 4) {
            std::memmove(c.in.data(), c.in.data() + c.rpos, c.wpos - c.rpos);
            c.wpos -= c.rpos;
            c.rpos = 0;
        }
        return true;
    }

    bool on_readable(conn& c) {
        if (c.wpos == c.in.size()) { // full of one partial frame: grow
            c.in.resize(c.in.size() * 2);
        }
        const ssize_t r = recv(c.fd, c.in.data() + c.wpos, c.in.size() - c.wpos, 0);
        ++reads_;
        if (r == 0) return fail("server closed connection " + std::to_string(c.index));
        if (r < 0) return errno == EAGAIN ? true : fail("recv: " + std::string(strerror(errno)));
        c.wpos += std::size_t(r);
        const std::uint64_t t = now_ns();
        if (!parse(c, t)) return false;
        return flush(c);
    }

    int run_traffic() {
        // Bytes that arrived with the handshake response are frames.
        std::vector<epoll_event> evs(1024);
        const std::uint64_t settle_ns = o_.mode == "broadcast" ? 200000000ull : 0;
        if (settle_ns) { // let every server register its last connection in its room
            const std::uint64_t until = now_ns() + settle_ns;
            while (now_ns() < until) {
                const int n = epoll_wait(ep_, evs.data(), int(evs.size()), 10);
                for (int i = 0; i < n; ++i) {
                    conn& c = conns_[evs[std::size_t(i)].data.u32];
                    if (evs[std::size_t(i)].events & EPOLLIN) {
                        const ssize_t r = recv(c.fd, c.in.data() + c.wpos, c.in.size() - c.wpos, 0);
                        if (r <= 0 && !(r < 0 && errno == EAGAIN)) return fail("connection lost before start"), finish();
                        if (r > 0) c.wpos += std::size_t(r);
                    }
                }
            }
        }
        const std::uint64_t start = now_ns();
        measure_start_ = start + std::uint64_t(o_.warmup * 1e9);
        measure_end_ = measure_start_ + std::uint64_t(o_.duration * 1e9);
        if (o_.mode == "echo") {
            for (auto& c : conns_) {
                for (int i = 0; i < o_.pipeline; ++i) queue_echo(c, start);
                if (!parse(c, start) || !flush(c)) return finish();
            }
        } else {
            if (o_.senders > o_.conns) o_.senders = o_.conns;
            senders_.resize(std::size_t(o_.senders));
            for (auto& s : senders_) s.slots.resize(std::size_t(std::max(1, o_.pipeline)));
            for (auto& c : conns_)
                if (!parse(c, start)) return finish();
            for (int s = 0; s < o_.senders; ++s) {
                for (int i = 0; i < std::max(1, o_.pipeline); ++i) send_broadcast(s, start);
                if (!flush(conns_[std::size_t(s)])) return finish();
            }
        }
        bool measuring = false;
        for (;;) {
            const std::uint64_t t = now_ns();
            if (!measuring && t >= measure_start_) {
                measuring = true;
                cpu_start_ = cpu_seconds();
                reads_at_start_ = reads_;
                writes_at_start_ = writes_;
            }
            if (t >= measure_end_) break;
            if (measuring && t - std::max(last_activity_, measure_start_) > 2000000000ull)
                return fail("stalled: no message completed for 2 s"), finish();
            const int n = epoll_wait(ep_, evs.data(), int(evs.size()), 5);
            for (int i = 0; i < n; ++i) {
                conn& c = conns_[evs[std::size_t(i)].data.u32];
                const std::uint32_t e = evs[std::size_t(i)].events;
                if (e & (EPOLLERR | EPOLLHUP) && !(e & EPOLLIN)) return fail("socket error on connection " + std::to_string(c.index)), finish();
                if (e & EPOLLOUT && !flush(c)) return finish();
                if (e & EPOLLIN && !on_readable(c)) return finish();
            }
        }
        cpu_used_ = cpu_seconds() - cpu_start_;
        return finish();
    }

    int run_idle() {
        std::vector<epoll_event> evs(1024);
        const auto service = [&](double seconds) {
            const std::uint64_t until = now_ns() + std::uint64_t(seconds * 1e9);
            while (now_ns() < until) {
                const int n = epoll_wait(ep_, evs.data(), int(evs.size()), 50);
                for (int i = 0; i < n; ++i) {
                    conn& c = conns_[evs[std::size_t(i)].data.u32];
                    const std::uint32_t e = evs[std::size_t(i)].events;
                    if (e & EPOLLOUT && !flush(c)) return false;
                    if (e & EPOLLIN && !on_readable(c)) return false;
                }
            }
            return true;
        };
        if (!service(o_.settle)) return finish();
        std::printf("READY {\"open\":%d}\n", o_.conns);
        std::fflush(stdout);
        if (!service(o_.hold)) return finish();
        return finish();
    }

    // ---- the end ---------------------------------------------------------

    bool fail(const std::string& what) {
        if (error_.empty()) error_ = what;
        return false;
    }

    static double pct(std::vector<std::uint32_t>& v, double q) {
        if (v.empty()) return 0;
        const std::size_t k = std::min(v.size() - 1, std::size_t(q * double(v.size())));
        std::nth_element(v.begin(), v.begin() + std::ptrdiff_t(k), v.end());
        return v[k] / 1000.0;
    }

    int finish() {
        for (auto& c : conns_)
            if (c.fd >= 0) close(c.fd);
        const double wall = o_.duration;
        const double mps = double(messages_) / wall;
        std::string lat;
        if (!rtt_.empty()) {
            char buf[160];
            const double p50 = pct(rtt_, 0.50), p99 = pct(rtt_, 0.99);
            std::snprintf(buf, sizeof buf, ",\"p50_us\":%.1f,\"p99_us\":%.1f,\"latency_samples\":%zu", p50, p99, rtt_.size());
            lat = buf;
        }
        std::printf("{\"tool\":\"loadgen\",\"mode\":\"%s\",\"raw\":%s,\"conns\":%d,\"pipeline\":%d,\"size\":%zu,"
                    "\"senders\":%d,\"duration_s\":%.3f,\"messages\":%" PRIu64 ",\"msgs_per_s\":%.1f,"
                    "\"deliveries\":%" PRIu64 ",\"deliveries_per_s\":%.1f,\"mb_per_s\":%.3f%s,"
                    "\"loadgen_cpu_s\":%.3f,\"loadgen_cpu_util\":%.3f,\"loadgen_reads\":%" PRIu64 ",\"loadgen_writes\":%" PRIu64 ","
                    "\"error\":\"%s\"}\n",
                    o_.mode.c_str(), o_.raw ? "true" : "false", o_.conns, o_.pipeline, o_.size,
                    o_.mode == "broadcast" ? o_.senders : 0, wall, messages_, mps, deliveries_,
                    double(deliveries_) / wall, double(bytes_) / wall / 1e6, lat.c_str(), cpu_used_,
                    cpu_used_ / wall, reads_ - reads_at_start_, writes_ - writes_at_start_, json_escape(error_).c_str());
        std::fflush(stdout);
        return error_.empty() ? 0 : 1;
    }

    options o_;
    int ep_ = -1;
    std::mt19937_64 rng_;
    std::uint8_t mask_[4]{};
    std::vector<std::uint8_t> payload_, masked_payload_, frame_;
    std::size_t in_cap_ = 0;
    std::vector<conn> conns_;
    std::vector<sender_state> senders_;
    std::vector<std::uint32_t> rtt_; // ns
    std::uint64_t measure_start_ = ~0ull, measure_end_ = ~0ull;
    std::uint64_t messages_ = 0, deliveries_ = 0, bytes_ = 0, sent_ = 0;
    std::uint64_t reads_ = 0, writes_ = 0, reads_at_start_ = 0, writes_at_start_ = 0;
    std::uint64_t last_activity_ = 0;
    double cpu_start_ = 0, cpu_used_ = 0;
    std::string error_;
};

[[noreturn]] void usage() {
    std::fprintf(stderr,
                 "usage: loadgen --port P [--host 127.0.0.1] [--mode echo|broadcast|idle] [--conns N]\n"
                 "               [--pipeline P] [--size BYTES] [--duration SEC] [--warmup SEC]\n"
                 "               [--senders M] [--hold SEC] [--settle SEC] [--raw] [--no-verify]\n"
                 "               [--source-ips K] [--max-connecting N] [--connect-timeout SEC]\n");
    std::exit(2);
}

} // namespace

int main(int argc, char** argv) {
    options o;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        const auto val = [&]() -> std::string {
            if (i + 1 >= argc) usage();
            return argv[++i];
        };
        if (a == "--port") o.port = std::atoi(val().c_str());
        else if (a == "--host") o.host = val();
        else if (a == "--mode") o.mode = val();
        else if (a == "--conns") o.conns = std::atoi(val().c_str());
        else if (a == "--pipeline") o.pipeline = std::atoi(val().c_str());
        else if (a == "--size") o.size = std::size_t(std::atoll(val().c_str()));
        else if (a == "--duration") o.duration = std::atof(val().c_str());
        else if (a == "--warmup") o.warmup = std::atof(val().c_str());
        else if (a == "--senders") o.senders = std::atoi(val().c_str());
        else if (a == "--hold") o.hold = std::atof(val().c_str());
        else if (a == "--settle") o.settle = std::atof(val().c_str());
        else if (a == "--source-ips") o.source_ips = std::atoi(val().c_str());
        else if (a == "--max-connecting") o.max_connecting = std::atoi(val().c_str());
        else if (a == "--connect-timeout") o.connect_timeout = std::atof(val().c_str());
        else if (a == "--raw") o.raw = true;
        else if (a == "--no-verify") o.verify = false;
        else usage();
    }
    if (o.port <= 0 || o.conns <= 0 || o.pipeline <= 0 || o.duration <= 0 ||
        (o.mode != "echo" && o.mode != "broadcast" && o.mode != "idle"))
        usage();
    return loadgen(o).run();
}
