// Masking (RFC 6455 §5.3) and the ChaCha20 mask generator (RFC 8439 §2.3).
#include <catch2/catch.hpp>

#include <duplex/core/mask.hpp>
#include <duplex/core/random.hpp>

#include <bitset>
#include <cstdint>
#include <set>
#include <vector>

using duplex::apply_mask;
using duplex::copy_masked;
using duplex::mask_key;

namespace {

void reference_mask(std::uint8_t* data, std::size_t size, const mask_key& key, std::size_t offset) {
    for (std::size_t i = 0; i < size; ++i) data[i] = static_cast<std::uint8_t>(data[i] ^ key[(offset + i) % 4]);
}

} // namespace

TEST_CASE("mask: apply_mask matches a byte-by-byte reference", "[rfc6455][5.3][mask]") {
    const mask_key key = {0x37, 0xfa, 0x21, 0x3d};
    std::vector<std::uint8_t> src(300 + 8 + 8);
    for (std::size_t i = 0; i < src.size(); ++i) src[i] = static_cast<std::uint8_t>(i * 131 + 7);
    const std::size_t offsets[] = {0, 1, 2, 3, 4, 5, 7, 1001};
    std::size_t compared = 0;
    for (std::size_t len = 0; len <= 300; ++len) {
        for (std::size_t align = 0; align < 8; ++align) {
            for (std::size_t offset : offsets) {
                // Guard bytes on both sides catch writes outside [data, data+len).
                std::vector<std::uint8_t> got = src, want = src;
                apply_mask(got.data() + align, len, key, offset);
                reference_mask(want.data() + align, len, key, offset);
                if (got != want) {
                    INFO("len=" << len << " align=" << align << " offset=" << offset);
                    REQUIRE(got == want);
                }
                ++compared;
            }
        }
    }
    CHECK(compared == 301 * 8 * 8); // every case ran and matched
}

TEST_CASE("mask: each loop (AVX2, SSE2, words, bytes) matches the reference", "[rfc6455][5.3][mask]") {
    // detail::xor_key uses AVX2 where the CPU has it (test_utf8.cpp checks
    // that it is detected); wide=false reaches the baseline loops there.
    // Lengths cross every loop's boundary.
    const mask_key key = {0x9c, 0x04, 0x71, 0xe2};
    std::vector<std::uint8_t> src(1100 + 16);
    for (std::size_t i = 0; i < src.size(); ++i) src[i] = static_cast<std::uint8_t>(i * 197 + 3);
    std::size_t compared = 0;
    for (const bool wide : {false, true}) {
        for (std::size_t len = 0; len <= 1100; len += (len < 300 ? 1 : 37)) {
            for (std::size_t align : {0, 1, 5}) {
                for (std::size_t offset : {0, 3}) {
                    std::vector<std::uint8_t> got = src, want = src, out(src.size(), 0), out_want(src.size(), 0);
                    duplex::detail::xor_key(got.data() + align, got.data() + align, len, key, offset, wide);
                    reference_mask(want.data() + align, len, key, offset);
                    // Out of place as well (copy_masked's use).
                    duplex::detail::xor_key(out.data() + 3, src.data() + align, len, key, offset, wide);
                    std::copy(src.begin() + std::ptrdiff_t(align), src.begin() + std::ptrdiff_t(align + len),
                              out_want.begin() + 3);
                    reference_mask(out_want.data() + 3, len, key, offset);
                    if (got != want || out != out_want) {
                        INFO("wide=" << wide << " len=" << len << " align=" << align << " offset=" << offset);
                        REQUIRE(got == want);
                        REQUIRE(out == out_want);
                    }
                    ++compared;
                }
            }
        }
    }
    CHECK(compared == 2 * 322 * 3 * 2); // every case ran
}

TEST_CASE("mask: copy_masked matches a byte-by-byte reference", "[rfc6455][5.3][mask]") {
    const mask_key key = {0x01, 0x80, 0xfe, 0x5a};
    std::vector<std::uint8_t> src(320);
    for (std::size_t i = 0; i < src.size(); ++i) src[i] = static_cast<std::uint8_t>(i * 7 + 3);
    std::size_t compared = 0;
    for (std::size_t len = 0; len <= 300; ++len) {
        for (std::size_t align = 0; align < 8; ++align) {
            std::vector<std::uint8_t> dst(320, 0xcc), want(320, 0xcc);
            copy_masked(dst.data() + align, src.data() + (7 - align), len, key);
            std::copy(src.begin() + (7 - align), src.begin() + (7 - align) + len, want.begin() + align);
            reference_mask(want.data() + align, len, key, 0);
            if (dst != want) {
                INFO("len=" << len << " align=" << align);
                REQUIRE(dst == want);
            }
            ++compared;
        }
    }
    CHECK(compared == 301 * 8);
}

