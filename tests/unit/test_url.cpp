// ws:// and wss:// URL parsing (RFC 6455 §3).
#include <catch2/catch.hpp>

#include <duplex/url.hpp>

#include <string>

namespace {
duplex::url parse_ok(const std::string& text) {
    duplex::url u;
    const auto ec = duplex::parse_url(text, u);
    INFO(text << " -> " << ec.message());
    REQUIRE_FALSE(ec);
    return u;
}
} // namespace

TEST_CASE("url: ws and wss with host names", "[url]") {
    auto u = parse_ok("ws://example.com/chat");
    CHECK_FALSE(u.secure);
    CHECK(u.host == "example.com");
    CHECK(u.port == 80);
    CHECK(u.target == "/chat");
    CHECK(u.host_header() == "example.com");
    CHECK(u.str() == "ws://example.com/chat");

    u = parse_ok("wss://example.com/chat");
    CHECK(u.secure);
    CHECK(u.port == 443);
    CHECK(u.host_header() == "example.com");

    u = parse_ok("WSS://Example.COM:8443/Path?Q=A");
    CHECK(u.secure);
    CHECK(u.host == "example.com");  // host names are case-insensitive
    CHECK(u.port == 8443);
    CHECK(u.target == "/Path?Q=A");  // the target is not
    CHECK(u.host_header() == "example.com:8443");
    CHECK(u.str() == "wss://example.com:8443/Path?Q=A");

    u = parse_ok("ws://my-host_1.local~x:9001/");
    CHECK(u.host == "my-host_1.local~x");
    CHECK(u.port == 9001);
}

TEST_CASE("url: default ports and explicit default ports", "[url]") {
    CHECK(parse_ok("ws://h:80/").host_header() == "h");
    CHECK(parse_ok("wss://h:443/").host_header() == "h");
    CHECK(parse_ok("ws://h:443/").host_header() == "h:443");
    CHECK(parse_ok("wss://h:80/").host_header() == "h:80");
    auto u = parse_ok("ws://h:/x"); // empty port: the default (WHATWG)
    CHECK(u.port == 80);
    CHECK(parse_ok("ws://h:1/").port == 1);
    CHECK(parse_ok("ws://h:65535/").port == 65535);
    CHECK(parse_ok("ws://h:00080/").port == 80);
}

TEST_CASE("url: path and query", "[url]") {
    CHECK(parse_ok("ws://h").target == "/");
    CHECK(parse_ok("ws://h:9001").target == "/");
    CHECK(parse_ok("ws://h/").target == "/");
    CHECK(parse_ok("ws://h?x=1").target == "/?x=1");
    CHECK(parse_ok("ws://h:9001?x=1").target == "/?x=1");
    CHECK(parse_ok("ws://h/runCase?case=3&agent=duplex").target == "/runCase?case=3&agent=duplex");
    CHECK(parse_ok("ws://h/a/b/c/").target == "/a/b/c/");
    CHECK(parse_ok("ws://h/?").target == "/?");
    CHECK(parse_ok("ws://h/%41").target == "/%41");  // kept as written
    // Bytes a request target cannot hold are percent-encoded.
    CHECK(parse_ok("ws://h/caf\xC3\xA9").target == "/caf%C3%A9");
    CHECK(parse_ok(std::string("ws://h/a\x7F" "b")).target == "/a%7Fb");
    CHECK(parse_ok(std::string("ws://h/a\x01" "b")).target == "/a%01b");
}

TEST_CASE("url: IPv4 and IPv6 literals", "[url]") {
    CHECK(parse_ok("ws://1.2.3.4./").host == "1.2.3.4"); // a dot after a dotted quad is dropped (WHATWG URL)
    auto u = parse_ok("ws://127.0.0.1:9001/x");
    CHECK(u.host == "127.0.0.1");
    CHECK_FALSE(u.is_ipv6());
    CHECK(u.host_header() == "127.0.0.1:9001");

    u = parse_ok("ws://[::1]:9001/x");
    CHECK(u.host == "::1");  // without brackets, as the resolver wants it
    CHECK(u.is_ipv6());
    CHECK(u.port == 9001);
    CHECK(u.target == "/x");
    CHECK(u.host_header() == "[::1]:9001");
    CHECK(u.str() == "ws://[::1]:9001/x");

    u = parse_ok("wss://[2001:DB8::A]");
    CHECK(u.host == "2001:db8::a");
    CHECK(u.port == 443);
    CHECK(u.host_header() == "[2001:db8::a]");
    CHECK(u.target == "/");

    // Names that only look numeric in part are names.
    for (const char* name : {"ws://1.example.com/", "ws://example.com1/", "ws://0xcafe.example/", "ws://123abc/",
                             "ws://example.com./"}) {
        INFO(name);
        CHECK_FALSE(duplex::parse_url(name, u));
    }
    for (const char* ok : {"ws://[::]/", "ws://[1::]/", "ws://[1:2:3:4:5:6:7:8]/", "ws://[1::8]/",
                           "ws://[::ffff:192.0.2.1]/", "ws://[64:ff9b::192.0.2.33]:80/", "ws://[1:2:3:4:5:6:7::]/",
                           "ws://[fe80::1]?q"}) {
        INFO(ok);
        CHECK_FALSE(duplex::parse_url(ok, u));
    }
}

