// HTTP/1.1 head parser (RFC 7230 §3): incremental use, limits, accessors.
#include <catch2/catch.hpp>

#include <duplex/core/http.hpp>

#include <string>
#include <vector>

using duplex::errc;

namespace {

// RFC 6455 §1.3 sample handshake request.
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

std::error_code parse_error(const std::string& s, const duplex::http_limits& limits = {}) {
    duplex::http_request req;
    std::error_code ec;
    duplex::parse_request(s, req, ec, limits);
    return ec;
}

bool views_inside(std::string_view v, const std::string& buf) {
    return v.empty() || (v.data() >= buf.data() && v.data() + v.size() <= buf.data() + buf.size());
}

} // namespace

TEST_CASE("parse the RFC 6455 sample request", "[http][rfc6455][1.3]") {
    duplex::http_request req;
    std::error_code ec;
    const std::size_t n = duplex::parse_request(rfc_request, req, ec);
    REQUIRE_FALSE(ec);
    CHECK(n == rfc_request.size());
    CHECK(req.method == "GET");
    CHECK(req.target == "/chat");
    CHECK(req.version_minor == 1);
    CHECK(req.size() == 7);
    CHECK(req.header("host") == "server.example.com");
    CHECK(req.header("HOST") == "server.example.com");
    CHECK(req.header("sec-websocket-key") == "dGhlIHNhbXBsZSBub25jZQ==");
    CHECK(req.origin() == "http://example.com");
    CHECK(req.has_header("Sec-WebSocket-Protocol"));
    CHECK_FALSE(req.has_header("Cookie"));
    CHECK(req.header("Cookie").empty());
    CHECK(req.has_token("connection", "UPGRADE"));
    CHECK(req.has_token("Sec-WebSocket-Protocol", "superchat"));
    CHECK_FALSE(req.has_token("Sec-WebSocket-Protocol", "super"));
    // Views point into the caller's buffer (zero copy).
    CHECK(req.method.data() == rfc_request.data());
    for (const auto& f : req) {
        CHECK(views_inside(f.name, rfc_request));
        CHECK(views_inside(f.value, rfc_request));
    }
    // Field order and names kept as sent.
    CHECK(req.fields[0].name == "Host");
    CHECK(req.fields[6].name == "Sec-WebSocket-Version");
}

TEST_CASE("every split of the sample request: need-more until complete", "[http][rfc6455][1.3]") {
    duplex::http_request req;
    for (std::size_t cut = 0; cut < rfc_request.size(); ++cut) {
        std::error_code ec;
        INFO("cut at " << cut);
        CHECK(duplex::parse_request(std::string_view(rfc_request).substr(0, cut), req, ec) == 0);
        CHECK_FALSE(ec);
    }
    std::error_code ec;
    CHECK(duplex::parse_request(rfc_request, req, ec) == rfc_request.size());
    CHECK_FALSE(ec);
}

TEST_CASE("one byte at a time through the scanner, then parse", "[http][rfc6455][1.3]") {
    std::string buf;
    duplex::http_head_scanner scanner;
    std::size_t head = 0;
    std::size_t from = 0;
    std::size_t found_by_find = 0;
    for (char c : rfc_request + "\x81\x05hello") { // a frame right behind the head
        buf += c;
        std::error_code ec;
        if (head == 0) {
            head = scanner.scan(buf, ec);
            REQUIRE_FALSE(ec);
        }
        if (found_by_find == 0) {
            found_by_find = duplex::find_head_end(buf, from);
            from = buf.size();
        }
    }
    CHECK(head == rfc_request.size());
    CHECK(found_by_find == rfc_request.size());
    duplex::http_request req;
    std::error_code ec;
    CHECK(duplex::parse_request(buf, req, ec) == rfc_request.size()); // the frame bytes are left alone
    CHECK_FALSE(ec);
    CHECK(req.header("Sec-WebSocket-Version") == "13");
}

