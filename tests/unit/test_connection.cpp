// Whole connections (handshake, messages, close, timeouts, threads) over the
// in-memory transport: no sockets, bounded in time.
#include <catch2/catch.hpp>

#include "run_until.hpp"

#include <duplex/connection/connection.hpp>
#include <duplex/transport/memory.hpp>

#include <asio/io_context.hpp>
#include <asio/strand.hpp>
#include <asio/write.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <functional>
#include <map>
#include <thread>

using namespace duplex;
using namespace std::chrono_literals;

namespace {

using server_conn = basic_connection<role::server, memory_transport>;
using client_conn = basic_connection<role::client, memory_transport>;

const char* const upgrade_request =
    "GET /chat HTTP/1.1\r\nHost: test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

using duplex_test::run_until;

struct events {
    bool opened = false;
    std::vector<std::string> messages;
    std::vector<std::error_code> errors;
    int closes = 0;
    std::uint16_t close_code = 0;
    std::string close_reason;
};

template <class Conn>
std::shared_ptr<endpoint_config<Conn>> recording_config(events& e, connection_options o = {}) {
    auto c = std::make_shared<endpoint_config<Conn>>();
    c->connection = o;
    c->request.host = "test";
    c->on_open = [&e](Conn&) { e.opened = true; };
    c->on_message = [&e](Conn&, const message& m) { e.messages.push_back(m.str()); };
    c->on_error = [&e](Conn&, std::error_code ec) { e.errors.push_back(ec); };
    c->on_close = [&e](Conn&, std::uint16_t code, std::string_view reason) {
        ++e.closes;
        e.close_code = code;
        e.close_reason = std::string(reason);
    };
    return c;
}

// A peer that speaks raw bytes on the other end of a memory transport.
struct raw_peer {
    memory_transport t;
    std::string received;
    bool eof = false;
    std::array<char, 4096> buf{};

    void read_all() {
        t.async_read_some(asio::buffer(buf), [this](std::error_code ec, std::size_t n) {
            received.append(buf.data(), n);
            if (ec) {
                eof = true;
                t.close(); // like a peer that closes once the server is done
                return;
            }
            read_all();
        });
    }
    void write(std::string bytes) {
        auto keep = std::make_shared<std::string>(std::move(bytes));
        asio::async_write(t, asio::buffer(*keep), [keep](std::error_code, std::size_t) {});
    }
};

// What a counting_transport saw: the bytes of each async_write_some call.
struct write_log {
    std::mutex m;
    std::vector<std::string> writes;
};

// A memory_transport that logs every write call (memory.hpp cannot count them).
class counting_transport {
public:
    using executor_type = memory_transport::executor_type;
    counting_transport(memory_transport t, std::shared_ptr<write_log> log) : t_(std::move(t)), log_(std::move(log)) {}

    executor_type get_executor() const { return t_.get_executor(); }
    template <class Handler>
    void async_start(role r, Handler&& h) { t_.async_start(r, std::forward<Handler>(h)); }
    template <class Handler>
    void async_read_some(asio::mutable_buffer b, Handler&& h) { t_.async_read_some(b, std::forward<Handler>(h)); }
    template <class ConstBuffers, class Handler>
    void async_write_some(const ConstBuffers& buffers, Handler&& h) {
        std::string bytes;
        for (auto it = asio::buffer_sequence_begin(buffers); it != asio::buffer_sequence_end(buffers); ++it) {
            const asio::const_buffer b(*it);
            bytes.append(static_cast<const char*>(b.data()), b.size());
        }
        {
            std::lock_guard<std::mutex> lock(log_->m);
            log_->writes.push_back(std::move(bytes));
        }
        t_.async_write_some(buffers, std::forward<Handler>(h));
    }
    void shutdown_send() noexcept { t_.shutdown_send(); }
    void close() noexcept { t_.close(); }
    std::string remote_address() const { return t_.remote_address(); }

private:
    memory_transport t_;
    std::shared_ptr<write_log> log_;
};
static_assert(is_transport_v<counting_transport>, "counting_transport must meet the transport contract");

} // namespace

TEST_CASE("handshake, echo and a client-initiated close over memory", "[connection][rfc6455][7.1.2]") {
    const std::size_t chunk = GENERATE(std::size_t(1), std::size_t(7), std::size_t(1 << 20));
    CAPTURE(chunk);
    asio::io_context io;
    memory_options mo;
    mo.max_read_chunk = chunk; // 1: every read delivers one byte
    auto [st, ct] = make_memory_pair(io.get_executor(), io.get_executor(), mo);
    events se, ce;
    auto scfg = recording_config<server_conn>(se);
    scfg->on_message = [&se](server_conn& c, const message& m) {
        se.messages.push_back(m.str());
        c.send(m);
    };
    auto ccfg = recording_config<client_conn>(ce);
    ccfg->on_open = [&ce](client_conn& c) {
        ce.opened = true;
        c.send_text("hello");
        c.send_fragment(opcode::text, "frag", false);
        c.ping("p");
        c.send_fragment(opcode::text, "mented", true);
        c.send_binary(std::string(70000, 'b'));
    };
    ccfg->on_message = [&ce](client_conn& c, const message& m) {
        ce.messages.push_back(m.str());
        if (ce.messages.size() == 3) c.close(close_code::normal, "done");
    };
    auto server = std::make_shared<server_conn>(std::move(st), scfg);
    auto client = std::make_shared<client_conn>(std::move(ct), ccfg);
    CHECK(client->ready_state() == ready_state::connecting);
    server->start_accept();
    client->start_connect();
    // Byte-by-byte delivery of 140 KB is slow under sanitizers: allow for it.
    REQUIRE(run_until(io, [&] { return se.closes == 1 && ce.closes == 1; }, 60000ms));
    CHECK(se.opened);
    CHECK(ce.opened);
    CHECK(server->request().path().empty()); // freed once on_open returned
    REQUIRE(ce.messages.size() == 3);
    CHECK(ce.messages[0] == "hello");
    CHECK(ce.messages[1] == "fragmented");
    CHECK(ce.messages[2] == std::string(70000, 'b'));
    CHECK(se.close_code == 1000);
    CHECK(se.close_reason == "done");
    CHECK(ce.close_code == 1000);
    CHECK(se.errors.empty());
    CHECK(ce.errors.empty());
    CHECK(server->ready_state() == ready_state::closed);
    CHECK(client->ready_state() == ready_state::closed);
    CHECK(server->protocol().was_clean());
    CHECK(client->protocol().was_clean());
}

