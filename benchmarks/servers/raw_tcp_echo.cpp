// The ceiling: a plain TCP echo server on epoll, one thread, no WebSocket at
// all (no handshake, no parsing, no masking). Every byte read is written back.
//   raw_tcp_echo PORT [--whole-frames N [--touch]]   (127.0.0.1; loadgen --raw talks to it)
// --whole-frames N: the ceiling of a message-level server instead, for the 64 KiB
// row: bytes are kept per connection and written back only as whole frames of N bytes
// (the loadgen's frame: payload + 14), all complete ones in one send, as a server that
// hands whole messages to its application must. --touch: each byte received is also
// XORed once, in place, 8 bytes at a time, with a zero key the compiler cannot see
// (what unmasking costs at the least; the bytes go back unchanged).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {
volatile std::uint64_t touch_key = 0;

struct client {
    std::string pending;     // bytes the socket did not take yet
    std::vector<char> frames; // --whole-frames: what came, until whole frames are there
    std::size_t have = 0;
};
} // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        std::fprintf(stderr, "usage: raw_tcp_echo PORT [--whole-frames N [--touch]]\n");
        return 2;
    }
    std::size_t whole = 0; // frame size, 0: stream
    bool touch = false;
    for (int i = 2; i < argc; ++i) {
        if (std::string(argv[i]) == "--whole-frames" && i + 1 < argc) whole = std::strtoul(argv[++i], nullptr, 10);
        else if (std::string(argv[i]) == "--touch") touch = true;
    }
    signal(SIGPIPE, SIG_IGN);
    const int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<std::uint16_t>(std::atoi(argv[1])));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(lfd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || listen(lfd, 4096) != 0) {
        std::perror("raw_tcp_echo: bind/listen");
        return 1;
    }
    const int ep = epoll_create1(EPOLL_CLOEXEC);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = lfd;
    epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
    std::printf("raw_tcp_echo listening on 127.0.0.1:%s\n", argv[1]);
    std::fflush(stdout);

    std::vector<client> clients;
    std::vector<char> buf(256 * 1024);
    std::vector<epoll_event> evs(1024);
    const auto drop = [&](int fd) {
        epoll_ctl(ep, EPOLL_CTL_DEL, fd, nullptr);
        close(fd);
        clients[static_cast<std::size_t>(fd)].pending.clear();
        clients[static_cast<std::size_t>(fd)].have = 0;
    };
    for (;;) {
        const int n = epoll_wait(ep, evs.data(), static_cast<int>(evs.size()), -1);
        for (int i = 0; i < n; ++i) {
            const int fd = evs[static_cast<std::size_t>(i)].data.fd;
            const std::uint32_t e = evs[static_cast<std::size_t>(i)].events;
            if (fd == lfd) {
                for (;;) {
                    const int c = accept4(lfd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
                    if (c < 0) break;
                    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    if (static_cast<std::size_t>(c) >= clients.size()) clients.resize(static_cast<std::size_t>(c) * 2 + 1);
                    epoll_event cev{};
                    cev.events = EPOLLIN;
                    cev.data.fd = c;
                    epoll_ctl(ep, EPOLL_CTL_ADD, c, &cev);
                }
                continue;
            }
            client& cl = clients[static_cast<std::size_t>(fd)];
            if (e & EPOLLOUT) {
                const ssize_t w = send(fd, cl.pending.data(), cl.pending.size(), MSG_NOSIGNAL);
                if (w < 0 && errno != EAGAIN) { drop(fd); continue; }
                if (w > 0) cl.pending.erase(0, static_cast<std::size_t>(w));
                if (cl.pending.empty()) {
                    epoll_event cev{};
                    cev.events = EPOLLIN;
                    cev.data.fd = fd;
                    epoll_ctl(ep, EPOLL_CTL_MOD, fd, &cev);
                }
                continue;
            }
            if (!cl.pending.empty()) continue; // wait for EPOLLOUT before reading more
            char* in = buf.data();
            std::size_t room = buf.size();
            if (whole != 0) { // read behind what is kept, room for 4 frames
                if (cl.frames.size() < 4 * whole) cl.frames.resize(4 * whole);
                in = cl.frames.data() + cl.have;
                room = cl.frames.size() - cl.have;
            }
            const ssize_t r = recv(fd, in, room, 0);
            if (r == 0 || (r < 0 && errno != EAGAIN)) { drop(fd); continue; }
            if (r < 0) continue;
            if (touch) { // XOR with a key the compiler cannot see is 0: the bytes stay as they came
                const std::uint64_t key = touch_key;
                for (ssize_t k = 0; k + 8 <= r; k += 8) {
                    std::uint64_t v;
                    std::memcpy(&v, in + k, 8);
                    v ^= key;
                    std::memcpy(in + k, &v, 8);
                }
            }
            const char* out = in;
            std::size_t len = static_cast<std::size_t>(r);
            if (whole != 0) {
                cl.have += len;
                len = cl.have / whole * whole; // whole frames only
                out = cl.frames.data();
                if (len == 0) continue;
            }
            const ssize_t w = send(fd, out, len, MSG_NOSIGNAL);
            if (w < 0 && errno != EAGAIN) { drop(fd); continue; }
            const std::size_t done = w > 0 ? static_cast<std::size_t>(w) : 0;
            if (whole != 0) { // keep the unfinished frame at the front
                if (done < len) cl.pending.assign(out + done, len - done);
                std::memmove(cl.frames.data(), cl.frames.data() + len, cl.have - len);
                cl.have -= len;
            } else if (done < len) {
                cl.pending.assign(out + done, len - done);
            }
            if (done < len) {
                epoll_event cev{};
                cev.events = EPOLLOUT;
                cev.data.fd = fd;
                epoll_ctl(ep, EPOLL_CTL_MOD, fd, &cev);
            }
        }
    }
}
