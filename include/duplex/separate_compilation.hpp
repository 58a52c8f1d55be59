// Separate compilation: with DUPLEX_SEPARATE_COMPILATION defined in every
// translation unit, the heavy class templates below are compiled once, in the one
// .cpp that includes <duplex/src.hpp>, instead of in every file that uses them.
// Other files then only parse the headers (and call the members out of line).
//
//   // every TU (e.g. CMake: target_compile_definitions(app PRIVATE DUPLEX_SEPARATE_COMPILATION)):
//   #include <duplex/duplex.hpp>
//   // exactly one TU of the program, e.g. duplex_src.cpp:
//   #include <duplex/src.hpp>
//
// Optionally also define ASIO_SEPARATE_COMPILATION in every TU: src.hpp then compiles
// Asio's own non-template code as well (asio/impl/src.hpp, and asio/ssl/impl/src.hpp
// with DUPLEX_HAS_TLS). Both macros must have the same value in all TUs of a program.
//
// Without DUPLEX_SEPARATE_COMPILATION this header declares nothing.
#pragma once

#ifdef DUPLEX_SEPARATE_COMPILATION
#define DUPLEX_SEPARATE_COMPILATION_HPP_SEEN 1
#include "client.hpp"
#include "connection/connection.hpp"
#include "connection/protocol.hpp"
#include "core/frame.hpp"
#include "hub.hpp"
#include "server.hpp"
#if DUPLEX_HAS_TLS
#include "transport/tls.hpp"
#endif

// DUPLEX_EXTERN_TEMPLATE is `extern` here and empty in src.hpp, so the list below is
// the one list of what src.hpp instantiates.
#ifndef DUPLEX_EXTERN_TEMPLATE
#define DUPLEX_EXTERN_TEMPLATE extern
#endif

namespace duplex {
DUPLEX_EXTERN_TEMPLATE template class basic_frame_parser<role::server>;
DUPLEX_EXTERN_TEMPLATE template class basic_frame_parser<role::client>;
DUPLEX_EXTERN_TEMPLATE template class basic_frame_writer<role::server>;
DUPLEX_EXTERN_TEMPLATE template class basic_frame_writer<role::client>;
DUPLEX_EXTERN_TEMPLATE template class basic_protocol<role::server>;
DUPLEX_EXTERN_TEMPLATE template class basic_protocol<role::client>;

DUPLEX_EXTERN_TEMPLATE template class basic_connection<role::server, tcp_transport>;
DUPLEX_EXTERN_TEMPLATE template class hub<basic_connection<role::server, tcp_transport>>;
DUPLEX_EXTERN_TEMPLATE template class basic_server<tcp_transport>;
DUPLEX_EXTERN_TEMPLATE template class basic_connection<role::client, client::transport_type>;

#if DUPLEX_HAS_TLS
DUPLEX_EXTERN_TEMPLATE template class basic_connection<role::server, tls_transport>;
DUPLEX_EXTERN_TEMPLATE template class hub<basic_connection<role::server, tls_transport>>;
DUPLEX_EXTERN_TEMPLATE template class basic_server<tls_transport>;
#endif
} // namespace duplex

#endif // DUPLEX_SEPARATE_COMPILATION
