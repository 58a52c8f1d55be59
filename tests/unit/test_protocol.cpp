// The sans-I/O connection state machine (RFC 6455 §5.4-5.5, §7), driven by
// hand: bytes are moved between a client and a server protocol, time is passed in.
#include <catch2/catch.hpp>

#include <duplex/connection/protocol.hpp>
#include <duplex/hub.hpp>

#include <cstring>
#include <memory>
#include <string>
#include <vector>

using namespace duplex;
using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

namespace {

struct recorder {
    std::vector<std::pair<opcode, std::string>> messages;
    std::vector<std::string> pieces;
    std::vector<std::string> pings, pongs;
    std::vector<std::pair<std::uint16_t, std::string>> closes;
    std::vector<std::error_code> errors;

    void on_message(opcode op, std::string_view data, bool last) {
        pieces.emplace_back(data);
        if (last) messages.emplace_back(op, std::string(data));
    }
    void on_ping(std::string_view p) { pings.emplace_back(p); }
    void on_pong(std::string_view p) { pongs.emplace_back(p); }
    void on_close_frame(std::uint16_t code, std::string_view reason) { closes.emplace_back(code, std::string(reason)); }
    void on_protocol_error(std::error_code ec) { errors.push_back(ec); }
};

// Takes everything queued for writing, as the writer would.
template <role R>
std::string drain(basic_protocol<R>& p) {
    std::lock_guard<send_mutex> lock(p.mutex());
    std::string out;
    send_queue& q = p.queue();
    if (!q.has_pending()) return out;
    const auto& b = q.begin_write();
    for (const auto& s : b.segments) out.append(reinterpret_cast<const char*>(b.data(s)), s.size);
    q.end_write();
    return out;
}

template <role R>
void feed(basic_protocol<R>& p, std::string bytes, recorder& r, clock_type::time_point now = clock_type::now()) {
    p.receive(reinterpret_cast<std::uint8_t*>(bytes.data()), bytes.size(), r, now);
}

// A server's heartbeat ping sent at `t` (unmasked): its 4-byte payload is the low 32 bits of
// the send time's steady-clock count, big-endian, so that its pong can be matched to it.
std::string heartbeat_ping(clock_type::time_point t) {
    const auto v = static_cast<std::uint32_t>(t.time_since_epoch().count());
    return std::string("\x89\x04", 2) + char(v >> 24) + char(v >> 16) + char(v >> 8) + char(v);
}
// A client's pong frame (masked, with a zero key) of `payload`.
std::string client_pong(std::string_view payload) {
    return std::string("\x8a", 1) + char(0x80 | payload.size()) + std::string(4, '\0') + std::string(payload);
}

struct pair_fixture {
    connection_options options;
    server_protocol server{options};
    client_protocol client{options};
    recorder at_server, at_client;
    clock_type::time_point t0 = clock_type::now();

    explicit pair_fixture(connection_options o = {}) : options(o), server(o), client(o) {
        server.open(t0);
        client.open(t0);
    }
    void client_to_server() { feed(server, drain(client), at_server, t0); }
    void server_to_client() { feed(client, drain(server), at_client, t0); }
};

} // namespace

TEST_CASE("text and binary messages cross in both directions", "[protocol][rfc6455][5.6]") {
    pair_fixture f;
    REQUIRE(f.client.state() == ready_state::open);
    REQUIRE_FALSE(f.client.send_text("hello"));
    const std::string bin("\x00\x01\xff", 3);
    REQUIRE_FALSE(f.client.send_binary(bin.data(), bin.size()));
    f.client_to_server();
    REQUIRE(f.at_server.messages.size() == 2);
    CHECK(f.at_server.messages[0] == std::make_pair(opcode::text, std::string("hello")));
    CHECK(f.at_server.messages[1] == std::make_pair(opcode::binary, bin));

    REQUIRE_FALSE(f.server.send_text(""));
    f.server_to_client();
    REQUIRE(f.at_client.messages.size() == 1);
    CHECK(f.at_client.messages[0].second.empty());
}

TEST_CASE("frames from a client are masked, from a server are not", "[protocol][rfc6455][5.1]") {
    pair_fixture f;
    f.client.send_text("abc");
    const std::string c = drain(f.client);
    CHECK((static_cast<unsigned char>(c[1]) & 0x80) != 0);
    f.server.send_text("abc");
    const std::string s = drain(f.server);
    CHECK(s == std::string("\x81\x03" "abc"));
}

TEST_CASE("a fragmented message is reassembled and a ping in its middle is answered", "[protocol][rfc6455][5.4][5.5.2]") {
    pair_fixture f;
    REQUIRE_FALSE(f.client.send_fragment(opcode::text, "Hel", 3, false));
    REQUIRE_FALSE(f.client.ping("mid"));                    // control frames may interleave (§5.4)
    CHECK(f.client.send_text("x") == errc::expected_continuation); // data frames may not
    REQUIRE_FALSE(f.client.send_fragment(opcode::binary, "lo", 2, true)); // op of a continuation is ignored
    f.client_to_server();
    REQUIRE(f.at_server.messages.size() == 1);
    CHECK(f.at_server.messages[0] == std::make_pair(opcode::text, std::string("Hello")));
    REQUIRE(f.at_server.pings == std::vector<std::string>{"mid"});
    f.server_to_client();
    CHECK(f.at_client.pongs == std::vector<std::string>{"mid"}); // same payload (§5.5.3)
}

TEST_CASE("a transcript fed one byte at a time gives the same events", "[protocol][rfc6455][5.4]") {
    pair_fixture f;
    f.client.send_fragment(opcode::text, "ab", 2, false);
    f.client.ping("p");
    f.client.send_fragment(opcode::text, "cd", 2, true);
    f.client.send_binary("\x01", 1);
    std::string wire = drain(f.client);
    for (char& ch : wire) f.server.receive(reinterpret_cast<std::uint8_t*>(&ch), 1, f.at_server, f.t0);
    REQUIRE(f.at_server.messages.size() == 2);
    CHECK(f.at_server.messages[0].second == "abcd");
    CHECK(f.at_server.messages[1].second == "\x01");
    CHECK(f.at_server.pings.size() == 1);
}

TEST_CASE("streaming delivers a message piece by piece", "[protocol][rfc6455][5.4]") {
    connection_options o;
    o.stream_messages = true;
    pair_fixture f(o);
    f.client.send_fragment(opcode::binary, "ab", 2, false);
    f.client.send_fragment(opcode::binary, "cd", 2, true);
    f.client_to_server();
    CHECK(f.at_server.pieces == std::vector<std::string>{"ab", "cd"});
    REQUIRE(f.at_server.messages.size() == 1); // the last piece only
    CHECK(f.at_server.messages[0].second == "cd");
}

