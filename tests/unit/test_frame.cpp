// The frame codec (RFC 6455 §5): header encoding, parser rules, writer,
// incremental parsing at every split point, and a parser that never allocates.
#include <catch2/catch.hpp>

#include <duplex/core/frame.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <new>
#include <random>
#include <sstream>
#include <string>
#include <vector>

using duplex::errc;
using duplex::opcode;
using duplex::parse_event;
using duplex::role;
using kind = duplex::parse_event::kind_t;

namespace {

using bytes = std::vector<std::uint8_t>;

// Raw bytes from a string literal, embedded NULs included.
template <std::size_t N>
bytes raw(const char (&s)[N]) {
    return bytes(s, s + N - 1);
}

bytes cat(std::initializer_list<bytes> parts) {
    bytes out;
    for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
    return out;
}

// Everything a parser reported while reading a byte stream.
struct parse_log {
    struct message {
        opcode op;
        std::string payload;
        bool compressed;
    };
    struct control {
        opcode op;
        std::string payload;
        std::uint16_t close_code;
        std::string close_reason;
    };
    std::vector<message> messages;
    std::vector<control> controls;
    std::string order;      // one letter per completed item: m(essage) or c(ontrol)
    std::size_t data_events = 0;
    std::error_code ec;
    std::size_t error_at = 0; // stream offset just past the bytes consumed when the error came
    std::string problem;    // first broken invariant, empty if none
};

// Feeds `wire` to `parser` in the pieces [cuts[i], cuts[i+1]) (cuts need not
// include 0 or wire.size()), checking the parser's invariants on every call.
template <role R>
parse_log feed(duplex::basic_frame_parser<R>& parser, bytes& wire, std::vector<std::size_t> cuts) {
    parse_log log;
    cuts.push_back(0);
    cuts.push_back(wire.size());
    std::sort(cuts.begin(), cuts.end());
    bool open = false;
    auto note = [&](const char* what) {
        if (log.problem.empty()) log.problem = what;
    };
    for (std::size_t ci = 0; ci + 1 < cuts.size(); ++ci) {
        std::size_t off = cuts[ci];
        const std::size_t end = cuts[ci + 1];
        while (off < end) {
            std::size_t consumed = 12345;
            std::uint8_t* base = wire.data() + off;
            const parse_event ev = parser.parse(base, end - off, consumed);
            if (consumed > end - off) note("consumed more than given");
            if (ev.kind == kind::error) {
                log.ec = ev.ec;
                log.error_at = off + consumed;
                // Sticky: the same error again, nothing consumed.
                std::size_t again = 1;
                const parse_event ev2 = parser.parse(base, end - off, again);
                if (ev2.kind != kind::error || ev2.ec != ev.ec || again != 0) note("error not sticky");
                return log;
            }
            if (consumed == 0) note("event without consuming anything");
            off += consumed;
            switch (ev.kind) {
            case kind::need_more:
                if (off != end) note("need_more before the input was used up");
                break;
            case kind::data:
                log.data_events++;
                if (ev.size > 0 && (ev.data < base || ev.data + ev.size > base + consumed))
                    note("data piece outside the consumed input");
                if (!duplex::is_data(ev.op)) note("data event with a non-data opcode");
                if (ev.message_begin == open) note("message_begin mismatch");
                if (ev.message_end && !ev.frame_end) note("message_end without frame_end");
                if (ev.message_begin) log.messages.push_back({ev.op, {}, ev.compressed});
                if (log.messages.empty()) {
                    note("data before any message");
                    break;
                }
                log.messages.back().payload.append(reinterpret_cast<const char*>(ev.data), ev.size);
                open = !ev.message_end;
                if (ev.message_end) log.order += 'm';
                if (parser.in_message() != open) note("in_message() disagrees");
                break;
            case kind::control:
                if (!duplex::is_control(ev.op)) note("control event with a data opcode");
                if (ev.size > 125) note("control payload over 125");
                log.controls.push_back({ev.op, std::string(reinterpret_cast<const char*>(ev.data), ev.size),
                                        ev.close_code, std::string(ev.close_reason)});
                log.order += 'c';
                break;
            case kind::error: break;
            }
        }
    }
    return log;
}

template <role R>
parse_log feed_all(bytes wire, duplex::frame_parser_options opt = {}) {
    duplex::basic_frame_parser<R> p(opt);
    return feed(p, wire, {});
}

template <role R>
parse_log feed_bytewise(bytes wire, duplex::frame_parser_options opt = {}) {
    duplex::basic_frame_parser<R> p(opt);
    std::vector<std::size_t> cuts(wire.size());
    for (std::size_t i = 0; i < cuts.size(); ++i) cuts[i] = i;
    return feed(p, wire, cuts);
}

// The error (and only the error) from a whole-buffer feed and a byte-wise feed.
// `bytewise_at`: stream offset just past the byte that reveals the error when
// fed one byte at a time (default: the last byte).
template <role R>
void expect_error(const bytes& wire, errc want, duplex::frame_parser_options opt = {},
                  std::size_t bytewise_at = 0) {
    if (bytewise_at == 0) bytewise_at = wire.size();
    const parse_log a = feed_all<R>(wire, opt);
    CHECK(a.problem == "");
    CHECK(a.ec == want);
    CHECK(a.error_at == wire.size()); // the error shows at the last byte given, not later
    const parse_log b = feed_bytewise<R>(wire, opt);
    CHECK(b.problem == "");
    CHECK(b.ec == want);
    CHECK(b.error_at == bytewise_at);
}

// A random string of exactly n bytes that is valid UTF-8 with many multibyte characters.
std::string random_utf8(std::size_t n, std::mt19937& rng) {
    static const char* const chars[] = {"a", "Z", " ", "\xc3\xa9", "\xce\xba", "\xe2\x82\xac", "\xed\x9f\xbf",
                                        "\xf0\x9f\x98\x80", "\xf4\x8f\xbf\xbf"};
    std::string s;
    while (s.size() < n) {
        const std::string c = chars[rng() % 9];
        if (s.size() + c.size() <= n) s += c;
        else s += 'x';
    }
    return s;
}

std::string random_bytes(std::size_t n, std::mt19937& rng) {
    std::string s(n, '\0');
    for (auto& c : s) c = static_cast<char>(rng());
    return s;
}

} // namespace

// ---------------------------------------------------------------------------
// §5.7 examples, byte for byte

TEST_CASE("frame: RFC 6455 §5.7 single-frame unmasked text", "[rfc6455][5.7][frame]") {
    const bytes wire = raw("\x81\x05\x48\x65\x6c\x6c\x6f");
    const parse_log log = feed_all<role::client>(wire);
    REQUIRE(log.problem == "");
    REQUIRE_FALSE(log.ec);
    REQUIRE(log.messages.size() == 1);
    CHECK(log.messages[0].op == opcode::text);
    CHECK(log.messages[0].payload == "Hello");

    duplex::server_frame_writer w;
    bytes out(w.frame_size(5));
    REQUIRE(w.write(out.data(), opcode::text, "Hello", 5) == 7);
    CHECK(out == wire);
}

