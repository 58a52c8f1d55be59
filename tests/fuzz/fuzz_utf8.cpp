// libFuzzer target: utf8_validator fed in three pieces (split points from the
// input), on the AVX2 and the portable path, against a simple bit-pattern
// reference decoder, including the fail-fast position.
#include <duplex/core/utf8.hpp>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "fuzz_check.hpp"

namespace {

// Reference: decode by bit patterns, then reject overlongs, surrogates and
// code points past U+10FFFF (RFC 3629 §3). Written without the range table.
bool reference_valid(const std::uint8_t* p, std::size_t n) {
    std::size_t i = 0;
    while (i < n) {
        const std::uint8_t b = p[i];
        std::size_t len;
        std::uint32_t cp;
        if (b < 0x80) { len = 1; cp = b; }
        else if ((b & 0xE0) == 0xC0) { len = 2; cp = b & 0x1Fu; }
        else if ((b & 0xF0) == 0xE0) { len = 3; cp = b & 0x0Fu; }
        else if ((b & 0xF8) == 0xF0) { len = 4; cp = b & 0x07u; }
        else return false;
        if (n - i < len) return false;
        for (std::size_t k = 1; k < len; ++k) {
            if ((p[i + k] & 0xC0) != 0x80) return false;
            cp = (cp << 6) | (p[i + k] & 0x3Fu);
        }
        static const std::uint32_t min_cp[] = {0, 0, 0x80, 0x800, 0x10000};
        if (cp < min_cp[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
        i += len;
    }
    return true;
}

// Can the first `len` bytes be completed into valid UTF-8? A completion needs
// at most 3 continuation bytes; 80, 90 and A0 as the first of them cover every
// narrowed second-byte range, and 80 fits any later one.
bool reference_prefix_ok(const std::uint8_t* p, std::size_t len) {
    std::vector<std::uint8_t> buf(p, p + len);
    if (reference_valid(buf.data(), buf.size())) return true;
    for (int first : {0x80, 0x90, 0xA0}) {
        for (std::size_t extra = 1; extra <= 3; ++extra) {
            buf.assign(p, p + len);
            buf.push_back(static_cast<std::uint8_t>(first));
            for (std::size_t k = 1; k < extra; ++k) buf.push_back(0x80);
            if (reference_valid(buf.data(), buf.size())) return true;
        }
    }
    return false;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 2) return 0;
    const std::size_t n = size - 2;
    // The text in an exactly-sized buffer so over-reads trip ASan.
    std::vector<std::uint8_t> text(data + 2, data + size);
    const std::uint8_t* t = text.data();
    std::size_t a = n ? data[0] % (n + 1) : 0;
    std::size_t b = n ? data[1] % (n + 1) : 0;
    if (a > b) std::swap(a, b);

    const bool expected = reference_valid(t, n);
    FUZZ_CHECK(duplex::is_valid_utf8(t, n) == expected);

    // Three pieces, each in its own allocation; through the AVX2 check (for
    // pieces of 64 bytes or more, where the CPU has AVX2) and the portable one.
    for (const bool wide : {true, false}) {
        duplex::utf8_validator v;
        bool ok = true;
        for (auto piece : {std::pair<std::size_t, std::size_t>{0, a}, {a, b}, {b, n}}) {
            const std::size_t len = piece.second - piece.first;
            auto* buf = static_cast<std::uint8_t*>(std::malloc(len ? len : 1));
            if (len) std::memcpy(buf, t + piece.first, len);
            const bool r = duplex::detail::utf8_test_access::feed(v, buf, len, wide);
            std::free(buf);
            if (!ok) FUZZ_CHECK(!r); // sticky
            ok = ok && r;
        }
        FUZZ_CHECK((ok && v.complete()) == expected);
        FUZZ_CHECK(v.valid() == ok);
    }

    // Fail fast: byte by byte, the first rejected byte is the first one after
    // which the prefix cannot be completed. Extendability is monotone, so
    // binary search the reference for it.
    duplex::utf8_validator w;
    std::size_t fail_at = n;
    for (std::size_t i = 0; i < n; ++i) {
        if (!w.feed(t + i, 1)) {
            fail_at = i;
            break;
        }
    }
    std::size_t lo = 0, hi = n; // find the smallest i with prefix(i+1) not ok, or n
    while (lo < hi) {
        const std::size_t mid = lo + (hi - lo) / 2;
        if (reference_prefix_ok(t, mid + 1)) lo = mid + 1;
        else hi = mid;
    }
    FUZZ_CHECK(fail_at == lo);
    return 0;
}
