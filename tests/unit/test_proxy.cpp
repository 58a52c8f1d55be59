// The sans-I/O parts of an HTTP CONNECT tunnel (core/proxy.hpp, RFC 9110 §9.3.6) and
// proxy URLs (url.hpp). The client going through a proxy is in test_client.cpp.
#include <catch2/catch.hpp>

#include <duplex/core/proxy.hpp>
#include <duplex/url.hpp>

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

    for (const char* bad : {"", "https://proxy:3128", "socks5://proxy:1080", "http://proxy:3128/path", "http://proxy:3128?q",
                            "http://proxy:3128#f", "http://:3128", "http://proxy:0", "http://proxy:65536", "http://proxy:x",
                            "http://@proxy", "http://:pw@proxy", "http://a%3Ab@proxy", "http://a%0d%0aX:1@proxy",
                            "http://a%zz@proxy", "http://a%4@proxy", "http://pro xy:1", "http://[::1:3128", "http://127.1:3128"}) {
        INFO(bad);
        CHECK(duplex::parse_proxy_url(bad, p) == errc::bad_proxy_url);
    }
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