TEST_CASE("frame: RFC 6455 §5.7 single-frame masked text", "[rfc6455][5.7][frame]") {
    const bytes wire = raw("\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58");
    const parse_log log = feed_all<role::server>(wire);
    REQUIRE(log.problem == "");
    REQUIRE_FALSE(log.ec);
    REQUIRE(log.messages.size() == 1);
    CHECK(log.messages[0].payload == "Hello");

    // The same bytes from write_frame_header + copy_masked.
    const duplex::mask_key key = {0x37, 0xfa, 0x21, 0x3d};
    bytes out(11);
    REQUIRE(duplex::write_frame_header(out.data(), opcode::text, true, 5, &key) == 6);
    duplex::copy_masked(out.data() + 6, reinterpret_cast<const std::uint8_t*>("Hello"), 5, key);
    CHECK(out == wire);
}

TEST_CASE("frame: RFC 6455 §5.7 fragmented unmasked text", "[rfc6455][5.7][5.4][frame]") {
    const bytes wire = raw("\x01\x03\x48\x65\x6c" "\x80\x02\x6c\x6f");
    const parse_log log = feed_all<role::client>(wire);
    REQUIRE(log.problem == "");
    REQUIRE_FALSE(log.ec);
    REQUIRE(log.messages.size() == 1);
    CHECK(log.messages[0].op == opcode::text);
    CHECK(log.messages[0].payload == "Hello");
    CHECK(log.data_events == 2);
}

TEST_CASE("frame: RFC 6455 §5.7 ping and masked pong", "[rfc6455][5.7][5.5.2][5.5.3][frame]") {
    const parse_log ping = feed_all<role::client>(raw("\x89\x05\x48\x65\x6c\x6c\x6f"));
    REQUIRE(ping.controls.size() == 1);
    CHECK(ping.controls[0].op == opcode::ping);
    CHECK(ping.controls[0].payload == "Hello");

    const parse_log pong = feed_bytewise<role::server>(raw("\x8a\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58"));
    REQUIRE(pong.problem == "");
    REQUIRE(pong.controls.size() == 1);
    CHECK(pong.controls[0].op == opcode::pong);
    CHECK(pong.controls[0].payload == "Hello");
}

TEST_CASE("frame: RFC 6455 §5.7 256-byte and 64KiB binary headers", "[rfc6455][5.7][5.2][frame]") {
    std::mt19937 rng(1);
    duplex::server_frame_writer w;
    {
        const std::string payload = random_bytes(256, rng);
        bytes out(w.frame_size(256));
        REQUIRE(out.size() == 4 + 256);
        REQUIRE(w.write(out.data(), opcode::binary, payload.data(), payload.size()) == out.size());
        CHECK(bytes(out.begin(), out.begin() + 4) == raw("\x82\x7e\x01\x00"));
        const parse_log log = feed_all<role::client>(out);
        REQUIRE(log.messages.size() == 1);
        CHECK(log.messages[0].payload == payload);
    }
    {
        const std::string payload = random_bytes(65536, rng);
        bytes out(w.frame_size(65536));
        REQUIRE(out.size() == 10 + 65536);
        REQUIRE(w.write(out.data(), opcode::binary, payload.data(), payload.size()) == out.size());
        CHECK(bytes(out.begin(), out.begin() + 10) == raw("\x82\x7f\x00\x00\x00\x00\x00\x01\x00\x00"));
        const parse_log log = feed_all<role::client>(out);
        REQUIRE(log.messages.size() == 1);
        CHECK(log.messages[0].payload == payload);
    }
}

// ---------------------------------------------------------------------------
// Header encoding

TEST_CASE("frame: header sizes and shortest encodings", "[rfc6455][5.2][frame]") {
    struct row { std::uint64_t size; std::size_t unmasked; };
    for (const row r : {row{0, 2}, row{1, 2}, row{125, 2}, row{126, 4}, row{127, 4}, row{65535, 4}, row{65536, 10},
                        row{70000, 10}, row{1ull << 32, 10}, row{(1ull << 63) - 1, 10}}) {
        CHECK(duplex::frame_header_size(r.size, false) == r.unmasked);
        CHECK(duplex::frame_header_size(r.size, true) == r.unmasked + 4);
        std::uint8_t out[duplex::max_frame_header_size + 2];
        CHECK(duplex::write_frame_header(out, opcode::binary, true, r.size) == r.unmasked);
        const duplex::mask_key key = {1, 2, 3, 4};
        CHECK(duplex::write_frame_header(out, opcode::binary, true, r.size, &key) == r.unmasked + 4);
        CHECK(bytes(out + r.unmasked, out + r.unmasked + 4) == bytes{1, 2, 3, 4});
    }
    std::uint8_t out[14];
    duplex::write_frame_header(out, opcode::continuation, false, 3, nullptr, true);
    CHECK(out[0] == 0x40);
    CHECK(out[1] == 0x03);
    duplex::write_frame_header(out, opcode::pong, true, 0);
    CHECK(out[0] == 0x8a);
    CHECK(out[1] == 0x00);
    CHECK(duplex::server_frame_writer::frame_size(126) == 130);
    CHECK(duplex::client_frame_writer::frame_size(126) == 134);
    CHECK(duplex::client_frame_writer::masks);
    CHECK_FALSE(duplex::server_frame_writer::masks);
}

TEST_CASE("frame: client writer masks every frame with a fresh key", "[rfc6455][5.3][frame]") {
    duplex::client_frame_writer w;
    std::vector<std::uint32_t> keys;
    for (int i = 0; i < 16; ++i) {
        bytes out(w.frame_size(3));
        REQUIRE(w.write(out.data(), opcode::binary, "abc", 3) == 9);
        CHECK(out[0] == 0x82);
        CHECK(out[1] == 0x83);
        std::uint32_t k;
        std::memcpy(&k, out.data() + 2, 4);
        keys.push_back(k);
        const parse_log log = feed_all<role::server>(out);
        REQUIRE(log.messages.size() == 1);
        CHECK(log.messages[0].payload == "abc");
    }
    std::sort(keys.begin(), keys.end());
    CHECK(std::unique(keys.begin(), keys.end()) - keys.begin() >= 15);
    // An empty frame still carries a key.
    bytes out(6);
    CHECK(w.write(out.data(), opcode::ping, nullptr, 0) == 6);
    CHECK(out[1] == 0x80);
}

// ---------------------------------------------------------------------------
// One test per parser rule, with raw bytes. Frames to a server carry a mask
// key (often 00 00 00 00 so the payload reads as plain text).

TEST_CASE("frame: RSV1 without a negotiated extension", "[rfc6455][5.2][frame][error]") {
    expect_error<role::client>(raw("\xc1\x00"), errc::reserved_bits);
    expect_error<role::server>(raw("\xc2\x80\x00\x00\x00\x00"), errc::reserved_bits);
}

TEST_CASE("frame: RSV1 allowed on a data message's first frame only", "[rfc6455][5.2][rfc7692][frame][error]") {
    duplex::frame_parser_options opt;
    opt.allow_rsv1 = true;
    // Accepted on the first frame: the message is flagged compressed, continuations too.
    const parse_log ok = feed_all<role::client>(raw("\x41\x01\x61" "\x80\x01\x62"), opt);
    REQUIRE(ok.problem == "");
    REQUIRE_FALSE(ok.ec);
    REQUIRE(ok.messages.size() == 1);
    CHECK(ok.messages[0].compressed);
    // RSV1 on a continuation frame even when allowed.
    expect_error<role::client>(raw("\x41\x00" "\xc0\x00"), errc::reserved_bits, opt);
    // RSV1 on a control frame even when allowed.
    expect_error<role::client>(raw("\xc9\x00"), errc::reserved_bits, opt);
    expect_error<role::server>(raw("\xc8\x80\x00\x00\x00\x00"), errc::reserved_bits, opt);
}

