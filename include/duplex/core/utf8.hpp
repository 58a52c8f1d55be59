// Incremental, fail-fast UTF-8 validation (RFC 3629 §4) for text messages and
// close reasons (RFC 6455 §5.6, §8.1).
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>

#include <duplex/core/detail/cpu.hpp>

namespace duplex {

namespace detail {

struct utf8_test_access;

#ifdef DUPLEX_HAS_AVX2_PATH
// Whole-block UTF-8 validation with AVX2, after Keiser and Lemire, "Validating
// UTF-8 in less than one instruction per byte" (2021): each pair of adjacent
// bytes is classified by three 16-entry table lookups on nibbles, and the
// leads two and three bytes back by an unsigned comparison, 32 bytes at a
// time, so the cost does not depend on the text. (The byte loop below
// mispredicts on mixed-script text: 0.41 GB/s against 14.5 GB/s here, in
// benchmarks/micro_core, 2026-12-04.) Error bits of the lookups, one per kind
// of bad pair (first byte, second byte):
namespace utf8_bits {
constexpr std::uint8_t too_short = 1 << 0;  // lead then ASCII or lead; 11______ 0_______ / 11______
constexpr std::uint8_t too_long = 1 << 1;   // ASCII then continuation: 0_______ 10______
constexpr std::uint8_t overlong3 = 1 << 2;  // 11100000 100_____
constexpr std::uint8_t too_large = 1 << 3;  // past U+10FFFF: 11110100 1001____, 11110100 101_____,
                                            // and F5..FF 1001____, 101_____
constexpr std::uint8_t surrogate = 1 << 4;  // 11101101 101_____
constexpr std::uint8_t overlong2 = 1 << 5;  // 1100000_ 10______
constexpr std::uint8_t large1000 = 1 << 6;  // F5..FF 1000____; shared with overlong4: 11110000 1000____
constexpr std::uint8_t two_conts = 1 << 7;  // continuation then continuation: checked against the
                                            // lengths the leads two and three back demand
constexpr std::uint8_t carry = too_short | too_long | two_conts; // independent of byte 1's low nibble
} // namespace utf8_bits

// The same 16 entries in both 128-bit lanes: vpshufb looks up per lane.
DUPLEX_TARGET_AVX2_INLINE u8x32 utf8_table(std::uint8_t t0, std::uint8_t t1, std::uint8_t t2, std::uint8_t t3,
                                           std::uint8_t t4, std::uint8_t t5, std::uint8_t t6, std::uint8_t t7,
                                           std::uint8_t t8, std::uint8_t t9, std::uint8_t t10, std::uint8_t t11,
                                           std::uint8_t t12, std::uint8_t t13, std::uint8_t t14,
                                           std::uint8_t t15) noexcept {
    return u8x32{t0, t1, t2,  t3,  t4,  t5,  t6,  t7,  t8, t9, t10, t11, t12, t13, t14, t15,
                 t0, t1, t2,  t3,  t4,  t5,  t6,  t7,  t8, t9, t10, t11, t12, t13, t14, t15};
}

// table[index] per byte (index 0..15): vpshufb, the one instruction vector
// operators do not give; GCC and Clang have this builtin with this signature.
DUPLEX_TARGET_AVX2_INLINE u8x32 utf8_lookup(u8x32 table, u8x32 index) noexcept {
    i8x32 t, i;
    __builtin_memcpy(&t, &table, sizeof t);
    __builtin_memcpy(&i, &index, sizeof i);
    const i8x32 r = __builtin_ia32_pshufb256(t, i);
    u8x32 out;
    __builtin_memcpy(&out, &r, sizeof out);
    return out;
}

// 0xFF where a > b (unsigned), else 0.
DUPLEX_TARGET_AVX2_INLINE u8x32 utf8_greater(u8x32 a, u8x32 b) noexcept {
    const auto greater = a > b; // a vector of -1 / 0
    u8x32 mask;
    __builtin_memcpy(&mask, &greater, sizeof mask);
    return mask;
}

// Checks the 32 bytes `in` (prev1..prev3: the same bytes one, two and three
// positions back, i.e. loaded from in's address minus 1, 2, 3); ORs what is
// wrong into `error` and leaves in `incomplete` where in's tail wants more bytes.
DUPLEX_TARGET_AVX2_INLINE void utf8_avx2_block(u8x32 in, u8x32 prev1, u8x32 prev2, u8x32 prev3, u8x32& incomplete,
                                              u8x32& error) noexcept {
    using namespace utf8_bits;
    if (!any_high_bit(in)) { // ASCII: only a sequence cut off before it can be wrong
        error |= incomplete;
        incomplete = u8x32{};
        return;
    }
    const u8x32 byte1_high = utf8_lookup(
        utf8_table(too_long, too_long, too_long, too_long, too_long, too_long, too_long, too_long, // 0___
                   two_conts, two_conts, two_conts, two_conts,                                     // 10__
                   too_short | overlong2,                                                          // 1100
                   too_short,                                                                      // 1101
                   too_short | overlong3 | surrogate,                                              // 1110
                   too_short | too_large | large1000),                                             // 1111
        prev1 >> 4);
    const u8x32 byte1_low = utf8_lookup(
        utf8_table(carry | overlong3 | overlong2 | large1000, // ____0000
                   carry | overlong2,                         // ____0001
                   carry, carry,                              // ____001_
                   carry | too_large,                         // ____0100 (F4)
                   carry | too_large | large1000,             // ____0101 .. (F5..)
                   carry | too_large | large1000, carry | too_large | large1000,
                   carry | too_large | large1000, carry | too_large | large1000,
                   carry | too_large | large1000, carry | too_large | large1000,
                   carry | too_large | large1000,
                   carry | too_large | large1000 | surrogate, // ____1101 (ED)
                   carry | too_large | large1000, carry | too_large | large1000),
        prev1 & 0x0F);
    const u8x32 byte2_high = utf8_lookup(
        utf8_table(too_short, too_short, too_short, too_short, too_short, too_short, too_short, too_short, // 0___
                   too_long | overlong2 | two_conts | overlong3 | large1000, // 1000
                   too_long | overlong2 | two_conts | overlong3 | too_large, // 1001
                   too_long | overlong2 | two_conts | surrogate | too_large, // 1010
                   too_long | overlong2 | two_conts | surrogate | too_large, // 1011
                   too_short, too_short, too_short, too_short),              // 11__
        in >> 4);
    const u8x32 pair_errors = byte1_high & byte1_low & byte2_high;
    // Continuation then continuation is right exactly where a lead two
    // (E0..) or three (F0..) bytes back wants one: the high bits must match.
    const u8x32 third = utf8_greater(prev2, u8x32{} + (0xE0 - 1));
    const u8x32 fourth = utf8_greater(prev3, u8x32{} + (0xF0 - 1));
    error |= ((third | fourth) & 0x80) ^ pair_errors;
    // A lead in the last three bytes whose sequence runs past the block.
    const u8x32 tail_max = {0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
                            0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
                            0xF0 - 1, 0xE0 - 1, 0xC0 - 1};
    incomplete = utf8_greater(in, tail_max);
}

// True when [p, p+n) is whole, well-formed UTF-8 (a code point starts at p and
// none runs past p+n). Each block is read again at offsets -1, -2, -3 for the
// bytes before it (unaligned loads from cache); the first and the last, partial
// block go through a copy with those three bytes in front (zeros before p: a
// code point starts there) and ASCII zeros after the end.
DUPLEX_TARGET_AVX2 inline bool utf8_valid_avx2(const std::uint8_t* p, std::size_t n) noexcept {
    u8x32 incomplete = {}, error = {};
    std::uint8_t edge[3 + 32] = {};
    __builtin_memcpy(edge + 3, p, n < 32 ? n : 32);
    utf8_avx2_block(load32(edge + 3), load32(edge + 2), load32(edge + 1), load32(edge), incomplete, error);
    std::size_t i = 32;
    for (; i + 32 <= n; i += 32)
        utf8_avx2_block(load32(p + i), load32(p + i - 1), load32(p + i - 2), load32(p + i - 3), incomplete, error);
    if (i < n) {
        std::uint8_t last[3 + 32] = {};
        __builtin_memcpy(last, p + i - 3, 3 + (n - i));
        utf8_avx2_block(load32(last + 3), load32(last + 2), load32(last + 1), load32(last), incomplete, error);
    }
    return !any_bit(error | incomplete);
}
#endif

} // namespace detail

/// Validates UTF-8 fed in arbitrary pieces: a code point split across two
/// feed() calls is accepted. Fails at the first byte that cannot continue a
/// well-formed sequence (overlong forms, surrogates, code points past
/// U+10FFFF), not at the end of the message (RFC 6455 §8.1 "fail fast").
class utf8_validator {
public:
    /// Validates the next piece. Returns false as soon as the bytes seen so
    /// far cannot begin valid UTF-8; from then on it keeps returning false
    /// until reset(). Pieces of 64 bytes or more are checked 32 bytes at a
    /// time with AVX2 when the CPU has it.
    bool feed(const std::uint8_t* data, std::size_t size) noexcept { return feed(data, size, true); }

