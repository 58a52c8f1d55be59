// Masking keys from a ChaCha20 keystream (RFC 8439 §2.3), seeded once from the OS.
// RFC 6455 §5.3 wants masking keys that are unpredictable to the application
// on the wire; a CSPRNG keeps each key cheap (4 bytes of a buffered block).
#pragma once
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <system_error>

// The key comes from the OS's entropy call where there is one: <random> (for
// std::random_device) adds about 0.13 s to every translation unit at -O0.
#if defined(__linux__)
#include <features.h> // __GLIBC__: getentropy since glibc 2.25
#endif
#if (defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 25))) || defined(__APPLE__) || \
    defined(__FreeBSD__) || defined(__OpenBSD__)
#include <cerrno>
#include <unistd.h>
#if defined(__APPLE__) || defined(__FreeBSD__)
#include <sys/random.h>
#endif
#define DUPLEX_HAS_GETENTROPY 1
#else
#define DUPLEX_HAS_GETENTROPY 0
#include <random>
#endif

#include "duplex/core/detail/endian.hpp"
#include "duplex/core/mask.hpp"

namespace duplex {
namespace detail {

inline std::uint32_t rotl32(std::uint32_t v, int n) noexcept {
    return (v << n) | (v >> (32 - n));
}

// RFC 8439 §2.1 quarter round.
inline void chacha20_quarter_round(std::uint32_t& a, std::uint32_t& b, std::uint32_t& c,
                                   std::uint32_t& d) noexcept {
    a += b; d ^= a; d = rotl32(d, 16);
    c += d; b ^= c; b = rotl32(b, 12);
    a += b; d ^= a; d = rotl32(d, 8);
    c += d; b ^= c; b = rotl32(b, 7);
}

/// The ChaCha20 block function (RFC 8439 §2.3): 20 rounds over `state`
/// (constants, key, counter, nonce as 16 little-endian words), serialized into
/// 64 bytes. Exposed for the §2.3.2 test vector.
inline void chacha20_block(const std::uint32_t state[16], std::uint8_t out[64]) noexcept {
    std::uint32_t x[16];
    std::memcpy(x, state, sizeof x);
    for (int i = 0; i < 10; ++i) { // 10 double rounds: columns then diagonals
        chacha20_quarter_round(x[0], x[4], x[8], x[12]);
        chacha20_quarter_round(x[1], x[5], x[9], x[13]);
        chacha20_quarter_round(x[2], x[6], x[10], x[14]);
        chacha20_quarter_round(x[3], x[7], x[11], x[15]);
        chacha20_quarter_round(x[0], x[5], x[10], x[15]);
        chacha20_quarter_round(x[1], x[6], x[11], x[12]);
        chacha20_quarter_round(x[2], x[7], x[8], x[13]);
        chacha20_quarter_round(x[3], x[4], x[9], x[14]);
    }
    for (int i = 0; i < 16; ++i) store_le32(out + 4 * i, x[i] + state[i]);
}

/// Builds the initial state from a 32-byte key, a block counter and a 12-byte
/// nonce, all as the RFC writes them (§2.3).
inline void chacha20_init(std::uint32_t state[16], const std::uint8_t key[32], std::uint32_t counter,
                          const std::uint8_t nonce[12]) noexcept {
    state[0] = 0x61707865; // "expand 32-byte k"
    state[1] = 0x3320646e;
    state[2] = 0x79622d32;
    state[3] = 0x6b206574;
    for (int i = 0; i < 8; ++i) state[4 + i] = load_le32(key + 4 * i);
    state[12] = counter;
    for (int i = 0; i < 3; ++i) state[13 + i] = load_le32(nonce + 4 * i);
}

} // namespace detail

/// CSPRNG for masking keys (and handshake nonces): the ChaCha20 keystream under
/// a 256-bit key from the OS (getentropy, or std::random_device elsewhere). Not
/// thread-safe: use one per connection or per thread.
class mask_generator {
public:
    /// Seeds the key from the OS (getentropy; std::random_device where there is
    /// none). Throws std::system_error if no entropy source is available.
    mask_generator() {
        std::uint8_t key[32];
#if DUPLEX_HAS_GETENTROPY
        if (::getentropy(key, sizeof key) != 0)
            throw std::system_error(errno, std::system_category(), "duplex: no entropy for masking keys");
#else
        std::random_device rd;
        for (std::size_t i = 0; i < 32; i += 4) detail::store_le32(key + i, rd());
#endif
        std::uint8_t nonce[12] = {};
        // Belt and braces for platforms whose entropy source is weak: the clock
        // goes into the nonce (the key alone carries the entropy claim).
        const auto t = static_cast<std::uint64_t>(
            std::chrono::high_resolution_clock::now().time_since_epoch().count());
        detail::store_le32(nonce + 4, static_cast<std::uint32_t>(t));
        detail::store_le32(nonce + 8, static_cast<std::uint32_t>(t >> 32));
        detail::chacha20_init(state_, key, 0, nonce);
        std::memset(key, 0, sizeof key);
    }

    /// Deterministic generator from a fixed key (tests and benchmarks only).
    explicit mask_generator(const std::array<std::uint8_t, 32>& seed) noexcept {
        const std::uint8_t nonce[12] = {};
        detail::chacha20_init(state_, seed.data(), 0, nonce);
    }

    /// A fresh masking key (RFC 6455 §5.3).
    mask_key next() noexcept {
        if (pos_ + 4 > block_.size()) refill();
        mask_key k;
        std::memcpy(k.data(), block_.data() + pos_, 4);
        pos_ += 4;
        return k;
    }

    /// Fills out[0..n) with keystream bytes.
    void fill(std::uint8_t* out, std::size_t n) noexcept {
        while (n > 0) {
            if (pos_ == block_.size()) refill();
            const std::size_t take = n < block_.size() - pos_ ? n : block_.size() - pos_;
            std::memcpy(out, block_.data() + pos_, take);
            pos_ += take;
            out += take;
            n -= take;
        }
    }

private:
    void refill() noexcept {
        detail::chacha20_block(state_, block_.data());
        // Words 12-13 form a 64-bit block counter, so the stream never repeats in practice.
        if (++state_[12] == 0) ++state_[13];
        pos_ = 0;
    }

    std::uint32_t state_[16];
    std::array<std::uint8_t, 64> block_{};
    std::size_t pos_ = 64; // empty: the first call generates a block
};

} // namespace duplex
