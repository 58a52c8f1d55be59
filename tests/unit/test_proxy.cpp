// The sans-I/O parts of proxy tunnels (core/proxy.hpp): HTTP CONNECT (RFC 9110 §9.3.6)
// and SOCKS5 (RFC 1928, RFC 1929); and proxy URLs (url.hpp). The client going through a proxy is in test_client.cpp.
#include <catch2/catch.hpp>

#include <duplex/core/proxy.hpp>
#include <duplex/url.hpp>

#include <cstdint>
#include <string>

using duplex::errc;

TEST_CASE("proxy URLs: http:// with optional credentials, nothing else", "[proxy][url]") {
    duplex::proxy_url p;
    REQUIRE_FALSE(duplex::parse_proxy_url("http://proxy.example:3128", p));
    CHECK(p.host == "proxy.example");
    CHECK(p.port == 3128);
    CHECK(p.username.empty());
    CHECK(p.password.empty());

    REQUIRE_FALSE(duplex::parse_proxy_url("HTTP://Proxy.Example/", p)); // scheme and host case-insensitive
    CHECK(p.host == "proxy.example");
    CHECK(p.port == 80); // http's default port

    REQUIRE_FALSE(duplex::parse_proxy_url("10.0.0.1:8080", p)); // the scheme may be left out
    CHECK(p.host == "10.0.0.1");
    CHECK(p.port == 8080);

    REQUIRE_FALSE(duplex::parse_proxy_url("http://[::1]:3128", p));
    CHECK(p.host == "::1");

    // RFC 3986 §3.2.1 userinfo, percent-decoded; the password may hold ':' (RFC 7617 §2).
    REQUIRE_FALSE(duplex::parse_proxy_url("http://al%40ice:p%3Ass:w%25rd@proxy:3128", p));
    CHECK(p.username == "al@ice");
    CHECK(p.password == "p:ss:w%rd");
    CHECK(p.host == "proxy");
    REQUIRE_FALSE(duplex::parse_proxy_url("http://bob@proxy:3128", p)); // a user, no password
    CHECK(p.username == "bob");
    CHECK(p.password.empty());
    REQUIRE_FALSE(duplex::parse_proxy_url("http://proxy:3128", p)); // credentials of an earlier parse are gone
    CHECK(p.username.empty());

    for (const char* bad : {"", "https://proxy:3128", "socks4://proxy:1080", "http://proxy:3128/path", "http://proxy:3128?q",
                            "http://proxy:3128#f", "http://:3128", "http://proxy:0", "http://proxy:65536", "http://proxy:x",
                            "http://@proxy", "http://:pw@proxy", "http://a%3Ab@proxy", "http://a%0d%0aX:1@proxy",
                            "http://a%zz@proxy", "http://a%4@proxy", "http://pro xy:1", "http://[::1:3128", "http://127.1:3128"}) {
        INFO(bad);
        CHECK(duplex::parse_proxy_url(bad, p) == errc::bad_proxy_url);
    }
}

TEST_CASE("proxy URLs: socks5:// and socks5h://, credentials of 1 to 255 bytes (RFC 1929)", "[proxy][url][socks5]") {
    duplex::proxy_url p;
    REQUIRE_FALSE(duplex::parse_proxy_url("socks5://127.0.0.1", p));
    CHECK(p.socks5);
    CHECK(p.port == 1080); // SOCKS's port
    REQUIRE_FALSE(duplex::parse_proxy_url("SOCKS5H://u:p@proxy:9050", p));
    CHECK(p.socks5);
    CHECK(p.username == "u");
    CHECK(p.password == "p");
    REQUIRE_FALSE(duplex::parse_proxy_url("http://proxy", p)); // the kind of an earlier parse is gone
    CHECK_FALSE(p.socks5);
    REQUIRE_FALSE(duplex::parse_proxy_url("socks5://" + std::string(255, 'u') + ":" + std::string(255, 'p') + "@h", p));
    const std::string long_user = "socks5://" + std::string(256, 'u') + ":p@h";
    const std::string long_password = "socks5://u:" + std::string(256, 'p') + "@h";
    for (const std::string& bad : {std::string("socks5://u@h"), std::string("socks5://u:@h"), long_user, long_password,
                                   std::string("socks4a://h"), std::string("socks://h")}) {
        INFO(bad);
        CHECK(duplex::parse_proxy_url(bad, p) == errc::bad_proxy_url);
    }
}

