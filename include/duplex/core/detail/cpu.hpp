// Runtime CPU feature checks for the wide (AVX2) paths of masking and UTF-8
// validation. The library is built for the compiler's baseline (x86-64 means
// SSE2); AVX2 code is compiled per function with a target attribute and
// chosen at run time, so one binary runs everywhere and uses what it finds.
// Define DUPLEX_NO_RUNTIME_DISPATCH to keep to the baseline.
#pragma once

#if !defined(DUPLEX_NO_RUNTIME_DISPATCH) && (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__)
#include <immintrin.h>
#define DUPLEX_HAS_AVX2_PATH 1
// GCC and Clang compile a function for AVX2 with this attribute, whatever -m
// flags the user's translation unit has.
#define DUPLEX_TARGET_AVX2 __attribute__((target("avx2")))
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
