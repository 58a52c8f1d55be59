// The PROXY protocol header a load balancer puts in front of each relayed connection
// (HAProxy's proxy-protocol.txt, versions 1 and 2; core/proxy_protocol.hpp). The server
// reading it over TCP and TLS is in test_server_tcp.cpp; behind a real HAProxy in
// tests/interop/run_behind_haproxy.sh.
#include <catch2/catch.hpp>

#include <duplex/core/proxy_protocol.hpp>

#include <cstdint>
#include <string>
#include <vector>

using duplex::errc;
using namespace std::string_literals;

namespace {

struct parsed {
    std::size_t size = 0;
    std::error_code ec;
    duplex::proxy_protocol_header header;
};

parsed parse(const std::string& bytes) {
    parsed p;
    p.size = duplex::parse_proxy_protocol(bytes, p.header, p.ec);
    return p;
}

// Every proper prefix of a valid header asks for more bytes, without an error.
void check_prefixes_need_more(const std::string& header) {
    for (std::size_t n = 0; n < header.size(); ++n) {
        INFO("prefix of " << n << " bytes");
        const parsed p = parse(header.substr(0, n));
        CHECK(p.size == 0);
        CHECK_FALSE(p.ec);
    }
}

std::string v2(std::uint8_t ver_cmd, std::uint8_t family, const std::vector<std::uint8_t>& body) {
    std::string s("\r\n\r\n\0\r\nQUIT\n", 12);
    s += static_cast<char>(ver_cmd);
    s += static_cast<char>(family);
    s += static_cast<char>(body.size() >> 8);
    s += static_cast<char>(body.size() & 0xFF);
    for (std::uint8_t b : body) s += static_cast<char>(b);
    return s;
}

} // namespace

TEST_CASE("PROXY v1: TCP4 and TCP6 lines give the client's address and port", "[proxy_protocol]") {
    // The spec's own example (§2.1), then the stream that follows it.
    const std::string line = "PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n";
    check_prefixes_need_more(line);
    parsed p = parse(line + "GET / HTTP/1.1\r\n");
    REQUIRE_FALSE(p.ec);
    CHECK(p.size == line.size());
    CHECK(p.header.version == 1);
    CHECK_FALSE(p.header.local);
    CHECK(duplex::proxy_source_string(p.header) == "255.255.255.255:65535");

    p = parse("PROXY TCP4 192.0.2.1 198.51.100.7 56324 443\r\n");
    REQUIRE_FALSE(p.ec);
    CHECK(duplex::proxy_source_string(p.header) == "192.0.2.1:56324");
    CHECK(p.header.destination_port == 443);
    CHECK(duplex::proxy_address_string(p.header.destination_address, false) == "198.51.100.7");

    const std::string v6 = "PROXY TCP6 2001:db8:0:0:0:0:0:1 ::1 1 65535\r\n";
    check_prefixes_need_more(v6);
    p = parse(v6);
    REQUIRE_FALSE(p.ec);
    CHECK(p.size == v6.size());
    CHECK(p.header.ipv6);
    CHECK(duplex::proxy_source_string(p.header) == "[2001:db8::1]:1"); // RFC 5952 form
    CHECK(duplex::proxy_address_string(p.header.destination_address, true) == "::1");

    p = parse("PROXY TCP6 ::ffff:192.0.2.1 fe80::1:2 80 8080\r\n");
    REQUIRE_FALSE(p.ec);
    CHECK(duplex::proxy_source_string(p.header) == "[::ffff:192.0.2.1]:80");
    CHECK(duplex::proxy_address_string(p.header.destination_address, true) == "fe80::1:2");

    // The longest line there can be is 107 bytes with the CRLF (§2.1).
    const std::string longest = "PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n";
    REQUIRE(longest.size() == 104);
    p = parse(longest);
    REQUIRE_FALSE(p.ec);
    CHECK(p.size == 104);
}