TEST_CASE("client-initiated close handshake", "[protocol][rfc6455][7.1.2][5.5.1]") {
    pair_fixture f;
    REQUIRE_FALSE(f.client.close(close_code::normal, "bye"));
    CHECK(f.client.state() == ready_state::closing);
    CHECK(f.client.send_text("late") == errc::closed);      // no data after close (§5.5.1)
    CHECK(f.client.close() == errc::closed);                // closing twice says so
    f.client_to_server();
    REQUIRE(f.at_server.closes.size() == 1);
    CHECK(f.at_server.closes[0] == std::make_pair(std::uint16_t(1000), std::string("bye")));
    CHECK(f.server.state() == ready_state::closing);
    CHECK(f.server.should_close_transport()); // the server closes TCP first (§7.1.1)
    f.server_to_client();                     // the echo
    REQUIRE(f.at_client.closes.size() == 1);
    CHECK(f.at_client.closes[0].first == 1000);
    CHECK_FALSE(f.client.should_close_transport()); // a client waits for the server's TCP close
    CHECK_FALSE(f.server.transport_closed());
    CHECK_FALSE(f.client.transport_closed());
    CHECK(f.client.state() == ready_state::closed);
    CHECK(f.client.was_clean());
    CHECK(f.server.was_clean());
    CHECK(f.server.close_status_code() == 1000);
}

TEST_CASE("server-initiated close and a close with no status code", "[protocol][rfc6455][7.1.5]") {
    pair_fixture f;
    REQUIRE_FALSE(f.server.close(close_code::no_status));
    const std::string wire = drain(f.server);
    CHECK(wire == std::string("\x88\x00", 2)); // empty close payload
    feed(f.client, wire, f.at_client);
    REQUIRE(f.at_client.closes.size() == 1);
    CHECK(f.at_client.closes[0].first == close_code::no_status); // reported as 1005 (§7.1.5)
    f.client_to_server();
    CHECK(f.server.should_close_transport());
}

TEST_CASE("both ends close at once", "[protocol][rfc6455][7.1.3]") {
    pair_fixture f;
    REQUIRE_FALSE(f.client.close(4000, "c"));
    REQUIRE_FALSE(f.server.close(4001, "s"));
    f.client_to_server();
    f.server_to_client();
    CHECK(drain(f.client).empty()); // neither answers a second time
    CHECK(drain(f.server).empty());
    CHECK(f.server.close_status_code() == 4000);
    CHECK(f.client.close_status_code() == 4001);
    CHECK(f.server.was_clean());
    CHECK(f.client.was_clean());
}

TEST_CASE("bytes after a close frame are ignored", "[protocol][rfc6455][5.5.1]") {
    pair_fixture f;
    f.client.close();
    std::string wire = drain(f.client);
    // Hand-craft a masked text frame after the close: it must not be delivered.
    wire += std::string("\x81\x81\x00\x00\x00\x00x", 7);
    feed(f.server, wire, f.at_server);
    CHECK(f.at_server.messages.empty());
    CHECK(f.at_server.errors.empty());
}

TEST_CASE("protocol errors fail the connection with their close code", "[protocol][rfc6455][7.1.7][7.4.1]") {
    SECTION("unmasked frame to a server: 1002") {
        server_protocol s;
        s.open(clock_type::now());
        recorder r;
        feed(s, std::string("\x81\x02hi", 4), r);
        REQUIRE(r.errors.size() == 1);
        CHECK(r.errors[0] == errc::mask_required);
        const std::string w = drain(s);
        REQUIRE(w.size() >= 4);
        CHECK(w[0] == '\x88');                          // close frame...
        CHECK(w.substr(2, 2) == std::string("\x03\xea", 2)); // ...with 1002, then the reason
        CHECK(s.should_close_transport());
        CHECK(s.close_status_code() == 1002);
    }
    SECTION("invalid UTF-8 text: 1007") {
        client_protocol c;
        c.open(clock_type::now());
        recorder r;
        feed(c, std::string("\x81\x02\xc0\xaf", 4), r);
        REQUIRE(r.errors.size() == 1);
        CHECK(r.errors[0] == errc::invalid_utf8);
        CHECK(c.close_status_code() == 1007);
        const std::string w = drain(c);
        REQUIRE(w.size() >= 8);
        // Masked close frame: unmask its code.
        const auto code = static_cast<std::uint16_t>(((static_cast<unsigned char>(w[6]) ^ static_cast<unsigned char>(w[2])) << 8) |
                                                     (static_cast<unsigned char>(w[7]) ^ static_cast<unsigned char>(w[3])));
        CHECK(code == 1007);
    }
    SECTION("message over the limit: 1009") {
        connection_options o;
        o.max_message_size = 10;
        client_protocol c(o);
        c.open(clock_type::now());
        recorder r;
        feed(c, std::string("\x82\x0b" "01234567890", 13), r);
        REQUIRE(r.errors.size() == 1);
        CHECK(r.errors[0] == errc::message_too_big);
        CHECK(c.close_status_code() == 1009);
        CHECK(r.messages.empty());
    }
}

TEST_CASE("sending before open and invalid close codes are refused", "[protocol][rfc6455][7.4]") {
    server_protocol s;
    CHECK(s.state() == ready_state::connecting);
    CHECK(s.send_text("x") == errc::not_open);
    CHECK(s.close() == errc::not_open);
    s.open(clock_type::now());
    CHECK(s.close(1005 + 1) == errc::bad_close_code); // 1006 may never be sent
    CHECK(s.close(999) == errc::bad_close_code);
    CHECK(s.state() == ready_state::open);
    CHECK(s.ping(std::string(126, 'x')) == errc::control_too_long);
}

TEST_CASE("heartbeat: a silent peer is pinged, then given up on as 1006", "[protocol][heartbeat]") {
    connection_options o;
    o.ping_interval = 100ms;
    o.pong_timeout = 50ms;
    server_protocol s(o);
    const auto t0 = clock_type::now();
    s.open(t0);
    CHECK(s.next_deadline() == t0 + 100ms);
    CHECK_FALSE(s.tick(t0 + 99ms).ec);
    CHECK(drain(s).empty());
    CHECK_FALSE(s.tick(t0 + 100ms).ec);
    const std::string ping = drain(s);
    CHECK(ping == heartbeat_ping(t0 + 100ms));
    CHECK(s.next_deadline() == t0 + 150ms);

    SECTION("the peer answers: no timeout") {
        client_protocol c(o);
        c.open(t0);
        recorder rc, rs;
        feed(c, ping, rc, t0 + 110ms);
        feed(s, drain(c), rs, t0 + 120ms); // its pong (§5.5.3: the ping's payload)
        CHECK(rs.pongs.size() == 1);
        CHECK(s.latency() == 20ms); // sent at 100 ms, answered at 120 ms
        const auto r = s.tick(t0 + 150ms);
        CHECK_FALSE(r.ec);
        CHECK_FALSE(r.abort);
        CHECK(s.state() == ready_state::open);
        CHECK(s.next_deadline() == t0 + 220ms); // next ping after more silence
    }
    SECTION("the peer stays silent") {
        const auto r = s.tick(t0 + 150ms);
        CHECK(r.ec == errc::ping_timeout);
        CHECK(r.abort);
        s.transport_closed();
        CHECK(s.close_status_code() == close_code::abnormal);
    }
}

