// The ceiling: a plain TCP echo server on epoll, one thread, no WebSocket at
// all (no handshake, no parsing, no masking). Every byte read is written back.
//   raw_tcp_echo PORT       (listens on 127.0.0.1; loadgen --raw talks to it)
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {
struct client {
    std::string pending; // bytes the socket did not take yet
};
} // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        std::fprintf(stderr, "usage: raw_tcp_echo PORT\n");
        return 2;
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
            const ssize_t r = recv(fd, buf.data(), buf.size(), 0);
            if (r == 0 || (r < 0 && errno != EAGAIN)) { drop(fd); continue; }
            if (r < 0) continue;
            const ssize_t w = send(fd, buf.data(), static_cast<std::size_t>(r), MSG_NOSIGNAL);
            if (w < 0 && errno != EAGAIN) { drop(fd); continue; }
            const std::size_t done = w > 0 ? static_cast<std::size_t>(w) : 0;
            if (done < static_cast<std::size_t>(r)) {
                cl.pending.assign(buf.data() + done, static_cast<std::size_t>(r) - done);
                epoll_event cev{};
                cev.events = EPOLLOUT;
                cev.data.fd = fd;
                epoll_ctl(ep, EPOLL_CTL_MOD, fd, &cev);
            }
        }
    }
}
