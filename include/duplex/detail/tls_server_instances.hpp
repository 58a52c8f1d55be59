// The TLS server's specializations need both server.hpp and transport/tls.hpp: the
// second of the two to be included names them (see detail/instantiate.hpp).
// No include guard: it is read twice, and does its work once.
#if defined(DUPLEX_SERVER_HPP_READ) && defined(DUPLEX_TLS_HPP_READ) && !defined(DUPLEX_TLS_SERVER_INSTANCES_READ)
#define DUPLEX_TLS_SERVER_INSTANCES_READ 1
namespace duplex {
DUPLEX_INSTANTIATE(class basic_connection<role::server, tls_transport>)
DUPLEX_INSTANTIATE(class hub<basic_connection<role::server, tls_transport>>)
DUPLEX_INSTANTIATE(class basic_server<tls_transport>)
} // namespace duplex
#endif