TEST_CASE("PROXY v1: UNKNOWN keeps the connection's own address", "[proxy_protocol]") {
    for (const std::string line : {"PROXY UNKNOWN\r\n", "PROXY UNKNOWN ffff:: ffff:: 1 2\r\n"}) {
        INFO(line);
        const parsed p = parse(line + "\x16\x03\x01");
        REQUIRE_FALSE(p.ec);
        CHECK(p.size == line.size());
        CHECK(p.header.local);
        CHECK(duplex::proxy_source_string(p.header).empty());
    }
}

TEST_CASE("PROXY v1: malformed lines are refused with errc::bad_proxy_header", "[proxy_protocol]") {
    const char* bad[] = {
        "PROXY TCP4 192.0.2.1 198.51.100.7 56324\r\n",        // a field missing
        "PROXY TCP4 192.0.2.1 198.51.100.7 56324 443 1\r\n",  // one too many
        "PROXY TCP4  192.0.2.1 198.51.100.7 56324 443\r\n",   // two spaces
        "PROXY TCP4 192.0.2.1 198.51.100.7 56324 443 \r\n",   // a trailing space
        "PROXY TCP4 192.0.2.256 198.51.100.7 1 2\r\n",        // an octet over 255
        "PROXY TCP4 192.0.2 198.51.100.7 1 2\r\n",            // three octets
        "PROXY TCP4 192.0.2.1.5 198.51.100.7 1 2\r\n",        // five
        "PROXY TCP4 0192.0.2.1 198.51.100.7 1 2\r\n",         // four digits
        "PROXY TCP4 192.0.2.01 198.51.100.7 1 2\r\n",         // a leading zero (libc would read octal)
        "PROXY TCP4 ::1 198.51.100.7 1 2\r\n",                // IPv6 in TCP4
        "PROXY TCP6 192.0.2.1 ::1 1 2\r\n",                   // IPv4 in TCP6
        "PROXY TCP6 1::2::3 ::1 1 2\r\n",                     // "::" twice
        "PROXY TCP6 1:2:3:4:5:6:7:8:9 ::1 1 2\r\n",           // nine groups
        "PROXY TCP6 1:2:3:4:5:6:7 ::1 1 2\r\n",               // seven, no "::"
        "PROXY TCP6 12345::1 ::1 1 2\r\n",                    // five hex digits
        "PROXY TCP6 :1::2 ::1 1 2\r\n",                       // a lone leading ':'
        "PROXY TCP6 1:: ::1: 1 2\r\n",                        // a lone trailing ':'
        "PROXY TCP4 192.0.2.1 198.51.100.7 65536 443\r\n",    // port over 65535
        "PROXY TCP4 192.0.2.1 198.51.100.7 -1 443\r\n",       // not a number
        "PROXY TCP4 192.0.2.1 198.51.100.7 123456 443\r\n",   // six digits
        "PROXY TCP5 192.0.2.1 198.51.100.7 1 2\r\n",          // no such family
        "PROXY UDP4 192.0.2.1 198.51.100.7 1 2\r\n",
        "PROXY TCP4\r\n",
        "PROXY \r\n",
        "PROXY TCP4 192.0.2.1 198.51.100.7 1 2\rX",           // CR without LF
        "PROXY TCP4 192.0.2.1 198.51.100.7 1 2\n",            // bare LF: it goes on, then too long
        "proxy TCP4 192.0.2.1 198.51.100.7 1 2\r\n",          // the keyword is case-sensitive
        "GET / HTTP/1.1\r\n",                                 // no header at all
        "\x16\x03\x01\x02\x00\x01",                           // a TLS hello
    };
    for (const char* b : bad) {
        std::string bytes = b;
        if (bytes.back() == '\n' && bytes[bytes.size() - 2] != '\r') bytes += std::string(110, 'x');
        INFO(bytes);
        const parsed p = parse(bytes);
        CHECK(p.ec == errc::bad_proxy_header);
        CHECK(p.size == 0);
    }
    // Refused as soon as a byte cannot begin either version.
    CHECK(parse("G").ec == errc::bad_proxy_header);
    CHECK(parse("PROXX").ec == errc::bad_proxy_header);
    CHECK(parse("\r\n\r\n\0\r\nQUIX"s).ec == errc::bad_proxy_header);
    // No CRLF within 107 bytes.
    CHECK_FALSE(parse("PROXY UNKNOWN " + std::string(91, 'a')).ec); // 105 bytes: the CRLF may still come
    CHECK(parse("PROXY UNKNOWN " + std::string(91, 'a') + "\r\n").size == 107);
    CHECK(parse("PROXY UNKNOWN " + std::string(92, 'a')).ec == errc::bad_proxy_header);
    CHECK(parse("PROXY UNKNOWN " + std::string(92, 'a') + "\r\n").ec == errc::bad_proxy_header);
    CHECK(make_error_code(errc::bad_proxy_header) == duplex::condition::handshake_failed);
}