TEST_CASE("server-initiated close reaches the client with its code", "[connection][rfc6455][7.1.2]") {
    asio::io_context io;
    auto [st, ct] = make_memory_pair(io.get_executor(), io.get_executor());
    events se, ce;
    auto scfg = recording_config<server_conn>(se);
    scfg->on_open = [](server_conn& c) { c.close(close_code::going_away, "bye"); };
    auto server = std::make_shared<server_conn>(std::move(st), scfg);
    auto client = std::make_shared<client_conn>(std::move(ct), recording_config<client_conn>(ce));
    server->start_accept();
    client->start_connect();
    REQUIRE(run_until(io, [&] { return se.closes == 1 && ce.closes == 1; }));
    CHECK(ce.close_code == 1001);
    CHECK(ce.close_reason == "bye");
    CHECK(se.close_code == 1001); // the client's echo
    CHECK(ce.errors.empty());
}

TEST_CASE("a TCP drop without a close frame is reported as 1006", "[connection][rfc6455][7.1.5]") {
    asio::io_context io;
    auto [st, ct] = make_memory_pair(io.get_executor(), io.get_executor());
    events se, ce;
    auto server = std::make_shared<server_conn>(std::move(st), recording_config<server_conn>(se));
    auto client = std::make_shared<client_conn>(std::move(ct), recording_config<client_conn>(ce));
    server->start_accept();
    client->start_connect();
    REQUIRE(run_until(io, [&] { return se.opened && ce.opened; }));
    client->transport().close(); // vanish
    REQUIRE(run_until(io, [&] { return se.closes == 1; }));
    CHECK(se.close_code == close_code::abnormal);
    REQUIRE(se.errors.size() == 1);
    CHECK(se.errors[0] == errc::connection_lost);
}

TEST_CASE("heartbeat: pings keep a live peer, a silent one is cut with 1006", "[connection][heartbeat]") {
    connection_options o;
    o.ping_interval = 30ms;
    o.pong_timeout = 60ms;
    asio::io_context io;
    auto [st, ct] = make_memory_pair(io.get_executor(), io.get_executor());
    events se;
    int pongs = 0;
    auto scfg = recording_config<server_conn>(se, o);
    scfg->on_pong = [&pongs](server_conn&, std::string_view) { ++pongs; };
    auto server = std::make_shared<server_conn>(std::move(st), scfg);
    server->start_accept();

    SECTION("a duplex client answers every ping") {
        events ce;
        connection_options quiet; // the client sends no pings of its own
        quiet.ping_interval = 0ms;
        auto client = std::make_shared<client_conn>(std::move(ct), recording_config<client_conn>(ce, quiet));
        client->start_connect();
        REQUIRE(run_until(io, [&] { return pongs >= 3; }, 3000ms));
        CHECK(server->ready_state() == ready_state::open);
        CHECK(se.closes == 0);
        client->close();
        REQUIRE(run_until(io, [&] { return se.closes == 1; }));
    }
    SECTION("a peer that never answers") {
        raw_peer peer{std::move(ct), {}, false, {}};
        peer.write(upgrade_request);
        peer.read_all();
        const auto t0 = std::chrono::steady_clock::now();
        REQUIRE(run_until(io, [&] { return se.closes == 1 && peer.eof; }, 3000ms));
        const auto took = std::chrono::steady_clock::now() - t0;
        CHECK(took >= 90ms); // ping after 30 ms of silence, then 60 ms for the pong
        CHECK(se.close_code == close_code::abnormal);
        REQUIRE(se.errors.size() == 1);
        CHECK(se.errors[0] == errc::ping_timeout);
        CHECK(peer.received.find(std::string("\x89\x04", 2)) != std::string::npos); // it was pinged (a 4-byte token)
    }
}

TEST_CASE("heartbeat: a peer that answered is pinged again ping_interval later, not pong_timeout later",
          "[connection][heartbeat]") {
    // ping_interval is how long a peer may stay silent before we ping it; a pong ends
    // the silence. Were the next ping timed from our last ping plus pong_timeout, a long
    // pong_timeout would leave an idle connection unpinged long enough for a proxy or
    // NAT to drop it.
    connection_options o;
    o.ping_interval = 30ms;
    o.pong_timeout = 20s;
    asio::io_context io;
    auto [st, ct] = make_memory_pair(io.get_executor(), io.get_executor());
    events se, ce;
    int pongs = 0;
    auto scfg = recording_config<server_conn>(se, o);
    scfg->on_pong = [&pongs](server_conn&, std::string_view) { ++pongs; };
    auto server = std::make_shared<server_conn>(std::move(st), scfg);
    connection_options quiet; // the client sends no pings of its own
    quiet.ping_interval = 0ms;
    auto client = std::make_shared<client_conn>(std::move(ct), recording_config<client_conn>(ce, quiet));
    server->start_accept();
    client->start_connect();
    REQUIRE(run_until(io, [&] { return se.opened; }));
    const auto t0 = std::chrono::steady_clock::now();
    REQUIRE(run_until(io, [&] { return pongs >= 4; }, 5000ms)); // 20 s for the second one before
    CHECK(std::chrono::steady_clock::now() - t0 >= 3 * 30ms); // pings 2-4 each wait 30 ms after a pong
    CHECK(server->ready_state() == ready_state::open);
    client->close();
    REQUIRE(run_until(io, [&] { return se.closes == 1 && ce.closes == 1; }));
}

