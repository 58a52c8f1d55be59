// SHA-1 (RFC 3174) and Base64 (RFC 4648): known answers, and SHA-1 against OpenSSL.
#include <catch2/catch.hpp>

#include <duplex/core/base64.hpp>
#include <duplex/core/sha1.hpp>

#include <openssl/sha.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

namespace {

std::string hex(const std::array<std::uint8_t, 20>& d) {
    static const char digits[] = "0123456789ABCDEF";
    std::string s;
    for (std::uint8_t b : d) {
        s += digits[b >> 4];
        s += digits[b & 15];
    }
    return s;
}

std::string sha1_hex(std::string_view s) { return hex(duplex::sha1(s.data(), s.size())); }

std::string decode(std::string_view in, bool* ok = nullptr) {
    std::string out;
    const bool r = duplex::base64_decode(in, out);
    if (ok) *ok = r;
    return out;
}

} // namespace

TEST_CASE("SHA-1 test vectors", "[rfc3174][7.3][sha1]") {
    // RFC 3174 §7.3 TEST1..TEST4 (TEST4 is repeated 10 times).
    CHECK(sha1_hex("abc") == "A9993E364706816ABA3E25717850C26C9CD0D89D");
    CHECK(sha1_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq") ==
          "84983E441C3BD26EBAAE4AA1F95129E5E54670F1");
    CHECK(sha1_hex(std::string(1000000, 'a')) == "34AA973CD4C4DAA4F61EEB2BDBAD27316534016F");
    std::string test4;
    for (int i = 0; i < 10; ++i) test4 += "0123456701234567012345670123456701234567012345670123456701234567";
    CHECK(sha1_hex(test4) == "DEA356A2CDDD90C7A7ECEDC5EBB563934F460452");
    CHECK(sha1_hex("") == "DA39A3EE5E6B4B0D3255BFEF95601890AFD80709");
}

TEST_CASE("SHA-1 million 'a' fed incrementally", "[rfc3174][7.3][sha1]") {
    duplex::sha1_hasher h;
    const std::string chunk(997, 'a'); // odd size: crosses block boundaries at every offset
    std::size_t left = 1000000;
    while (left > 0) {
        const std::size_t n = left < chunk.size() ? left : chunk.size();
        h.update(chunk.data(), n);
        left -= n;
    }
    CHECK(hex(h.finish()) == "34AA973CD4C4DAA4F61EEB2BDBAD27316534016F");
    // finish() resets: the hasher is reusable.
    h.update("abc", 3);
    CHECK(hex(h.finish()) == "A9993E364706816ABA3E25717850C26C9CD0D89D");
}

TEST_CASE("SHA-1 padding boundaries match OpenSSL", "[rfc3174][sha1]") {
    // Lengths around 55/56/64 exercise the one- versus two-block padding paths.
    for (std::size_t len : {0u, 1u, 55u, 56u, 57u, 63u, 64u, 65u, 119u, 120u, 127u, 128u, 129u}) {
        std::vector<std::uint8_t> data(len);
        for (std::size_t i = 0; i < len; ++i) data[i] = static_cast<std::uint8_t>(i * 31 + 7);
        std::array<std::uint8_t, 20> ref{};
        SHA1(data.data(), data.size(), ref.data());
        INFO("len " << len);
        CHECK(duplex::sha1(data.data(), data.size()) == ref);
    }
}

TEST_CASE("SHA-1 equals OpenSSL on 1000 random inputs, whole and in random pieces", "[rfc3174][sha1]") {
    std::mt19937 rng(12345);
    std::uniform_int_distribution<int> len_dist(0, 300);
    std::uniform_int_distribution<int> byte_dist(0, 255);
    for (int iter = 0; iter < 1000; ++iter) {
        std::vector<std::uint8_t> data(static_cast<std::size_t>(len_dist(rng)));
        for (auto& b : data) b = static_cast<std::uint8_t>(byte_dist(rng));
        std::array<std::uint8_t, 20> ref{};
        SHA1(data.data(), data.size(), ref.data());
        INFO("iteration " << iter << ", length " << data.size());
        REQUIRE(duplex::sha1(data.data(), data.size()) == ref);

        duplex::sha1_hasher h;
        std::size_t pos = 0;
        while (pos < data.size()) {
            std::uniform_int_distribution<std::size_t> piece(1, data.size() - pos);
            const std::size_t n = piece(rng);
            h.update(data.data() + pos, n);
            pos += n;
        }
        REQUIRE(h.finish() == ref);
    }
}

TEST_CASE("Base64 RFC 4648 test vectors", "[rfc4648][10][base64]") {
    const std::pair<const char*, const char*> vectors[] = {
        {"", ""},         {"f", "Zg=="},         {"fo", "Zm8="},         {"foo", "Zm9v"},
        {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="}, {"foobar", "Zm9vYmFy"},
    };
    for (const auto& v : vectors) {
        INFO(v.first);
        CHECK(duplex::base64_encode(std::string_view(v.first)) == v.second);
        bool ok = false;
        CHECK(decode(v.second, &ok) == v.first);
        CHECK(ok);
        // The no-allocation variant writes exactly base64_encoded_size characters.
        char buf[16];
        std::memset(buf, '#', sizeof buf);
        const std::size_t n = duplex::base64_encode(buf, v.first, std::strlen(v.first));
        CHECK(n == duplex::base64_encoded_size(std::strlen(v.first)));
        CHECK(std::string(buf, n) == v.second);
        CHECK(buf[n] == '#');
    }
}

TEST_CASE("Base64 round trips of all lengths and byte values", "[rfc4648][base64]") {
    std::mt19937 rng(99);
    for (std::size_t len = 0; len < 200; ++len) {
        std::string data(len, '\0');
        for (auto& c : data) c = static_cast<char>(rng() & 0xFF);
        const std::string enc = duplex::base64_encode(data);
        CHECK(enc.size() == duplex::base64_encoded_size(len));
        bool ok = false;
        CHECK(decode(enc, &ok) == data);
        CHECK(ok);
    }
    // Every byte value, in particular the '+' and '/' characters (62 and 63).
    std::string all;
    for (int i = 0; i < 256; ++i) all += static_cast<char>(i);
    const std::string enc = duplex::base64_encode(all);
    CHECK(enc.find('+') != std::string::npos);
    CHECK(enc.find('/') != std::string::npos);
    CHECK(decode(enc) == all);
}

TEST_CASE("Base64 decoder is strict", "[rfc4648][3.5][base64]") {
    const char* bad[] = {
        "Zg",       // missing padding
        "Zg=",      // short padding
        "Z===",     // three pad characters
        "=Zg=",     // padding first
        "Zg==Zg==", // padding in the middle
        "Zm9v\n",   // line break
        "Zm 9v",    // whitespace
        "Zm9*",     // outside the alphabet
        "Zm9-",     // base64url is a different alphabet
        "Zh==",     // non-zero unused bits (non-canonical 'f')
        "Zm9=",     // non-zero unused bits
        "Zg=a",     // data after padding
    };
    for (const char* b : bad) {
        INFO(b);
        bool ok = true;
        CHECK(decode(b, &ok).empty());
        CHECK_FALSE(ok);
    }
    // Too small a buffer is a failure, not an overflow.
    std::uint8_t out[2];
    std::size_t n = 0;
    CHECK_FALSE(duplex::base64_decode("Zm9v", out, sizeof out, n));
    std::uint8_t out3[3];
    CHECK(duplex::base64_decode("Zm9v", out3, sizeof out3, n));
    CHECK(n == 3);
}