TEST_CASE("find_head_end resumes across a split terminator", "[http]") {
    const std::string s = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
    for (std::size_t first = 0; first <= s.size(); ++first) {
        const std::size_t a = duplex::find_head_end(std::string_view(s).substr(0, first), 0);
        const std::size_t b = a ? a : duplex::find_head_end(s, first);
        INFO("first " << first);
        CHECK(b == s.size());
    }
    CHECK(duplex::find_head_end("abc\n\n", 0) == 0); // bare LFs do not end a head
}

TEST_CASE("header names and tokens are case-insensitive, OWS trimmed", "[http][rfc7230][3.2]") {
    const std::string s =
        "GET /x?y=1&z HTTP/1.1\r\n"
        "hOsT:example.com:8080   \r\n"
        "CONNECTION:  keep-alive,\tUpgrade \r\n"
        "upgrade: WebSocket\r\n"
        "X-Empty:\r\n"
        "X-Multi: a\r\n"
        "x-multi: b, c\r\n"
        "Cookie: sid=abc123; theme=\"dark\"; flag\r\n"
        "Cookie: late=1\r\n"
        "\r\n";
    duplex::http_request req;
    std::error_code ec;
    REQUIRE(duplex::parse_request(s, req, ec) == s.size());
    CHECK(req.header("Host") == "example.com:8080");
    CHECK(req.header("connection") == "keep-alive,\tUpgrade");
    CHECK(req.has_token("Connection", "upgrade"));
    CHECK(req.has_token("Connection", "Keep-Alive"));
    CHECK_FALSE(req.has_token("Connection", "close"));
    CHECK(req.has_token("Upgrade", "websocket"));
    CHECK(req.has_header("x-empty"));
    CHECK(req.header("x-empty").empty());
    CHECK(req.path() == "/x");
    CHECK(req.query() == "y=1&z");
    CHECK(req.header("X-Multi") == "a");
    CHECK(req.header_count("X-MULTI") == 2);
    CHECK(req.joined_header("x-multi") == "a, b, c");
    CHECK(req.has_token("X-Multi", "c"));
    std::vector<std::string_view> values;
    for (std::string_view v : req.header_values("X-Multi")) values.push_back(v);
    CHECK(values == std::vector<std::string_view>{"a", "b, c"});
    CHECK(req.cookie("sid") == "abc123");
    CHECK(req.cookie("theme") == "\"dark\"");
    CHECK(req.cookie("late") == "1");
    CHECK(req.cookie("SID").empty()); // cookie names are case-sensitive
    CHECK(req.cookie("flag").empty());
    CHECK(req.cookie("missing").empty());
}

TEST_CASE("query_param decodes one parameter as URLSearchParams does", "[http]") {
    duplex::http_request req;
    std::error_code ec;
    const std::string s = "GET /ws?room=1&token=a%2Bb+c&empty=&flag&to%6Ben=second&bad=%zz%4&last=%41%62&na%6De=decoded HTTP/1.1\r\n\r\n";
    REQUIRE(duplex::parse_request(s, req, ec) == s.size());
    CHECK(req.query_param("room") == "1");
    CHECK(req.query_param("token") == "a+b c"); // %2B is '+', '+' is a space; the first "token" counts
    CHECK(req.query_param("empty").empty());
    CHECK(req.query_param("flag").empty());
    CHECK(req.query_param("bad") == "%zz%4"); // a '%' without two hex digits stays
    CHECK(req.query_param("last") == "Ab");
    CHECK(req.query_param("name") == "decoded"); // names are compared decoded
    CHECK(req.query_param("missing").empty());
    CHECK(req.query_param("ROOM").empty()); // names are case-sensitive
    CHECK(req.query_param("tok").empty());  // whole names only
    const std::string none = "GET /ws HTTP/1.1\r\n\r\n";
    REQUIRE(duplex::parse_request(none, req, ec) == none.size());
    CHECK(req.query_param("room").empty());
}