TEST_CASE("an idle connection keeps no send buffer: freed after the handshake and at each timer tick", "[connection][memory]") {
    connection_options o;
    o.ping_interval = 300ms; // the timer ticks (and pings) after 300 ms of silence
    asio::io_context io;
    auto [st, ct] = make_memory_pair(io.get_executor(), io.get_executor());
    events se, ce;
    connection_options quiet;
    quiet.ping_interval = 0ms;
    auto server = std::make_shared<server_conn>(std::move(st), recording_config<server_conn>(se, o));
    auto client = std::make_shared<client_conn>(std::move(ct), recording_config<client_conn>(ce, quiet));
    const auto reserved = [&] { return server->protocol().send_buffer_memory(); };
    server->start_accept();
    client->start_connect();
    REQUIRE(run_until(io, [&] { return se.opened && ce.opened; }));
    REQUIRE(run_until(io, [&] { return server->protocol().send_idle(); }));
    CHECK(reserved() == 0); // the 101 is written: its buffer is gone

    // A busy moment: the buffer is kept between writes...
    server->send_text("one");
    server->send_text("two");
    CHECK(reserved() > 0);
    REQUIRE(run_until(io, [&] { return ce.messages.size() == 2; }));
    CHECK(reserved() > 0);
    // ...and given back at the next tick with nothing to write (the heartbeat's ping,
    // written in that tick, included).
    REQUIRE(run_until(io, [&] { return reserved() == 0; }, 3000ms));
    CHECK(server->ready_state() == ready_state::open);
    CHECK(server->send_text("three") == std::error_code{}); // and sending still works
    REQUIRE(run_until(io, [&] { return ce.messages.size() == 3; }));
    CHECK(ce.messages[2] == "three");
    client->close();
    REQUIRE(run_until(io, [&] { return se.closes == 1 && ce.closes == 1; }));
    CHECK(se.errors.empty());
}

TEST_CASE("send-queue counters may be read from another thread while the io thread frees idle buffers",
          "[connection][memory][threads]") {
    // The io thread frees an idle queue's buffers at every timer tick (here every 2 ms
    // of silence, with a ping each time) and allocates them again for the next frame:
    // a reader on another thread must never see the block being freed (ASan, TSan).
    connection_options o;
    o.ping_interval = 2ms;
    asio::io_context io;
    auto [st, ct] = make_memory_pair(io.get_executor(), io.get_executor());
    events se, ce;
    auto server = std::make_shared<server_conn>(std::move(st), recording_config<server_conn>(se, o));
    auto client = std::make_shared<client_conn>(std::move(ct), recording_config<client_conn>(ce));
    server->start_accept();
    client->start_connect();
    REQUIRE(run_until(io, [&] { return se.opened && ce.opened; }));
    std::atomic<bool> stop{false};
    std::atomic<long> reads{0}, seen_busy{0}, seen_freed{0};
    std::thread monitor([&] {
        while (!stop.load()) {
            const std::size_t memory = server->protocol().send_buffer_memory();
            const bool idle = server->protocol().send_idle();
            const std::size_t queued = server->buffered_amount();
            seen_busy += memory > 0 || !idle || queued > 0;
            seen_freed += memory == 0;
            ++reads;
        }
    });
    const auto end = std::chrono::steady_clock::now() + 400ms;
    int sent = 0;
    while (std::chrono::steady_clock::now() < end) {
        if (sent < 100) {
            CHECK(server->send_text("tick") == std::error_code{});
            ++sent;
        }
        io.restart();
        io.run_for(3ms);
    }
    stop = true;
    monitor.join();
    CHECK(reads > 1000);
    CHECK(seen_busy > 0);  // it did look while buffers were held...
    CHECK(seen_freed > 0); // ...and after they were freed
    CHECK(sent > 10);
    REQUIRE(run_until(io, [&] { return ce.messages.size() == std::size_t(sent); }));
    CHECK(server->ready_state() == ready_state::open);
    CHECK(se.errors.empty());
    client->close(); // a clean end: the memory pair holds both ends until then
    REQUIRE(run_until(io, [&] { return se.closes == 1 && ce.closes == 1; }));
}

