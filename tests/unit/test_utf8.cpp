// Incremental, fail-fast UTF-8 validation (RFC 3629 §4; RFC 6455 §8.1).
#include <catch2/catch.hpp>

#include <duplex/core/utf8.hpp>

#include <algorithm>
#include <cstdint>
#include <fstream>
#include <random>
#include <string>
#include <vector>

using duplex::utf8_validator;

namespace {

const std::uint8_t* u8(const std::string& s) { return reinterpret_cast<const std::uint8_t*>(s.data()); }

// Independent reference: decode by bit patterns, then reject overlongs,
// surrogates and code points past U+10FFFF.
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

// feed() through the AVX2 check (where the CPU has it) or the portable code only.
bool feed_path(utf8_validator& v, const std::uint8_t* p, std::size_t n, bool wide) {
    return duplex::detail::utf8_test_access::feed(v, p, n, wide);
}

// Index of the byte at which a byte-by-byte feed first fails, or npos.
std::size_t fail_index(const std::string& s) {
    utf8_validator v;
    for (std::size_t i = 0; i < s.size(); ++i)
        if (!v.feed(u8(s) + i, 1)) return i;
    return std::string::npos;
}

} // namespace

TEST_CASE("utf8: valid strings, including range edges", "[rfc3629][4][utf8]") {
    const std::vector<std::string> valid = {
        "",
        "Hello, world",
        "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5", // κόσμε
        "\xc2\x80", "\xdf\xbf",                        // U+0080, U+07FF
        "\xe0\xa0\x80", "\xef\xbf\xbf",                // U+0800, U+FFFF
        "\xed\x9f\xbf", "\xee\x80\x80",                // U+D7FF, U+E000 (around the surrogates)
        "\xef\xbf\xbe",                                // U+FFFE: a noncharacter, still valid
        "\xf0\x90\x80\x80", "\xf4\x8f\xbf\xbf",        // U+10000, U+10FFFF
        std::string("\x00", 1),
        "\x7f",
    };
    for (const auto& s : valid) {
        INFO("case " << Catch::Detail::stringify(s));
        CHECK(duplex::is_valid_utf8(s.data(), s.size()));
        utf8_validator v;
        CHECK(v.feed(u8(s), s.size()));
        CHECK(v.complete());
        CHECK(v.valid());
    }
}

TEST_CASE("utf8: fail fast at the first impossible byte (Autobahn 6.x style)", "[rfc6455][8.1][rfc3629][utf8]") {
    struct bad { std::string bytes; std::size_t at; };
    const std::vector<bad> cases = {
        // κόσμε followed by a surrogate: must fail at \xa0, not at the end.
        {"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80", 12},
        {"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80" "edited", 12},
        {"\x80", 0}, {"\xbf", 0}, {"a\x80", 1},                      // lone continuation bytes
        {"\xc0\x80", 0}, {"\xc1\xbf", 0},                            // overlong 2-byte leads
        {"\xe0\x80\x80", 1}, {"\xe0\x9f\xbf", 1},                    // overlong 3-byte
        {"\xf0\x80\x80\x80", 1}, {"\xf0\x8f\xbf\xbf", 1},            // overlong 4-byte
        {"\xed\xa0\x80", 1}, {"\xed\xbf\xbf", 1},                    // UTF-16 surrogates
        {"\xf4\x90\x80\x80", 1}, {"\xf4\xbf\xbf\xbf", 1},            // > U+10FFFF
        {"\xf5\x80\x80\x80", 0}, {"\xf7\xbf\xbf\xbf", 0},            // leads past F4
        {"\xf8\x88\x80\x80\x80", 0}, {"\xfc\x84\x80\x80\x80\x80", 0}, // old 5/6-byte forms
        {"\xfe", 0}, {"\xff", 0},
        {"\xc2\x41", 1}, {"\xe1\x80\x41", 2}, {"\xf1\x80\x80\xc0", 3}, // cut-short sequences
        {"\xc2\xc2\x80", 1},
    };
    for (const auto& c : cases) {
        INFO("case " << Catch::Detail::stringify(c.bytes));
        CHECK(fail_index(c.bytes) == c.at);
        CHECK_FALSE(duplex::is_valid_utf8(c.bytes.data(), c.bytes.size()));
        // Fed whole, and the failure is sticky.
        utf8_validator v;
        CHECK_FALSE(v.feed(u8(c.bytes), c.bytes.size()));
        CHECK_FALSE(v.valid());
        CHECK_FALSE(v.complete());
        CHECK_FALSE(v.feed(u8(std::string("ok")), 2));
        v.reset();
        CHECK(v.valid());
        CHECK(v.feed(u8(std::string("ok")), 2));
        CHECK(v.complete());
    }
}