TEST_CASE("SOCKS5 messages: greeting, username/password, CONNECT, replies (RFC 1928, RFC 1929)", "[proxy][socks5]") {
    std::string out;
    duplex::write_socks5_greeting(out, false);
    CHECK(out == std::string("\x05\x01\x00", 3)); // version 5, one method: no authentication
    out.clear();
    duplex::write_socks5_greeting(out, true);
    CHECK(out == std::string("\x05\x02\x00\x02", 4)); // and username/password

    bool send_password = true;
    const std::uint8_t none[2] = {5, 0}, password[2] = {5, 2}, refused[2] = {5, 0xff}, socks4[2] = {4, 0}, gssapi[2] = {5, 1};
    CHECK_FALSE(duplex::check_socks5_method(none, true, send_password));
    CHECK_FALSE(send_password);
    CHECK_FALSE(duplex::check_socks5_method(password, true, send_password));
    CHECK(send_password);
    CHECK(duplex::check_socks5_method(password, false, send_password) == errc::bad_proxy_response); // not offered
    CHECK(duplex::check_socks5_method(refused, false, send_password) == errc::proxy_auth_required);
    CHECK(duplex::check_socks5_method(socks4, false, send_password) == errc::bad_proxy_response);
    CHECK(duplex::check_socks5_method(gssapi, true, send_password) == errc::bad_proxy_response);

    out.clear();
    REQUIRE(duplex::write_socks5_password(out, "al@ice", "pw"));
    CHECK(out == std::string("\x01\x06" "al@ice" "\x02" "pw", 11));
    out = "kept";
    CHECK_FALSE(duplex::write_socks5_password(out, "", "pw"));
    CHECK_FALSE(duplex::write_socks5_password(out, "u", ""));
    CHECK_FALSE(duplex::write_socks5_password(out, std::string(256, 'u'), "pw"));
    CHECK(out == "kept");
    const std::uint8_t ok[2] = {1, 0}, wrong[2] = {1, 1}, bad[2] = {5, 0};
    CHECK_FALSE(duplex::check_socks5_password_reply(ok));
    CHECK(duplex::check_socks5_password_reply(wrong) == errc::proxy_auth_required);
    CHECK(duplex::check_socks5_password_reply(bad) == errc::bad_proxy_response);

    out.clear();
    REQUIRE(duplex::write_socks5_connect(out, "echo.example", 443)); // a name: address type 3
    CHECK(out == std::string("\x05\x01\x00\x03\x0c" "echo.example" "\x01\xbb", 19));
    out.clear();
    const std::uint8_t v4[4] = {127, 0, 0, 1};
    REQUIRE(duplex::write_socks5_connect(out, "127.0.0.1", 9001, v4, 4)); // type 1
    CHECK(out == std::string("\x05\x01\x00\x01\x7f\x00\x00\x01\x23\x29", 10));
    out.clear();
    std::uint8_t v6[16] = {};
    v6[15] = 1;
    REQUIRE(duplex::write_socks5_connect(out, "::1", 80, v6, 16)); // type 4
    CHECK(out.size() == 4 + 16 + 2);
    CHECK(out[3] == '\x04');
    out = "kept";
    CHECK_FALSE(duplex::write_socks5_connect(out, "", 80));
    CHECK_FALSE(duplex::write_socks5_connect(out, std::string(256, 'a'), 80));
    CHECK_FALSE(duplex::write_socks5_connect(out, "x", 80, v4, 5));
    CHECK(out == "kept");

    const std::uint8_t ipv4_reply[5] = {5, 0, 0, 1, 127}, ipv6_reply[5] = {5, 0, 0, 4, 0}, name_reply[5] = {5, 0, 0, 3, 9},
                       bad_version[5] = {4, 0, 0, 1, 0}, bad_type[5] = {5, 0, 0, 2, 0}, bad_reserved[5] = {5, 0, 1, 1, 0};
    CHECK(duplex::socks5_reply_size(ipv4_reply) == 10);
    CHECK(duplex::socks5_reply_size(ipv6_reply) == 22);
    CHECK(duplex::socks5_reply_size(name_reply) == 4 + 1 + 9 + 2);
    CHECK(duplex::socks5_reply_size(bad_version) == 0);
    CHECK(duplex::socks5_reply_size(bad_type) == 0);
    CHECK(duplex::socks5_reply_size(bad_reserved) == 0);
    CHECK_FALSE(duplex::check_socks5_reply(0));
    CHECK(duplex::check_socks5_reply(1) == errc::proxy_refused);   // general failure
    CHECK(duplex::check_socks5_reply(2) == errc::proxy_refused);   // not allowed by ruleset
    CHECK(duplex::check_socks5_reply(3) == std::errc::network_unreachable);
    CHECK(duplex::check_socks5_reply(4) == std::errc::host_unreachable);
    CHECK(duplex::check_socks5_reply(5) == std::errc::connection_refused);
    CHECK(duplex::check_socks5_reply(6) == std::errc::timed_out);
    CHECK(duplex::check_socks5_reply(7) == errc::proxy_refused);   // command not supported
}