TEST_CASE("close() that saw CONNECTING, run after the handshake completed, closes cleanly with its code",
          "[connection][rfc6455][7.1.2]") {
    // close() posts the abandonment when it sees CONNECTING; called from another thread it
    // can race the handshake. Here the client's 101 is already on its way when close() is
    // called, so the connection opens first: it must then do the closing handshake with
    // the code and reason given, not cut the TCP connection (which the peer would see as
    // 1006).
    asio::io_context io;
    auto [st, ct] = make_memory_pair(io.get_executor(), io.get_executor());
    events se, ce;
    auto server = std::make_shared<server_conn>(std::move(st), recording_config<server_conn>(se));
    auto client = std::make_shared<client_conn>(std::move(ct), recording_config<client_conn>(ce));
    server->start_accept();
    client->start_connect();
    const auto end = std::chrono::steady_clock::now() + 5s;
    while (!se.opened && std::chrono::steady_clock::now() < end) io.run_one_for(10ms);
    REQUIRE(se.opened);
    REQUIRE(client->ready_state() == ready_state::connecting); // its read of the 101 is queued
    {
        std::string reason = "leaving early";
        CHECK(client->close(close_code::going_away, reason) == std::error_code{});
        reason.assign(reason.size(), 'x'); // the posted close carries its own copy
    }
    REQUIRE(run_until(io, [&] { return se.closes == 1 && ce.closes == 1; }));
    CHECK(ce.opened);
    CHECK(se.close_code == close_code::going_away); // what the server received (§7.1.5)
    CHECK(se.close_reason == "leaving early");
    CHECK(ce.close_code == close_code::going_away); // the server echoed it
    CHECK(ce.errors.empty());
    CHECK(se.errors.empty());
    CHECK(client->protocol().was_clean());
}

TEST_CASE("the upgrade request is there until on_open returns, for life only with keep_request", "[connection][memory]") {
    const bool keep = GENERATE(false, true);
    CAPTURE(keep);
    asio::io_context io;
    auto [st, ct] = make_memory_pair(io.get_executor(), io.get_executor());
    events se, ce;
    auto scfg = recording_config<server_conn>(se);
    scfg->keep_request = keep;
    std::string in_handshake, in_open, in_message, cookie_in_open, cookie_in_message;
    std::size_t fields_in_message = 0;
    bool got_message = false;
    scfg->on_handshake = [&](server_conn&, const http_request& req, handshake_decision&) { in_handshake = std::string(req.path()); };
    scfg->on_open = [&](server_conn& c) {
        se.opened = true;
        in_open = std::string(c.request().path());
        cookie_in_open = std::string(c.request().cookie("id"));
    };
    scfg->on_message = [&](server_conn& c, const message&) {
        got_message = true;
        in_message = std::string(c.request().path());
        cookie_in_message = std::string(c.request().cookie("id"));
        fields_in_message = c.request().fields.size();
    };
    auto ccfg = recording_config<client_conn>(ce);
    ccfg->request.target = "/room/7?x=1";
    ccfg->request.headers.push_back({"Cookie", "id=42"});
    ccfg->on_open = [](client_conn& c) { c.send_text("hi"); };
    auto server = std::make_shared<server_conn>(std::move(st), scfg);
    auto client = std::make_shared<client_conn>(std::move(ct), ccfg);
    server->start_accept();
    client->start_connect();
    REQUIRE(run_until(io, [&] { return got_message; }));
    CHECK(in_handshake == "/room/7");
    CHECK(in_open == "/room/7");
    CHECK(cookie_in_open == "42");
    CHECK(in_message == (keep ? "/room/7" : ""));
    CHECK(cookie_in_message == (keep ? "42" : ""));
    CHECK((fields_in_message > 0) == keep);
    CHECK(client->request().fields.empty()); // a client never has one
    client->close();
    REQUIRE(run_until(io, [&] { return se.closes == 1 && ce.closes == 1; }));
}

TEST_CASE("the opening handshake is bounded in time", "[connection][timeout]") {
    connection_options o;
    o.handshake_timeout = 100ms;
    asio::io_context io;
    auto [st, ct] = make_memory_pair(io.get_executor(), io.get_executor());
    events se;
    auto server = std::make_shared<server_conn>(std::move(st), recording_config<server_conn>(se, o));
    server->start_accept();
    raw_peer peer{std::move(ct), {}, false, {}};
    peer.write("GET / HTTP/1.1\r\nHost: x\r\n"); // and never the rest
    peer.read_all();
    REQUIRE(run_until(io, [&] { return peer.eof; }, 3000ms));
    CHECK(peer.received.empty());
    CHECK_FALSE(se.opened);
    CHECK(se.closes == 0); // the application never saw it
}

TEST_CASE("bad upgrade requests get their HTTP status and never open", "[connection][rfc6455][4.2.1]") {
    struct case_t {
        std::string request;
        std::string status_line;
    };
    const case_t c = GENERATE(
        case_t{"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 426"}, // plain HTTP, no page hook
        case_t{"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n",
               "HTTP/1.1 426"},
        case_t{"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               "Sec-WebSocket-Key: short\r\nSec-WebSocket-Version: 13\r\n\r\n",
               "HTTP/1.1 400"},
        case_t{"garbage\r\n\r\n", "HTTP/1.1 400"},
        case_t{"GET / HTTP/1.1\r\nHost: x\r\nX: " + std::string(9000, 'a') + "\r\n\r\n", "HTTP/1.1 431"});
    asio::io_context io;
    auto [st, ct] = make_memory_pair(io.get_executor(), io.get_executor());
    events se;
    auto server = std::make_shared<server_conn>(std::move(st), recording_config<server_conn>(se));
    server->start_accept();
    raw_peer peer{std::move(ct), {}, false, {}};
    peer.write(c.request);
    peer.read_all();
    REQUIRE(run_until(io, [&] { return peer.eof; }));
    CHECK(peer.received.substr(0, c.status_line.size()) == c.status_line);
    CHECK_FALSE(se.opened);
}