    /// True when no code point is cut off at the end of what was fed (and no
    /// error was seen): the message may end here.
    bool complete() const noexcept { return !failed_ && need_ == 0; }

    /// True while no invalid byte has been seen.
    bool valid() const noexcept { return !failed_; }

    /// Forgets everything; ready for a new message.
    void reset() noexcept {
        need_ = 0;
        lo_ = 0x80;
        hi_ = 0xBF;
        failed_ = false;
    }

private:
    friend struct detail::utf8_test_access;

    // wide = false keeps to the portable code (tests compare the two paths).
    bool feed(const std::uint8_t* data, std::size_t size, bool wide) noexcept {
        if (failed_) return false;
        const std::uint8_t* p = data;
        const std::uint8_t* const end = data + size;
        // Finish a code point left open by the previous piece.
        while (need_ != 0 && p != end)
            if (!continue_sequence(*p++)) return fail();
#ifdef DUPLEX_HAS_AVX2_PATH
        if (wide && end - p >= 64 && detail::cpu_has_avx2()) {
            // Whole code points only: the wide check stops before a sequence
            // this piece cuts off, which the byte loop below carries over.
            const std::uint8_t* const whole_end = end - cut_off_tail(end);
            if (!detail::utf8_valid_avx2(p, static_cast<std::size_t>(whole_end - p))) return fail();
            p = whole_end;
        }
#else
        (void)wide;
#endif
        // Whole code points: checked in place, no state kept. Fed a piece at
        // a time, a bad byte still fails this call, i.e. fails fast.
        while (p != end) {
            if (*p < 0x80) {
                p = skip_ascii(p, end);
                continue;
            }
            const int n = whole_sequence(p, static_cast<std::size_t>(end - p));
            if (n < 0) return fail();
            if (n == 0) break; // a sequence cut off by the end of the piece
            p += n;
        }
        // The cut-off tail, byte by byte, carrying state into the next call.
        while (p != end) {
            if (need_ == 0) {
                if (!start_sequence(*p++)) return fail();
            } else if (!continue_sequence(*p++)) {
                return fail();
            }
        }
        return true;
    }