TEST_CASE("heartbeat: the next ping is due ping_interval after the answer, whatever pong_timeout is",
          "[protocol][heartbeat]") {
    connection_options o;
    o.ping_interval = 100ms;
    o.pong_timeout = 10s; // much longer than ping_interval
    server_protocol s(o);
    client_protocol c(o);
    const auto t0 = clock_type::now();
    s.open(t0);
    c.open(t0);
    s.tick(t0 + 100ms);
    const std::string ping = drain(s);
    CHECK(ping == heartbeat_ping(t0 + 100ms));
    CHECK(s.next_deadline() == t0 + 100ms + 10s); // waiting for the answer
    recorder rc, rs;
    feed(c, ping, rc, t0 + 110ms);
    feed(s, drain(c), rs, t0 + 120ms); // the pong
    REQUIRE(rs.pongs.size() == 1);
    CHECK(s.next_deadline() == t0 + 220ms); // not t0 + 10.1 s
    CHECK_FALSE(s.tick(t0 + 220ms).ec);
    CHECK(drain(s) == heartbeat_ping(t0 + 220ms)); // pinged again
}

TEST_CASE("heartbeat: pong_timeout 0 never gives up on a silent peer, it pings it every ping_interval",
          "[protocol][heartbeat]") {
    connection_options o;
    o.ping_interval = 100ms;
    o.pong_timeout = 0ms;
    server_protocol s(o);
    const auto t0 = clock_type::now();
    s.open(t0);
    for (int i = 1; i <= 3; ++i) {
        CHECK(s.next_deadline() == t0 + i * 100ms);
        const auto r = s.tick(t0 + i * 100ms);
        CHECK_FALSE(r.ec);
        CHECK_FALSE(r.abort);
        CHECK(drain(s) == heartbeat_ping(t0 + i * 100ms));
    }
    CHECK(s.state() == ready_state::open);
}

TEST_CASE("latency: the round trip of our last ping the peer answered, and only of that one",
          "[protocol][heartbeat][latency][rfc6455][5.5.3]") {
    connection_options o;
    o.ping_interval = 100ms;
    o.pong_timeout = 10s;
    server_protocol s(o);
    const auto t0 = clock_type::now();
    s.open(t0);
    recorder r;
    CHECK(s.latency() == 0us); // nothing measured yet
    s.tick(t0 + 100ms);
    const std::string ping = drain(s);
    REQUIRE(ping == heartbeat_ping(t0 + 100ms));
    const std::string token = ping.substr(2);

    SECTION("pongs that are not the answer measure nothing") {
        feed(s, client_pong(""), r, t0 + 105ms);      // unsolicited, empty (§5.5.3 allows it)
        feed(s, client_pong("abcd"), r, t0 + 106ms);  // another ping's answer
        feed(s, client_pong(token + "x"), r, t0 + 107ms);
        CHECK(r.pongs.size() == 3); // on_pong sees them all
        CHECK(s.latency() == 0us);
        feed(s, client_pong(token), r, t0 + 133ms);
        CHECK(s.latency() == 33ms);
        feed(s, client_pong(token), r, t0 + 190ms); // the same answer again: already counted
        CHECK(s.latency() == 33ms);
    }
    SECTION("measure_latency() pings now; its answer supersedes an older ping's") {
        REQUIRE_FALSE(s.measure_latency(t0 + 150ms));
        const std::string probe = drain(s);
        CHECK(probe == heartbeat_ping(t0 + 150ms));
        feed(s, client_pong(token), r, t0 + 152ms); // the heartbeat's ping, answered late: stale
        CHECK(s.latency() == 0us);
        feed(s, client_pong(probe.substr(2)), r, t0 + 157ms);
        CHECK(s.latency() == 7ms);
    }
    SECTION("a pong from a user's ping() measures nothing, and measure_latency() needs an open connection") {
        REQUIRE_FALSE(s.ping("abcd"));
        drain(s);
        feed(s, client_pong("abcd"), r, t0 + 120ms);
        CHECK(s.latency() == 0us);
        REQUIRE_FALSE(s.close());
        CHECK(s.measure_latency() == errc::closed);
        server_protocol fresh(o);
        CHECK(fresh.measure_latency() == errc::not_open);
    }
}

TEST_CASE("latency between two protocols, measured by the client too", "[protocol][latency]") {
    connection_options o;
    o.ping_interval = 0ms; // no heartbeat: only measure_latency()
    pair_fixture p(o);
    REQUIRE_FALSE(p.client.measure_latency(p.t0));
    feed(p.server, drain(p.client), p.at_server, p.t0 + 2ms); // the server answers the masked ping
    feed(p.client, drain(p.server), p.at_client, p.t0 + 5ms);
    CHECK(p.at_client.pongs.size() == 1);
    CHECK(p.client.latency() == 5ms);
    CHECK(p.server.latency() == 0us);
}

TEST_CASE("idle timeout closes with 1001", "[protocol][timeout]") {
    connection_options o;
    o.ping_interval = 0ms;
    o.idle_timeout = 1000ms;
    server_protocol s(o);
    const auto t0 = clock_type::now();
    s.open(t0);
    recorder r;
    // A message half-way resets the idle clock.
    feed(s, std::string("\x81\x81\x00\x00\x00\x00x", 7), r, t0 + 500ms);
    CHECK_FALSE(s.tick(t0 + 1000ms).ec);
    const auto res = s.tick(t0 + 1500ms);
    CHECK(res.ec == errc::idle_timeout);
    CHECK_FALSE(res.abort);
    CHECK(drain(s).substr(0, 4) == std::string("\x88\x0e\x03\xe9", 4)); // 1001 "idle timeout"
}

TEST_CASE("an unanswered close is cut off after close_timeout", "[protocol][rfc6455][7.1.1][timeout]") {
    connection_options o;
    o.close_timeout = 200ms;
    client_protocol c(o);
    const auto t0 = clock_type::now();
    c.open(t0);
    REQUIRE_FALSE(c.close(close_code::normal, {}, t0));
    CHECK(c.next_deadline() == t0 + 200ms);
    CHECK_FALSE(c.tick(t0 + 199ms).abort);
    const auto r = c.tick(t0 + 200ms);
    CHECK(r.ec == errc::close_timeout);
    CHECK(r.abort);
}

TEST_CASE("backpressure: a full send queue closes with 1008 or refuses", "[protocol][backpressure]") {
    connection_options o;
    o.send_queue_limit = 1000;
    const std::string chunk(600, 'x');
    SECTION("policy close") {
        server_protocol s(o);
        s.open(clock_type::now());
        REQUIRE_FALSE(s.send_text(chunk)); // an empty queue always takes one message
        CHECK(s.send_text(chunk) == errc::send_queue_full);
        CHECK(s.state() == ready_state::closing);
        const std::string w = drain(s);
        CHECK(w.find(std::string("\x88", 1)) != std::string::npos);
        CHECK(s.close_status_code() == close_code::policy_violation);
    }
    SECTION("policy reject") {
        o.backpressure = backpressure_policy::reject;
        server_protocol s(o);
        s.open(clock_type::now());
        REQUIRE_FALSE(s.send_text(chunk));
        CHECK(s.buffered_amount() == 604);
        CHECK(s.send_text(chunk) == errc::send_queue_full);
        CHECK(s.state() == ready_state::open);
        drain(s);
        CHECK(s.buffered_amount() == 0);
        CHECK_FALSE(s.send_text(chunk));
    }
}