TEST_CASE("frame: RSV2 and RSV3", "[rfc6455][5.2][frame][error]") {
    duplex::frame_parser_options opt;
    opt.allow_rsv1 = true;
    expect_error<role::client>(raw("\xa1\x00"), errc::reserved_bits, opt);
    expect_error<role::client>(raw("\x91\x00"), errc::reserved_bits, opt);
    expect_error<role::server>(raw("\xb2\x80\x00\x00\x00\x00"), errc::reserved_bits);
}

TEST_CASE("frame: reserved opcodes", "[rfc6455][5.2][frame][error]") {
    for (int op : {0x3, 0x4, 0x5, 0x6, 0x7, 0xb, 0xc, 0xd, 0xe, 0xf}) {
        INFO("opcode " << int(op));
        expect_error<role::client>({static_cast<std::uint8_t>(0x80 | op), 0x00}, errc::reserved_opcode);
        expect_error<role::server>({static_cast<std::uint8_t>(0x80 | op), 0x80, 0, 0, 0, 0}, errc::reserved_opcode);
    }
}

TEST_CASE("frame: fragmented control frame", "[rfc6455][5.5][frame][error]") {
    expect_error<role::client>(raw("\x09\x00"), errc::fragmented_control);
    expect_error<role::server>(raw("\x08\x80\x00\x00\x00\x00"), errc::fragmented_control);
    expect_error<role::client>(raw("\x0a\x01"), errc::fragmented_control);
}

TEST_CASE("frame: control frame over 125 bytes", "[rfc6455][5.5][frame][error]") {
    expect_error<role::client>(raw("\x89\x7e\x00\x7e"), errc::control_too_long);
    expect_error<role::server>(raw("\x88\xfe\x01\x00\x00\x00\x00\x00"), errc::control_too_long);
    // 125 is fine.
    bytes ping = raw("\x89\x7d");
    ping.resize(2 + 125, 'p');
    const parse_log log = feed_all<role::client>(ping);
    REQUIRE(log.controls.size() == 1);
    CHECK(log.controls[0].payload == std::string(125, 'p'));
}

TEST_CASE("frame: length not minimally encoded, or top bit set", "[rfc6455][5.2][frame][error]") {
    expect_error<role::client>(raw("\x82\x7e\x00\x7d"), errc::bad_length);          // 125 in the 16-bit form
    expect_error<role::client>(raw("\x82\x7e\x00\x00"), errc::bad_length);          // 0 in the 16-bit form
    expect_error<role::client>(raw("\x82\x7f\x00\x00\x00\x00\x00\x00\xff\xff"), errc::bad_length); // 65535 in 64 bits
    expect_error<role::client>(raw("\x82\x7f\x00\x00\x00\x00\x00\x00\x00\x05"), errc::bad_length);
    expect_error<role::client>(raw("\x82\x7f\x80\x00\x00\x00\x00\x00\x00\x00"), errc::bad_length); // top bit
    expect_error<role::server>(raw("\x82\xff\xff\xff\xff\xff\xff\xff\xff\xff\x00\x00\x00\x00"), errc::bad_length);
    // The smallest lengths of each form are accepted (header only: need more).
    duplex::client_frame_parser p;
    bytes h = raw("\x82\x7e\x00\x7e");
    CHECK(feed(p, h, {}).ec == std::error_code());
    duplex::client_frame_parser q;
    bytes h2 = raw("\x82\x7f\x00\x00\x00\x00\x00\x01\x00\x00");
    CHECK(feed(q, h2, {}).ec == std::error_code());
}

TEST_CASE("frame: server requires masked frames", "[rfc6455][5.1][5.3][frame][error]") {
    expect_error<role::server>(raw("\x81\x00"), errc::mask_required);
    expect_error<role::server>(raw("\x82\x7e\x01\x00"), errc::mask_required);
    expect_error<role::server>(raw("\x89\x00"), errc::mask_required);
}

TEST_CASE("frame: client refuses masked frames", "[rfc6455][5.1][frame][error]") {
    expect_error<role::client>(raw("\x81\x80\x00\x00\x00\x00"), errc::mask_forbidden);
    expect_error<role::client>(raw("\x81\x85\x37\xfa\x21\x3d"), errc::mask_forbidden);
}

TEST_CASE("frame: continuation with no message to continue", "[rfc6455][5.4][frame][error]") {
    expect_error<role::client>(raw("\x80\x00"), errc::unexpected_continuation);
    expect_error<role::client>(raw("\x00\x00"), errc::unexpected_continuation);
    // ...also right after a finished message.
    expect_error<role::client>(raw("\x81\x01\x61" "\x80\x00"), errc::unexpected_continuation);
    expect_error<role::server>(raw("\x80\x80\x00\x00\x00\x00"), errc::unexpected_continuation);
}

TEST_CASE("frame: new data frame inside a fragmented message", "[rfc6455][5.4][frame][error]") {
    expect_error<role::client>(raw("\x01\x00" "\x81\x00"), errc::expected_continuation);
    expect_error<role::client>(raw("\x02\x01\x61" "\x02\x00"), errc::expected_continuation);
    expect_error<role::server>(raw("\x01\x80\x00\x00\x00\x00" "\x82\x80\x00\x00\x00\x00"), errc::expected_continuation);
}

TEST_CASE("frame: message over max_message_size, refused at the header", "[rfc6455][10.4][frame][error]") {
    duplex::frame_parser_options opt;
    opt.max_message_size = 10;
    // One frame: only its header is given, the error needs no payload.
    expect_error<role::client>(raw("\x82\x0b"), errc::message_too_big, opt);
    // 10 bytes is fine.
    CHECK_FALSE(feed_all<role::client>(cat({raw("\x82\x0a"), bytes(10, 'x')}), opt).ec);
    // Across fragments: 6 + 5 > 10, refused at the second header.
    expect_error<role::client>(cat({raw("\x02\x06"), bytes(6, 'x'), raw("\x80\x05")}), errc::message_too_big, opt);
    // Control frames do not count towards the message.
    const parse_log ok = feed_all<role::client>(
        cat({raw("\x02\x06"), bytes(6, 'x'), raw("\x89\x07pingpin"), raw("\x80\x04"), bytes(4, 'y')}), opt);
    CHECK_FALSE(ok.ec);
    CHECK(ok.order == "cm");
    CHECK(duplex::close_code_for(duplex::make_error_code(errc::message_too_big)) == 1009);
}