TEST_CASE("the HTTP hook and the handshake hook see the request", "[connection][rfc6455][4.2.2]") {
    asio::io_context io;
    auto [st, ct] = make_memory_pair(io.get_executor(), io.get_executor());
    events se;
    auto scfg = recording_config<server_conn>(se);
    scfg->on_http = [](const http_request& req, http_reply& res) { res.body = "page for " + std::string(req.path()); };
    scfg->on_handshake = [](server_conn&, const http_request& req, handshake_decision& d) {
        if (req.cookie("token") != "ok") d.reject(401, "no token\n");
    };
    auto server = std::make_shared<server_conn>(std::move(st), scfg);
    server->start_accept();
    raw_peer peer{std::move(ct), {}, false, {}};

    SECTION("plain HTTP is served") {
        peer.write("GET /index HTTP/1.1\r\nHost: x\r\n\r\n");
        peer.read_all();
        REQUIRE(run_until(io, [&] { return peer.eof; }));
        CHECK(peer.received.substr(0, 15) == "HTTP/1.1 200 OK");
        CHECK(peer.received.find("page for /index") != std::string::npos);
    }
    SECTION("an upgrade without the cookie is rejected") {
        peer.write(upgrade_request);
        peer.read_all();
        REQUIRE(run_until(io, [&] { return peer.eof; }));
        CHECK(peer.received.substr(0, 12) == "HTTP/1.1 401");
        CHECK_FALSE(se.opened);
    }
}

TEST_CASE("after an HTTP answer or a refusal, what the peer sends next is only discarded", "[connection][rfc6455][4.2.1]") {
    // The connection half-closes after its answer and reads until the peer closes
    // (bounded by close_timeout); those bytes are neither a second request nor a
    // second refusal.
    asio::io_context io;
    auto [st, ct] = make_memory_pair(io.get_executor(), io.get_executor());
    events se;
    auto cfg = recording_config<server_conn>(se);
    int http_calls = 0, refusals = 0;
    cfg->on_http = [&](const http_request& req, http_reply& res) {
        ++http_calls;
        res.body = std::string(req.path());
    };
    cfg->on_log = [&](log_level, std::string_view what) { refusals += what.find("refused") != std::string_view::npos; };
    auto server = std::make_shared<server_conn>(std::move(st), cfg);
    server->start_accept();
    memory_transport peer = std::move(ct);
    std::string received;
    bool eof = false;
    std::array<char, 4096> buf{};
    std::function<void()> read_all = [&] {
        peer.async_read_some(asio::buffer(buf), [&](std::error_code ec, std::size_t n) {
            received.append(buf.data(), n);
            if (ec) eof = true; // the server's half-close; we keep our side open a while
            else read_all();
        });
    };
    const auto write = [&](std::string bytes) {
        auto keep = std::make_shared<std::string>(std::move(bytes));
        asio::async_write(peer, asio::buffer(*keep), [keep](std::error_code, std::size_t) {});
    };
    const std::string answer_to = GENERATE(std::string("GET /page HTTP/1.1\r\nHost: x\r\n\r\n"), // served
                                           std::string("GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\n")); // 400
    CAPTURE(answer_to);
    write(answer_to);
    read_all();
    REQUIRE(run_until(io, [&] { return eof; }));
    const std::error_code first_error = server->handshake_error();
    // Another request, and a head that cannot be a request (it would be a 400).
    write("GET /again HTTP/1.1\r\nHost: x\r\n\r\nnot a request\n\r\n\r\n");
    run_until(io, [] { return false; }, 100ms);
    peer.close();
    REQUIRE(run_until(io, [&] { return server->ready_state() == ready_state::closed; }));
    CHECK(http_calls == (answer_to.find("/page") != std::string::npos ? 1 : 0));
    CHECK(refusals == (answer_to.find("/page") != std::string::npos ? 0 : 1));
    if (refusals == 1) CHECK(server->handshake_error() == first_error); // still the first refusal's reason
    CHECK(received.find("/again") == std::string::npos);
    CHECK_FALSE(se.opened);
}

TEST_CASE("a protocol error closes that connection with 1002", "[connection][rfc6455][7.1.7]") {
    asio::io_context io;
    auto [st, ct] = make_memory_pair(io.get_executor(), io.get_executor());
    events se;
    auto server = std::make_shared<server_conn>(std::move(st), recording_config<server_conn>(se));
    server->start_accept();
    raw_peer peer{std::move(ct), {}, false, {}};
    peer.write(std::string(upgrade_request) + std::string("\x81\x02hi", 4)); // unmasked: forbidden
    peer.read_all();
    REQUIRE(run_until(io, [&] { return peer.eof && se.closes == 1; }));
    const auto at = peer.received.find("\r\n\r\n");
    REQUIRE(at != std::string::npos);
    const std::string frames = peer.received.substr(at + 4);
    REQUIRE(frames.size() >= 4);
    CHECK(frames[0] == '\x88');
    CHECK(frames.substr(2, 2) == std::string("\x03\xea", 2));
    CHECK(se.close_code == 1002);
    REQUIRE_FALSE(se.errors.empty());
    CHECK(se.errors[0] == errc::mask_required);
}

TEST_CASE("a gathered write's buffer list drops what a partial write took", "[connection][send_queue]") {
    detail::buffer_list l;
    CHECK(l.empty());
    const char a[] = "abcd", b[] = "ef", c[] = "ghijk";
    for (int round = 0; round < 2; ++round) { // the second after clear(): the array is reused
        l.clear();
        l.push_back(a, 4);
        l.push_back(b, 2);
        l.push_back(c, 5);
        for (int i = 0; i < 20; ++i) l.push_back(c, 0); // past the first capacity (8)
        REQUIRE(l.size() == 23);
        const auto text = [&] {
            std::string s;
            for (const auto& x : l.span()) s.append(static_cast<const char*>(x.data()), x.size());
            return s;
        };
        CHECK(text() == "abcdefghijk");
        l.consume(0);
        CHECK(text() == "abcdefghijk");
        l.consume(3); // inside the first buffer
        CHECK(text() == "defghijk");
        CHECK(l.size() == 23);
        l.consume(3); // the rest of the first and all of the second
        CHECK(text() == "ghijk");
        CHECK(l.begin()->size() == 5);
        l.consume(5); // the last bytes: only empty buffers are left
        CHECK(text().empty());
    }
    l.release();
    CHECK(l.empty());
    CHECK(l.span().begin() == l.span().end());
}

