// Runtime CPU feature checks for the wide (AVX2) paths of masking and UTF-8
// validation. The library is built for the compiler's baseline (x86-64 means
// SSE2); AVX2 code is compiled per function with a target attribute and
// chosen at run time, so one binary runs on any x86-64 CPU and uses AVX2
// where it finds it. As with any inline code, every translation unit of a
// program should be built with the same -m/-march flags (the linker keeps one
// copy of each inline function), and DUPLEX_NO_RUNTIME_DISPATCH, which keeps
// to the baseline, must be defined for all of them or for none.
#pragma once

// GCC and Clang on x86-64 ELF/Mach-O targets. Not clang-cl (its
// __builtin_cpu_supports needs a runtime library MSVC links do not have) and
// not MinGW's GCC (it does not align the stack to 32 bytes for AVX spills).
#if !defined(DUPLEX_NO_RUNTIME_DISPATCH) && defined(__GNUC__) && defined(__x86_64__) && !defined(_MSC_VER) && \
    !(defined(__MINGW32__) && !defined(__clang__))
#include <immintrin.h>
#define DUPLEX_HAS_AVX2_PATH 1
// Compiles one function for AVX2 (in addition to the translation unit's own flags).
#define DUPLEX_TARGET_AVX2 __attribute__((target("avx2")))
// For helpers that take or return __m256i: always inlined into their AVX2
// caller, so no out-of-line copy exists whose calling convention would depend
// on the flags of the translation unit that emitted it.
#define DUPLEX_TARGET_AVX2_INLINE __attribute__((target("avx2"), always_inline)) inline
#endif

namespace duplex {
namespace detail {

/// True when this CPU and OS run AVX2 code (the compiler's check includes
/// the OS saving YMM registers, XCR0). Computed once.
inline bool cpu_has_avx2() noexcept {
#ifdef DUPLEX_HAS_AVX2_PATH
    static const bool has = [] {
        __builtin_cpu_init(); // safe if called before libgcc's own constructor ran
        return __builtin_cpu_supports("avx2") != 0;
    }();
    return has;
#else
    return false;
#endif
}

} // namespace detail
} // namespace duplex
