// Separate compilation: with DUPLEX_SEPARATE_COMPILATION defined in every
// translation unit, duplex's class templates (frame parser and writer, protocol,
// connection, server, hub) are compiled once, in the one .cpp that includes
// <duplex/src.hpp>, instead of in every file that uses them. Other files parse the
// headers and call the members out of line.
//
//   // every TU (e.g. CMake: target_compile_definitions(app PRIVATE DUPLEX_SEPARATE_COMPILATION)):
//   #include <duplex/server.hpp>     // or any duplex header
//   // exactly one TU of the program, e.g. duplex_src.cpp:
//   #include <duplex/src.hpp>
//
// Each header declares the specializations it owns (DUPLEX_INSTANTIATE, in
// detail/instantiate.hpp), so nothing more is needed; including this header is
// harmless and kept for older code.
//
// Optionally also define ASIO_SEPARATE_COMPILATION in every TU: src.hpp then compiles
// Asio's own non-template code as well (asio/impl/src.hpp, and asio/ssl/impl/src.hpp
// with DUPLEX_HAS_TLS). Both macros must have the same value in all TUs of a program.
#pragma once
#include "detail/instantiate.hpp"
