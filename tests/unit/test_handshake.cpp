// RFC 6455 §4 opening handshake: accept key, server validation and answers,
// subprotocols, the extension grammar, and the client side.
#include <catch2/catch.hpp>

#include <duplex/core/handshake.hpp>

#include <string>
#include <vector>

using duplex::errc;

namespace {

const std::string rfc_request =
    "GET /chat HTTP/1.1\r\n"
    "Host: server.example.com\r\n"
    "Upgrade: websocket\r\n"
    "Connection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    "Origin: http://example.com\r\n"
    "Sec-WebSocket-Protocol: chat, superchat\r\n"
    "Sec-WebSocket-Version: 13\r\n"
    "\r\n";

// The §1.3 answer, with the subprotocol the server picked.
const std::string rfc_response =
    "HTTP/1.1 101 Switching Protocols\r\n"
    "Upgrade: websocket\r\n"
    "Connection: Upgrade\r\n"
    "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
    "Sec-WebSocket-Protocol: chat\r\n"
    "\r\n";

// A request built from lines; each test removes or changes one.
struct request_builder {
    std::string method = "GET";
    std::string target = "/chat";
    std::string version = "HTTP/1.1";
    std::vector<std::string> lines = {
        "Host: server.example.com", "Upgrade: websocket", "Connection: Upgrade",
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version: 13",
    };
    std::string text;
    duplex::http_request req;

    request_builder& without(const std::string& prefix) {
        std::vector<std::string> kept;
        for (auto& l : lines)
            if (l.compare(0, prefix.size(), prefix) != 0) kept.push_back(l);
        lines = kept;
        return *this;
    }
    request_builder& replace(const std::string& prefix, const std::string& line) {
        without(prefix);
        lines.push_back(line);
        return *this;
    }
    request_builder& add(const std::string& line) {
        lines.push_back(line);
        return *this;
    }
    const duplex::http_request& parse() {
        text = method + " " + target + " " + version + "\r\n";
        for (auto& l : lines) text += l + "\r\n";
        text += "\r\n";
        std::error_code ec;
        const std::size_t n = duplex::parse_request(text, req, ec);
        REQUIRE_FALSE(ec);
        REQUIRE(n == text.size());
        return req;
    }
};

duplex::http_response parse_resp(const std::string& text) {
    duplex::http_response resp;
    std::error_code ec;
    const std::size_t n = duplex::parse_response(text, resp, ec);
    REQUIRE_FALSE(ec);
    REQUIRE(n > 0);
    return resp;
}

// Parses an answer we wrote and checks its framing: Content-Length covers the body exactly.
duplex::http_response parse_full_response(const std::string& text, std::string_view* body = nullptr) {
    duplex::http_response resp;
    std::error_code ec;
    const std::size_t n = duplex::parse_response(text, resp, ec);
    REQUIRE_FALSE(ec);
    REQUIRE(n > 0);
    CHECK(resp.header("Content-Length") == std::to_string(text.size() - n));
    if (body) *body = std::string_view(text).substr(n);
    return resp;
}

} // namespace