TEST_CASE("mask: unmasking in pieces keeps the key phase", "[rfc6455][5.3][mask]") {
    const mask_key key = {0xde, 0xad, 0xbe, 0xef};
    std::vector<std::uint8_t> plain(97);
    for (std::size_t i = 0; i < plain.size(); ++i) plain[i] = static_cast<std::uint8_t>(i);
    std::vector<std::uint8_t> wire = plain;
    apply_mask(wire.data(), wire.size(), key);
    for (std::size_t a = 0; a <= wire.size(); ++a) {
        for (std::size_t b = a; b <= wire.size(); b += 5) {
            std::vector<std::uint8_t> w = wire;
            apply_mask(w.data(), a, key, 0);
            apply_mask(w.data() + a, b - a, key, a);
            apply_mask(w.data() + b, w.size() - b, key, b);
            REQUIRE(w == plain);
        }
    }
}

TEST_CASE("mask: RFC 6455 §5.7 masked \"Hello\"", "[rfc6455][5.7][mask]") {
    std::uint8_t payload[] = {0x7f, 0x9f, 0x4d, 0x51, 0x58};
    apply_mask(payload, 5, mask_key{0x37, 0xfa, 0x21, 0x3d});
    CHECK(std::string(payload, payload + 5) == "Hello");
}

TEST_CASE("random: ChaCha20 quarter round, RFC 8439 §2.1.1", "[rfc8439][2.1.1][random]") {
    std::uint32_t a = 0x11111111, b = 0x01020304, c = 0x9b8d6f43, d = 0x01234567;
    duplex::detail::chacha20_quarter_round(a, b, c, d);
    CHECK(a == 0xea2a92f4);
    CHECK(b == 0xcb1cf8ce);
    CHECK(c == 0x4581472e);
    CHECK(d == 0x5881c4bb);
}

TEST_CASE("random: ChaCha20 block function, RFC 8439 §2.3.2", "[rfc8439][2.3.2][random]") {
    std::uint8_t key[32];
    for (int i = 0; i < 32; ++i) key[i] = static_cast<std::uint8_t>(i);
    const std::uint8_t nonce[12] = {0, 0, 0, 0x09, 0, 0, 0, 0x4a, 0, 0, 0, 0};
    std::uint32_t state[16];
    duplex::detail::chacha20_init(state, key, 1, nonce);
    std::uint8_t out[64];
    duplex::detail::chacha20_block(state, out);
    const std::uint8_t expected[64] = {
        0x10, 0xf1, 0xe7, 0xe4, 0xd1, 0x3b, 0x59, 0x15, 0x50, 0x0f, 0xdd, 0x1f, 0xa3, 0x20, 0x71, 0xc4,
        0xc7, 0xd1, 0xf4, 0xc7, 0x33, 0xc0, 0x68, 0x03, 0x04, 0x22, 0xaa, 0x9a, 0xc3, 0xd4, 0x6c, 0x4e,
        0xd2, 0x82, 0x64, 0x46, 0x07, 0x9f, 0xaa, 0x09, 0x14, 0xc2, 0xd7, 0x05, 0xd9, 0x8b, 0x02, 0xa2,
        0xb5, 0x12, 0x9c, 0xd1, 0xde, 0x16, 0x4e, 0xb9, 0xcb, 0xd0, 0x83, 0xe8, 0xa2, 0x50, 0x3c, 0x4e,
    };
    CHECK(std::vector<std::uint8_t>(out, out + 64) == std::vector<std::uint8_t>(expected, expected + 64));
}

TEST_CASE("random: mask_generator keys vary and look random", "[rfc6455][5.3][random]") {
    duplex::mask_generator gen;
    std::set<std::uint32_t> seen;
    std::size_t ones = 0;
    for (int i = 0; i < 1000; ++i) {
        const mask_key k = gen.next();
        const std::uint32_t v = std::uint32_t(k[0]) | std::uint32_t(k[1]) << 8 | std::uint32_t(k[2]) << 16 |
                                std::uint32_t(k[3]) << 24;
        seen.insert(v);
        ones += std::bitset<32>(v).count();
    }
    // 1000 random 32-bit values collide with probability ~1e-4; allow a couple.
    CHECK(seen.size() >= 998);
    // 32000 fair bits: mean 16000, sigma ~89. 6 sigma bounds.
    CHECK(ones > 16000 - 540);
    CHECK(ones < 16000 + 540);

    duplex::mask_generator other;
    std::vector<std::uint8_t> a(64), b(64);
    gen.fill(a.data(), a.size());
    other.fill(b.data(), b.size());
    CHECK(a != b); // independently seeded
}

TEST_CASE("random: mask_generator fill is the keystream and next() continues it", "[random]") {
    std::array<std::uint8_t, 32> seed{};
    seed[0] = 42;
    duplex::mask_generator g1(seed), g2(seed);
    std::vector<std::uint8_t> a(200), b(200);
    g1.fill(a.data(), 3);
    g1.fill(a.data() + 3, 61);
    g1.fill(a.data() + 64, 136);
    g2.fill(b.data(), 200);
    CHECK(a == b);

    duplex::mask_generator g3(seed);
    for (std::size_t i = 0; i < 200; i += 4) {
        const mask_key k = g3.next();
        CHECK(std::equal(k.begin(), k.end(), b.begin() + static_cast<std::ptrdiff_t>(i)));
    }
    // The stream is not stuck: consecutive blocks differ.
    CHECK(!std::equal(b.begin(), b.begin() + 64, b.begin() + 64));
}