    bool fail() noexcept {
        failed_ = true;
        return false;
    }

    // How many of the bytes before end (at least 3 readable) belong to a
    // sequence that runs past end: 0..3, judged by the last lead byte.
    static std::size_t cut_off_tail(const std::uint8_t* end) noexcept {
        for (std::size_t back = 1; back <= 3; ++back) {
            const std::uint8_t b = end[-static_cast<std::ptrdiff_t>(back)];
            if ((b & 0xC0) == 0x80) continue; // a continuation byte: look further back
            if (b < 0xC0) return 0;           // ASCII: everything before end is whole
            const std::size_t len = b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : 2;
            return back < len ? back : 0;
        }
        return 0; // three continuations: a 4-byte sequence ends here, or an error the wide check finds
    }

    // ASCII fast path: whole words without a high bit are skipped, 32 then 8
    // bytes at a time; stops at (or near) the first non-ASCII byte.
    static const std::uint8_t* skip_ascii(const std::uint8_t* p, const std::uint8_t* end) noexcept {
        constexpr std::uint64_t high = 0x8080808080808080ull;
        if (end - p < 8) {
            while (p != end && *p < 0x80) ++p;
            return p;
        }
        std::uint64_t first;
        std::memcpy(&first, p, 8);
        if ((first & high) != 0) { // short run (mixed text): go byte by byte
            while (*p < 0x80) ++p;
            return p;
        }
        p += 8;
        while (end - p >= 32) {
            std::uint64_t w[4];
            std::memcpy(w, p, 32);
            if (((w[0] | w[1] | w[2] | w[3]) & high) != 0) break;
            p += 32;
        }
        while (end - p >= 8) {
            std::uint64_t w;
            std::memcpy(&w, p, 8);
            if ((w & high) != 0) break;
            p += 8;
        }
        while (p != end && *p < 0x80) ++p;
        return p;
    }