TEST_CASE("accept key known answers", "[rfc6455][4.2.2][1.3]") {
    CHECK(duplex::accept_key("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    CHECK(duplex::accept_key("x3JJHMbDL1EzLkh9GBhXDw==") == "HSmrc0sMlYUkAGmm5OPpG2HaGWk=");
    CHECK(duplex::accept_key("dGhlIHNhbXBsZSBub25jZQ==").size() == duplex::accept_key_size);
}

TEST_CASE("RFC 6455 §1.3 sample request answered, fed in every split", "[rfc6455][1.3][4.2.2]") {
    const std::vector<std::string> supported = {"chat"};
    auto answer = [&](const duplex::http_request& req) {
        REQUIRE_FALSE(duplex::check_upgrade_request(req));
        REQUIRE(duplex::is_websocket_request(req));
        std::string out = "stale";
        out.clear();
        REQUIRE(duplex::write_accept_response(out, req.header("Sec-WebSocket-Key"),
                                              duplex::select_subprotocol(req, supported)));
        CHECK(out == rfc_response);
    };

    SECTION("two pieces, at every cut") {
        for (std::size_t cut = 1; cut < rfc_request.size(); ++cut) {
            INFO("cut " << cut);
            std::string buf = rfc_request.substr(0, cut);
            duplex::http_request req;
            std::error_code ec;
            REQUIRE(duplex::parse_request(buf, req, ec) == 0);
            REQUIRE_FALSE(ec);
            buf += rfc_request.substr(cut);
            REQUIRE(duplex::parse_request(buf, req, ec) == rfc_request.size());
            REQUIRE_FALSE(ec);
            answer(req);
        }
    }
    SECTION("one byte at a time") {
        std::string buf;
        duplex::http_head_scanner scanner;
        duplex::http_request req;
        std::size_t head = 0;
        for (char c : rfc_request) {
            REQUIRE(head == 0);
            buf += c;
            std::error_code ec;
            head = scanner.scan(buf, ec);
            REQUIRE_FALSE(ec);
            // The stateless parser agrees with the scanner at every step.
            REQUIRE(duplex::parse_request(buf, req, ec) == head);
            REQUIRE_FALSE(ec);
        }
        REQUIRE(head == rfc_request.size());
        answer(req);
    }
}

TEST_CASE("plain HTTP versus an upgrade attempt", "[rfc6455][4.2.1]") {
    duplex::http_request req;
    std::error_code ec;
    const std::string plain = "GET /index.html HTTP/1.1\r\nHost: a\r\nConnection: keep-alive\r\n\r\n";
    REQUIRE(duplex::parse_request(plain, req, ec) > 0);
    CHECK_FALSE(duplex::is_websocket_request(req));
    CHECK(duplex::check_upgrade_request(req) == errc::no_upgrade);

    const std::string h2c = "GET / HTTP/1.1\r\nHost: a\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n";
    REQUIRE(duplex::parse_request(h2c, req, ec) > 0);
    CHECK_FALSE(duplex::is_websocket_request(req));

    const std::string ws = "GET / HTTP/1.1\r\nHost: a\r\nUpgrade: foo, WebSocket\r\n\r\n";
    REQUIRE(duplex::parse_request(ws, req, ec) > 0);
    CHECK(duplex::is_websocket_request(req));
}

TEST_CASE("check_upgrade_request: each failure, its errc and HTTP status", "[rfc6455][4.2.1]") {
    struct failure {
        const char* what;
        request_builder b;
        errc expected;
        int status;
    };
    std::vector<failure> cases;
    auto add = [&](const char* what, request_builder b, errc e, int status) { cases.push_back({what, b, e, status}); };
    {
        request_builder b;
        b.method = "POST";
        add("POST", b, errc::bad_method, 405);
        b.method = "get";
        add("lower-case get (methods are case-sensitive)", b, errc::bad_method, 405);
    }
    {
        request_builder b;
        b.version = "HTTP/1.0";
        add("HTTP/1.0", b, errc::bad_http_version, 400);
    }
    {
        // §4.2.1 item 1: a Request-URI or an absolute http/https URI (RFC 7230 §5.3).
        request_builder b;
        b.target = "*";
        add("asterisk-form target", b, errc::bad_target, 400);
        b.target = "server.example.com:80";
        add("authority-form target", b, errc::bad_target, 400);
        b.target = "ftp://server.example.com/chat";
        add("absolute target, not http(s) or ws(s)", b, errc::bad_target, 400);
        // RFC 7230 §2.7.1: an empty host or userinfo must be rejected.
        b.target = "http:///chat";
        add("absolute target with an empty host", b, errc::bad_target, 400);
        b.target = "http://:80/chat";
        add("absolute target with only a port", b, errc::bad_target, 400);
        b.target = "http://user@server.example.com/chat";
        add("absolute target with userinfo", b, errc::bad_target, 400);
        // RFC 7230 §5.4: Host must be the target's authority (a proxy would check one
        // name, the application the other).
        b.target = "http://internal.example.com/chat";
        add("absolute target naming another host than Host", b, errc::bad_target, 400);
        b.target = "http://server.example.com:8080/chat";
        add("absolute target with a port Host lacks", b, errc::bad_target, 400);
        // RFC 7230 §5.3: no fragment in a request target; a proxy and the application
        // would disagree on the path.
        b.target = "http://server.example.com#/admin";
        add("absolute target with a fragment", b, errc::bad_target, 400);
        b.target = "/chat#x";
        add("path with a fragment", b, errc::bad_target, 400);
    }
    add("no Host", request_builder().without("Host"), errc::no_host, 400);
    add("two Host fields (RFC 7230 §5.4)", request_builder().add("Host: other.example.com"), errc::no_host, 400);
    add("a body by Content-Length (RFC 7230 §3.3.3)", request_builder().add("Content-Length: 5"),
        errc::unexpected_body, 400);
    add("a chunked body", request_builder().add("Transfer-Encoding: chunked"), errc::unexpected_body, 400);
    add("empty Host", request_builder().replace("Host", "Host:"), errc::no_host, 400);
    add("no Upgrade", request_builder().without("Upgrade"), errc::no_upgrade, 400);
    add("Upgrade: h2c", request_builder().replace("Upgrade", "Upgrade: h2c"), errc::no_upgrade, 400);
    add("no Connection", request_builder().without("Connection"), errc::no_connection_upgrade, 400);
    add("Connection: keep-alive", request_builder().replace("Connection", "Connection: keep-alive"),
        errc::no_connection_upgrade, 400);
    add("Connection: upgraded", request_builder().replace("Connection", "Connection: upgraded"),
        errc::no_connection_upgrade, 400);
    add("no version", request_builder().without("Sec-WebSocket-Version"), errc::bad_version, 426);
    add("version 8", request_builder().replace("Sec-WebSocket-Version", "Sec-WebSocket-Version: 8"),
        errc::bad_version, 426);
    add("version 13, 8", request_builder().replace("Sec-WebSocket-Version", "Sec-WebSocket-Version: 13, 8"),
        errc::bad_version, 426);
    add("two version fields", request_builder().add("Sec-WebSocket-Version: 13"), errc::bad_version, 426);
    add("no key", request_builder().without("Sec-WebSocket-Key"), errc::bad_key, 400);
    add("empty key", request_builder().replace("Sec-WebSocket-Key", "Sec-WebSocket-Key:"), errc::bad_key, 400);
    add("15-byte key", request_builder().replace("Sec-WebSocket-Key", "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAA"),
        errc::bad_key, 400);
    add("17-byte key",
        request_builder().replace("Sec-WebSocket-Key", "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAAA="),
        errc::bad_key, 400);
    add("18-byte key, 24 chars, no padding",
        request_builder().replace("Sec-WebSocket-Key", "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAAAA"),
        errc::bad_key, 400);
    add("key not Base64",
        request_builder().replace("Sec-WebSocket-Key", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ!="),
        errc::bad_key, 400);
    add("two keys", request_builder().add("Sec-WebSocket-Key: x3JJHMbDL1EzLkh9GBhXDw=="), errc::bad_key, 400);

    for (auto& c : cases) {
        INFO(c.what);
        const std::error_code ec = duplex::check_upgrade_request(c.b.parse());
        CHECK(ec == c.expected);
        CHECK(ec == duplex::condition::handshake_failed);
        CHECK(duplex::http_status_for(c.expected) == c.status);
    }

    // The baseline passes, also with tokens in other cases and lists.
    CHECK_FALSE(duplex::check_upgrade_request(request_builder().parse()));
    CHECK_FALSE(duplex::check_upgrade_request(request_builder()
                                                  .replace("Upgrade", "upgrade: WEBSOCKET")
                                                  .replace("Connection", "connection: keep-alive, Upgrade")
                                                  .parse()));
    request_builder http12;
    http12.version = "HTTP/1.2";
    CHECK_FALSE(duplex::check_upgrade_request(http12.parse()));
    CHECK_FALSE(duplex::check_upgrade_request(request_builder().add("Content-Length: 0").parse()));
    CHECK_FALSE(duplex::check_upgrade_request(request_builder().add("Content-Length: 00").parse())); // 1*DIGIT
    CHECK(duplex::check_upgrade_request(request_builder().add("Content-Length: 01").parse()) == errc::unexpected_body);
    CHECK(duplex::check_upgrade_request(request_builder().add("Content-Length:").parse()) == errc::unexpected_body);
    {
        // The absolute form passes, and path() and query() see through it (RFC 7230 §5.3.2).
        request_builder b;
        b.target = "HTTP://Server.Example.com:8080/chat?room=1";
        b.replace("Host", "Host: server.example.com:8080"); // the same authority (names are case-insensitive)
        const auto& req = b.parse();
        CHECK_FALSE(duplex::check_upgrade_request(req));
        CHECK(req.path() == "/chat");
        CHECK(req.query() == "room=1");
        CHECK(req.origin_form() == "/chat?room=1");
        b.target = "wss://server.example.com:8080/chat"; // RFC 6455 §3: ws(s) URIs are http(s) ones
        CHECK_FALSE(duplex::check_upgrade_request(b.parse()));
        b.replace("Host", "Host: server.example.com");
        b.target = "https://server.example.com?room=2";
        const auto& bare = b.parse();
        CHECK_FALSE(duplex::check_upgrade_request(bare));
        CHECK(bare.path() == "/");
        CHECK(bare.query() == "room=2");
        b.target = "http://server.example.com";
        CHECK(b.parse().path() == "/");
        b.target = "/chat?room=3";
        CHECK(b.parse().path() == "/chat");
        CHECK(b.parse().query() == "room=3");
    }
}

TEST_CASE("error responses", "[rfc6455][4.2.2][rfc7231]") {
    for (errc e : {errc::bad_method, errc::bad_key, errc::bad_version, errc::header_too_large, errc::forbidden_origin}) {
        const int status = duplex::http_status_for(e);
        INFO(status);
        std::string out = "previous bytes|";
        duplex::write_error_response(out, status);
        REQUIRE(out.compare(0, 15, "previous bytes|") == 0); // appended, not overwritten
        std::string_view body;
        const std::string text = out.substr(15);
        const auto resp = parse_full_response(text, &body);
        CHECK(resp.status == status);
        CHECK(resp.reason == duplex::http_reason_phrase(status));
        CHECK_FALSE(resp.reason.empty());
        CHECK(resp.has_token("Connection", "close"));
        CHECK(resp.header("Content-Type").substr(0, 10) == "text/plain");
        CHECK(body == std::to_string(status) + " " + std::string(duplex::http_reason_phrase(status)) + "\n");
        if (status == 426) {
            CHECK(resp.header("Sec-WebSocket-Version") == "13");
            CHECK(resp.has_token("Upgrade", "websocket"));
            CHECK(resp.has_token("Connection", "upgrade"));
        } else {
            CHECK_FALSE(resp.has_header("Sec-WebSocket-Version"));
            CHECK_FALSE(resp.has_header("Upgrade"));
        }
        CHECK(resp.has_header("Allow") == (status == 405));
    }
    std::string out;
    duplex::write_error_response(out, 400, "missing key");
    std::string_view body;
    const auto resp = parse_full_response(out, &body);
    CHECK(resp.status == 400);
    CHECK(body == "missing key");
}

TEST_CASE("generic HTTP responses and header injection", "[http][rfc7230]") {
    const duplex::header_list extra = {{"Cache-Control", "no-store"}, {"X-Frame-Options", "DENY"}};
    std::string out;
    REQUIRE(duplex::write_http_response(out, 200, "text/html", "<h1>hi</h1>", &extra));
    std::string_view body;
    const auto resp = parse_full_response(out, &body);
    CHECK(resp.status == 200);
    CHECK(resp.reason == "OK");
    CHECK(resp.header("content-type") == "text/html");
    CHECK(resp.header("cache-control") == "no-store");
    CHECK(resp.header("x-frame-options") == "DENY");
    CHECK(body == "<h1>hi</h1>");

    // A value that could end the line is refused and nothing is written.
    const duplex::header_list evil_value = {{"X-A", "ok\r\nSet-Cookie: pwned=1"}};
    const duplex::header_list evil_name = {{"X A", "v"}};
    const duplex::header_list lf_value = {{"X-A", "a\nb"}};
    out = "keep";
    CHECK_FALSE(duplex::write_http_response(out, 200, "text/plain", "x", &evil_value));
    CHECK_FALSE(duplex::write_http_response(out, 200, "text/plain", "x", &evil_name));
    CHECK_FALSE(duplex::write_http_response(out, 200, "text/plain\r\nX: y", "x"));
    CHECK_FALSE(duplex::write_accept_response(out, "dGhlIHNhbXBsZSBub25jZQ==", {}, {}, &lf_value));
    CHECK_FALSE(duplex::write_accept_response(out, "dGhlIHNhbXBsZSBub25jZQ==", "chat\r\nX: y"));
    CHECK(out == "keep");
}

TEST_CASE("accept response with extensions and extra headers", "[rfc6455][4.2.2]") {
    const duplex::header_list extra = {{"Set-Cookie", "sid=1"}};
    std::string out;
    REQUIRE(duplex::write_accept_response(out, "x3JJHMbDL1EzLkh9GBhXDw==", {}, "permessage-deflate", &extra));
    const auto resp = parse_resp(out);
    CHECK(resp.status == 101);
    CHECK(resp.header("Sec-WebSocket-Accept") == "HSmrc0sMlYUkAGmm5OPpG2HaGWk=");
    CHECK_FALSE(resp.has_header("Sec-WebSocket-Protocol")); // none selected: no field
    CHECK(resp.header("Sec-WebSocket-Extensions") == "permessage-deflate");
    CHECK(resp.header("Set-Cookie") == "sid=1");
    CHECK(out.size() == out.find("\r\n\r\n") + 4); // nothing after the head
}

TEST_CASE("subprotocol selection follows the server's preference", "[rfc6455][4.2.2][11.3.4]") {
    auto select = [](std::vector<std::string> request_lines, std::vector<std::string> supported) {
        request_builder b;
        for (auto& l : request_lines) b.add(l);
        const auto& req = b.parse();
        return std::string(duplex::select_subprotocol(req, supported));
    };
    CHECK(select({"Sec-WebSocket-Protocol: chat, superchat"}, {"chat"}) == "chat");
    CHECK(select({"Sec-WebSocket-Protocol: chat, superchat"}, {"superchat", "chat"}) == "superchat");
    CHECK(select({"Sec-WebSocket-Protocol: chat, superchat"}, {"chat", "superchat"}) == "chat");
    CHECK(select({"Sec-WebSocket-Protocol: superchat"}, {"chat"}).empty());
    CHECK(select({}, {"chat"}).empty());
    CHECK(select({"Sec-WebSocket-Protocol: chat"}, {}).empty());
    CHECK(select({"Sec-WebSocket-Protocol: Chat"}, {"chat"}).empty()); // case-sensitive
    CHECK(select({"Sec-WebSocket-Protocol: chatty"}, {"chat"}).empty());
    CHECK(select({"Sec-WebSocket-Protocol: v1.a", "sec-websocket-protocol: v2.b"}, {"v2.b", "v1.a"}) == "v2.b");
    CHECK(select({"Sec-WebSocket-Protocol: ,, mqtt ,"}, {"mqtt"}) == "mqtt");
    CHECK(select({"Sec-WebSocket-Protocol: chat"}, {"", "chat"}) == "chat");
}

TEST_CASE("extension grammar", "[rfc6455][9.1]") {
    std::error_code ec;

    SECTION("browser offer: several offers, params with and without values") {
        const auto offers = duplex::parse_extensions(
            "permessage-deflate; client_max_window_bits, permessage-deflate ;server_no_context_takeover ; "
            "client_max_window_bits=\"10\" ,x-webkit-deflate-frame",
            ec);
        REQUIRE_FALSE(ec);
        REQUIRE(offers.size() == 3);
        CHECK(offers[0].name == "permessage-deflate");
        REQUIRE(offers[0].params.size() == 1);
        CHECK(offers[0].params[0].name == "client_max_window_bits");
        CHECK_FALSE(offers[0].params[0].has_value);
        CHECK(offers[0].params[0].value.empty());
        REQUIRE(offers[1].params.size() == 2);
        CHECK(offers[1].params[0].name == "server_no_context_takeover");
        CHECK(offers[1].params[1].name == "client_max_window_bits");
        CHECK(offers[1].params[1].has_value);
        CHECK(offers[1].params[1].value == "10"); // unquoted
        CHECK(offers[2].name == "x-webkit-deflate-frame");
        CHECK(offers[2].params.empty());
    }
    SECTION("token values and whitespace around =") {
        const auto offers = duplex::parse_extensions("foo;a=1;b = 2 ;\tc= \"x.y\"", ec);
        REQUIRE_FALSE(ec);
        REQUIRE(offers.size() == 1);
        REQUIRE(offers[0].params.size() == 3);
        CHECK(offers[0].params[0].value == "1");
        CHECK(offers[0].params[1].value == "2");
        CHECK(offers[0].params[2].value == "x.y");
    }
    SECTION("empty values and empty list elements") {
        CHECK(duplex::parse_extensions("", ec).empty());
        CHECK_FALSE(ec);
        CHECK(duplex::parse_extensions("  ", ec).empty());
        CHECK_FALSE(ec);
        const auto offers = duplex::parse_extensions(", a ,, b,", ec);
        CHECK_FALSE(ec);
        REQUIRE(offers.size() == 2);
        CHECK(offers[1].name == "b");
    }
    SECTION("malformed") {
        for (const char* bad : {
                 ";a",                // no extension name
                 "foo;",              // empty parameter
                 "foo;;a",            //
                 "foo;a=",            // '=' without a value
                 "foo;a=\"1",         // unterminated quote
                 "foo;a=\"\"",        // empty quoted value: not a token
                 "foo;a=\"1 2\"",     // quoted value that is not a token
                 "foo;a=\"\\1\"",     // quoted-pair
                 "foo;a=1 2",         // two values
                 "foo bar",           // missing separator
                 "foo;a=1=2",         //
                 "f(o)o",             // separators in the name
                 "foo;a@b=1",         //
                 "foo;a=b;c=\"d\"e",  // junk after a quoted value
                 "foo\r\n",           // control characters
             }) {
            INFO(bad);
            duplex::parse_extensions(bad, ec);
            CHECK(ec == errc::bad_extension);
        }
    }
    SECTION("several Sec-WebSocket-Extensions fields are one list") {
        request_builder b;
        b.add("Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits");
        b.add("Sec-WebSocket-Extensions: x-foo; a=b");
        const auto& req = b.parse();
        const auto offers = duplex::parse_extensions(req, ec);
        REQUIRE_FALSE(ec);
        REQUIRE(offers.size() == 2);
        CHECK(offers[0].name == "permessage-deflate");
        CHECK(offers[1].name == "x-foo");
        CHECK(offers[1].params[0].value == "b");
        CHECK(req.joined_header("sec-websocket-extensions") ==
              "permessage-deflate; client_max_window_bits, x-foo; a=b");
        request_builder broken;
        broken.add("Sec-WebSocket-Extensions: a").add("Sec-WebSocket-Extensions: b;");
        duplex::parse_extensions(broken.parse(), ec);
        CHECK(ec == errc::bad_extension);
    }
}

TEST_CASE("client request round trip through the server checks", "[rfc6455][4.1]") {
    const std::array<std::uint8_t, 16> nonce = {0x74, 0x68, 0x65, 0x20, 0x73, 0x61, 0x6d, 0x70,
                                                0x6c, 0x65, 0x20, 0x6e, 0x6f, 0x6e, 0x63, 0x65};
    const std::string key = duplex::make_client_key(nonce); // "the sample nonce" from §1.3
    CHECK(key == "dGhlIHNhbXBsZSBub25jZQ==");

    duplex::client_request_options opts;
    opts.host = "server.example.com:8080";
    opts.target = "/chat?room=1";
    opts.subprotocols = {"chat", "superchat"};
    opts.extensions = "permessage-deflate; client_max_window_bits";
    opts.origin = "http://example.com";
    opts.headers = {{"Authorization", "Bearer abc"}};
    std::string out;
    REQUIRE(duplex::write_client_request(out, opts, key));

    duplex::http_request req;
    std::error_code ec;
    REQUIRE(duplex::parse_request(out, req, ec) == out.size());
    REQUIRE_FALSE(ec);
    CHECK_FALSE(duplex::check_upgrade_request(req));
    CHECK(req.target == "/chat?room=1");
    CHECK(req.header("Host") == "server.example.com:8080");
    CHECK(req.origin() == "http://example.com");
    CHECK(req.header("Sec-WebSocket-Protocol") == "chat, superchat");
    CHECK(req.header("Authorization") == "Bearer abc");
    const std::vector<std::string> server_protocols = {"superchat"};
    CHECK(duplex::select_subprotocol(req, server_protocols) == "superchat");
    const auto offers = duplex::parse_extensions(req, ec);
    REQUIRE_FALSE(ec);
    REQUIRE(offers.size() == 1);
    CHECK(offers[0].name == "permessage-deflate");

    // Minimal options: no optional fields are sent.
    duplex::client_request_options minimal;
    minimal.host = "h";
    out.clear();
    REQUIRE(duplex::write_client_request(out, minimal, key));
    REQUIRE(duplex::parse_request(out, req, ec) == out.size());
    CHECK(req.target == "/");
    CHECK_FALSE(req.has_header("Origin"));
    CHECK_FALSE(req.has_header("Sec-WebSocket-Protocol"));
    CHECK_FALSE(req.has_header("Sec-WebSocket-Extensions"));
    CHECK(req.size() == 5);

    // Options that cannot make a valid request.
    auto refused = [&](duplex::client_request_options o) {
        std::string s = "keep";
        const bool ok = duplex::write_client_request(s, o, key);
        return !ok && s == "keep";
    };
    duplex::client_request_options o = minimal;
    o.host.clear();
    CHECK(refused(o));
    o = minimal;
    o.host = "a\r\nX: y";
    CHECK(refused(o));
    o = minimal;
    o.target = "chat";
    CHECK(refused(o));
    o = minimal;
    o.target = "/a b";
    CHECK(refused(o));
    o = minimal;
    o.subprotocols = {"chat", "chat"};
    CHECK(refused(o));
    o = minimal;
    o.subprotocols = {"a,b"};
    CHECK(refused(o));
    o = minimal;
    o.headers = {{"X", "a\nb"}};
    CHECK(refused(o));
}

TEST_CASE("client validates the server's response", "[rfc6455][4.1]") {
    const std::string key = "dGhlIHNhbXBsZSBub25jZQ==";
    const std::vector<std::string> offered = {"chat", "superchat"};
    const std::vector<std::string> none;
    std::string chosen = "stale";

    SECTION("good, with and without a subprotocol") {
        CHECK_FALSE(duplex::check_upgrade_response(parse_resp(rfc_response), key, offered, false, &chosen));
        CHECK(chosen == "chat");
        std::string out;
        REQUIRE(duplex::write_accept_response(out, key));
        CHECK_FALSE(duplex::check_upgrade_response(parse_resp(out), key, offered, false, &chosen));
        CHECK(chosen.empty());
        CHECK_FALSE(duplex::check_upgrade_response(parse_resp(out), key, none, false, nullptr));
        // Header names and tokens in any case.
        const std::string odd = "HTTP/1.1 101 OK\r\nupgrade: WebSocket\r\nconnection: keep-alive, UPGRADE\r\n"
                                "sec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";
        CHECK_FALSE(duplex::check_upgrade_response(parse_resp(odd), key, none, false, &chosen));
    }
    SECTION("wrong accept") {
        std::string out;
        REQUIRE(duplex::write_accept_response(out, "x3JJHMbDL1EzLkh9GBhXDw=="));
        CHECK(duplex::check_upgrade_response(parse_resp(out), key, none, false, &chosen) == errc::bad_accept);
        std::string no_accept = rfc_response;
        no_accept.replace(no_accept.find("Sec-WebSocket-Accept"), 20, "X-Sec-WebSocket-Acc");
        CHECK(duplex::check_upgrade_response(parse_resp(no_accept), key, offered, false, &chosen) == errc::bad_accept);
        std::string lower = rfc_response;
        lower.replace(lower.find("s3pP"), 4, "S3PP"); // Base64 is case-sensitive
        CHECK(duplex::check_upgrade_response(parse_resp(lower), key, offered, false, &chosen) == errc::bad_accept);
        std::string twice = rfc_response;
        twice.insert(twice.size() - 2, "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n");
        CHECK(duplex::check_upgrade_response(parse_resp(twice), key, offered, false, &chosen) == errc::bad_accept);
        CHECK(chosen == "stale"); // untouched on failure
    }
    SECTION("not 101") {
        std::string out;
        duplex::write_error_response(out, 426);
        const std::error_code ec = duplex::check_upgrade_response(parse_resp(out), key, none, false, &chosen);
        CHECK(ec == errc::bad_status);
        CHECK(ec == duplex::condition::handshake_failed);
        out.clear();
        REQUIRE(duplex::write_http_response(out, 200, "text/html", "hi"));
        CHECK(duplex::check_upgrade_response(parse_resp(out), key, none, false, &chosen) == errc::bad_status);
    }
    SECTION("missing Upgrade or Connection") {
        std::string r = rfc_response;
        r.replace(r.find("Upgrade: websocket"), 18, "Upgrade: h2c");
        CHECK(duplex::check_upgrade_response(parse_resp(r), key, offered, false, &chosen) ==
              errc::bad_upgrade_response);
        r = rfc_response;
        r.replace(r.find("Connection: Upgrade"), 19, "Connection: close");
        CHECK(duplex::check_upgrade_response(parse_resp(r), key, offered, false, &chosen) ==
              errc::bad_connection_response);
    }
    SECTION("unoffered subprotocol") {
        std::string out;
        REQUIRE(duplex::write_accept_response(out, key, "mqtt"));
        CHECK(duplex::check_upgrade_response(parse_resp(out), key, offered, false, &chosen) == errc::bad_subprotocol);
        CHECK(duplex::check_upgrade_response(parse_resp(rfc_response), key, none, false, &chosen) ==
              errc::bad_subprotocol); // none offered, one answered
        out.clear();
        REQUIRE(duplex::write_accept_response(out, key, "chat, superchat")); // a list is not a choice
        CHECK(duplex::check_upgrade_response(parse_resp(out), key, offered, false, &chosen) == errc::bad_subprotocol);
        out.clear();
        REQUIRE(duplex::write_accept_response(out, key, "Chat"));
        CHECK(duplex::check_upgrade_response(parse_resp(out), key, offered, false, &chosen) == errc::bad_subprotocol);
    }
    SECTION("extensions") {
        std::string out;
        REQUIRE(duplex::write_accept_response(out, key, {}, "permessage-deflate"));
        CHECK(duplex::check_upgrade_response(parse_resp(out), key, none, false, &chosen) == errc::bad_extension);
        CHECK_FALSE(duplex::check_upgrade_response(parse_resp(out), key, none, true, &chosen));
        out.clear();
        REQUIRE(duplex::write_accept_response(out, key, {}, "permessage-deflate;"));
        CHECK(duplex::check_upgrade_response(parse_resp(out), key, none, true, &chosen) == errc::bad_extension);
    }
}

TEST_CASE("write_error_response: extra headers on a refusal (a redirect, a challenge)", "[handshake][http]") {
    std::string out;
    const duplex::header_list redirect{{"Location", "ws://elsewhere.example/chat"}};
    REQUIRE(duplex::write_error_response(out, 307, {}, &redirect));
    CHECK(out.rfind("HTTP/1.1 307 Temporary Redirect\r\n", 0) == 0);
    CHECK(out.find("\r\nLocation: ws://elsewhere.example/chat\r\n") != std::string::npos);
    CHECK(out.find("\r\nConnection: close\r\n") != std::string::npos);
    duplex::http_response r;
    std::error_code ec;
    REQUIRE(duplex::parse_response(out, r, ec) != 0);
    CHECK(r.header("Location") == "ws://elsewhere.example/chat");
    // A header that would split the response is refused, and nothing is written.
    std::string unsafe_out;
    const duplex::header_list unsafe{{"Location", "/x\r\nSet-Cookie: a=b"}};
    CHECK_FALSE(duplex::write_error_response(unsafe_out, 302, {}, &unsafe));
    CHECK(unsafe_out.empty());
}