TEST_CASE("url: rejected", "[url]") {
    const char* bad[] = {
        "",
        "example.com",
        "ws:/example.com",
        "ws:example.com",
        "http://example.com/",         // other schemes
        "https://example.com/",
        "ftp://example.com/",
        "wss+unix://x/",
        "ws://",                        // no host
        "ws:///path",
        "ws://:9001/",
        "ws://?x",
        "ws://user@example.com/",       // userinfo
        "ws://user:pass@example.com/",
        "ws://example.com/#frag",       // fragments (RFC 6455 §3)
        "ws://example.com#",
        "ws://h:0/",                    // ports
        "ws://h:65536/",
        "ws://h:123456/",
        "ws://h:-1/",
        "ws://h:8o/",
        "ws://h:80:81/",
        "ws://h :80/",                  // whitespace, bad host characters
        " ws://h/",
        "ws://h/a b",
        "ws://h/a\tb",
        "ws://ex%41mple.com/",
        "ws://caf\xC3\xA9.com/",
        "ws://h!/",
        "ws://127.1/",                  // IPv4 in the old forms libc would read (not dotted-quad)
        "ws://2130706433/",
        "ws://0x7f.0.0.1/",
        "ws://localhost.0x7f/",
        "ws://010.0.0.1/",              // octal: libc connects to 8.0.0.1
        "ws://127.0.0.256/",
        "ws://1.2.3.4.5/",
        "ws://example.123/",
        "ws://[::1/",                   // IPv6 literals
        "ws://[::1]x/",
        "ws://[]/",
        "ws://[1:2:3:4:5:6:7:8:9]/",
        "ws://[1:2:3:4:5:6:7]/",
        "ws://[1::2::3]/",
        "ws://[:1]/",
        "ws://[1:]/",
        "ws://[12345::]/",
        "ws://[g::1]/",
        "ws://[::1%25eth0]/",           // zone ids
        "ws://[::256.0.0.1]/",
        "ws://[::1.2.3]/",
        "ws://[example.com]/",
        "ws://::1/",                    // IPv6 without brackets
    };
    for (const char* text : bad) {
        INFO("'" << text << "'");
        duplex::url u;
        const auto ec = duplex::parse_url(text, u);
        CHECK(ec == duplex::errc::bad_url);
    }
    CHECK_THROWS_AS(duplex::parse_url("http://x/"), duplex::error);
    CHECK(duplex::parse_url("ws://x:81/y").port == 81);
}

// RFC 6455 §4.1: "the server might redirect the client using a 3xx status code (but
// clients are not required to follow them)"; where to is the Location (RFC 9110 §10.2.2).
TEST_CASE("resolve_redirect: where a Location sends a client (client_options::max_redirects)", "[url][redirect]") {
    const duplex::url from = parse_ok("ws://example.com:8080/chat?room=1");
    const duplex::url secure = parse_ok("wss://example.com/chat");
    const auto to = [](const duplex::url& f, const std::string& location) {
        duplex::url u;
        const std::error_code ec = duplex::resolve_redirect(f, location, u);
        INFO(location << " -> " << ec.message());
        REQUIRE_FALSE(ec);
        return u.str();
    };
    CHECK(to(from, "ws://other.example/x") == "ws://other.example/x");
    CHECK(to(from, "wss://other.example:9443/x?y") == "wss://other.example:9443/x?y");
    CHECK(to(from, "WSS://Other.Example/x") == "wss://other.example/x");
    CHECK(to(from, "http://other.example/x") == "ws://other.example/x");    // web servers write http(s)
    CHECK(to(from, "https://other.example/x") == "wss://other.example/x");
    CHECK(to(from, "/elsewhere?z=2") == "ws://example.com:8080/elsewhere?z=2"); // an absolute path: same host
    CHECK(to(from, "/next#fragment") == "ws://example.com:8080/next");          // the fragment is dropped
    CHECK(to(secure, "/next") == "wss://example.com/next");
    CHECK(to(secure, "wss://a.example/") == "wss://a.example/");
    CHECK(to(from, "ws://[::1]:9000/v6") == "ws://[::1]:9000/v6");

    const auto refused = [](const duplex::url& f, const std::string& location) {
        duplex::url u = parse_ok("ws://unchanged.example/");
        INFO(location);
        CHECK(duplex::resolve_redirect(f, location, u) == duplex::errc::bad_redirect);
        CHECK(u.host == "unchanged.example"); // untouched on failure
    };
    refused(secure, "ws://example.com/chat");   // wss:// to ws://: TLS would be lost
    refused(secure, "http://example.com/chat"); // the same, written as http://
    refused(from, "");                          // no Location
    refused(from, "next");                      // a relative path
    refused(from, "./next");
    refused(from, "//other.example/x");          // a network-path reference
    refused(from, "ftp://example.com/x");
    refused(from, "ws://user@example.com/x");   // userinfo (parse_url refuses it)
    refused(from, "ws://exa mple.com/x");
    refused(from, "ws://example.com:99999/x");
    refused(from, "/a b");                      // whitespace in the path
}