TEST_CASE("frame: data frame over max_frame_size, refused at the header", "[rfc6455][10.4][frame][error]") {
    duplex::frame_parser_options opt;
    opt.max_frame_size = 10;
    // Default: no per-frame limit, only max_message_size.
    CHECK(duplex::frame_parser_options{}.max_frame_size == ~std::uint64_t(0));
    // 11 bytes in one frame: refused from the 2-byte header, before any payload.
    expect_error<role::client>(raw("\x82\x0b"), errc::frame_too_big, opt);
    expect_error<role::server>(raw("\x81\x8b\x01\x02\x03\x04"), errc::frame_too_big, opt);
    // 16-bit and 64-bit length forms.
    expect_error<role::client>(raw("\x82\x7e\x01\x00"), errc::frame_too_big, opt);
    expect_error<role::client>(raw("\x82\x7f\x00\x00\x00\x01\x00\x00\x00\x00"), errc::frame_too_big, opt);
    // Exactly the limit is fine.
    CHECK_FALSE(feed_all<role::client>(cat({raw("\x82\x0a"), bytes(10, 'x')}), opt).ec);
    // The limit is per frame: a 30-byte message in three 10-byte fragments passes...
    const parse_log frags = feed_all<role::client>(
        cat({raw("\x01\x0a"), bytes(10, 'a'), raw("\x00\x0a"), bytes(10, 'b'), raw("\x80\x0a"), bytes(10, 'c')}), opt);
    REQUIRE(frags.problem == "");
    CHECK_FALSE(frags.ec);
    REQUIRE(frags.messages.size() == 1);
    CHECK(frags.messages[0].payload == std::string(10, 'a') + std::string(10, 'b') + std::string(10, 'c'));
    // ...and an oversized continuation is refused at its own header.
    expect_error<role::client>(cat({raw("\x01\x0a"), bytes(10, 'a'), raw("\x80\x0b")}), errc::frame_too_big, opt);
    // Control frames have their own 125-byte rule; a 20-byte ping is not a "frame too big".
    const parse_log ping = feed_all<role::client>(cat({raw("\x89\x14"), bytes(20, 'p')}), opt);
    CHECK_FALSE(ping.ec);
    CHECK(ping.order == "c");
    // A frame within max_frame_size still counts towards max_message_size.
    opt.max_message_size = 15;
    expect_error<role::client>(cat({raw("\x02\x0a"), bytes(10, 'x'), raw("\x80\x06")}), errc::message_too_big, opt);
    // Both map to 1009 on the wire, and both are protocol violations.
    CHECK(duplex::close_code_for(duplex::make_error_code(errc::frame_too_big)) == 1009);
    CHECK(duplex::make_error_code(errc::frame_too_big) == duplex::condition::protocol_violation);
    CHECK(duplex::make_error_code(errc::frame_too_big).message() == "frame is larger than the configured maximum");
    // A header claiming more than 4 GiB is refused by the frame limit even with no message limit.
    duplex::frame_parser_options huge;
    huge.max_message_size = ~std::uint64_t(0);
    huge.max_frame_size = 1 << 20;
    expect_error<role::client>(raw("\x82\x7f\x00\x00\x00\x01\x40\x00\x00\x03"), errc::frame_too_big, huge);
    // Changed through options() between frames: applies from the next header.
    duplex::client_frame_parser p;
    bytes first = cat({raw("\x82\x0b"), bytes(11, 'x')});
    CHECK_FALSE(feed(p, first, {}).ec);
    p.options().max_frame_size = 10;
    bytes second = cat({raw("\x82\x0b"), bytes(11, 'x')});
    CHECK(feed(p, second, {}).ec == errc::frame_too_big);
}

TEST_CASE("frame: close payload of one byte", "[rfc6455][5.5.1][frame][error]") {
    // A 1-byte close from a client: masked, key 00 00 00 00.
    expect_error<role::server>(raw("\x88\x81\x00\x00\x00\x00\x01"), errc::bad_close_size);
    expect_error<role::server>(raw("\x88\x81\x11\x22\x33\x44\x10"), errc::bad_close_size);
    expect_error<role::client>(raw("\x88\x01\x01"), errc::bad_close_size);
}

TEST_CASE("frame: invalid close codes", "[rfc6455][7.4][frame][error]") {
    for (int code : {0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535}) {
        INFO("code " << code);
        expect_error<role::client>({0x88, 0x02, std::uint8_t(code >> 8), std::uint8_t(code)}, errc::bad_close_code);
    }
    expect_error<role::server>(raw("\x88\x82\x00\x00\x00\x00\x03\xed"), errc::bad_close_code); // 1005
    CHECK(duplex::close_code_for(duplex::make_error_code(errc::bad_close_code)) == 1002);
}

TEST_CASE("frame: close reason that is not UTF-8", "[rfc6455][5.5.1][frame][error]") {
    expect_error<role::client>(raw("\x88\x04\x03\xe8\xc0\xaf"), errc::invalid_close_reason);
    expect_error<role::client>(raw("\x88\x03\x03\xe8\xce"), errc::invalid_close_reason); // truncated
    expect_error<role::server>(raw("\x88\x85\x00\x00\x00\x00\x03\xe8\xed\xa0\x80"), errc::invalid_close_reason);
    CHECK(duplex::close_code_for(duplex::make_error_code(errc::invalid_close_reason)) == 1007);
}

TEST_CASE("frame: valid close frames", "[rfc6455][5.5.1][frame]") {
    const parse_log empty = feed_all<role::client>(raw("\x88\x00"));
    REQUIRE(empty.controls.size() == 1);
    CHECK(empty.controls[0].close_code == 1005);
    CHECK(empty.controls[0].close_reason == "");
    // Masked, split byte by byte: code 1001 and a UTF-8 reason.
    bytes wire = raw("\x88\x86\x01\x02\x03\x04");
    const bytes plain = raw("\x03\xe9\xce\xba\xce\xb5");
    for (std::size_t i = 0; i < plain.size(); ++i) wire.push_back(std::uint8_t(plain[i] ^ wire[2 + i % 4]));
    const parse_log log = feed_bytewise<role::server>(wire);
    REQUIRE(log.problem == "");
    REQUIRE(log.controls.size() == 1);
    CHECK(log.controls[0].close_code == 1001);
    CHECK(log.controls[0].close_reason == "\xce\xba\xce\xb5");
    CHECK(log.controls[0].payload == std::string(plain.begin(), plain.end()));
}

TEST_CASE("frame: text that is not UTF-8", "[rfc6455][8.1][frame][error]") {
    // \xc0 can never start a character: fed byte by byte, the error comes there.
    expect_error<role::client>(raw("\x81\x02\xc0\xaf"), errc::invalid_utf8, {}, 3);
    // Invalid across two frames.
    expect_error<role::client>(raw("\x01\x01\xce" "\x80\x01\x41"), errc::invalid_utf8);
    // Cut off at the end of the message.
    expect_error<role::client>(raw("\x81\x01\xce"), errc::invalid_utf8);
    expect_error<role::client>(raw("\x01\x01\xce" "\x80\x00"), errc::invalid_utf8);
    expect_error<role::server>(raw("\x81\x82\x00\x00\x00\x00\xc0\xaf"), errc::invalid_utf8, {}, 7);
    CHECK(duplex::close_code_for(duplex::make_error_code(errc::invalid_utf8)) == 1007);
    // Binary is not checked; nor is text when validation is off, nor compressed text.
    CHECK_FALSE(feed_all<role::client>(raw("\x82\x02\xc0\xaf")).ec);
    duplex::frame_parser_options off;
    off.validate_utf8 = false;
    CHECK_FALSE(feed_all<role::client>(raw("\x81\x02\xc0\xaf"), off).ec);
    duplex::frame_parser_options deflate;
    deflate.allow_rsv1 = true;
    CHECK_FALSE(feed_all<role::client>(raw("\xc1\x02\xc0\xaf"), deflate).ec);
}