TEST_CASE("utf8: truncated at the end is incomplete, not invalid", "[rfc6455][8.1][utf8]") {
    const std::vector<std::string> truncated = {
        "\xc2", "\xe0\xa0", "\xe1", "\xf0\x90\x80", "\xf4\x8f",
        "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce", // κόσμ + half of ε
    };
    for (const auto& s : truncated) {
        INFO("case " << Catch::Detail::stringify(s));
        utf8_validator v;
        CHECK(v.feed(u8(s), s.size()));
        CHECK(v.valid());
        CHECK_FALSE(v.complete());
        CHECK_FALSE(duplex::is_valid_utf8(s.data(), s.size()));
    }
}

TEST_CASE("utf8: a code point split across feeds at every boundary", "[rfc6455][5.6][utf8]") {
    // 1-, 2-, 3- and 4-byte characters next to each other.
    const std::string s = "a\xc2\xa9\xe2\x82\xac\xf0\x9d\x84\x9e" "b\xce\xba\xf4\x8f\xbf\xbf\xef\xbf\xbd";
    for (std::size_t i = 0; i <= s.size(); ++i) {
        for (std::size_t j = i; j <= s.size(); ++j) {
            utf8_validator v;
            CHECK(v.feed(u8(s), i));
            CHECK(v.feed(u8(s) + i, j - i));
            CHECK(v.feed(u8(s) + j, s.size() - j));
            CHECK(v.complete());
        }
    }
    // And byte by byte: complete() only at character ends.
    utf8_validator v;
    const std::vector<std::size_t> ends = {1, 3, 6, 10, 11, 13, 17, 20};
    for (std::size_t i = 0; i < s.size(); ++i) {
        REQUIRE(v.feed(u8(s) + i, 1));
        const bool at_end = std::find(ends.begin(), ends.end(), i + 1) != ends.end();
        CHECK(v.complete() == at_end);
    }
}

TEST_CASE("utf8: ASCII fast path boundaries", "[utf8]") {
    for (std::size_t len = 1; len <= 80; ++len) {
        for (std::size_t pos = 0; pos < len; ++pos) {
            std::string s(len, 'x');
            s[pos] = '\x80';
            INFO("len=" << len << " pos=" << pos);
            CHECK(fail_index(s) == pos);
            CHECK_FALSE(duplex::is_valid_utf8(s.data(), s.size()));
            s[pos] = '\x7f';
            CHECK(duplex::is_valid_utf8(s.data(), s.size()));
            // A 2-byte character at every position of an ASCII run.
            std::string t(len, 'y');
            t.insert(pos, "\xc3\xa9");
            CHECK(duplex::is_valid_utf8(t.data(), t.size()));
            // Its lead byte alone at the end of the run is incomplete.
            std::string u(len, 'z');
            u[len - 1] = '\xc3';
            CHECK_FALSE(duplex::is_valid_utf8(u.data(), u.size()));
        }
    }
}

TEST_CASE("utf8: agrees with a reference decoder on every 1-3 byte sequence", "[rfc3629][4][utf8]") {
    std::size_t valid_count = 0;
    std::uint8_t b[4];
    for (unsigned x = 0; x < 256; ++x) {
        b[0] = static_cast<std::uint8_t>(x);
        REQUIRE(duplex::is_valid_utf8(b, 1) == reference_valid(b, 1));
        for (unsigned y = 0; y < 256; ++y) {
            b[1] = static_cast<std::uint8_t>(y);
            REQUIRE(duplex::is_valid_utf8(b, 2) == reference_valid(b, 2));
            if (x < 0xE0 || x > 0xF4) continue; // other leads are decided by byte 2
            for (unsigned z = 0; z < 256; ++z) {
                b[2] = static_cast<std::uint8_t>(z);
                const bool ok = duplex::is_valid_utf8(b, 3);
                REQUIRE(ok == reference_valid(b, 3));
                valid_count += ok;
                if (x < 0xF0) continue;
                for (int w : {0x00, 0x41, 0x7f, 0x80, 0x9f, 0xa0, 0xbf, 0xc0, 0xff}) {
                    b[3] = static_cast<std::uint8_t>(w);
                    REQUIRE(duplex::is_valid_utf8(b, 4) == reference_valid(b, 4));
                }
            }
        }
    }
    // 3-byte code points: U+0800..U+FFFF minus 2048 surrogates.
    CHECK(valid_count == 0x10000 - 0x800 - 0x800);
}

TEST_CASE("utf8: the AVX2 path is taken where /proc/cpuinfo lists avx2", "[utf8]") {
    // Otherwise the tests below would compare the portable code with itself.
#if defined(DUPLEX_HAS_AVX2_PATH) && defined(__linux__)
    std::ifstream cpuinfo("/proc/cpuinfo");
    std::string line;
    bool listed = false;
    while (std::getline(cpuinfo, line))
        if (line.rfind("flags", 0) == 0) {
            listed = (" " + line + " ").find(" avx2 ") != std::string::npos;
            break;
        }
    CHECK(duplex::detail::cpu_has_avx2() == listed);
    WARN("AVX2 paths " << (listed ? "in use" : "not available on this CPU"));
#else
    CHECK_FALSE(duplex::detail::cpu_has_avx2());
    WARN("built without the AVX2 paths");
#endif
}

