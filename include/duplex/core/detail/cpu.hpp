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
#define DUPLEX_HAS_AVX2_PATH 1
// Compiles one function for AVX2 (in addition to the translation unit's own flags).
#define DUPLEX_TARGET_AVX2 __attribute__((target("avx2")))
// For helpers that take or return vectors: always inlined into their AVX2
// caller, so no out-of-line copy exists whose calling convention would depend
// on the flags of the translation unit that emitted it.
#define DUPLEX_TARGET_AVX2_INLINE __attribute__((target("avx2"), always_inline)) inline
#include <cstring>
#endif

namespace duplex {
namespace detail {

#ifdef DUPLEX_HAS_AVX2_PATH
// 32-byte vectors as GCC/Clang vector extensions rather than <immintrin.h>'s
// __m256i: that header is 47,000 lines, which every translation unit that
// includes duplex would parse (+0.3 s per file at -O0, measured); operators on
// these types compile to the same AVX2 instructions inside DUPLEX_TARGET_AVX2
// functions.
typedef unsigned char u8x32 __attribute__((vector_size(32)));
typedef char i8x32 __attribute__((vector_size(32))); // the element type vpshufb's builtin takes
typedef unsigned long long u64x4 __attribute__((vector_size(32)));
// __builtin_memcpy rather than std::memcpy below: GCC expands only the builtin
// inline at -O0, so Debug builds do not make a libc call per vector.

DUPLEX_TARGET_AVX2_INLINE u8x32 load32(const void* p) noexcept {
    u8x32 v;
    __builtin_memcpy(&v, p, sizeof v); // vmovdqu: any alignment
    return v;
}
DUPLEX_TARGET_AVX2_INLINE void store32(void* p, u8x32 v) noexcept { __builtin_memcpy(p, &v, sizeof v); }
// Whether any byte of v has its high bit set (for text: any byte >= 0x80; for
// masks of 0 / 0xFF: any set): vpmovmskb, a builtin GCC and Clang share.
DUPLEX_TARGET_AVX2_INLINE bool any_high_bit(u8x32 v) noexcept {
    i8x32 s;
    __builtin_memcpy(&s, &v, sizeof s);
    return __builtin_ia32_pmovmskb256(s) != 0;
}
// Whether any bit of v is set.
DUPLEX_TARGET_AVX2_INLINE bool any_bit(u8x32 v) noexcept {
    u64x4 w;
    __builtin_memcpy(&w, &v, sizeof w);
    return (w[0] | w[1] | w[2] | w[3]) != 0;
}
#endif

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