TEST_CASE("frame: text UTF-8 fails fast, before the frame ends", "[rfc6455][8.1][frame][error]") {
    // A 100-byte text frame whose first bytes are κόσμε then a surrogate: the
    // error comes at the \xa0, with 86 payload bytes still to come.
    bytes wire = cat({raw("\x81\x64"), raw("\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0")});
    {
        duplex::client_frame_parser p;
        bytes prefix(wire.begin(), wire.end() - 1); // up to \xed: still fine
        const parse_log ok = feed(p, prefix, {});
        CHECK_FALSE(ok.ec);
        bytes last = {0xa0};
        const parse_log bad = feed(p, last, {});
        CHECK(bad.ec == errc::invalid_utf8);
    }
    expect_error<role::client>(wire, errc::invalid_utf8);
}

TEST_CASE("frame: errors are sticky; reset() recovers", "[frame][error]") {
    duplex::client_frame_parser p;
    bytes bad = raw("\x83\x00");
    CHECK(feed(p, bad, {}).ec == errc::reserved_opcode);
    bytes good = raw("\x81\x01\x61");
    std::size_t consumed = 99;
    const parse_event ev = p.parse(good.data(), good.size(), consumed);
    CHECK(ev.kind == kind::error);
    CHECK(ev.ec == errc::reserved_opcode);
    CHECK(consumed == 0);
    p.reset();
    const parse_log log = feed(p, good, {});
    REQUIRE(log.messages.size() == 1);
    CHECK(log.messages[0].payload == "a");
}

// ---------------------------------------------------------------------------
// Fragmentation, control frames in between, empty frames

TEST_CASE("frame: control frames inside a fragmented message", "[rfc6455][5.4][5.5][frame]") {
    // "Hel" | ping "p" | "l" | pong (empty) | "o" (FIN) from the server; the
    // same from a client, masked with key 01 02 03 04.
    const bytes server_wire = raw("\x01\x03Hel" "\x89\x01p" "\x00\x01l" "\x8a\x00" "\x80\x01o" "\x81\x02ok");
    bytes client_wire;
    {
        duplex::client_frame_writer w;
        auto put = [&](opcode op, const std::string& s, bool fin) {
            bytes f(w.frame_size(s.size()));
            w.write(f.data(), op, s.data(), s.size(), fin);
            client_wire.insert(client_wire.end(), f.begin(), f.end());
        };
        put(opcode::text, "Hel", false);
        put(opcode::ping, "p", true);
        put(opcode::continuation, "l", false);
        put(opcode::pong, "", true);
        put(opcode::continuation, "o", true);
        put(opcode::text, "ok", true);
    }
    auto check = [](const parse_log& log) {
        REQUIRE(log.problem == "");
        REQUIRE_FALSE(log.ec);
        CHECK(log.order == "ccmm");
        REQUIRE(log.messages.size() == 2);
        CHECK(log.messages[0].payload == "Hello");
        CHECK(log.messages[1].payload == "ok");
        REQUIRE(log.controls.size() == 2);
        CHECK(log.controls[0].op == opcode::ping);
        CHECK(log.controls[0].payload == "p");
        CHECK(log.controls[1].op == opcode::pong);
    };
    for (std::size_t split = 0; split <= server_wire.size(); ++split) {
        duplex::client_frame_parser p;
        bytes w = server_wire;
        check(feed(p, w, {split}));
    }
    for (std::size_t split = 0; split <= client_wire.size(); ++split) {
        duplex::server_frame_parser p;
        bytes w = client_wire;
        check(feed(p, w, {split}));
    }
    check(feed_bytewise<role::client>(server_wire));
    check(feed_bytewise<role::server>(client_wire));
    // A close frame in the middle of a message is still reported.
    const parse_log closing = feed_all<role::client>(raw("\x01\x01H" "\x88\x02\x03\xe8"));
    CHECK(closing.order == "c");
    CHECK(closing.controls[0].close_code == 1000);
}

TEST_CASE("frame: empty data frames", "[rfc6455][5.4][frame]") {
    const parse_log one = feed_all<role::client>(raw("\x82\x00"));
    CHECK(one.data_events == 1);
    REQUIRE(one.messages.size() == 1);
    CHECK(one.messages[0].payload.empty());
    const parse_log three = feed_bytewise<role::client>(raw("\x01\x00" "\x00\x00" "\x80\x00"));
    CHECK(three.problem == "");
    CHECK(three.data_events == 3);
    REQUIRE(three.messages.size() == 1);
    CHECK(three.messages[0].op == opcode::text);
}

TEST_CASE("frame: UTF-8 split across frames at every boundary", "[rfc6455][5.6][8.1][frame]") {
    const std::string s = "a\xc2\xa9\xe2\x82\xac\xf0\x9d\x84\x9e" "b\xce\xba\xf4\x8f\xbf\xbf\xef\xbf\xbd";
    duplex::server_frame_writer w;
    for (std::size_t i = 0; i <= s.size(); ++i) {
        for (std::size_t j = i; j <= s.size(); ++j) {
            bytes wire(3 * 2 + s.size());
            std::size_t n = w.write(wire.data(), opcode::text, s.data(), i, false);
            n += w.write(wire.data() + n, opcode::continuation, s.data() + i, j - i, false);
            n += w.write(wire.data() + n, opcode::continuation, s.data() + j, s.size() - j, true);
            REQUIRE(n == wire.size());
            const parse_log log = feed_all<role::client>(wire);
            REQUIRE(log.problem == "");
            REQUIRE_FALSE(log.ec);
            REQUIRE(log.messages.size() == 1);
            CHECK(log.messages[0].payload == s);
            // Ending the message at a cut inside a character fails at the end.
            const bool at_boundary = (static_cast<std::uint8_t>(s[j == s.size() ? 0 : j]) & 0xC0) != 0x80;
            bytes cut(2 * 2 + j);
            std::size_t m = w.write(cut.data(), opcode::text, s.data(), i, false);
            m += w.write(cut.data() + m, opcode::continuation, s.data() + i, j - i, true);
            const parse_log log2 = feed_all<role::client>(cut);
            CHECK(log2.ec == (at_boundary ? std::error_code() : make_error_code(errc::invalid_utf8)));
        }
    }
}

// ---------------------------------------------------------------------------
// Round trips: writer -> parser, both roles, at every split point