// A slow reader of prices or positions wants the latest ones, not a growing backlog of
// old ones (websocketpp#477, beast#2033): drop_oldest keeps the queue bounded by
// leaving the oldest waiting messages unsent instead of refusing the new one.
TEST_CASE("backpressure: drop_oldest leaves the oldest waiting messages unsent", "[protocol][backpressure]") {
    connection_options o;
    o.send_queue_limit = 1000;
    o.backpressure = backpressure_policy::drop_oldest;
    const auto msg = [](int i) { return "tick " + std::to_string(i) + std::string(194, '.'); }; // 200 bytes, 204 framed
    pair_fixture f(o);

    SECTION("waiting messages: the oldest go, control frames stay, order is kept") {
        for (int i = 0; i < 4; ++i) REQUIRE_FALSE(f.server.send_text(msg(i))); // 816 bytes
        REQUIRE_FALSE(f.server.ping("p1"));                                    // 820
        for (int i = 4; i < 10; ++i) REQUIRE_FALSE(f.server.send_text(msg(i))); // every other one drops two (250 to spare)
        CHECK(f.server.buffered_amount() <= 1000);
        CHECK(f.server.stats().messages_out == 10);
        CHECK(f.server.stats().messages_dropped == 6);
        CHECK(f.server.state() == ready_state::open);
        f.server_to_client();
        REQUIRE(f.at_client.messages.size() == 4);
        for (int i = 0; i < 4; ++i) CHECK(f.at_client.messages[i].second == msg(6 + i)); // the latest, in order
        CHECK(f.at_client.pings == std::vector<std::string>{"p1"});
        CHECK(f.at_client.errors.empty());
    }
    SECTION("what is being written is never dropped; what waits behind it is") {
        REQUIRE_FALSE(f.server.send_text(msg(0)));
        std::string first;
        {
            std::lock_guard<send_mutex> lock(f.server.mutex());
            const auto& b = f.server.queue().begin_write(); // msg(0) is on its way
            for (const auto& s : b.segments) first.append(reinterpret_cast<const char*>(b.data(s)), s.size);
        }
        for (int i = 1; i < 8; ++i) REQUIRE_FALSE(f.server.send_text(msg(i)));
        CHECK(f.server.stats().messages_dropped == 4); // 204 in flight + 3 waiting fit in 1000
        {
            std::lock_guard<send_mutex> lock(f.server.mutex());
            f.server.queue().end_write();
        }
        feed(f.client, first + drain(f.server), f.at_client);
        REQUIRE(f.at_client.messages.size() == 4);
        CHECK(f.at_client.messages[0].second == msg(0));
        for (int i = 1; i < 4; ++i) CHECK(f.at_client.messages[i].second == msg(4 + i));
    }
    SECTION("a message bigger than the room dropping can make is refused, as with reject") {
        const std::string a(300, 'a'), bb(300, 'b');
        REQUIRE_FALSE(f.server.send_fragment(opcode::text, a.data(), a.size(), false)); // fragments: never dropped
        REQUIRE_FALSE(f.server.send_fragment(opcode::text, bb.data(), bb.size(), true));
        REQUIRE_FALSE(f.server.send_text(msg(0)));
        CHECK(f.server.send_text(std::string(600, 'c')) == errc::send_queue_full); // 608 + 604 > 1000 even without msg(0)
        CHECK(f.server.stats().messages_dropped == 1); // msg(0) went to make room, in vain
        CHECK(f.server.state() == ready_state::open);
        f.server_to_client();
        REQUIRE(f.at_client.messages.size() == 1);
        CHECK(f.at_client.messages[0].second == std::string(300, 'a') + std::string(300, 'b'));
    }
    SECTION("a whole message in the middle of a fragmented one is refused before anything is dropped") {
        for (int i = 0; i < 4; ++i) REQUIRE_FALSE(f.server.send_text(msg(i)));
        const std::string part(100, 'p');
        REQUIRE_FALSE(f.server.send_fragment(opcode::text, part.data(), part.size(), false));
        CHECK(f.server.send_text(msg(4)) == errc::expected_continuation); // over the limit too
        CHECK(f.server.stats().messages_dropped == 0);
    }
    SECTION("broadcast frames stay shared; clients' masked frames are dropped alike") {
        auto m = prepare_message(opcode::binary, std::string(300, 'm'));
        for (int i = 0; i < 5; ++i) REQUIRE_FALSE(f.server.send(m));
        CHECK(f.server.stats().messages_dropped == 2);
        {
            std::lock_guard<send_mutex> lock(f.server.mutex());
            const auto& b = f.server.queue().begin_write();
            REQUIRE(b.segments.size() == 3);
            for (const auto& s : b.segments) CHECK(b.data(s) == m->wire_data()); // not copied
            f.server.queue().end_write();
        }
        for (int i = 0; i < 8; ++i) REQUIRE_FALSE(f.client.send_text(msg(i)));
        CHECK(f.client.stats().messages_dropped == 4);
        f.client_to_server();
        REQUIRE(f.at_server.messages.size() == 4);
        CHECK(f.at_server.messages[0].second == msg(4));
        CHECK(f.at_server.errors.empty()); // still masked, whole frames
    }
}

TEST_CASE("send_queue_limit counts what the queue holds: frame headers (and a client's masking keys) too",
          "[protocol][backpressure]") {
    // Found by fuzz_drop_oldest: the limit was checked against payload sizes, so the
    // queue could hold up to 14 bytes more than send_queue_limit.
    connection_options o;
    o.send_queue_limit = 320;
    o.backpressure = backpressure_policy::reject;
    pair_fixture f(o);
    REQUIRE_FALSE(f.server.ping("0")); // 3 bytes queued
    // A payload of 126 bytes or more has a 4-byte header (§5.2).
    CHECK(f.server.send_text(std::string(314, 'x')) == errc::send_queue_full); // 3 + 4 + 314 = 321
    REQUIRE_FALSE(f.server.send_text(std::string(313, 'x')));                  // 3 + 4 + 313 = 320
    CHECK(f.server.buffered_amount() == 320);
    REQUIRE_FALSE(f.client.ping("0")); // 7 bytes: 2 + masking key + 1
    CHECK(f.client.send_text(std::string(306, 'x')) == errc::send_queue_full); // 7 + 4 + 4 + 306 = 321
    // A broadcast frame is masked into the client's queue: 4 bytes more than its wire_size().
    CHECK(f.client.send(prepare_message(opcode::text, std::string(306, 'x'))) == errc::send_queue_full);
    REQUIRE_FALSE(f.client.send(prepare_message(opcode::text, std::string(305, 'x')))); // 7 + 4 + 4 + 305 = 320
    CHECK(f.client.buffered_amount() == 320);
}

