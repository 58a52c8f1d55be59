// The compiled part of duplex in separate-compilation mode: include this header in
// exactly one .cpp file of the program, compiled with DUPLEX_SEPARATE_COMPILATION
// defined (as every other file of the program must be; see separate_compilation.hpp).
//
//   // duplex_src.cpp
//   #include <duplex/src.hpp>
#pragma once

#ifndef DUPLEX_SEPARATE_COMPILATION
#error "duplex/src.hpp: define DUPLEX_SEPARATE_COMPILATION for every file of the program (see duplex/separate_compilation.hpp)"
#endif
#ifdef DUPLEX_INSTANTIATE
#error "duplex/src.hpp must come before any other duplex header in its file"
#endif

// Every header's DUPLEX_INSTANTIATE list becomes explicit instantiation definitions.
#define DUPLEX_SOURCE 1
#include "duplex.hpp"
#include "unix_server.hpp"
#if DUPLEX_HAS_TLS
#include "transport/tls.hpp"
#endif

#ifdef ASIO_SEPARATE_COMPILATION
#include <asio/impl/src.hpp>
#if DUPLEX_HAS_TLS
#include <asio/ssl/impl/src.hpp>
#endif
#endif