namespace {

template <role Writer>
void round_trip(std::size_t len, opcode op, std::mt19937& rng) {
    constexpr role reader = Writer == role::client ? role::server : role::client;
    const std::string payload = op == opcode::text ? random_utf8(len, rng) : random_bytes(len, rng);
    duplex::basic_frame_writer<Writer> w;
    bytes pristine(w.frame_size(len));
    REQUIRE(w.write(pristine.data(), op, payload.data(), payload.size()) == pristine.size());
    CHECK(((pristine[1] & 0x80) != 0) == (Writer == role::client));

    std::string failure;
    bytes wire;
    auto run = [&](const std::vector<std::size_t>& cuts, const char* how) {
        wire = pristine;
        duplex::basic_frame_parser<reader> p;
        const parse_log log = feed(p, wire, cuts);
        if (!failure.empty()) return;
        std::ostringstream why;
        if (!log.problem.empty()) why << log.problem;
        else if (log.ec) why << log.ec.message();
        else if (log.messages.size() != 1) why << log.messages.size() << " messages";
        else if (log.messages[0].op != op) why << "wrong opcode";
        else if (log.messages[0].payload != payload) why << "payload differs";
        if (!why.str().empty()) {
            std::ostringstream f;
            f << how << " cuts=" << (cuts.empty() ? 0 : cuts[0]) << ": " << why.str();
            failure = f.str();
        }
    };
    // Every split point for frames up to 1 KiB. For the big ones (64 KiB+),
    // every split in the header and the first/last 64 payload bytes, and a
    // stride of 1021 (odd, so all four mask phases) in between: inside the
    // payload the parser state differs only by the byte count, and a full
    // sweep costs minutes under ASan.
    const std::size_t n = pristine.size();
    for (std::size_t split = 0; split <= n && failure.empty(); ++split) {
        const bool edge = split < 14 + 64 || split + 64 >= n;
        if (n <= 1024 + 14 || edge || split % 1021 == 0) run({split}, "split");
    }
    std::vector<std::size_t> every(pristine.size());
    for (std::size_t i = 0; i < every.size(); ++i) every[i] = i;
    run(every, "bytewise");
    INFO("len=" << len << " op=" << int(op) << " writer=" << (Writer == role::client ? "client" : "server"));
    CHECK(failure == "");
}

} // namespace

TEST_CASE("frame: round trip at every split point and byte by byte", "[rfc6455][5.2][5.3][frame][roundtrip]") {
    std::mt19937 rng(20240601);
    for (std::size_t len : {0, 1, 125, 126, 127, 65535, 65536, 70000}) {
        round_trip<role::client>(len, opcode::text, rng);
        round_trip<role::server>(len, opcode::binary, rng);
        if (len < 1024) { // both opcodes for both roles where it is cheap
            round_trip<role::client>(len, opcode::binary, rng);
            round_trip<role::server>(len, opcode::text, rng);
        }
    }
}

TEST_CASE("frame: a control frame whole in the input is unmasked in place", "[rfc6455][5.5][5.3][frame]") {
    // §5.5.2: a ping's payload comes back in the pong; the parser points into the
    // caller's buffer for it rather than copying (a connection keeps no 125-byte buffer).
    // §5.7's masked "Hello", once as a ping and once as a pong.
    bytes wire = raw("\x89\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58");
    const bytes tail = raw("\x8a\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58");
    duplex::server_frame_parser p;
    std::size_t consumed = 0;
    parse_event ev = p.parse(wire.data(), wire.size(), consumed);
    REQUIRE(ev.kind == kind::control);
    CHECK(consumed == wire.size());
    CHECK(ev.data == wire.data() + 6); // 2-byte header + 4-byte key
    CHECK(std::string(reinterpret_cast<const char*>(ev.data), ev.size) == "Hello");
    // Split: gathered across calls, then reported from the parser's own buffer.
    bytes split = tail;
    ev = p.parse(split.data(), 8, consumed);
    CHECK(ev.kind == kind::need_more);
    CHECK(consumed == 8);
    ev = p.parse(split.data() + 8, split.size() - 8, consumed);
    REQUIRE(ev.kind == kind::control);
    CHECK(ev.op == opcode::pong);
    CHECK((ev.data < split.data() || ev.data >= split.data() + split.size()));
    CHECK(std::string(reinterpret_cast<const char*>(ev.data), ev.size) == "Hello");
}

TEST_CASE("frame: header claiming more than 4 GiB", "[rfc6455][5.2][10.4][frame]") {
    const duplex::mask_key key = {9, 8, 7, 6};
    const std::uint64_t huge = (5ull << 30) + 3;
    bytes client_hdr(14), server_hdr(14);
    client_hdr.resize(duplex::write_frame_header(client_hdr.data(), opcode::binary, true, huge, &key));
    server_hdr.resize(duplex::write_frame_header(server_hdr.data(), opcode::binary, true, huge));
    REQUIRE(client_hdr.size() == 14);
    REQUIRE(server_hdr.size() == 10);
    // Default limit (16 MiB): refused from the header alone.
    expect_error<role::server>(client_hdr, errc::message_too_big);
    expect_error<role::client>(server_hdr, errc::message_too_big);
    // 2^63 - 1 is a legal length, still too big; 2^63 is not a legal length.
    bytes max_legal = raw("\x82\x7f\x7f\xff\xff\xff\xff\xff\xff\xff");
    expect_error<role::client>(max_legal, errc::message_too_big);
    expect_error<role::client>(raw("\x82\x7f\x80\x00\x00\x00\x00\x00\x00\x00"), errc::bad_length);
    // With no limit the header is accepted and payload streams in pieces.
    duplex::frame_parser_options unlimited;
    unlimited.max_message_size = ~std::uint64_t(0);
    duplex::server_frame_parser p(unlimited);
    bytes more = cat({client_hdr, bytes(1000, 0x55)});
    const parse_log log = feed(p, more, {client_hdr.size(), 500});
    CHECK(log.problem == "");
    CHECK_FALSE(log.ec);
    CHECK(log.data_events == 2);
    CHECK(log.messages.size() == 1); // begun, not finished
    CHECK(log.messages[0].payload.size() == 1000);
    CHECK(p.in_message());
    duplex::client_frame_parser q(unlimited);
    CHECK(feed(q, max_legal, {}).ec == std::error_code());
}

TEST_CASE("frame: masked payload unmasked in place keeps the phase across pieces", "[rfc6455][5.3][frame]") {
    // A masked 13-byte text frame fed in every pair of cuts inside its payload.
    const std::string text = "phase-checker";
    const duplex::mask_key key = {0xa1, 0xb2, 0xc3, 0xd4};
    bytes pristine(6 + text.size());
    duplex::write_frame_header(pristine.data(), opcode::text, true, text.size(), &key);
    duplex::copy_masked(pristine.data() + 6, reinterpret_cast<const std::uint8_t*>(text.data()), text.size(), key);
    for (std::size_t a = 0; a <= pristine.size(); ++a) {
        for (std::size_t b = a; b <= pristine.size(); ++b) {
            bytes wire = pristine;
            duplex::server_frame_parser p;
            const parse_log log = feed(p, wire, {a, b});
            REQUIRE(log.problem == "");
            REQUIRE(log.messages.size() == 1);
            REQUIRE(log.messages[0].payload == text);
            // Unmasked in place: the payload in the caller's buffer is now plain.
            REQUIRE(std::string(wire.begin() + 6, wire.end()) == text);
        }
    }
}