// Random sends of every kind, with the writer taking batches now and then: whatever
// goes, the peer reads whole frames, the messages it gets come in the order sent, every
// ping arrives, and each message is either received or counted as dropped.
TEST_CASE("backpressure: drop_oldest under random traffic keeps every frame whole and in order",
          "[protocol][backpressure]") {
    connection_options o;
    o.send_queue_limit = 8 * 1024;
    o.backpressure = backpressure_policy::drop_oldest;
    pair_fixture f(o);
    std::uint32_t x = 12345;
    const auto next = [&x](std::uint32_t n) {
        x ^= x << 13, x ^= x >> 17, x ^= x << 5;
        return x % n;
    };
    int sent = 0, pings = 0;
    std::string wire;
    for (int step = 0; step < 20000; ++step) {
        const std::uint32_t what = next(100);
        const std::string body = std::to_string(sent) + ":" + std::string(next(2000), 'a' + static_cast<char>(sent % 26));
        if (what < 60) {
            REQUIRE_FALSE(f.server.send_text(body));
            ++sent;
        } else if (what < 80) {
            REQUIRE_FALSE(f.server.send(prepare_message(opcode::text, body)));
            ++sent;
        } else if (what < 83) {
            REQUIRE_FALSE(f.server.ping(std::to_string(pings++)));
        } else if (what < 90) {
            wire += drain(f.server); // the writer takes a batch and finishes it
        }
        REQUIRE(f.server.buffered_amount() <= o.send_queue_limit + 2 * 1024); // a message over the limit only when alone
    }
    wire += drain(f.server);
    feed(f.client, wire, f.at_client);
    CHECK(f.at_client.errors.empty());
    const auto dropped = f.server.stats().messages_dropped;
    CHECK(dropped > 0);
    CHECK(f.at_client.messages.size() + dropped == static_cast<std::size_t>(sent));
    int last = -1;
    bool ordered = true;
    for (const auto& m : f.at_client.messages) {
        const int n = std::stoi(m.second);
        ordered = ordered && n > last;
        last = n;
    }
    CHECK(ordered);
    CHECK(f.at_client.pings.size() == static_cast<std::size_t>(pings));
}

// Many small broadcast frames waiting: one drop walks them once, not once per message.
TEST_CASE("backpressure: drop_oldest with 100,000 small frames waiting", "[protocol][backpressure]") {
    connection_options o;
    o.send_queue_limit = 4 * 1024 * 1024;
    o.backpressure = backpressure_policy::drop_oldest;
    server_protocol s(o);
    s.open(clock_type::now());
    const auto m = prepare_message(opcode::binary, std::string(38, 'b')); // 40 bytes framed
    for (int i = 0; i < 200000; ++i) REQUIRE_FALSE(s.send(m));
    CHECK(s.buffered_amount() <= o.send_queue_limit);
    CHECK(s.stats().messages_dropped == 200000 - s.buffered_amount() / 40);
}

TEST_CASE("a prepared message is shared by servers and re-masked by clients", "[protocol][broadcast]") {
    auto m = prepare_message(opcode::text, "broadcast");
    pair_fixture f;
    REQUIRE_FALSE(f.server.send(m));
    {
        std::lock_guard<send_mutex> lock(f.server.mutex());
        const auto& b = f.server.queue().begin_write();
        REQUIRE(b.segments.size() == 1);
        CHECK(b.data(b.segments[0]) == m->wire_data()); // the very same bytes, not a copy
        f.server.queue().end_write();
    }
    f.server.send(m);
    f.server_to_client();
    REQUIRE(f.at_client.messages.size() == 1);
    CHECK(f.at_client.messages[0].second == "broadcast");
    REQUIRE_FALSE(f.client.send(m));
    f.client_to_server(); // a server parser rejects unmasked frames: this proves the mask
    REQUIRE(f.at_server.messages.size() == 1);
    CHECK(f.at_server.messages[0].second == "broadcast");
    CHECK(f.at_server.errors.empty());
}

TEST_CASE("a send queue holds memory only from the first append until release_buffers() while idle", "[send_queue][memory]") {
    send_queue q;
    CHECK(q.reserved_bytes() == 0);
    CHECK_FALSE(q.has_pending());
    CHECK_FALSE(q.writing());
    CHECK(q.buffered_amount() == 0);
    q.release_buffers(); // nothing to free
    q.clear();
    CHECK(q.reserved_bytes() == 0);

    std::memcpy(q.append(3), "abc", 3);
    q.append(prepare_message(opcode::text, "x"));
    CHECK(q.reserved_bytes() > 0);
    CHECK(q.buffered_amount() == 3 + 3);
    const auto& b = q.begin_write();
    REQUIRE(b.segments.size() == 2);
    CHECK(std::string(reinterpret_cast<const char*>(b.data(b.segments[0])), 3) == "abc");
    std::memcpy(q.append(2), "de", 2); // queued behind the batch being written
    q.release_buffers();               // busy: keeps everything
    CHECK(q.reserved_bytes() > 0);
    CHECK(q.buffered_amount() == 8);
    q.end_write();
    CHECK(q.buffered_amount() == 2);
    q.release_buffers(); // "de" still pending: kept
    REQUIRE(q.has_pending());
    const auto& b2 = q.begin_write();
    REQUIRE(b2.segments.size() == 1);
    CHECK(std::string(reinterpret_cast<const char*>(b2.data(b2.segments[0])), 2) == "de");
    q.end_write();
    CHECK(q.reserved_bytes() > 0); // kept for reuse while busy...
    q.release_buffers();
    CHECK(q.reserved_bytes() == 0); // ...and all of it freed once idle
    CHECK(q.buffered_amount() == 0);
    std::memcpy(q.append(1), "f", 1); // and usable again
    CHECK(q.buffered_amount() == 1);
}

#if DUPLEX_HAS_DEFLATE
namespace {
struct deflate_pair : pair_fixture {
    explicit deflate_pair(connection_options o = deflate_on()) : pair_fixture(o) {
        deflate_params p;
        p.enabled = true;
        server.enable_deflate(p);
        client.enable_deflate(p);
    }
    static connection_options deflate_on() {
        connection_options o;
        o.deflate.enabled = true;
        o.deflate.threshold = 0;
        return o;
    }
};
// A client frame (masked with a zero key) with RSV1 set: a compressed message.
std::string compressed_frame(opcode op, const std::string& deflated) {
    std::uint8_t header[max_frame_header_size];
    const mask_key zero{};
    const std::size_t n = write_frame_header(header, op, true, deflated.size(), &zero, true);
    return std::string(reinterpret_cast<const char*>(header), n) + deflated;
}
} // namespace

TEST_CASE("permessage-deflate: messages are compressed on the wire and restored", "[protocol][rfc7692][7.2]") {
    deflate_pair f;
    const std::string text(10000, 'a');
    REQUIRE_FALSE(f.client.send_text(text));
    const std::string wire = drain(f.client);
    CHECK(wire.size() < 200);                 // 10,000 bytes became a few dozen
    CHECK((static_cast<unsigned char>(wire[0]) & 0x40) != 0); // RSV1: this message is compressed
    feed(f.server, wire, f.at_server);
    REQUIRE(f.at_server.messages.size() == 1);
    CHECK(f.at_server.messages[0].second == text);
    CHECK(f.server.stats().bytes_in == wire.size() - 6); // the payload as it was on the wire
    CHECK(f.client.stats().bytes_out == f.server.stats().bytes_in); // counted alike at both ends
    CHECK(f.server.deflate_parameters().enabled);
    CHECK(f.server.deflate_parameters() == f.client.deflate_parameters());
    CHECK_FALSE(pair_fixture{}.server.deflate_parameters().enabled); // not negotiated
    CHECK(f.client.stats().messages_out == 1);
    f.server.send_text("back");
    f.server_to_client();
    REQUIRE(f.at_client.messages.size() == 1);
    CHECK(f.at_client.messages[0].second == "back");
}