    // RFC 3629 §4 well-formed sequences, by lead byte: the number of
    // continuation bytes and the allowed range of the first of them (the
    // narrowed ranges exclude overlongs, surrogates and > U+10FFFF).
    //   00..7F                      (handled by the caller)
    //   C2..DF 80..BF
    //   E0     A0..BF 80..BF        E1..EC 80..BF 80..BF
    //   ED     80..9F 80..BF        EE..EF 80..BF 80..BF
    //   F0     90..BF 80..BF 80..BF F1..F3 80..BF 80..BF 80..BF
    //   F4     80..8F 80..BF 80..BF
    bool start_sequence(std::uint8_t b) noexcept {
        if (b < 0x80) return true;
        if (b < 0xC2) return false; // stray continuation byte, or overlong C0/C1
        if (b <= 0xDF) return expect(1, 0x80, 0xBF);
        if (b == 0xE0) return expect(2, 0xA0, 0xBF);
        if (b == 0xED) return expect(2, 0x80, 0x9F);
        if (b <= 0xEF) return expect(2, 0x80, 0xBF);
        if (b == 0xF0) return expect(3, 0x90, 0xBF);
        if (b <= 0xF3) return expect(3, 0x80, 0xBF);
        if (b == 0xF4) return expect(3, 0x80, 0x8F);
        return false; // F5..FF never appear in UTF-8
    }

    bool expect(std::uint8_t need, std::uint8_t lo, std::uint8_t hi) noexcept {
        need_ = need;
        lo_ = lo;
        hi_ = hi;
        return true;
    }

    bool continue_sequence(std::uint8_t b) noexcept {
        if (b < lo_ || b > hi_) return false;
        lo_ = 0x80; // only the second byte has a narrowed range
        hi_ = 0xBF;
        --need_;
        return true;
    }

    // The same table applied to a sequence starting at p (p[0] >= 0x80) with
    // `avail` bytes readable: its length, 0 if it is cut off by `avail` (and
    // valid so far), -1 if invalid.
    static int whole_sequence(const std::uint8_t* p, std::size_t avail) noexcept {
        utf8_validator v;
        if (!v.start_sequence(p[0])) return -1;
        const int len = v.need_ + 1;
        if (avail < static_cast<std::size_t>(len)) return 0;
        if (p[1] < v.lo_ || p[1] > v.hi_) return -1;
        for (int i = 2; i < len; ++i)
            if ((p[i] & 0xC0) != 0x80) return -1;
        return len;
    }

    std::uint8_t need_ = 0;  // continuation bytes still expected
    std::uint8_t lo_ = 0x80; // allowed range of the next continuation byte
    std::uint8_t hi_ = 0xBF;
    bool failed_ = false;
};

namespace detail {
// For tests: feed() on the portable path only (wide = false), or as usual.
struct utf8_test_access {
    static bool feed(utf8_validator& v, const std::uint8_t* data, std::size_t size, bool wide) noexcept {
        return v.feed(data, size, wide);
    }
};
} // namespace detail

/// True when [data, data+size) is complete, well-formed UTF-8.
inline bool is_valid_utf8(const void* data, std::size_t size) noexcept {
    utf8_validator v;
    return v.feed(static_cast<const std::uint8_t*>(data), size) && v.complete();
}

} // namespace duplex
