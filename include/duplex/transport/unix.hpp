// Unix domain stream sockets: the transport of a server behind a local reverse
// proxy (nginx `proxy_pass http://unix:/run/app.sock`, HAProxy `unix@`) or of
// local IPC, where no TCP port should be open. The same code as tcp_transport
// (transport/tcp.hpp), on asio::local::stream_protocol.
#pragma once
#include <asio/local/stream_protocol.hpp>

#include <cerrno>
#include <system_error>

#include <sys/socket.h>
#include <sys/types.h>

#include "tcp.hpp"

namespace duplex {

#if defined(ASIO_HAS_LOCAL_SOCKETS)
/// A connected Unix domain stream socket. remote_address() is "unix:" and the
/// peer's path (usually none: clients seldom bind one).
using unix_transport = basic_socket_transport<asio::local::stream_protocol>;

static_assert(is_transport_v<unix_transport>, "unix_transport must meet the transport contract");

#if defined(SO_PEERCRED)
/// The process at the other end of a Unix socket, as the kernel recorded it when the
/// socket connected (Linux's SO_PEERCRED): who the peer is, which no header can forge.
struct peer_credentials {
    pid_t pid = 0;
    uid_t uid = 0;
    gid_t gid = 0;
};

/// The peer's credentials; `ec` set (and zeros returned) if the system cannot tell.
/// On a server: `peer_credentials_of(conn.transport(), ec)`, e.g. in on_open, to close
/// (1008) a connection from a user that may not talk to this service.
inline peer_credentials peer_credentials_of(unix_transport& t, std::error_code& ec) {
    ucred cred{};
    socklen_t len = sizeof cred;
    if (::getsockopt(t.native_handle(), SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
        ec = std::error_code(errno, std::system_category());
        return {};
    }
    ec = {};
    return {cred.pid, cred.uid, cred.gid};
}
#endif
#endif

} // namespace duplex