// A broadcast compressed once: RFC 7692 §7.2.1 lets each message be compressed or not
// (RSV1), and with server_no_context_takeover (§7.1.1.1, which a server may always add)
// the peer's inflater starts afresh for every message, so one DEFLATE stream made apart
// from any connection's compressor decodes on every such receiver.
TEST_CASE("permessage-deflate: a broadcast is compressed once for every receiver that resets per message",
          "[protocol][rfc7692][7.2.1][7.1.1.1][broadcast]") {
    deflate_options server_side;
    server_side.enabled = true;
    server_side.server_no_context_takeover = true;
    server_side.threshold = 16;
    const std::string chat = R"({"user":"alice","text":"hello everyone, hello everyone, hello everyone"})";
    const auto frame = prepare_message(opcode::text, chat, server_side);
    REQUIRE(frame->compressed());
    const prepared_message& deflated = *frame->compressed();
    CHECK(frame->compressed_window_bits() == 15);
    CHECK(deflated.op() == opcode::text);
    CHECK((deflated.wire_data()[0] & 0x40) != 0); // RSV1
    CHECK((frame->wire_data()[0] & 0x40) == 0);   // the plain one has none
    CHECK(deflated.payload_size() < chat.size());

    // A receiver as a server with these options has it: its own messages compressed,
    // the shared frame, its own again, the shared frame again; the client reads them all.
    const auto receiver = [&](deflate_params agreed, connection_options o) {
        auto f = std::make_unique<pair_fixture>(o);
        f->server.enable_deflate(agreed);
        f->client.enable_deflate(agreed);
        return f;
    };
    connection_options with;
    with.deflate = server_side;
    deflate_params agreed;
    agreed.enabled = true;
    agreed.server_no_context_takeover = true;
    SECTION("a receiver whose compressor resets gets the compressed frame, between its own messages") {
        auto f = receiver(agreed, with);
        REQUIRE_FALSE(f->server.send_text(chat + " (own)"));
        REQUIRE_FALSE(f->server.send(frame));
        REQUIRE_FALSE(f->server.send_text(chat + " (own again)"));
        REQUIRE_FALSE(f->server.send(frame));
        const std::string wire = drain(f->server);
        CHECK(wire.find(std::string(reinterpret_cast<const char*>(deflated.wire_data()), deflated.wire_size())) !=
              std::string::npos);
        feed(f->client, wire, f->at_client, f->t0);
        REQUIRE(f->at_client.messages.size() == 4);
        CHECK(f->at_client.messages[0].second == chat + " (own)");
        CHECK(f->at_client.messages[1].second == chat);
        CHECK(f->at_client.messages[2].second == chat + " (own again)");
        CHECK(f->at_client.messages[3].second == chat);
        CHECK(f->server.stats().bytes_out < 4 * chat.size()); // the wire's payload bytes
    }
    SECTION("a receiver that keeps its context, or has a smaller window, or no deflate: the plain frame") {
        deflate_params keeps = agreed;
        keeps.server_no_context_takeover = false;
        connection_options plain_options; // deflate off: the server's compressor keeps its context
        plain_options.deflate.enabled = true;
        deflate_params small = agreed;
        small.server_max_window_bits = 10;
        for (auto* f : {receiver(keeps, plain_options).release(), receiver(small, with).release(), new pair_fixture(with)}) {
            std::unique_ptr<pair_fixture> owner(f);
            REQUIRE_FALSE(f->server.send_text(chat + " (own)"));
            REQUIRE_FALSE(f->server.send(frame));
            REQUIRE_FALSE(f->server.send_text(chat + " (own again)"));
            const std::string wire = drain(f->server);
            CHECK(wire.find(std::string(reinterpret_cast<const char*>(frame->wire_data()), frame->wire_size())) !=
                  std::string::npos);
            feed(f->client, wire, f->at_client, f->t0);
            REQUIRE(f->at_client.messages.size() == 3);
            CHECK(f->at_client.messages[1].second == chat);
            CHECK(f->at_client.messages[2].second == chat + " (own again)");
        }
    }
    SECTION("a client sends the plain payload, masked, as always") {
        auto f = receiver(agreed, with);
        REQUIRE_FALSE(f->client.send(frame));
        const std::string wire = drain(f->client);
        CHECK((static_cast<unsigned char>(wire[0]) & 0x40) == 0);
        feed(f->server, wire, f->at_server, f->t0);
        REQUIRE(f->at_server.messages.size() == 1);
        CHECK(f->at_server.messages[0].second == chat);
    }
    SECTION("not compressed: under the threshold, a control frame, what would not shrink, options without the reset") {
        CHECK_FALSE(prepare_message(opcode::text, chat.substr(0, 15), server_side)->compressed());
        CHECK_FALSE(prepare_message(opcode::ping, chat.substr(0, 100), server_side)->compressed());
        std::string noise(1000, '\0');
        std::uint32_t x = 2463534242u;
        for (auto& ch : noise) {
            x ^= x << 13, x ^= x >> 17, x ^= x << 5; // xorshift: incompressible
            ch = static_cast<char>(x);
        }
        CHECK_FALSE(prepare_message(opcode::binary, noise, server_side)->compressed());
        deflate_options keeps = server_side;
        keeps.server_no_context_takeover = false;
        CHECK_FALSE(prepare_message(opcode::text, chat, keeps)->compressed());
        deflate_options off = server_side;
        off.enabled = false;
        CHECK_FALSE(prepare_message(opcode::text, chat, off)->compressed());
        deflate_options small = server_side;
        small.server_max_window_bits = 9;
        const auto nine = prepare_message(opcode::text, chat, small);
        REQUIRE(nine->compressed());
        CHECK(nine->compressed_window_bits() == 9);
    }
}

// RFC 7692 §7.2.3.3 (context takeover): the peer's inflater builds on every compressed
// message before, so one may go unsent only when each is compressed on its own.
TEST_CASE("backpressure: drop_oldest never drops a compressed message the peer's inflater must see",
          "[protocol][backpressure][rfc7692]") {
    connection_options o = deflate_pair::deflate_on();
    o.send_queue_limit = 1000;
    o.backpressure = backpressure_policy::drop_oldest;
    const auto noise = [](int seed) { // does not compress: about 305 bytes on the wire
        std::string s(300, '\0');
        std::uint32_t x = 2463534242u + static_cast<std::uint32_t>(seed);
        for (char& c : s) {
            x ^= x << 13, x ^= x >> 17, x ^= x << 5;
            c = static_cast<char>(x);
        }
        return s;
    };
    const auto send = [&noise](server_protocol& server, int i) {
        const std::string m = noise(i);
        return server.send(opcode::binary, m.data(), m.size());
    };
    SECTION("with context takeover: nothing to drop, the new message is refused") {
        deflate_pair f(o);
        for (int i = 0; i < 3; ++i) REQUIRE_FALSE(send(f.server, i));
        CHECK(send(f.server, 3) == errc::send_queue_full);
        CHECK(f.server.stats().messages_dropped == 0);
        f.server_to_client();
        REQUIRE(f.at_client.messages.size() == 3);
        for (int i = 0; i < 3; ++i) CHECK(f.at_client.messages[i].second == noise(i));
        CHECK(f.at_client.errors.empty());
    }
    SECTION("server_no_context_takeover: each stands alone, the oldest go") {
        pair_fixture f(o);
        deflate_params p;
        p.enabled = true;
        p.server_no_context_takeover = true;
        f.server.enable_deflate(p);
        f.client.enable_deflate(p);
        for (int i = 0; i < 6; ++i) REQUIRE_FALSE(send(f.server, i));
        CHECK(f.server.stats().messages_dropped == 4); // two at a time: with 250 bytes to spare
        f.server_to_client();
        REQUIRE(f.at_client.messages.size() == 2);
        for (int i = 0; i < 2; ++i) CHECK(f.at_client.messages[i].second == noise(4 + i)); // inflated fine
        CHECK(f.at_client.errors.empty());
    }
}

