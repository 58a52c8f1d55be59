// Incremental, fail-fast UTF-8 validation (RFC 3629 §4) for text messages and
// close reasons (RFC 6455 §5.6, §8.1).
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace duplex {

/// Validates UTF-8 fed in arbitrary pieces: a code point split across two
/// feed() calls is accepted. Fails at the first byte that cannot continue a
/// well-formed sequence (overlong forms, surrogates, code points past
/// U+10FFFF), not at the end of the message (RFC 6455 §8.1 "fail fast").
class utf8_validator {
public:
    /// Validates the next piece. Returns false as soon as the bytes seen so
    /// far cannot begin valid UTF-8; from then on it keeps returning false
    /// until reset().
    bool feed(const std::uint8_t* data, std::size_t size) noexcept {
        if (failed_) return false;
        const std::uint8_t* p = data;
        const std::uint8_t* const end = data + size;
        // Finish a code point left open by the previous piece.
        while (need_ != 0 && p != end)
            if (!continue_sequence(*p++)) return fail();
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
    bool fail() noexcept {
        failed_ = true;
        return false;
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

/// True when [data, data+size) is complete, well-formed UTF-8.
inline bool is_valid_utf8(const void* data, std::size_t size) noexcept {
    utf8_validator v;
    return v.feed(static_cast<const std::uint8_t*>(data), size) && v.complete();
}

} // namespace duplex
