// Unix domain stream sockets: the transport of a server behind a local reverse
// proxy (nginx `proxy_pass http://unix:/run/app.sock`, HAProxy `unix@`) or of
// local IPC, where no TCP port should be open. The same code as tcp_transport
// (transport/tcp.hpp), on asio::local::stream_protocol.
#pragma once
#include <asio/local/stream_protocol.hpp>

#include "tcp.hpp"

namespace duplex {

#if defined(ASIO_HAS_LOCAL_SOCKETS)
/// A connected Unix domain stream socket. remote_address() is "unix:" and the
/// peer's path (usually none: clients seldom bind one).
using unix_transport = basic_socket_transport<asio::local::stream_protocol>;

static_assert(is_transport_v<unix_transport>, "unix_transport must meet the transport contract");
#endif

} // namespace duplex