// ---------------------------------------------------------------------------
// The parser never allocates. Heap allocations are counted on this thread only,
// and only while count_allocs is set: around each parse() call and nothing else.
// Sanitizer builds count through the sanitizer's allocator hooks (every malloc
// and operator new, and ASan keeps its new/delete mismatch checks); other builds
// replace the global operator new/delete, every form, forwarding to malloc/free.
// The replacement is for the whole unit-test binary: with the flag clear (always,
// outside these tests) it is a plain malloc/free allocator.

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define DUPLEX_TEST_ALLOC_HOOKS 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || __has_feature(memory_sanitizer)
#define DUPLEX_TEST_ALLOC_HOOKS 1
#endif
#endif

namespace {
// Constant-initialized and trivial: safe to touch from inside an allocator, on any thread.
thread_local bool count_allocs = false;
thread_local std::size_t allocs_seen = 0;
thread_local std::size_t frees_seen = 0;
} // namespace

#ifdef DUPLEX_TEST_ALLOC_HOOKS
// From <sanitizer/allocator_interface.h>, which GCC does not ship; ASan, TSan and
// MSan runtimes all export it. The hooks cannot be removed, so they are installed once.
extern "C" int __sanitizer_install_malloc_and_free_hooks(void (*malloc_hook)(const volatile void*, std::size_t),
                                                         void (*free_hook)(const volatile void*));
namespace {
void on_malloc(const volatile void*, std::size_t) {
    if (count_allocs) ++allocs_seen;
}
void on_free(const volatile void* p) {
    if (p && count_allocs) ++frees_seen;
}
bool alloc_counting_ready() {
    static const bool installed = __sanitizer_install_malloc_and_free_hooks(on_malloc, on_free) != 0;
    return installed;
}
} // namespace
#else
namespace {
bool alloc_counting_ready() { return true; }

void* counted_malloc(std::size_t n, std::size_t align) noexcept {
    if (n == 0) n = 1;
    if (align <= alignof(std::max_align_t)) return std::malloc(n);
    const std::size_t rounded = (n + align - 1) & ~(align - 1); // aligned_alloc: a multiple of align
    return rounded < n ? nullptr : std::aligned_alloc(align, rounded);
}
// [new.delete.single]: on failure call the new_handler and retry; throw without one.
void* counted_new(std::size_t n, std::size_t align) {
    if (count_allocs) ++allocs_seen;
    while (true) {
        if (void* p = counted_malloc(n, align)) return p;
        const std::new_handler handler = std::get_new_handler();
        if (!handler) throw std::bad_alloc();
        handler();
    }
}
void* counted_new_nothrow(std::size_t n, std::size_t align) noexcept {
    try {
        return counted_new(n, align);
    } catch (...) {
        return nullptr;
    }
}
void counted_delete(void* p) noexcept {
    if (!p) return;
    if (count_allocs) ++frees_seen;
    std::free(p); // malloc and aligned_alloc memory alike
}
constexpr std::size_t plain = alignof(std::max_align_t);
} // namespace