TEST_CASE("PROXY v2: PROXY command over TCP, IPv4 and IPv6, TLVs skipped", "[proxy_protocol]") {
    // 0x21: version 2, PROXY; 0x11: AF_INET, STREAM; addresses, then ports.
    const std::string v4 = v2(0x21, 0x11, {192, 0, 2, 1, 198, 51, 100, 7, 0xDC, 0x04, 0x01, 0xBB});
    check_prefixes_need_more(v4);
    parsed p = parse(v4 + "GET /");
    REQUIRE_FALSE(p.ec);
    CHECK(p.size == 28);
    CHECK(p.header.version == 2);
    CHECK_FALSE(p.header.local);
    CHECK_FALSE(p.header.ipv6);
    CHECK(duplex::proxy_source_string(p.header) == "192.0.2.1:56324");
    CHECK(p.header.destination_port == 443);

    std::vector<std::uint8_t> six(36, 0);
    six[0] = 0x20, six[1] = 0x01, six[2] = 0x0d, six[3] = 0xb8, six[15] = 0x01; // 2001:db8::1
    six[31] = 0x01;                                                             // ::1
    six[32] = 0x1F, six[33] = 0x90, six[34] = 0x00, six[35] = 0x50;            // 8080, 80
    // Then TLVs, as AWS's load balancers send them (0xEA: the VPC endpoint): skipped.
    for (int b : std::initializer_list<int>{0xEA, 0x00, 0x05, 0x01, 'v', 'p', 'c', 'e'}) six.push_back(static_cast<std::uint8_t>(b));
    const std::string v6 = v2(0x21, 0x21, six);
    check_prefixes_need_more(v6);
    p = parse(v6 + "\x16\x03\x01");
    REQUIRE_FALSE(p.ec);
    CHECK(p.size == 16 + 44);
    CHECK(p.header.ipv6);
    CHECK(duplex::proxy_source_string(p.header) == "[2001:db8::1]:8080");
    CHECK(p.header.destination_port == 80);
}

TEST_CASE("PROXY v2: LOCAL and families without a TCP client keep the connection's address", "[proxy_protocol]") {
    // LOCAL (a health check), with and without an address block: the block is ignored.
    for (const std::string& h : {v2(0x20, 0x00, {}), v2(0x20, 0x11, {1, 2, 3, 4, 5, 6, 7, 8, 0, 1, 0, 2}), v2(0x20, 0x11, {})}) {
        const parsed p = parse(h);
        REQUIRE_FALSE(p.ec);
        CHECK(p.size == h.size());
        CHECK(p.header.local);
    }
    // PROXY over UNSPEC, UDP and AF_UNIX: accepted, with no client address taken.
    const parsed unspec = parse(v2(0x21, 0x00, {}));
    REQUIRE_FALSE(unspec.ec);
    CHECK(unspec.header.local);
    const parsed udp = parse(v2(0x21, 0x12, {1, 2, 3, 4, 5, 6, 7, 8, 0, 1, 0, 2}));
    REQUIRE_FALSE(udp.ec);
    CHECK(udp.header.local);
    const parsed unix_socket = parse(v2(0x21, 0x31, std::vector<std::uint8_t>(216, 0)));
    REQUIRE_FALSE(unix_socket.ec);
    CHECK(unix_socket.size == 16 + 216);
    CHECK(unix_socket.header.local);
}