TEST_CASE("the send queue's lock excludes: counts from 4 threads add up; try_lock fails while held", "[connection][threads][lock]") {
    send_mutex m;
    REQUIRE(m.try_lock());
    CHECK_FALSE(m.try_lock());
    m.unlock();

    // A waiter that finds it held for a while sleeps, and gets it once it is released.
    std::atomic<bool> got{false};
    m.lock();
    std::thread waiter([&] {
        std::lock_guard<send_mutex> lock(m);
        got = true;
    });
    std::this_thread::sleep_for(20ms);
    CHECK_FALSE(got.load());
    m.unlock();
    waiter.join();
    CHECK(got.load());

    long long counter = 0; // plain: only the lock keeps the increments whole
    constexpr int threads = 4, rounds = 100000;
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t)
        pool.emplace_back([&] {
            for (int i = 0; i < rounds; ++i) {
                std::lock_guard<send_mutex> lock(m);
                ++counter;
            }
        });
    for (auto& t : pool) t.join();
    CHECK(counter == static_cast<long long>(threads) * rounds);
    CHECK(m.try_lock()); // and it is free again
    m.unlock();
}

TEST_CASE("sends from many threads never interleave and all arrive in order", "[connection][threads]") {
    asio::io_context io;
    auto [st, ct] = make_memory_pair(asio::make_strand(io), asio::make_strand(io));
    events se, ce;
    constexpr int threads = 4, per_thread = 500;
    std::mutex m;
    std::map<int, std::vector<int>> seen;
    auto scfg = recording_config<server_conn>(se);
    auto ccfg = recording_config<client_conn>(ce);
    ccfg->on_message = [&](client_conn&, const message& msg) {
        const std::string s = msg.str(); // "thread:seq:padding"
        const auto a = s.find(':'), b = s.find(':', a + 1);
        std::lock_guard<std::mutex> lock(m);
        seen[std::stoi(s.substr(0, a))].push_back(std::stoi(s.substr(a + 1, b - a - 1)));
    };
    auto server = std::make_shared<server_conn>(std::move(st), scfg);
    auto client = std::make_shared<client_conn>(std::move(ct), ccfg);
    server->start_accept();
    client->start_connect();
    std::vector<std::thread> io_threads;
    for (int i = 0; i < 2; ++i) io_threads.emplace_back([&] { io.run_for(10s); });
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while (server->ready_state() != ready_state::open && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(1ms);
    REQUIRE(server->ready_state() == ready_state::open);

    std::vector<std::thread> senders;
    for (int t = 0; t < threads; ++t)
        senders.emplace_back([&, t] {
            for (int i = 0; i < per_thread; ++i)
                server->send_text(std::to_string(t) + ":" + std::to_string(i) + ":" + std::string(static_cast<std::size_t>(i % 300), 'x'));
        });
    for (auto& s : senders) s.join();
    auto count = [&] {
        std::lock_guard<std::mutex> lock(m);
        std::size_t n = 0;
        for (auto& kv : seen) n += kv.second.size();
        return n;
    };
    while (count() < threads * per_thread && std::chrono::steady_clock::now() < deadline + 5s)
        std::this_thread::sleep_for(1ms);
    client->close();
    while ((server->ready_state() != ready_state::closed || client->ready_state() != ready_state::closed) &&
           std::chrono::steady_clock::now() < deadline + 10s)
        std::this_thread::sleep_for(1ms);
    CHECK(client->ready_state() == ready_state::closed);
    io.stop();
    for (auto& t : io_threads) t.join();
    REQUIRE(count() == threads * per_thread);
    for (auto& kv : seen) {
        REQUIRE(kv.second.size() == per_thread);
        for (int i = 0; i < per_thread; ++i) REQUIRE(kv.second[static_cast<std::size_t>(i)] == i);
    }
}

TEST_CASE("a message over the limit closes with 1009", "[connection][rfc6455][7.4.1]") {
    connection_options small;
    small.max_message_size = 1000;
    asio::io_context io;
    auto [st, ct] = make_memory_pair(io.get_executor(), io.get_executor());
    events se, ce;
    auto server = std::make_shared<server_conn>(std::move(st), recording_config<server_conn>(se, small));
    auto ccfg = recording_config<client_conn>(ce);
    ccfg->on_open = [](client_conn& c) { c.send_binary(std::string(1001, 'x')); };
    auto client = std::make_shared<client_conn>(std::move(ct), ccfg);
    server->start_accept();
    client->start_connect();
    REQUIRE(run_until(io, [&] { return se.closes == 1 && ce.closes == 1; }));
    CHECK(ce.close_code == close_code::message_too_big);
    CHECK(se.close_code == close_code::message_too_big);
    REQUIRE_FALSE(se.errors.empty());
    CHECK(se.errors[0] == errc::message_too_big);
}

TEST_CASE("closing a client during its handshake reports 1006", "[connection][rfc6455][7.1.7]") {
    asio::io_context io;
    auto [st, ct] = make_memory_pair(io.get_executor(), io.get_executor());
    events ce;
    auto client = std::make_shared<client_conn>(std::move(ct), recording_config<client_conn>(ce));
    client->start_connect(); // nobody answers on the other end
    io.run_for(20ms);
    CHECK(client->ready_state() == ready_state::connecting);
    CHECK(client->send_text("x") == errc::not_open);
    client->close();
    REQUIRE(run_until(io, [&] { return ce.closes == 1; }));
    CHECK(ce.close_code == close_code::abnormal);
    REQUIRE(ce.errors.size() == 1);
    CHECK(ce.errors[0] == errc::closed);
    CHECK(client->ready_state() == ready_state::closed);
}

TEST_CASE("running out of memory for a message fails that connection with 1011, not the process", "[connection][limits]") {
    asio::io_context io;
    auto [st, ct] = make_memory_pair(io.get_executor(), io.get_executor());
    events se, ce;
    auto scfg = recording_config<server_conn>(se);
    // Stands in for an allocation failing while the message is handled.
    scfg->on_message = [](server_conn&, const message& m) { if (m.text() == "boom") throw std::bad_alloc(); };
    auto ccfg = recording_config<client_conn>(ce);
    ccfg->on_open = [](client_conn& c) { c.send_text("boom"); };
    auto server = std::make_shared<server_conn>(std::move(st), scfg);
    auto client = std::make_shared<client_conn>(std::move(ct), ccfg);
    server->start_accept();
    client->start_connect();
    REQUIRE(run_until(io, [&] { return se.closes == 1 && ce.closes == 1; }));
    CHECK(ce.close_code == close_code::internal_error);
    REQUIRE_FALSE(se.errors.empty());
    CHECK(se.errors[0] == errc::internal_error);
}

TEST_CASE("sends made in one on_message handler reach the transport in one write", "[connection][send_queue][rfc6455][5.4]") {
    using counted_server = basic_connection<role::server, counting_transport>;
    asio::io_context io;
    auto [st, ct] = make_memory_pair(io.get_executor(), io.get_executor());
    auto log = std::make_shared<write_log>();
    events se, ce;
    auto scfg = recording_config<counted_server>(se);
    scfg->on_message = [](counted_server& c, const message& m) {
        if (m.text() != "go") return;
        c.send_text("one");
        c.send_binary(std::string("two"));
        c.send_fragment(opcode::text, "thr", false);
        c.send_fragment(opcode::text, "ee", true);
        c.send(opcode::text, "four");
    };
    auto ccfg = recording_config<client_conn>(ce);
    ccfg->on_open = [](client_conn& c) { c.send_text("go"); };
    auto server = std::make_shared<counted_server>(counting_transport(std::move(st), log), scfg);
    auto client = std::make_shared<client_conn>(std::move(ct), ccfg);
    server->start_accept();
    client->start_connect();
    REQUIRE(run_until(io, [&] { return ce.messages.size() == 4; }));
    CHECK(ce.messages == std::vector<std::string>{"one", "two", "three", "four"});
    {
        std::lock_guard<std::mutex> lock(log->m);
        REQUIRE(log->writes.size() == 2); // the 101, then everything the handler sent
        CHECK(log->writes[0].rfind("HTTP/1.1 101", 0) == 0);
        std::string frames;
        frames += std::string("\x81\x03") + "one";
        frames += std::string("\x82\x03") + "two";
        frames += std::string("\x01\x03") + "thr"; // text, not FIN
        frames += std::string("\x80\x02") + "ee";  // continuation, FIN
        frames += std::string("\x81\x04") + "four";
        CHECK(log->writes[1] == frames);
    }
    client->close();
    REQUIRE(run_until(io, [&] { return se.closes == 1 && ce.closes == 1; }));
    CHECK(se.errors.empty());
}

// ---- the deadline heap (connection/deadlines.hpp) ----------------------------------

namespace {
// Stands in for a connection: owns a deadline, records when it fires.
struct deadline_owner : std::enable_shared_from_this<deadline_owner> {
    struct log_type {
        std::mutex m;
        std::vector<std::pair<int, std::chrono::steady_clock::time_point>> fired; // id, when
        std::size_t count() {
            std::lock_guard<std::mutex> lock(m);
            return fired.size();
        }
    };
    deadline_owner(int i, asio::any_io_executor e, log_type& l) : id(i), ex(std::move(e)), log(l), deadline(this, ex) {}
    static void on_deadline(std::shared_ptr<void> self) {
        auto* o = static_cast<deadline_owner*>(self.get());
        std::lock_guard<std::mutex> lock(o->log.m);
        o->log.fired.emplace_back(o->id, std::chrono::steady_clock::now());
    }
    int id;
    asio::any_io_executor ex;
    log_type& log;
    detail::deadline deadline;
};
} // namespace

TEST_CASE("deadlines: one timer fires each owner's deadline once, in order; moved ones move, cleared ones never fire",
          "[connection][deadline]") {
    asio::io_context io;
    deadline_owner::log_type log;
    std::vector<std::shared_ptr<deadline_owner>> owners;
    for (int i = 0; i < 5; ++i) owners.push_back(std::make_shared<deadline_owner>(i, io.get_executor(), log));
    const auto t0 = std::chrono::steady_clock::now();
    std::map<int, std::chrono::steady_clock::time_point> due{{0, t0 + 60ms}, {1, t0 + 20ms}, {3, t0 + 80ms}, {4, t0 + 5ms}};
    owners[0]->deadline.set(t0 + 60ms, io.get_executor());
    owners[1]->deadline.set(t0 + 40ms, io.get_executor());
    owners[1]->deadline.set(due[1], io.get_executor()); // moved earlier
    owners[2]->deadline.set(t0 + 30ms, io.get_executor());
    owners[2]->deadline.clear();                         // never fires
    owners[3]->deadline.set(t0 + 10ms, io.get_executor());
    owners[3]->deadline.set(due[3], io.get_executor()); // moved later
    owners[4]->deadline.set(due[4], io.get_executor());
    CHECK(owners[0]->deadline.pending());
    CHECK_FALSE(owners[2]->deadline.pending());
    // Nothing else keeps the io_context busy: run() returns once the last deadline fired.
    io.run_for(5s);
    CHECK(std::chrono::steady_clock::now() - t0 < 2s);
    REQUIRE(log.fired.size() == 4);
    std::vector<int> order;
    for (const auto& [id, when] : log.fired) {
        order.push_back(id);
        CHECK(when >= due[id]); // never early
    }
    CHECK(order == std::vector<int>{4, 1, 0, 3});
    for (const auto& o : owners) CHECK_FALSE(o->deadline.pending());
}

TEST_CASE("deadlines: moving the earliest deadline later lets the next one fire on time", "[connection][deadline]") {
    asio::io_context io;
    deadline_owner::log_type log;
    auto a = std::make_shared<deadline_owner>(1, io.get_executor(), log);
    auto b = std::make_shared<deadline_owner>(2, io.get_executor(), log);
    const auto t0 = std::chrono::steady_clock::now();
    a->deadline.set(t0 + 10ms, io.get_executor());
    b->deadline.set(t0 + 30ms, io.get_executor());
    a->deadline.set(t0 + 300ms, io.get_executor()); // now b is first
    io.run_for(5s);
    REQUIRE(log.fired.size() == 2);
    CHECK(log.fired[0].first == 2);
    CHECK(log.fired[0].second - t0 < 250ms); // b did not wait for a
    CHECK(log.fired[1].first == 1);
    CHECK(log.fired[1].second >= t0 + 300ms);
}

TEST_CASE("deadlines: an owner destroyed or cleared before its deadline leaves nothing pending", "[connection][deadline]") {
    asio::io_context io;
    deadline_owner::log_type log;
    auto a = std::make_shared<deadline_owner>(1, io.get_executor(), log);
    auto b = std::make_shared<deadline_owner>(2, io.get_executor(), log);
    a->deadline.set(std::chrono::steady_clock::now() + 10s, io.get_executor());
    b->deadline.set(std::chrono::steady_clock::now() + 20s, io.get_executor());
    a.reset();         // leaves the heap with it
    b->deadline.clear();
    const auto t0 = std::chrono::steady_clock::now();
    io.run_for(30s);   // returns at once: no timer is left waiting for 10 or 20 s
    CHECK(std::chrono::steady_clock::now() - t0 < 1s);
    CHECK(log.fired.empty());
}

TEST_CASE("deadlines: many owners due at the same moment all fire, once each", "[connection][deadline]") {
    asio::io_context io;
    deadline_owner::log_type log;
    constexpr int n = 200; // more than one round of the service's batch of 64
    std::vector<std::shared_ptr<deadline_owner>> owners;
    const auto when = std::chrono::steady_clock::now() + 5ms;
    for (int i = 0; i < n; ++i) {
        owners.push_back(std::make_shared<deadline_owner>(i, io.get_executor(), log));
        owners.back()->deadline.set(when, io.get_executor());
    }
    io.run_for(5s); // returns once all fired
    REQUIRE(log.fired.size() == n);
    std::vector<int> seen(n, 0);
    for (const auto& f : log.fired) ++seen[f.first];
    CHECK(std::count(seen.begin(), seen.end(), 1) == n);
}

TEST_CASE("deadlines: set, moved and cleared from many threads, each fires at most once", "[connection][deadline][threads]") {
    asio::io_context io;
    auto work = asio::make_work_guard(io);
    std::vector<std::thread> runners;
    for (int i = 0; i < 3; ++i) runners.emplace_back([&] { io.run_for(10s); });
    deadline_owner::log_type log;
    constexpr int n = 300;
    std::vector<std::shared_ptr<deadline_owner>> owners;
    for (int i = 0; i < n; ++i) owners.push_back(std::make_shared<deadline_owner>(i, asio::make_strand(io), log));
    // Each owner's deadline is touched on its own strand, as a connection's is.
    for (int i = 0; i < n; ++i) {
        asio::post(owners[i]->ex, [o = owners[i], i] {
            const auto now = std::chrono::steady_clock::now();
            o->deadline.set(now + std::chrono::milliseconds(50 + i % 7), o->ex);
            o->deadline.set(now + std::chrono::milliseconds(1 + i % 13), o->ex);
            if (i % 3 == 0) o->deadline.clear();
        });
    }
    const std::size_t expected = n - (n + 2) / 3; // every third was cleared
    const auto end = std::chrono::steady_clock::now() + 5s;
    while (log.count() < expected && std::chrono::steady_clock::now() < end) std::this_thread::sleep_for(1ms);
    std::this_thread::sleep_for(100ms); // anything late or twice would show now
    work.reset();
    for (auto& t : runners) t.join();
    std::lock_guard<std::mutex> lock(log.m);
    REQUIRE(log.fired.size() == expected);
    std::vector<int> seen(n, 0);
    for (const auto& f : log.fired) ++seen[f.first];
    for (int i = 0; i < n; ++i) CHECK(seen[i] == (i % 3 == 0 ? 0 : 1));
}
