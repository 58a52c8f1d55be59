// Close codes and close payloads (RFC 6455 §5.5.1, §7.4).
#include <catch2/catch.hpp>

#include <duplex/core/close.hpp>
#include <duplex/core/error.hpp>

#include <cstdint>
#include <string>
#include <vector>

TEST_CASE("close: is_valid_close_code table", "[rfc6455][7.4.1][7.4.2][close]") {
    for (std::uint32_t c = 0; c <= 0xFFFF; ++c) {
        const bool expected = (c >= 1000 && c <= 1003) || (c >= 1007 && c <= 1014) || (c >= 3000 && c <= 4999);
        INFO("code " << c);
        REQUIRE(duplex::is_valid_close_code(static_cast<std::uint16_t>(c)) == expected);
    }
    // The named edges, spelled out.
    for (int c : {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999})
        CHECK(duplex::is_valid_close_code(static_cast<std::uint16_t>(c)));
    for (int c : {0, 1, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535})
        CHECK_FALSE(duplex::is_valid_close_code(static_cast<std::uint16_t>(c)));
}

TEST_CASE("close: write_close_payload", "[rfc6455][5.5.1][close]") {
    std::uint8_t out[125 + 8];
    SECTION("code and reason") {
        const std::size_t n = duplex::write_close_payload(out, 1000, "bye");
        REQUIRE(n == 5);
        CHECK(std::vector<std::uint8_t>(out, out + n) == std::vector<std::uint8_t>{0x03, 0xe8, 'b', 'y', 'e'});
    }
    SECTION("code only") {
        REQUIRE(duplex::write_close_payload(out, 4999, "") == 2);
        CHECK(out[0] == 0x13);
        CHECK(out[1] == 0x87);
    }
    SECTION("1005 writes an empty payload") {
        CHECK(duplex::write_close_payload(out, duplex::close_code::no_status, "ignored") == 0);
    }
    SECTION("reason of exactly 123 bytes is kept") {
        const std::string r(123, 'r');
        REQUIRE(duplex::write_close_payload(out, 1001, r) == 125);
        CHECK(std::string(out + 2, out + 125) == r);
    }
    SECTION("long ASCII reason is cut to 123 bytes") {
        const std::string r(300, 'q');
        CHECK(duplex::write_close_payload(out, 1001, r) == 125);
    }
}

TEST_CASE("close: long reason is cut on a UTF-8 boundary", "[rfc6455][5.5.1][close]") {
    // 4-byte characters after every padding length: the cut lands inside a
    // character in most cases and must back off to its start.
    for (std::size_t pad = 0; pad < 8; ++pad) {
        for (const std::string ch : {"\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80"}) {
            std::string reason(pad, '.');
            while (reason.size() < 200) reason += ch;
            std::uint8_t out[125 + 8];
            std::fill(std::begin(out), std::end(out), 0xAA);
            const std::size_t n = duplex::write_close_payload(out, 1000, reason);
            INFO("pad=" << pad << " char bytes=" << ch.size());
            CHECK(n <= 125);
            CHECK(n > 125 - ch.size());
            CHECK(out[125] == 0xAA); // nothing past 125 bytes
            CHECK(duplex::is_valid_utf8(out + 2, n - 2));
            CHECK(std::string(out + 2, out + n) == reason.substr(0, n - 2));
        }
    }
}

TEST_CASE("close: parse_close_payload", "[rfc6455][5.5.1][close]") {
    std::uint16_t code = 0;
    std::string_view reason;
    const std::uint8_t ok[] = {0x03, 0xe8, 'o', 'k'};
    CHECK_FALSE(duplex::parse_close_payload(ok, 4, code, reason));
    CHECK(code == 1000);
    CHECK(reason == "ok");
    CHECK_FALSE(duplex::parse_close_payload(ok, 0, code, reason));
    CHECK(code == 1005);
    CHECK(reason.empty());
    CHECK(duplex::parse_close_payload(ok, 1, code, reason) == duplex::errc::bad_close_size);
    const std::uint8_t no_status[] = {0x03, 0xed};
    CHECK(duplex::parse_close_payload(no_status, 2, code, reason) == duplex::errc::bad_close_code);
    const std::uint8_t bad_reason[] = {0x03, 0xe8, 0xc0, 0xaf};
    CHECK(duplex::parse_close_payload(bad_reason, 4, code, reason) == duplex::errc::invalid_close_reason);
}

// Error values are fixed per group (frames 1.., server handshake 100.., client
// handshake 200.., connection life 300..): each value known to the category has a
// message of its own and the condition of its group; the gaps between are unknown.
TEST_CASE("errors: fixed values, a message each, the condition of their group", "[errors]") {
    const std::string unknown = duplex::make_error_code(static_cast<duplex::errc>(99)).message();
    CHECK(unknown == "unknown duplex error");
    CHECK(static_cast<int>(duplex::errc::reserved_bits) == 1);
    CHECK(static_cast<int>(duplex::errc::bad_http_request) == 100);
    CHECK(static_cast<int>(duplex::errc::bad_target) == 110);
    CHECK(static_cast<int>(duplex::errc::bad_status) == 200);
    CHECK(static_cast<int>(duplex::errc::closed) == 300);
    CHECK(static_cast<int>(duplex::errc::internal_error) == 310);
    int known = 0;
    for (int v = 1; v < 400; ++v) {
        const auto ec = duplex::make_error_code(static_cast<duplex::errc>(v));
        if (ec.message() == unknown) continue;
        ++known;
        INFO("value " << v << ": " << ec.message());
        if (v < 100) CHECK(ec == duplex::condition::protocol_violation);
        else if (v < 300) CHECK(ec == duplex::condition::handshake_failed);
        else CHECK_FALSE(ec == duplex::condition::protocol_violation);
    }
    CHECK(static_cast<int>(duplex::errc::bad_proxy_response) == 212);
    CHECK(static_cast<int>(duplex::errc::bad_proxy_header) == 114);
    CHECK(static_cast<int>(duplex::errc::too_many_redirects) == 214);
    CHECK(known == 16 + 15 + 15 + 11);
}