TEST_CASE("permessage-deflate: the RFC 7692 'Hello' frame", "[protocol][rfc7692][7.2.3.1]") {
    deflate_pair f;
    feed(f.server, compressed_frame(opcode::text, std::string("\xf2\x48\xcd\xc9\xc9\x07\x00", 7)), f.at_server);
    REQUIRE(f.at_server.messages.size() == 1);
    CHECK(f.at_server.messages[0].second == "Hello");
}

TEST_CASE("permessage-deflate: a compression bomb stops at the inflated limit with 1009", "[protocol][rfc7692][limits]") {
    connection_options o = deflate_pair::deflate_on();
    o.max_message_size = 1 << 20;
    deflate_pair f(o);
    // 64 MiB of zeros deflates to about 64 KiB: far under the wire limit.
    deflate_codec c(role::client, [] { deflate_params p; p.enabled = true; return p; }());
    std::string deflated;
    REQUIRE_FALSE(c.compress(std::string(64u << 20, '\0').data(), 64u << 20, deflated));
    REQUIRE(deflated.size() < (1u << 20));
    feed(f.server, compressed_frame(opcode::binary, deflated), f.at_server);
    REQUIRE(f.at_server.errors.size() == 1);
    CHECK(f.at_server.errors[0] == errc::message_too_big);
    CHECK(f.server.close_status_code() == close_code::message_too_big);
    CHECK(f.at_server.messages.empty());
}

TEST_CASE("permessage-deflate: bad data is 1007, bad UTF-8 after inflating is 1007", "[protocol][rfc7692][8.1]") {
    SECTION("not deflate") {
        deflate_pair f;
        feed(f.server, compressed_frame(opcode::binary, std::string("\xff\xff\xff\xff", 4)), f.at_server);
        REQUIRE(f.at_server.errors.size() == 1);
        CHECK(f.at_server.errors[0] == errc::bad_compressed_data);
        CHECK(f.server.close_status_code() == close_code::invalid_payload);
    }
    SECTION("text that inflates to invalid UTF-8") {
        deflate_pair f;
        deflate_codec c(role::client, [] { deflate_params p; p.enabled = true; return p; }());
        std::string deflated;
        REQUIRE_FALSE(c.compress("\xc0\xaf", 2, deflated));
        feed(f.server, compressed_frame(opcode::text, deflated), f.at_server);
        REQUIRE(f.at_server.errors.size() == 1);
        CHECK(f.at_server.errors[0] == errc::invalid_utf8);
    }
}

TEST_CASE("permessage-deflate: too big and invalid UTF-8 give the same code however the frame is split",
          "[protocol][rfc7692][8.1][limits]") {
    // The inflated text has a bad byte before the limit (1007 comes first) or
    // only after it (1009 comes first). Fed whole, a frame inflates past the
    // limit in one call; fed in pieces, the bad byte shows up in an earlier
    // call. The code must not depend on that.
    constexpr std::size_t limit = 64 * 1024;
    for (const std::size_t bad_at : {std::size_t(1000), limit + 1000}) {
        std::string text(3 * limit, 'a');
        text[bad_at] = '\xff';
        deflate_codec c(role::client, [] { deflate_params p; p.enabled = true; return p; }());
        std::string deflated;
        REQUIRE_FALSE(c.compress(text.data(), text.size(), deflated));
        const std::string frame = compressed_frame(opcode::text, deflated);
        for (const std::size_t piece : {frame.size(), std::size_t(7), std::size_t(1)}) {
            connection_options o = deflate_pair::deflate_on();
            o.max_message_size = limit;
            deflate_pair f(o);
            for (std::size_t at = 0; at < frame.size() && f.at_server.errors.empty(); at += piece)
                feed(f.server, frame.substr(at, piece), f.at_server);
            INFO("bad byte at " << bad_at << ", pieces of " << piece);
            REQUIRE(f.at_server.errors.size() == 1);
            CHECK(f.at_server.errors[0] == (bad_at < limit ? errc::invalid_utf8 : errc::message_too_big));
        }
    }
}

TEST_CASE("permessage-deflate: uncompressed messages are held to max_message_size at the header, "
          "compressed ones get deflate's slack", "[protocol][rfc7692][rfc6455][10.4]") {
    // A compressed message may be a little larger on the wire than it inflates
    // to, so its frames get some slack (the inflated size is held to the limit
    // while inflating). An uncompressed one gets none: a header past the limit
    // is 1009 before any payload, as without deflate, and one at the limit is
    // read into place without the target ever reaching past it.
    constexpr std::size_t limit = 100 * 1000;
    auto make = [&](connection_options& o) {
        o = deflate_pair::deflate_on();
        o.max_message_size = limit;
        auto p = std::make_unique<server_protocol>(o);
        deflate_params params;
        params.enabled = true;
        p->enable_deflate(params);
        p->open(clock_type::now());
        return p;
    };
    const mask_key zero{};
    std::uint8_t header[max_frame_header_size];
    const auto t0 = clock_type::now();
    {
        connection_options o;
        auto p = make(o);
        recorder r;
        const std::size_t h = write_frame_header(header, opcode::binary, true, limit, &zero);
        feed(*p, std::string(reinterpret_cast<const char*>(header), h) + std::string(10, 'a'), r, t0);
        std::size_t placed = 10, reads = 0;
        for (;;) {
            const auto target = p->placed_read(1, 65536);
            if (!target.first) break;
            INFO("placed so far " << placed);
            REQUIRE(placed + target.second <= limit);
            std::memset(target.first, 'b', target.second);
            p->receive_placed(target.second, r, t0);
            placed += target.second;
            ++reads;
        }
        CHECK(reads == 2); // 65,536 (the read buffer's size), then the rest up to the limit
        CHECK(placed == limit);
        REQUIRE(r.messages.size() == 1);
        CHECK(r.messages[0].second.size() == limit);
        CHECK(r.errors.empty());
    }
    {
        connection_options o;
        auto p = make(o);
        recorder r;
        const std::size_t h = write_frame_header(header, opcode::text, true, limit + 1, &zero);
        feed(*p, std::string(reinterpret_cast<const char*>(header), h) + "\xff", r, t0);
        REQUIRE(r.errors.size() == 1); // at the header: not the invalid UTF-8 after it
        CHECK(r.errors[0] == errc::message_too_big);
        CHECK(p->close_status_code() == close_code::message_too_big);
    }
    {
        connection_options o;
        auto p = make(o);
        recorder r;
        const std::size_t h = write_frame_header(header, opcode::binary, false, limit + 1, &zero, true);
        feed(*p, std::string(reinterpret_cast<const char*>(header), h), r, t0);
        CHECK(r.errors.empty()); // compressed: within the slack
        CHECK(p->placed_read(1, 65536).first == nullptr); // inflated, never read into place
    }
    {
        // Fragmented: a continuation is judged by its message's first frame.
        connection_options o;
        auto plain = make(o);
        recorder r;
        std::size_t h = write_frame_header(header, opcode::binary, false, 10, &zero);
        feed(*plain, std::string(reinterpret_cast<const char*>(header), h) + std::string(10, 'x'), r, t0);
        h = write_frame_header(header, opcode::continuation, true, limit, &zero);
        feed(*plain, std::string(reinterpret_cast<const char*>(header), h), r, t0); // 10 bytes past the limit
        REQUIRE(r.errors.size() == 1);
        CHECK(r.errors[0] == errc::message_too_big);

        auto compressed = make(o);
        recorder rc;
        deflate_codec c(role::client, [] { deflate_params d; d.enabled = true; return d; }());
        std::string deflated;
        REQUIRE_FALSE(c.compress("abc", 3, deflated));
        h = write_frame_header(header, opcode::text, false, deflated.size(), &zero, true);
        feed(*compressed, std::string(reinterpret_cast<const char*>(header), h) + deflated, rc, t0);
        h = write_frame_header(header, opcode::continuation, true, limit, &zero);
        feed(*compressed, std::string(reinterpret_cast<const char*>(header), h), rc, t0);
        CHECK(rc.errors.empty()); // within the compressed message's slack
    }
}

