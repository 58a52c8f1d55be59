// DUPLEX_INSTANTIATE(class X<...>): how each header names the class template
// specializations it owns, for separate compilation (see separate_compilation.hpp).
//   header-only (the default)        nothing: each file instantiates what it uses;
//   DUPLEX_SEPARATE_COMPILATION      `extern template class X<...>;`: compiled elsewhere;
//   ... and DUPLEX_SOURCE (src.hpp)  `template class X<...>;`: compiled here, once.
// Each header declares its own, so a file that uses only the server parses no client or
// TLS code for it.
#pragma once

#ifndef DUPLEX_INSTANTIATE
#if defined(DUPLEX_SEPARATE_COMPILATION) && defined(DUPLEX_SOURCE)
#define DUPLEX_INSTANTIATE(...) template __VA_ARGS__;
#elif defined(DUPLEX_SEPARATE_COMPILATION)
#define DUPLEX_INSTANTIATE(...) extern template __VA_ARGS__;
#else
#define DUPLEX_INSTANTIATE(...)
#endif
#endif