TEST_CASE("path and query without a query string", "[http]") {
    duplex::http_request req;
    std::error_code ec;
    const std::string s = "GET /only/path HTTP/1.0\r\n\r\n";
    REQUIRE(duplex::parse_request(s, req, ec) == s.size());
    CHECK(req.path() == "/only/path");
    CHECK(req.query().empty());
    CHECK(req.version_minor == 0);
    CHECK(req.empty());
}

TEST_CASE("malformed request heads", "[http][rfc7230][3]") {
    const char* bad[] = {
        "GET /chat HTTP/1.1\nHost: a\n\n",               // bare LF
        "GET /chat HTTP/1.1\r\nHost: a\n\r\n",           // bare LF in a field
        "GET /chat HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n", // obs-fold
        "GET /chat HTTP/1.1\r\n Host: a\r\n\r\n",        // leading whitespace
        "GET /chat HTTP/1.1\r\nHost : a\r\n\r\n",        // space before colon
        "GET /chat HTTP/1.1\r\n: a\r\n\r\n",             // empty name
        "GET /chat HTTP/1.1\r\nHo\x01st: a\r\n\r\n",     // control char in name
        "GET /chat HTTP/1.1\r\nHo(st: a\r\n\r\n",        // separator in name
        "GET /chat HTTP/1.1\r\nHost: a\x7f\r\n\r\n",     // DEL in value
        "GET /chat HTTP/1.1\r\nHost\r\n\r\n",            // no colon
        "GET  /chat HTTP/1.1\r\n\r\n",                   // double space
        "GET /chat  HTTP/1.1\r\n\r\n",
        "GET /chat HTTP/2.0\r\n\r\n",                    // not HTTP/1.x
        "GET /chat http/1.1\r\n\r\n",                    // version is case-sensitive
        "GET /chat HTTP/1.x\r\n\r\n",
        "GET /chat HTTP/1.1 \r\n\r\n",
        "GET /chat HTTP/1.1\r\r\n\r\n",
        "G(T /chat HTTP/1.1\r\n\r\n",                    // method not a token
        " GET /chat HTTP/1.1\r\n\r\n",
        "\r\nGET /chat HTTP/1.1\r\n\r\n",                // empty line first
        "GET /ch\tat HTTP/1.1\r\n\r\n",                  // control char in target
    };
    for (const char* b : bad) {
        INFO(b);
        CHECK(parse_error(b) == errc::bad_http_request);
    }
    // NUL in a value (a const char* list cannot hold it).
    CHECK(parse_error(std::string("GET / HTTP/1.1\r\nHost: a\0z\r\n\r\n", 29)) == errc::bad_http_request);
    // Errors are reported as soon as the bytes cannot begin a valid head.
    CHECK(parse_error("GET /chat HTTP/1.1\r\nBad Name") == errc::bad_http_request);
    CHECK(parse_error("G(") == errc::bad_http_request);
    CHECK(parse_error("GET / HTTP/3") == errc::bad_http_request);
    // Incomplete but valid so far: no error.
    CHECK_FALSE(parse_error("GET / HTTP/1"));
    CHECK_FALSE(parse_error("GET / HTTP/1.1\r\nHost: a"));
    CHECK_FALSE(parse_error(""));
}