void* operator new(std::size_t n) { return counted_new(n, plain); }
void* operator new[](std::size_t n) { return counted_new(n, plain); }
void* operator new(std::size_t n, std::align_val_t a) { return counted_new(n, static_cast<std::size_t>(a)); }
void* operator new[](std::size_t n, std::align_val_t a) { return counted_new(n, static_cast<std::size_t>(a)); }
void* operator new(std::size_t n, const std::nothrow_t&) noexcept { return counted_new_nothrow(n, plain); }
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept { return counted_new_nothrow(n, plain); }
void* operator new(std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
    return counted_new_nothrow(n, static_cast<std::size_t>(a));
}
void* operator new[](std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
    return counted_new_nothrow(n, static_cast<std::size_t>(a));
}
void operator delete(void* p) noexcept { counted_delete(p); }
void operator delete[](void* p) noexcept { counted_delete(p); }
void operator delete(void* p, std::size_t) noexcept { counted_delete(p); }
void operator delete[](void* p, std::size_t) noexcept { counted_delete(p); }
void operator delete(void* p, std::align_val_t) noexcept { counted_delete(p); }
void operator delete[](void* p, std::align_val_t) noexcept { counted_delete(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { counted_delete(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { counted_delete(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { counted_delete(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { counted_delete(p); }
void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept { counted_delete(p); }
void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept { counted_delete(p); }
#endif

namespace {

// Counts the allocations and frees made on this thread during its lifetime.
class alloc_scope {
public:
    alloc_scope() noexcept : allocs0_(allocs_seen), frees0_(frees_seen) { count_allocs = true; }
    ~alloc_scope() { count_allocs = false; }
    alloc_scope(const alloc_scope&) = delete;
    alloc_scope& operator=(const alloc_scope&) = delete;
    std::size_t allocs() const noexcept { return allocs_seen - allocs0_; }
    std::size_t frees() const noexcept { return frees_seen - frees0_; }

private:
    std::size_t allocs0_, frees0_;
};

struct expected_control {
    opcode op;
    std::string payload;
    std::uint16_t close_code;
    std::string close_reason;
};

// A stream that role R receives, written by the other role's writer (masked
// toward a server), with what the parser should report for it.
template <role R>
struct alloc_stream {
    static constexpr role sender = R == role::server ? role::client : role::server;
    duplex::basic_frame_writer<sender> writer;
    bytes wire;
    std::size_t frames = 0;
    std::vector<std::pair<opcode, std::string>> messages;
    std::vector<expected_control> controls;

    void frame(opcode op, const std::string& payload, bool fin = true) {
        const std::size_t at = wire.size();
        wire.resize(at + writer.frame_size(payload.size()));
        wire.resize(at + writer.write(wire.data() + at, op, payload.data(), payload.size(), fin));
        ++frames;
    }
    void message(opcode op, const std::string& payload) {
        frame(op, payload);
        messages.emplace_back(op, payload);
    }
    void control(opcode op, const std::string& payload) {
        frame(op, payload);
        controls.push_back({op, payload, 0, {}});
    }
    void close(std::uint16_t code, const std::string& reason) {
        std::string payload = {static_cast<char>(code >> 8), static_cast<char>(code & 0xFF)};
        payload += reason;
        frame(opcode::close, payload);
        controls.push_back({opcode::close, payload, code, reason});
    }
};

struct alloc_result {
    std::size_t parse_calls = 0, allocs = 0, frees = 0, data_events = 0;
    std::vector<std::pair<opcode, std::string>> messages;
    std::vector<expected_control> controls;
    std::error_code ec;
    std::string problem;
};

// Feeds a copy of `wire` in pieces of `chunk` bytes (0: all at once), counting
// the heap allocations made inside parse() and nowhere else.
template <role R>
alloc_result parse_counting_allocs(bytes wire, std::size_t chunk, duplex::frame_parser_options opt = {}) {
    alloc_result out;
    out.messages.reserve(64);
    out.controls.reserve(64);
    duplex::basic_frame_parser<R> parser(opt);
    std::size_t off = 0;
    while (off < wire.size() && !out.ec && out.problem.empty()) {
        const std::size_t end = chunk == 0 ? wire.size() : std::min(wire.size(), off + chunk);
        while (off < end) {
            std::size_t consumed = 0;
            parse_event ev;
            {
                alloc_scope scope;
                ev = parser.parse(wire.data() + off, end - off, consumed);
                out.allocs += scope.allocs();
                out.frees += scope.frees();
            }
            ++out.parse_calls;
            if (ev.kind == kind::error) {
                out.ec = ev.ec;
                break;
            }
            if (consumed == 0) {
                out.problem = "event without consuming anything";
                break;
            }
            off += consumed;
            if (ev.kind == kind::data) {
                ++out.data_events;
                if (ev.message_begin) out.messages.emplace_back(ev.op, std::string());
                if (out.messages.empty()) {
                    out.problem = "data before any message";
                    break;
                }
                out.messages.back().second.append(reinterpret_cast<const char*>(ev.data), ev.size);
            } else if (ev.kind == kind::control) {
                out.controls.push_back({ev.op, std::string(reinterpret_cast<const char*>(ev.data), ev.size),
                                        ev.op == opcode::close ? ev.close_code : std::uint16_t(0),
                                        std::string(ev.close_reason)});
            }
        }
    }
    return out;
}

template <role R>
alloc_stream<R> every_length_class(std::mt19937& rng) {
    alloc_stream<R> s;
    // Every length class, text (UTF-8 validated, many multibyte characters) and binary.
    for (std::size_t len : {0, 1, 125, 126, 127, 65535, 65536}) {
        s.message(opcode::text, random_utf8(len, rng));
        s.message(opcode::binary, random_bytes(len, rng));
    }
    // Many small frames across the 7-bit / 16-bit length boundary.
    for (std::size_t i = 0; i < 300; ++i) {
        const std::size_t len = i % 131;
        if (i % 2) s.message(opcode::text, random_utf8(len, rng));
        else s.message(opcode::binary, random_bytes(len, rng));
    }
    // Fragmented text, split inside characters, with control frames between the fragments.
    const std::string text = random_utf8(70000, rng);
    s.frame(opcode::text, text.substr(0, 101), false);
    s.control(opcode::ping, random_bytes(125, rng));
    s.frame(opcode::continuation, text.substr(101, 1), false);
    s.frame(opcode::continuation, std::string(), false);
    s.control(opcode::pong, std::string());
    s.frame(opcode::continuation, text.substr(102, 65536 - 102), false);
    s.frame(opcode::continuation, text.substr(65536), true);
    s.messages.emplace_back(opcode::text, text);
    const std::string blob = random_bytes(300, rng);
    s.frame(opcode::binary, blob.substr(0, 200), false);
    s.close(1001, random_utf8(123, rng)); // largest reason: 2 + 123 = 125 bytes
    s.frame(opcode::continuation, blob.substr(200), true);
    s.messages.emplace_back(opcode::binary, blob);
    s.control(opcode::ping, std::string());
    s.control(opcode::pong, random_bytes(7, rng));
    s.close(1000, "bye \xe2\x80\x94 d\xc3\xa9j\xc3\xa0 vu \xf0\x9f\x98\x80");
    s.frame(opcode::close, std::string()); // no status code: reported as 1005 (§7.1.5)
    s.controls.push_back({opcode::close, std::string(), duplex::close_code::no_status, std::string()});
    return s;
}

template <role R>
void check_no_allocations(std::mt19937& rng) {
    const alloc_stream<R> s = every_length_class<R>(rng);
    for (std::size_t chunk : {std::size_t(0), std::size_t(1), std::size_t(7), std::size_t(4096)}) {
        INFO("role=" << (R == role::server ? "server" : "client") << " chunk=" << chunk);
        const alloc_result r = parse_counting_allocs<R>(s.wire, chunk);
        CHECK(r.problem == "");
        CHECK_FALSE(r.ec);
        CHECK(r.parse_calls >= s.frames);
        CHECK(r.data_events >= s.frames - s.controls.size());
        // Whole control frames are read in place; the first one split across calls
        // makes the parser's 125-byte buffer, kept for the rest (so exactly one
        // allocation when fed in small pieces, none when fed at once).
        if (chunk == 0) CHECK(r.allocs == 0);
        else if (chunk < 8) CHECK(r.allocs == 1);
        else CHECK(r.allocs <= 1);
        CHECK(r.frees == 0);
        CHECK(r.messages == s.messages);
        REQUIRE(r.controls.size() == s.controls.size());
        for (std::size_t i = 0; i < s.controls.size(); ++i) {
            CHECK(r.controls[i].op == s.controls[i].op);
            CHECK(r.controls[i].payload == s.controls[i].payload);
            CHECK(r.controls[i].close_code == s.controls[i].close_code);
            CHECK(r.controls[i].close_reason == s.controls[i].close_reason);
        }
    }
    // Failing is allocation-free too: the error event and the sticky error after it.
    struct bad_case {
        const char* what;
        errc want;
    };
    for (const bad_case& bc : {bad_case{"invalid UTF-8 text", errc::invalid_utf8},
                               bad_case{"close reason not UTF-8", errc::invalid_close_reason},
                               bad_case{"reserved opcode", errc::reserved_opcode},
                               bad_case{"message too big", errc::message_too_big}}) {
        alloc_stream<R> b;
        b.message(opcode::text, random_utf8(300, rng));
        b.control(opcode::ping, "p");
        duplex::frame_parser_options opt;
        switch (bc.want) {
        case errc::invalid_utf8: b.frame(opcode::text, random_utf8(200, rng) + "\xc3\x28" + "tail"); break;
        case errc::invalid_close_reason: b.frame(opcode::close, std::string("\x03\xe8\xff", 3)); break;
        case errc::reserved_opcode: b.frame(static_cast<opcode>(0x3), "x"); break;
        default:
            opt.max_message_size = 1000;
            b.frame(opcode::binary, random_bytes(1001, rng));
            break;
        }
        for (std::size_t chunk : {std::size_t(0), std::size_t(1)}) {
            INFO("role=" << (R == role::server ? "server" : "client") << " " << bc.what << " chunk=" << chunk);
            const alloc_result r = parse_counting_allocs<R>(b.wire, chunk, opt);
            CHECK(r.ec == bc.want);
            CHECK(r.allocs == (chunk == 0 ? 0u : 1u)); // the byte-wise ping's buffer, nothing else
            CHECK(r.frees == 0);
        }
    }
}

} // namespace

TEST_CASE("frame: the parser allocates nothing but one buffer for split control frames", "[rfc6455][5][frame][alloc]") {
    REQUIRE(alloc_counting_ready());
    // The counter sees allocations at all (and of every form), but only while counting.
    {
        void* volatile sink = nullptr;
        std::size_t allocs = 0, frees = 0;
        {
            alloc_scope scope;
            sink = ::operator new(24);
            ::operator delete(sink);
            sink = ::operator new[](24, std::nothrow);
            ::operator delete[](sink);
            sink = ::operator new(64, std::align_val_t(64));
            ::operator delete(sink, std::align_val_t(64));
            sink = ::operator new[](4096, std::align_val_t(4096), std::nothrow);
            ::operator delete[](sink, std::align_val_t(4096));
            allocs = scope.allocs();
            frees = scope.frees();
        }
        CHECK(allocs == 4);
        CHECK(frees == 4);
        const std::size_t before = allocs_seen;
        sink = ::operator new(24);
        ::operator delete(sink);
        CHECK(allocs_seen == before);
    }
    std::mt19937 rng(5);
    check_no_allocations<role::server>(rng);
    check_no_allocations<role::client>(rng);
}