TEST_CASE("CONNECT request: authority-form target, Host, Basic credentials (RFC 9110 §9.3.6, RFC 7617)",
          "[proxy][handshake]") {
    std::string out;
    REQUIRE(duplex::write_connect_request(out, "echo.example", 443));
    CHECK(out == "CONNECT echo.example:443 HTTP/1.1\r\nHost: echo.example:443\r\n\r\n");

    out.clear();
    REQUIRE(duplex::write_connect_request(out, "::1", 9001)); // an IPv6 address in brackets (RFC 3986 §3.2.2)
    CHECK(out == "CONNECT [::1]:9001 HTTP/1.1\r\nHost: [::1]:9001\r\n\r\n");

    // RFC 7617 §2's example: Aladdin / open sesame.
    out.clear();
    const duplex::header_list extra{{"User-Agent", "duplex-test"}};
    REQUIRE(duplex::write_connect_request(out, "h", 80, "Aladdin", "open sesame", &extra));
    CHECK(out == "CONNECT h:80 HTTP/1.1\r\nHost: h:80\r\nProxy-Authorization: Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==\r\n"
                 "User-Agent: duplex-test\r\n\r\n");

    // Nothing that could end a line or smuggle a field: false, and nothing appended.
    out = "kept";
    const duplex::header_list injected{{"X", "1\r\nInjected: 2"}};
    CHECK_FALSE(duplex::write_connect_request(out, "", 80));
    CHECK_FALSE(duplex::write_connect_request(out, "h\r\nX: 1", 80));
    CHECK_FALSE(duplex::write_connect_request(out, "h h", 80));
    CHECK_FALSE(duplex::write_connect_request(out, "[::1]", 80)); // brackets are ours to add
    CHECK_FALSE(duplex::write_connect_request(out, "h", 80, "a:b", "c")); // a user-id has no ':' (RFC 7617 §2)
    CHECK_FALSE(duplex::write_connect_request(out, "h", 80, "a", "b\r\nX: 1"));
    CHECK_FALSE(duplex::write_connect_request(out, "h", 80, {}, {}, &injected));
    CHECK(out == "kept");
}

TEST_CASE("CONNECT answer: any 2xx opens the tunnel, 407 asks for credentials", "[proxy][handshake]") {
    const auto check = [](const char* head) {
        duplex::http_response r;
        std::error_code ec;
        REQUIRE(duplex::parse_response(head, r, ec) == std::string(head).size());
        return duplex::check_connect_response(r);
    };
    CHECK_FALSE(check("HTTP/1.1 200 Connection established\r\n\r\n"));
    CHECK_FALSE(check("HTTP/1.0 200 Connection established\r\nProxy-agent: tinyproxy/1.11.1\r\n\r\n"));
    CHECK_FALSE(check("HTTP/1.1 204 No Content\r\n\r\n"));
    CHECK(check("HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"p\"\r\n\r\n") ==
          errc::proxy_auth_required);
    CHECK(check("HTTP/1.1 403 Forbidden\r\n\r\n") == errc::proxy_refused);
    CHECK(check("HTTP/1.1 502 Bad Gateway\r\n\r\n") == errc::proxy_refused);
    CHECK(check("HTTP/1.1 101 Switching Protocols\r\n\r\n") == errc::proxy_refused);
    CHECK(check("HTTP/1.1 301 Moved Permanently\r\nLocation: /x\r\n\r\n") == errc::proxy_refused);
    CHECK(duplex::is_interim_status(100));
    CHECK(duplex::is_interim_status(103));
    CHECK_FALSE(duplex::is_interim_status(101));
    CHECK_FALSE(duplex::is_interim_status(200));
    CHECK(duplex::make_error_code(errc::proxy_auth_required) == duplex::condition::handshake_failed);
    CHECK(duplex::make_error_code(errc::proxy_refused).message().find("proxy") != std::string::npos);
}