TEST_CASE("431 when the head passes max_header_bytes", "[http][rfc6585][431]") {
    duplex::http_limits limits; // 8 KiB
    std::string buf = "GET /chat HTTP/1.1\r\n";

    SECTION("dribbled in small pieces without ever a CRLFCRLF") {
        duplex::http_head_scanner scanner;
        duplex::http_request req;
        std::error_code scan_ec, parse_ec;
        int pieces = 0;
        while (!scan_ec && buf.size() < 20000) {
            buf += "X-Pad: 0123456789abcdef";  // a header line that never ends
            ++pieces;
            scanner.scan(buf, scan_ec, limits);
            duplex::parse_request(buf, req, parse_ec, limits);
            REQUIRE(static_cast<bool>(scan_ec) == (buf.size() > limits.max_header_bytes));
            REQUIRE(static_cast<bool>(parse_ec) == (buf.size() > limits.max_header_bytes));
        }
        CHECK(scan_ec == errc::header_too_large);
        CHECK(parse_ec == errc::header_too_large);
        CHECK(duplex::http_status_for(errc::header_too_large) == 431);
        CHECK(buf.size() <= limits.max_header_bytes + 23); // stopped at the first piece past the limit
        CHECK(pieces > 300);
    }
    SECTION("a complete head one byte over the limit") {
        std::string head = "GET / HTTP/1.1\r\nX: ";
        head += std::string(limits.max_header_bytes - head.size() - 4, 'a');
        head += "\r\n\r\n";
        REQUIRE(head.size() == limits.max_header_bytes);
        duplex::http_request req;
        std::error_code ec;
        CHECK(duplex::parse_request(head, req, ec, limits) == head.size()); // exactly at the limit: fine
        CHECK_FALSE(ec);
        head.insert(20, "a");
        CHECK(duplex::parse_request(head, req, ec, limits) == 0);
        CHECK(ec == errc::header_too_large);
        duplex::http_head_scanner scanner;
        CHECK(scanner.scan(head, ec, limits) == 0);
        CHECK(ec == errc::header_too_large);
    }
}

TEST_CASE("431 for more header fields than max_header_count", "[http][rfc6585][431]") {
    duplex::http_limits limits;
    limits.max_header_count = 4;
    std::string head = "GET / HTTP/1.1\r\n";
    for (int i = 0; i < 4; ++i) head += "A: b\r\n";
    duplex::http_request req;
    std::error_code ec;
    CHECK(duplex::parse_request(head + "\r\n", req, ec, limits) == head.size() + 2);
    CHECK_FALSE(ec);
    head += "A: b\r\n";
    CHECK(duplex::parse_request(head + "\r\n", req, ec, limits) == 0);
    CHECK(ec == errc::too_many_headers);
    // Already while incomplete, in both the parser and the scanner.
    CHECK(duplex::parse_request(head, req, ec, limits) == 0);
    CHECK(ec == errc::too_many_headers);
    duplex::http_head_scanner scanner;
    CHECK(scanner.scan(head, ec, limits) == 0);
    CHECK(ec == errc::too_many_headers);
    CHECK(duplex::http_status_for(errc::too_many_headers) == 431);
}

TEST_CASE("scanner rejects a bare LF at once", "[http]") {
    duplex::http_head_scanner scanner;
    std::error_code ec;
    CHECK(scanner.scan("GET / HTTP/1.1\n", ec) == 0);
    CHECK(ec == errc::bad_http_request);
}

TEST_CASE("field vector is reused without reallocating", "[http]") {
    duplex::http_request req;
    std::error_code ec;
    REQUIRE(duplex::parse_request(rfc_request, req, ec) > 0);
    const auto* storage = req.fields.data();
    const auto cap = req.fields.capacity();
    REQUIRE(duplex::parse_request(rfc_request, req, ec) > 0);
    CHECK(req.fields.data() == storage);
    CHECK(req.fields.capacity() == cap);
    req.clear();
    CHECK(req.fields.empty());
    CHECK(req.fields.capacity() == cap);
}