TEST_CASE("permessage-deflate: the slack over a limit near 2^64 saturates", "[protocol][rfc7692][limits]") {
    connection_options o = deflate_pair::deflate_on();
    o.max_message_size = ~std::uint64_t(0); // no limit: limit + slack must not wrap around
    server_protocol p(o);
    deflate_params params;
    params.enabled = true;
    p.enable_deflate(params);
    p.open(clock_type::now());
    recorder r;
    const mask_key zero{};
    std::uint8_t header[max_frame_header_size];
    const std::size_t h = write_frame_header(header, opcode::binary, false, ~std::uint64_t(0) >> 1, &zero, true);
    feed(p, std::string(reinterpret_cast<const char*>(header), h), r);
    CHECK(r.errors.empty()); // not wrapped around to a small limit
}

TEST_CASE("permessage-deflate: RSV1 without negotiation is 1002", "[protocol][rfc7692][6.1]") {
    pair_fixture f; // no deflate
    feed(f.server, compressed_frame(opcode::text, std::string("\xf2\x48\xcd\xc9\xc9\x07\x00", 7)), f.at_server);
    REQUIRE(f.at_server.errors.size() == 1);
    CHECK(f.at_server.errors[0] == errc::reserved_bits);
    CHECK(f.server.close_status_code() == close_code::protocol_error);
}
#endif

TEST_CASE("reading into place: the target grows with the bytes that came and stays within the limits",
          "[protocol][rfc6455][10.4]") {
    connection_options o;
    o.max_message_size = 1024 * 1024;
    server_protocol p(o);
    recorder r;
    const auto t0 = clock_type::now();
    p.open(t0);
    CHECK(p.placed_read(1, 65536).first == nullptr); // between frames: nothing to place
    // A header announcing a 1 MiB frame, with 100 bytes of it (mask key 0: bytes as sent).
    const mask_key zero{};
    std::uint8_t header[max_frame_header_size];
    const std::size_t h = write_frame_header(header, opcode::binary, true, 1024 * 1024, &zero);
    std::string bytes(reinterpret_cast<const char*>(header), h);
    bytes += std::string(100, 'a');
    feed(p, bytes, r, t0);
    // §10.4: the announced size alone allocates nothing; the first target is the read
    // buffer's size, then as much as the message holds, never past 256 KiB.
    CHECK(p.placed_read(1024 * 1024, 65536).first == nullptr); // fewer left than min_size
    auto target = p.placed_read(4096, 65536);
    REQUIRE(target.first != nullptr);
    CHECK(target.second == 65536);
    std::memset(target.first, 'b', target.second);
    p.receive_placed(target.second, r, t0);
    target = p.placed_read(4096, 65536);
    REQUIRE(target.first != nullptr);
    CHECK(target.second == 65636); // what the message holds: 100 + 65536
    std::memset(target.first, 'c', 1000);
    p.receive_placed(1000, r, t0); // a short read: the rest comes later
    std::size_t so_far = 100 + 65536 + 1000;
    while (true) {
        target = p.placed_read(4096, 65536);
        if (!target.first) break;
        CHECK(target.second <= server_protocol::placed_read_max);
        std::memset(target.first, 'd', target.second);
        p.receive_placed(target.second, r, t0);
        so_far += target.second;
    }
    CHECK(so_far == 1024 * 1024); // the last target took the rest of the frame
    REQUIRE(r.messages.size() == 1);
    const std::string& m = r.messages[0].second;
    REQUIRE(m.size() == 1024 * 1024);
    CHECK(m.substr(0, 100) == std::string(100, 'a'));
    CHECK(m.substr(100, 65536) == std::string(65536, 'b'));
    CHECK(m.substr(65636, 1000) == std::string(1000, 'c'));
    CHECK(m.find_first_not_of('d', 66636) == std::string::npos);
    CHECK(r.errors.empty());

    // A frame with fewer than min_size bytes left is read as usual (and copied).
    const std::size_t small_h = write_frame_header(header, opcode::binary, true, 3000, &zero);
    feed(p, std::string(reinterpret_cast<const char*>(header), small_h) + "xy", r, t0);
    CHECK(p.placed_read(4096, 65536).first == nullptr);
    feed(p, std::string(2998, 'z'), r, t0);
    REQUIRE(r.messages.size() == 2);
    CHECK(r.messages[1].second == "xy" + std::string(2998, 'z'));
}

TEST_CASE("timeouts of milliseconds::max() mean never, not an overflow", "[protocol][heartbeat][timeout]") {
    // milliseconds::max() in steady_clock's nanoseconds does not fit 64 bits: added
    // as is it would wrap into the past and time out at once.
    connection_options o;
    o.ping_interval = std::chrono::milliseconds::max();
    o.pong_timeout = std::chrono::milliseconds::max();
    o.idle_timeout = std::chrono::milliseconds::max();
    o.close_timeout = std::chrono::milliseconds::max();
    server_protocol s(o);
    const auto t0 = clock_type::now();
    s.open(t0);
    CHECK(s.next_deadline() == clock_type::time_point::max());
    CHECK_FALSE(s.tick(t0 + 24h * 365).ec);
    CHECK(drain(s).empty()); // no ping
    CHECK(s.state() == ready_state::open);
    REQUIRE_FALSE(s.close(1000, {}, t0));
    drain(s);
    const auto r = s.tick(t0 + 24h * 365);
    CHECK_FALSE(r.ec); // still waiting for the peer's close frame
    CHECK(s.state() == ready_state::closing);
    CHECK(duplex::detail::later(t0, 5ms) == t0 + 5ms);
    CHECK(duplex::detail::later(clock_type::time_point::max(), 5ms) == clock_type::time_point::max());
}