TEST_CASE("utf8: the AVX2 check agrees with the portable code at 32-byte block edges", "[rfc3629][4][utf8]") {
    // Pieces of 64 bytes or more go through the wide check where the CPU has
    // AVX2 (the portable path forces the byte loop). Each candidate sequence
    // sits in ASCII padding where it straddles the 128-bit lane edge (15|16),
    // the first block's edge (31|32), a later one (63|64), or ends the piece (a longer lead is then cut off
    // there, and the byte loop carries it to the next feed).
    std::size_t compared = 0, valid_count = 0;
    auto check = [&](const std::uint8_t* seq, std::size_t len, std::size_t at, std::size_t total) {
        std::vector<std::uint8_t> s(total, 'a');
        std::copy(seq, seq + len, s.begin() + std::ptrdiff_t(at));
        const bool want = reference_valid(s.data(), s.size());
        utf8_validator wide, narrow;
        const bool got_wide = feed_path(wide, s.data(), s.size(), true) && wide.complete();
        const bool got_narrow = feed_path(narrow, s.data(), s.size(), false) && narrow.complete();
        if (got_wide != want || got_narrow != want) {
            INFO("sequence of " << len << " at " << at << " in " << total << ", first byte " << int(seq[0]));
            REQUIRE(got_wide == want);
            REQUIRE(got_narrow == want);
        }
        ++compared;
        valid_count += want;
    };
    std::uint8_t b[4];
    for (unsigned x = 0x80; x < 256; ++x) {
        b[0] = static_cast<std::uint8_t>(x);
        for (std::size_t at : {0, 31, 63, 64, 95}) check(b, 1, at, 96); // a lone non-ASCII byte
        for (unsigned y = 0; y < 256; ++y) {
            b[1] = static_cast<std::uint8_t>(y);
            // Across the edge; ending the piece (or, for a longer lead, cut off by its end).
            for (std::size_t at : {31, 63, 94}) check(b, 2, at, 96);
            if (x < 0xE0 || x > 0xF4) continue;
            // Byte 2 takes every value; byte 3 the continuation edges and non-continuations.
            for (int z : {0x00, 0x41, 0x7f, 0x80, 0x81, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xff}) {
                b[2] = static_cast<std::uint8_t>(z);
                // Across the lane and block edges; ending the piece (or, for a
                // 4-byte lead, cut off by its end).
                for (std::size_t at : {14, 15, 30, 31, 62, 93}) check(b, 3, at, 96);
                if (x < 0xF0) continue;
                for (int w : {0x41, 0x80, 0xbf, 0xc0}) {
                    b[3] = static_cast<std::uint8_t>(w);
                    for (std::size_t at : {13, 15, 29, 30, 31, 92}) check(b, 4, at, 96);
                }
            }
        }
    }
    CHECK(compared == 128 * 5 + 128 * 256 * 3 + 21 * 256 * 12 * 6 + 5 * 256 * 12 * 4 * 6); // every case ran
    CHECK(valid_count > 0);
}

TEST_CASE("utf8: AVX2 and portable agree on random mixed text, whole and in pieces", "[rfc3629][4][utf8]") {
    std::mt19937 rng(20261204);
    const char* const chars[] = {"\xc3\xa9", "\xce\xba", "\xe2\x82\xac", "\xe6\x97\xa5", "\xf0\x9f\x98\x80",
                                 "\xed\x9f\xbf", "\xee\x80\x80", "\xf4\x8f\xbf\xbf", "\xe0\xa0\x80", "\xdf\xbf"};
    std::size_t valid_count = 0, invalid_count = 0;
    for (int round = 0; round < 20000; ++round) {
        std::string s;
        const std::size_t len = rng() % 400;
        while (s.size() < len) s += rng() % 3 == 0 ? std::string(chars[rng() % 10]) : std::string(1, char('a' + rng() % 26));
        for (auto m = rng() % 3; m > 0 && !s.empty(); --m) s[rng() % s.size()] = static_cast<char>(rng());
        const bool want = reference_valid(u8(s), s.size());
        for (const bool wide : {true, false}) {
            utf8_validator whole;
            REQUIRE((feed_path(whole, u8(s), s.size(), wide) && whole.complete()) == want);
            // Two pieces: a cut code point is carried over, on either path.
            const std::size_t cut = s.empty() ? 0 : rng() % (s.size() + 1);
            utf8_validator pieces;
            const bool first = feed_path(pieces, u8(s), cut, wide);
            const bool second = feed_path(pieces, u8(s) + cut, s.size() - cut, wide);
            REQUIRE((first && second && pieces.complete()) == want);
        }
        (want ? valid_count : invalid_count) += 1;
    }
    CHECK(valid_count > 1000);
    CHECK(invalid_count > 1000);
}