TEST_CASE("parse responses", "[http][rfc7230][3.1.2]") {
    const std::string s =
        "HTTP/1.1 101 Switching Protocols\r\n"
        "Upgrade: websocket\r\n"
        "Connection: Upgrade\r\n"
        "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
        "\r\n";
    duplex::http_response resp;
    std::error_code ec;
    const std::string with_frame = s + std::string("\x81\x00", 2); // a frame right behind the head
    REQUIRE(duplex::parse_response(with_frame, resp, ec) == s.size());
    CHECK_FALSE(ec);
    CHECK(resp.status == 101);
    CHECK(resp.reason == "Switching Protocols");
    CHECK(resp.version_minor == 1);
    CHECK(resp.header("sec-websocket-accept") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    for (std::size_t cut = 0; cut < s.size(); ++cut) {
        INFO("cut " << cut);
        CHECK(duplex::parse_response(std::string_view(s).substr(0, cut), resp, ec) == 0);
        CHECK_FALSE(ec);
    }

    CHECK(duplex::parse_response("HTTP/1.1 404\r\n\r\n", resp, ec) == 16); // no reason phrase
    CHECK(resp.status == 404);
    CHECK(resp.reason.empty());
    CHECK(duplex::parse_response("HTTP/1.0 200 \r\n\r\n", resp, ec) == 17); // empty reason phrase
    CHECK(resp.status == 200);
    CHECK(resp.version_minor == 0);

    for (const char* bad : {"HTTP/1.1 99 X\r\n\r\n", "HTTP/1.1 0101 X\r\n\r\n", "HTTP/1.1 1011 X\r\n\r\n",
                            "HTTP/1.1  101 X\r\n\r\n", "HTTP/1.1 10a X\r\n\r\n", "HTTP/1.1 101 X\nY\r\n\r\n",
                            "HTTP/2 101 X\r\n\r\n", "ICY 200 OK\r\n\r\n", "HTTP/1.1 101 X\r\nA B: c\r\n\r\n"}) {
        INFO(bad);
        CHECK(duplex::parse_response(bad, resp, ec) == 0);
        CHECK(ec == errc::bad_http_response); // the server's fault, as the client reports it
    }
}

// RFC 9110 §15.2: interim 1xx answers before the final one are read past.
TEST_CASE("scan_final_response: interim answers erased, the final one parsed, byte by byte too", "[http][rfc9110]") {
    const std::string interim = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n";
    const std::string final_head = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n";
    const std::string after = std::string("\x81\x00", 2);
    for (const std::size_t piece : {std::size_t(1), std::size_t(7), interim.size() + final_head.size() + after.size()}) {
        INFO("pieces of " << piece);
        const std::string all = interim + final_head + after;
        std::string buf;
        duplex::http_head_scanner scanner;
        duplex::http_response resp;
        std::error_code ec;
        std::size_t head = 0;
        for (std::size_t at = 0; at < all.size() && head == 0; at += piece) {
            buf.append(all, at, piece);
            head = duplex::scan_final_response(buf, scanner, resp, ec);
            REQUIRE_FALSE(ec);
        }
        REQUIRE(head == final_head.size());
        CHECK(resp.status == 101);
        CHECK(resp.header("Upgrade") == "websocket");
        CHECK(buf.substr(0, head) == final_head); // the interim answers are gone
    }
    std::string buf = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 1x0 Bad\r\n\r\n";
    duplex::http_head_scanner scanner;
    duplex::http_response resp;
    std::error_code ec;
    CHECK(duplex::scan_final_response(buf, scanner, resp, ec) == 0);
    CHECK(ec == errc::bad_http_response);
    buf = "HTTP/1.1 100 Continue\n\n"; // a bare LF: the scanner's error, as the client reports it
    scanner.reset();
    CHECK(duplex::scan_final_response(buf, scanner, resp, ec) == 0);
    CHECK(ec == errc::bad_http_response);
    buf = "HTTP/1.1 200 OK\r\n\r\n"; // a final answer that is not 101 is the caller's to judge
    scanner.reset();
    CHECK(duplex::scan_final_response(buf, scanner, resp, ec) == buf.size());
    CHECK_FALSE(ec);
    CHECK(resp.status == 200);
}

TEST_CASE("reason phrases", "[http]") {
    CHECK(duplex::http_reason_phrase(101) == "Switching Protocols");
    CHECK(duplex::http_reason_phrase(426) == "Upgrade Required");
    CHECK(duplex::http_reason_phrase(431) == "Request Header Fields Too Large");
    CHECK(duplex::http_reason_phrase(599).empty());
}
