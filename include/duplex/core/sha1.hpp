// SHA-1 (RFC 3174 / FIPS 180-4), used only to derive Sec-WebSocket-Accept
// (RFC 6455 §4.2.2). SHA-1 is broken for collision resistance, which does not
// matter here: the accept key only proves the server read the handshake.
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>

namespace duplex {

/// Incremental SHA-1: feed bytes with update() as they come, then finish() once.
/// After finish() the hasher is reset and can be reused for a new message.
class sha1_hasher {
public:
    static constexpr std::size_t digest_size = 20;
    static constexpr std::size_t block_size = 64;
    using digest_type = std::array<std::uint8_t, digest_size>;

    sha1_hasher() noexcept { reset(); }

    /// Starts a new message (discards anything fed so far).
    void reset() noexcept {
        // Initial hash value H0..H4 (RFC 3174 §6.1).
        h_[0] = 0x67452301u;
        h_[1] = 0xEFCDAB89u;
        h_[2] = 0x98BADCFEu;
        h_[3] = 0x10325476u;
        h_[4] = 0xC3D2E1F0u;
        total_bytes_ = 0;
        buffered_ = 0;
    }

    /// Appends `size` bytes at `data` to the message.
    void update(const void* data, std::size_t size) noexcept {
        const auto* p = static_cast<const std::uint8_t*>(data);
        total_bytes_ += size;
        // Top up a partly filled block first.
        if (buffered_ != 0) {
            while (size != 0 && buffered_ < block_size) {
                block_[buffered_++] = *p++;
                --size;
            }
            if (buffered_ < block_size) return;
            process_block(block_.data());
            buffered_ = 0;
        }
        // Whole blocks straight from the input, no copy.
        while (size >= block_size) {
            process_block(p);
            p += block_size;
            size -= block_size;
        }
        while (size != 0) {
            block_[buffered_++] = *p++;
            --size;
        }
    }

    /// Pads the message (RFC 3174 §4), returns its digest and resets the hasher.
    digest_type finish() noexcept {
        const std::uint64_t bit_length = total_bytes_ * 8u;
        // A single 1 bit, zeros up to 56 mod 64, then the 64-bit big-endian length.
        block_[buffered_++] = 0x80;
        if (buffered_ > block_size - 8) {
            while (buffered_ < block_size) block_[buffered_++] = 0;
            process_block(block_.data());
            buffered_ = 0;
        }
        while (buffered_ < block_size - 8) block_[buffered_++] = 0;
        for (int i = 7; i >= 0; --i)
            block_[buffered_++] = static_cast<std::uint8_t>(bit_length >> (8 * i));
        process_block(block_.data());

        digest_type out{};
        for (std::size_t i = 0; i < 5; ++i) {
            out[4 * i + 0] = static_cast<std::uint8_t>(h_[i] >> 24);
            out[4 * i + 1] = static_cast<std::uint8_t>(h_[i] >> 16);
            out[4 * i + 2] = static_cast<std::uint8_t>(h_[i] >> 8);
            out[4 * i + 3] = static_cast<std::uint8_t>(h_[i]);
        }
        reset();
        return out;
    }

private:
    static std::uint32_t rotl(std::uint32_t x, int n) noexcept {
        return (x << n) | (x >> (32 - n));
    }

    // One 512-bit block (RFC 3174 §6.1, method 1).
    void process_block(const std::uint8_t* block) noexcept {
        std::uint32_t w[80];
        for (std::size_t t = 0; t < 16; ++t) {
            w[t] = (std::uint32_t{block[4 * t]} << 24) | (std::uint32_t{block[4 * t + 1]} << 16) |
                   (std::uint32_t{block[4 * t + 2]} << 8) | std::uint32_t{block[4 * t + 3]};
        }
        for (std::size_t t = 16; t < 80; ++t)
            w[t] = rotl(w[t - 3] ^ w[t - 8] ^ w[t - 14] ^ w[t - 16], 1);

        std::uint32_t a = h_[0], b = h_[1], c = h_[2], d = h_[3], e = h_[4];
        for (std::size_t t = 0; t < 80; ++t) {
            std::uint32_t f, k;
            if (t < 20) {
                f = (b & c) | (~b & d);
                k = 0x5A827999u;
            } else if (t < 40) {
                f = b ^ c ^ d;
                k = 0x6ED9EBA1u;
            } else if (t < 60) {
                f = (b & c) | (b & d) | (c & d);
                k = 0x8F1BBCDCu;
            } else {
                f = b ^ c ^ d;
                k = 0xCA62C1D6u;
            }
            const std::uint32_t temp = rotl(a, 5) + f + e + w[t] + k;
            e = d;
            d = c;
            c = rotl(b, 30);
            b = a;
            a = temp;
        }
        h_[0] += a;
        h_[1] += b;
        h_[2] += c;
        h_[3] += d;
        h_[4] += e;
    }

    std::uint32_t h_[5];
    std::array<std::uint8_t, block_size> block_{};
    std::uint64_t total_bytes_ = 0;
    std::size_t buffered_ = 0;
};

/// SHA-1 digest of `size` bytes at `data`.
inline std::array<std::uint8_t, 20> sha1(const void* data, std::size_t size) noexcept {
    sha1_hasher h;
    h.update(data, size);
    return h.finish();
}

} // namespace duplex
