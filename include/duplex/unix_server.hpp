// A WebSocket server on a Unix domain socket: behind a reverse proxy on the same
// machine, or for local IPC, with no TCP port open.
//
//   asio::io_context io;
//   duplex::unix_server server(io);
//   server.on_message([](auto& c, const duplex::message& m) { c.send(m); });
//   server.listen("/run/app/ws.sock");
//   io.run();
//
// Everything else is duplex::server's: handlers, options (proxy_protocol too,
// for HAProxy's `send-proxy` to a `unix@` server), stats, broadcast, stop().
#pragma once
#include "server.hpp"
#include "transport/unix.hpp"

#if defined(ASIO_HAS_LOCAL_SOCKETS) && !defined(_WIN32)
#include <cerrno>
#include <string>
#include <string_view>
#include <system_error>

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

namespace duplex {

namespace detail {
// True when `path` is a socket file nobody accepts on any more (left by a process
// that ended without removing it): a connection to it is refused at once.
inline bool stale_unix_socket(const std::string& path) noexcept {
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0 || !S_ISSOCK(st.st_mode)) return false;
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return false;
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    path.copy(addr.sun_path, sizeof(addr.sun_path) - 1);
    // EAGAIN: a live server whose backlog is full. Only ECONNREFUSED says nobody listens.
    const bool refused = ::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0 && errno == ECONNREFUSED;
    ::close(fd);
    return refused;
}
} // namespace detail

/// duplex::server on a Unix domain socket: the same handlers, options, stats and
/// broadcast, with listen(path, mode) instead of listen(port).
class unix_server : public basic_server<unix_transport> {
public:
    using basic_server::basic_server;

    static constexpr int umask_mode = -1; ///< listen()'s default: the file's mode as the umask makes it

    /// Listens on the Unix domain socket at `path`; "@name" is `name` in Linux's
    /// abstract namespace (no file). A socket file that nobody listens on any more is
    /// replaced; a live server's gives address_in_use, and so does any other kind of
    /// file, which is left alone. Who may connect is who may write the file: its mode is
    /// `mode` (e.g. 0660), set before anyone can connect, or else what the process's
    /// umask makes it. stop() and the destructor remove it, if it is still this server's.
    [[nodiscard]] std::error_code listen(std::string_view path, int mode = umask_mode) {
        if (path.empty()) return std::make_error_code(std::errc::invalid_argument);
        if (path.size() >= sizeof(sockaddr_un::sun_path)) return std::make_error_code(std::errc::filename_too_long);
        std::string name(path);
        const bool abstract = name[0] == '@';
        if (abstract) name[0] = '\0';
        const endpoint_type ep(name);
        std::error_code ec = bind(ep);
        if (ec == asio::error::address_in_use && !abstract && detail::stale_unix_socket(name)) {
            ::unlink(name.c_str());
            ec = bind(ep);
        }
        if (ec) return ec;
        struct stat st {};
        if (!abstract && ::stat(name.c_str(), &st) == 0) {
            file_ = name;
            file_id_ = {st.st_dev, st.st_ino};
        }
        // Bound, not listening yet: a connection now is refused, so the mode holds
        // from the first one on.
        if (mode != umask_mode && !abstract && ::chmod(name.c_str(), static_cast<mode_t>(mode) & 07777) != 0)
            ec = std::error_code(errno, std::system_category());
        if (!ec) ec = start_listening();
        if (ec) {
            close_acceptor();
            remove_file();
        }
        return ec;
    }
    /// Throwing overload: what() names the path ("listen on /run/app/ws.sock: Address already in use").
    void listen_or_throw(std::string_view path, int mode = umask_mode) {
        if (const std::error_code ec = listen(path, mode)) throw error(ec, "listen on " + std::string(path));
    }

    /// The path listened on ("@name" in the abstract namespace), or empty.
    std::string path() const {
        std::error_code ec;
        std::string p = local_endpoint(ec).path();
        if (!p.empty() && p[0] == '\0') p[0] = '@';
        return p;
    }

    /// basic_server::stop(), and the socket file goes.
    void stop(std::uint16_t code = close_code::going_away, std::string_view reason = "server shutting down") {
        basic_server::stop(code, reason);
        remove_file();
    }
    ~unix_server() { remove_file(); }

private:
    // Only the file this server made: another server may have replaced it since.
    void remove_file() noexcept {
        if (file_.empty()) return;
        struct stat st {};
        if (::stat(file_.c_str(), &st) == 0 && st.st_dev == file_id_.dev && st.st_ino == file_id_.ino) ::unlink(file_.c_str());
        file_.clear();
    }

    std::string file_;
    struct {
        dev_t dev = 0;
        ino_t ino = 0;
    } file_id_;
};

} // namespace duplex

namespace duplex {
DUPLEX_INSTANTIATE(class basic_connection<role::server, unix_transport>)
DUPLEX_INSTANTIATE(class hub<basic_connection<role::server, unix_transport>>)
DUPLEX_INSTANTIATE(class basic_server<unix_transport>)
} // namespace duplex
#endif