TEST_CASE("PROXY v2: unassigned values, short address blocks and oversized headers are refused", "[proxy_protocol]") {
    const std::vector<std::uint8_t> v4{192, 0, 2, 1, 198, 51, 100, 7, 0, 1, 0, 2};
    CHECK(parse(v2(0x11, 0x11, v4)).ec == errc::bad_proxy_header); // version 1 in the binary form
    CHECK(parse(v2(0x31, 0x11, v4)).ec == errc::bad_proxy_header); // version 3
    CHECK(parse(v2(0x22, 0x11, v4)).ec == errc::bad_proxy_header); // command 2
    CHECK(parse(v2(0x21, 0x41, v4)).ec == errc::bad_proxy_header); // family 4
    CHECK(parse(v2(0x21, 0x13, v4)).ec == errc::bad_proxy_header); // transport 3
    CHECK(parse(v2(0x21, 0x11, {192, 0, 2, 1, 198, 51, 100, 7, 0, 1, 0})).ec == errc::bad_proxy_header); // 11 bytes for IPv4
    CHECK(parse(v2(0x21, 0x21, std::vector<std::uint8_t>(35, 0))).ec == errc::bad_proxy_header);         // 35 for IPv6
    CHECK(parse(v2(0x21, 0x31, std::vector<std::uint8_t>(215, 0))).ec == errc::bad_proxy_header);        // 215 for AF_UNIX
    // Refused from its first 16 bytes: no waiting for 64 KiB that will not be read.
    std::string big = v2(0x21, 0x11, std::vector<std::uint8_t>(duplex::proxy_protocol_max_size - 15, 0)).substr(0, 16);
    CHECK(parse(big).ec == errc::bad_proxy_header);
    const std::string largest = v2(0x21, 0x11, std::vector<std::uint8_t>(duplex::proxy_protocol_max_size - 16, 0));
    CHECK(parse(largest).size == duplex::proxy_protocol_max_size);
}

TEST_CASE("PROXY addresses print as Asio prints them (RFC 5952)", "[proxy_protocol]") {
    const auto v6 = [](std::initializer_list<std::uint16_t> groups) {
        std::array<std::uint8_t, 16> a{};
        int i = 0;
        for (std::uint16_t g : groups) a[i++] = static_cast<std::uint8_t>(g >> 8), a[i++] = static_cast<std::uint8_t>(g);
        return duplex::proxy_address_string(a, true);
    };
    CHECK(v6({0, 0, 0, 0, 0, 0, 0, 0}) == "::");
    CHECK(v6({0, 0, 0, 0, 0, 0, 0, 1}) == "::1");
    CHECK(v6({1, 0, 0, 0, 0, 0, 0, 0}) == "1::");
    CHECK(v6({0x2001, 0xdb8, 0, 0, 1, 0, 0, 1}) == "2001:db8::1:0:0:1"); // the first of two equal runs
    CHECK(v6({0x2001, 0xdb8, 0, 1, 1, 1, 1, 1}) == "2001:db8:0:1:1:1:1:1"); // one zero group stays
    CHECK(v6({0x2001, 0, 0, 1, 0, 0, 0, 1}) == "2001:0:0:1::1");         // the longest run
    CHECK(v6({0xABCD, 0xEF01, 0, 0, 0, 0, 0, 0x0A}) == "abcd:ef01::a");
    std::array<std::uint8_t, 16> a{};
    std::uint8_t parsed6[16];
    for (const char* text : {"::", "::1", "1::", "2001:db8::1:0:0:1", "fe80::1:2", "abcd:ef01::a", "1:2:3:4:5:6:7:8"}) {
        INFO(text);
        REQUIRE(duplex::detail::parse_ipv6(text, parsed6));
        std::copy(parsed6, parsed6 + 16, a.begin());
        CHECK(duplex::proxy_address_string(a, true) == text); // each is already in RFC 5952's form
    }
}
