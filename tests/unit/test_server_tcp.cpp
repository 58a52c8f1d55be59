// The server over loopback TCP (127.0.0.1, free ports): the seed's echo,
// interval-push and chat servers as user code, 1,000 connections at once,
// graceful stop, limits, and bad input that must not disturb good connections.
// The echo, chat, interval-push, many-connections and graceful-stop scenarios are
// written once (templates on the transport) and run over plain TCP and over TLS,
// with a self-signed certificate made at test time by the openssl command
// (tls_fixture.hpp); the clients verify it.
#include <catch2/catch.hpp>

#include "run_until.hpp"

#include <duplex/server.hpp>
#include <duplex/transport/memory.hpp>
#ifdef DUPLEX_HAS_TLS
#include <duplex/transport/tls.hpp>
#endif
#include "tls_fixture.hpp"

#include <asio/connect.hpp>
#include <asio/read.hpp>
#include <asio/steady_timer.hpp>
#include <asio/write.hpp>

#include <algorithm>
#include <any>
#include <atomic>
#include <cctype>
#include <cstdlib>
#include <future>
#include <map>
#include <optional>
#include <stdexcept>
#include <fcntl.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <cerrno>
#include <thread>

using namespace duplex;
using namespace std::chrono_literals;

namespace {

// The transports the scenarios run over: how a server wraps an accepted socket,
// and how a test client wraps its connected one.
struct over_tcp {
    using transport = tcp_transport;
    using server_type = server;
    static server_type::transport_factory accept() { return {}; } // the default: plain TCP
    static transport client_transport(asio::ip::tcp::socket s) { return tcp_transport(std::move(s)); }
    template <class Conn>
    static void check_secure(Conn&) {} // nothing to check on plain TCP
};

#ifdef DUPLEX_HAS_TLS
struct over_tls {
    using transport = tls_transport;
    using server_type = tls_server;
    static server_type::transport_factory accept() {
        const auto& tc = duplex_test::certs();
        return tls_accept(std::make_shared<asio::ssl::context>(make_server_tls_context(tc.cert, tc.key)));
    }
    // Trusts the test certificate and verifies it (chain and IP:127.0.0.1), as a real client would.
    static transport client_transport(asio::ip::tcp::socket s) {
        static const std::shared_ptr<asio::ssl::context> ctx = duplex_test::trusting(duplex_test::certs().cert);
        tls_transport t(std::move(s), ctx);
        const std::error_code ec = t.set_client_host("127.0.0.1", tls_verify::peer);
        if (ec) FAIL("set_client_host: " << ec.message());
        return t;
    }
    // An open client connection really is TLS 1.2+, with the server's certificate verified.
    template <class Conn>
    static void check_secure(Conn& c) {
        SSL* ssl = c.transport().stream().native_handle();
        CHECK(SSL_version(ssl) >= TLS1_2_VERSION);
        CHECK(SSL_get_peer_cert_chain(ssl) != nullptr);
        CHECK(SSL_get_verify_result(ssl) == X509_V_OK);
    }
};
#endif

template <class T>
using basic_client_conn = basic_connection<role::client, typename T::transport>;
using client_conn = basic_client_conn<over_tcp>;

// The server runs on its own thread; the test drives clients on another io_context.
template <class T>
struct basic_running_server {
    asio::io_context io;
    std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work{io.get_executor()};
    typename T::server_type srv;
    std::thread thread;

    // concurrency_hint 1 (asio::io_context io(1)) makes a one-thread server: no strands.
    explicit basic_running_server(server_options o = {}, int concurrency_hint = ASIO_CONCURRENCY_HINT_DEFAULT)
        : io(concurrency_hint), srv(io, std::move(o), T::accept()) {}
    void start() {
        REQUIRE_FALSE(srv.listen(0)); // 127.0.0.1, a free port
        thread = std::thread([this] { io.run_for(60s); });
    }
    ~basic_running_server() {
        work.reset();
        asio::post(io, [this] { srv.stop(); });
        if (thread.joinable()) thread.join();
    }
};
using running_server = basic_running_server<over_tcp>;

struct client_events {
    std::atomic<int> opened{0}, closed{0};
    std::atomic<std::uint16_t> last_code{0};
    std::mutex m;
    std::vector<std::string> messages;
    std::vector<std::string> errors; // on_error's, as messages
    std::map<std::uint16_t, int> close_codes; // on_close's, counted by code
    std::size_t count() {
        std::lock_guard<std::mutex> lock(m);
        return messages.size();
    }
    std::vector<std::string> error_list() {
        std::lock_guard<std::mutex> lock(m);
        return errors;
    }
};

template <class T = over_tcp>
std::shared_ptr<endpoint_config<basic_client_conn<T>>> client_config(client_events& e) {
    using conn = basic_client_conn<T>;
    auto c = std::make_shared<endpoint_config<conn>>();
    c->request.host = "127.0.0.1";
    c->on_open = [&e](conn&) { ++e.opened; };
    c->on_message = [&e](conn&, const message& m) {
        std::lock_guard<std::mutex> lock(e.m);
        e.messages.push_back(m.str());
    };
    c->on_error = [&e](conn&, std::error_code ec) {
        std::lock_guard<std::mutex> lock(e.m);
        e.errors.push_back(ec.message());
    };
    c->on_close = [&e](conn&, std::uint16_t code, std::string_view) {
        {
            std::lock_guard<std::mutex> lock(e.m);
            ++e.close_codes[code];
        }
        e.last_code = code;
        ++e.closed;
    };
    return c;
}

template <class T = over_tcp>
std::shared_ptr<basic_client_conn<T>> connect(asio::io_context& io, std::uint16_t port,
                                              std::shared_ptr<const endpoint_config<basic_client_conn<T>>> cfg) {
    asio::ip::tcp::socket s(io);
    s.connect({asio::ip::make_address("127.0.0.1"), port});
    auto c = std::make_shared<basic_client_conn<T>>(T::client_transport(std::move(s)), std::move(cfg));
    c->start_connect();
    return c;
}

// n clients, each recording into its own client_events.
template <class T = over_tcp>
struct client_group {
    std::vector<std::unique_ptr<client_events>> ev;
    std::vector<std::shared_ptr<basic_client_conn<T>>> clients;
    bool all_open() const {
        for (auto& e : ev) if (e->opened == 0) return false;
        return true;
    }
};
template <class T = over_tcp>
client_group<T> connect_clients(asio::io_context& io, std::uint16_t port, int n) {
    client_group<T> g;
    for (int i = 0; i < n; ++i) {
        g.ev.push_back(std::make_unique<client_events>());
        g.clients.push_back(connect<T>(io, port, client_config<T>(*g.ev.back())));
    }
    return g;
}

using duplex_test::run_until;

// A blocking raw socket, for bytes no well-behaved client would send.
struct raw_socket {
    asio::io_context io;
    asio::ip::tcp::socket s{io};
    explicit raw_socket(std::uint16_t port) { s.connect({asio::ip::make_address("127.0.0.1"), port}); }
    void send(std::string_view bytes) {
        std::error_code ec;
        asio::write(s, asio::buffer(bytes.data(), bytes.size()), ec);
    }
    // Reads until EOF, the limit, or `until` appears; returns everything read.
    std::string read_all(std::chrono::milliseconds limit = 5000ms, std::string_view until = {}) {
        std::string out;
        std::array<char, 4096> buf;
        const auto end = std::chrono::steady_clock::now() + limit;
        s.non_blocking(true);
        while (std::chrono::steady_clock::now() < end) {
            std::error_code ec;
            const std::size_t n = s.read_some(asio::buffer(buf), ec);
            if (ec == asio::error::would_block) {
                std::this_thread::sleep_for(1ms);
                continue;
            }
            out.append(buf.data(), n);
            if (ec || (!until.empty() && out.find(until) != std::string::npos)) break;
        }
        return out;
    }
    // True if the server ends the connection (EOF or reset) within `limit`;
    // whatever it sent before is read and dropped.
    bool closed_within(std::chrono::milliseconds limit) {
        const auto end = std::chrono::steady_clock::now() + limit;
        std::array<char, 4096> buf;
        s.non_blocking(true);
        for (;;) {
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - std::chrono::steady_clock::now());
            pollfd p{s.native_handle(), POLLIN, 0};
            if (::poll(&p, 1, static_cast<int>(std::max<long long>(left.count(), 0))) <= 0) return false;
            std::error_code ec;
            s.read_some(asio::buffer(buf), ec);
            if (ec && ec != asio::error::would_block) return true;
        }
    }
};

const std::string upgrade =
    "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n";

} // namespace

// ---- the seed's example servers, each checked by a test client, over TCP and TLS ----

template <class T>
static void echo_scenario() {
    basic_running_server<T> rs;
    rs.srv.on_message([](auto& c, const message& m) { c.send(m); });
    rs.start();
    asio::io_context cio;
    client_events e;
    auto cfg = client_config<T>(e);
    cfg->on_open = [&e](auto& c) {
        ++e.opened;
        c.send_text("hello");
        c.send_binary(std::string("\0\1\2", 3));
        c.send_text(std::string(65536, 'x')); // more than one TLS record (16 KiB)
    };
    auto c = connect<T>(cio, rs.srv.port(), cfg);
    REQUIRE(run_until(cio, [&] { return e.count() == 3; }));
    T::check_secure(*c);
    CHECK(e.messages[0] == "hello");
    CHECK(e.messages[1] == std::string("\0\1\2", 3));
    CHECK(e.messages[2] == std::string(65536, 'x'));
    c->close();
    REQUIRE(run_until(cio, [&] { return e.closed == 1; }));
    CHECK(e.last_code == 1000);
    CHECK(e.error_list().empty());
}

TEST_CASE("echo server in a few lines, over TCP", "[server][tcp]") { echo_scenario<over_tcp>(); }
#ifdef DUPLEX_HAS_TLS
TEST_CASE("echo server in a few lines over TLS", "[server][tls]") { echo_scenario<over_tls>(); }
#endif

// Every client sends one message: each message reaches every client, its sender
// included, exactly once (and nothing else arrives).
template <class T>
static void chat_scenario() {
    basic_running_server<T> rs;
    rs.srv.on_message([&](auto&, const message& m) { rs.srv.broadcast(m); });
    rs.start();
    asio::io_context cio;
    constexpr int n = 5;
    auto group = connect_clients<T>(cio, rs.srv.port(), n);
    auto& ev = group.ev;
    auto& clients = group.clients;
    REQUIRE(run_until(cio, [&] { return group.all_open() && rs.srv.connection_count() == n; }));
    std::vector<std::string> sent;
    for (int i = 0; i < n; ++i) {
        sent.push_back("hi all from " + std::to_string(i));
        REQUIRE_FALSE(clients[i]->send_text(sent.back()));
    }
    REQUIRE(run_until(cio, [&] {
        for (auto& e : ev) if (e->count() < sent.size()) return false;
        return true;
    }));
    cio.run_for(50ms); // time for a duplicate to show up
    for (int i = 0; i < n; ++i) {
        INFO("client " << i);
        std::lock_guard<std::mutex> lock(ev[i]->m);
        std::vector<std::string> got = ev[i]->messages;
        std::sort(got.begin(), got.end());
        CHECK(got == sent); // each exactly once, the client's own included
        CHECK(ev[i]->errors.empty());
    }
}

TEST_CASE("chat server: every message reaches every client, sender included", "[server][tcp][broadcast]") {
    chat_scenario<over_tcp>();
}
#ifdef DUPLEX_HAS_TLS
TEST_CASE("chat server over TLS: every message reaches every client and the sender exactly once",
          "[server][tls][broadcast]") {
    chat_scenario<over_tls>();
}
#endif

// A one-thread server (io_context io(1)) has no strands and batches the writes
// of a burst of broadcasts (detail::flush_batch): nothing may be lost,
// duplicated or reordered by that, and sends from other threads still work.
TEST_CASE("one-thread server: batched broadcasts arrive once each and in order", "[server][tcp][broadcast][threads]") {
    CHECK_FALSE(running_server().srv.one_thread()); // the default io_context may run on many threads
    running_server rs({}, 1);
    REQUIRE(rs.srv.one_thread());
    rs.srv.on_message([&](auto&, const message& m) { rs.srv.broadcast(m); });
    rs.start();
    asio::io_context cio;
    constexpr int n = 20, senders = 4, per_sender = 50;
    auto group = connect_clients(cio, rs.srv.port(), n);
    auto& ev = group.ev;
    auto& clients = group.clients;
    REQUIRE(run_until(cio, [&] { return group.all_open() && rs.srv.connection_count() == n; }));
    for (int k = 0; k < per_sender; ++k)
        for (int s = 0; s < senders; ++s) clients[s]->send_text(std::to_string(s) + ":" + std::to_string(k));
    // From this thread, which runs no io_context: posted, not batched.
    for (auto& c : rs.srv.clients().snapshot()) CHECK_FALSE(c->send_text("from outside"));
    const std::size_t expected = senders * per_sender + 1;
    REQUIRE(run_until(cio, [&] {
        for (auto& e : ev) if (e->count() < expected) return false;
        return true;
    }));
    cio.run_for(50ms);
    for (auto& e : ev) {
        std::lock_guard<std::mutex> lock(e->m);
        REQUIRE(e->messages.size() == expected); // exactly once
        std::vector<int> next(senders, 0);
        int outside = 0;
        for (const auto& m : e->messages) {
            if (m == "from outside") { ++outside; continue; }
            const int s = std::stoi(m.substr(0, m.find(':')));
            CHECK(m == std::to_string(s) + ":" + std::to_string(next[s]++)); // each sender's order kept
        }
        CHECK(outside == 1);
    }
}

// A TCP transport that records every write it makes, by peer address: it shows
// how the frames of a broadcast were grouped into writes (sendmsg calls).
struct write_recording_tcp : tcp_transport {
    struct log_type {
        std::mutex m;
        std::map<std::string, std::vector<std::string>> writes; // by remote address
    };
    static log_type& log() {
        static log_type l;
        return l;
    }
    explicit write_recording_tcp(asio::ip::tcp::socket s) : tcp_transport(std::move(s)), peer_(remote_address()) {}

    // How many of the next connections fail to start (async_start throws), for the
    // test of a server that must survive that.
    static std::atomic<int>& failing_starts() {
        static std::atomic<int> n{0};
        return n;
    }
    template <class Handler>
    void async_start(role r, Handler&& h) {
        if (failing_starts() > 0 && failing_starts()-- > 0) throw std::runtime_error("no start for this one");
        tcp_transport::async_start(r, std::forward<Handler>(h));
    }

    template <class ConstBuffers>
    std::size_t try_write_some(const ConstBuffers& buffers, std::error_code& ec) {
        const std::size_t n = tcp_transport::try_write_some(buffers, ec);
        if (n > 0) record(buffers, n);
        return n;
    }
    template <class ConstBuffers, class Handler>
    void async_write_some(const ConstBuffers& buffers, Handler&& h) {
        record(buffers, asio::buffer_size(buffers)); // small writes: taken whole
        tcp_transport::async_write_some(buffers, std::forward<Handler>(h));
    }

private:
    template <class ConstBuffers>
    void record(const ConstBuffers& buffers, std::size_t n) {
        std::string bytes;
        for (auto it = asio::buffer_sequence_begin(buffers); it != asio::buffer_sequence_end(buffers) && bytes.size() < n; ++it) {
            const asio::const_buffer b(*it);
            bytes.append(static_cast<const char*>(b.data()), std::min(b.size(), n - bytes.size()));
        }
        std::lock_guard<std::mutex> lock(log().m);
        log().writes[peer_].push_back(std::move(bytes));
    }
    std::string peer_;
};
struct over_recorded_tcp {
    using transport = write_recording_tcp;
    using server_type = basic_server<write_recording_tcp>;
    static server_type::transport_factory accept() {
        return [](asio::ip::tcp::socket s) { return write_recording_tcp(std::move(s)); };
    }
};

// A burst of broadcasts is written once per receiver: a message whose socket
// becomes readable while the burst waits to be written (here: sent from inside
// the handler of the first) is read first and joins the same write, so 5 senders
// cost about one sendmsg per receiver, not five (RFC 6455 §5.4 allows any
// grouping of whole frames). One thread runs the io_context either way, so the
// order is known; with strands the burst posts the receiver's flush to its strand
// (posted at once, as it was, the flush wrote "a" alone).
static void joins_its_write_scenario(int concurrency_hint) {
    {
        std::lock_guard<std::mutex> lock(write_recording_tcp::log().m);
        write_recording_tcp::log().writes.clear(); // a rerun in the same process starts afresh
    }
    basic_running_server<over_recorded_tcp> rs({}, concurrency_hint);
    REQUIRE(rs.srv.one_thread() == (concurrency_hint == 1));
    std::atomic<raw_socket*> second_sender{nullptr};
    const std::string frame_b = "\x81\x81" "\x01\x02\x03\x04" "c"; // "b" masked: 'b' ^ 0x01 = 'c'
    rs.srv.on_message([&](auto&, const message& m) {
        rs.srv.broadcast(m);
        if (m.text() == "a") second_sender.load()->send(frame_b); // readable before the flush
    });
    rs.start();
    const auto open = [&](raw_socket& r) {
        r.send(upgrade + "\r\n");
        REQUIRE(r.read_all(5000ms, "\r\n\r\n").rfind("HTTP/1.1 101", 0) == 0);
    };
    raw_socket receiver(rs.srv.port()), a(rs.srv.port()), b(rs.srv.port());
    open(receiver);
    open(a);
    open(b);
    second_sender = &b;
    const std::string key = "127.0.0.1:" + std::to_string(receiver.s.local_endpoint().port());
    a.send("\x81\x81" "\x01\x02\x03\x04" "`"); // "a": 'a' ^ 0x01 = '`'
    const std::string both = "\x81\x01" "a" "\x81\x01" "b";
    CHECK(receiver.read_all(5000ms, both) == both);
    std::lock_guard<std::mutex> lock(write_recording_tcp::log().m);
    const auto& writes = write_recording_tcp::log().writes[key];
    REQUIRE(writes.size() == 2);
    CHECK(writes[0].rfind("HTTP/1.1 101", 0) == 0);
    CHECK(writes[1] == both); // one write for both messages
}

TEST_CASE("one-thread server: a message that arrives while a broadcast waits joins its write", "[server][tcp][broadcast]") {
    joins_its_write_scenario(1);
}
TEST_CASE("server with strands: a message that arrives while a broadcast waits joins its write", "[server][tcp][broadcast]") {
    joins_its_write_scenario(ASIO_CONCURRENCY_HINT_DEFAULT);
}

// A one-thread server whose io_context stops while a burst of broadcasts waits to be
// written (io.stop() in the handler that broadcast), and is then destroyed on a
// thread that goes on: the burst's connections go with the io_context. When the
// burst lived in a thread_local, it kept them until the thread exited, after the
// io_context's services were gone (ASan: heap-use-after-free in ~deadline).
TEST_CASE("one-thread server: a burst left behind by a destroyed io_context goes with it", "[server][tcp][broadcast]") {
    std::atomic<std::uint16_t> port{0};
    std::atomic<bool> listening{false}, broadcast_stopped{false}, destroyed{false};
    std::thread server_thread([&] {
        {
            asio::io_context io(1);
            server srv(io);
            srv.on_message([&](auto&, const message& m) {
                srv.broadcast(m); // marks the other receivers: their writes wait for the burst
                broadcast_stopped = true;
                io.stop();
            });
            listening = !srv.listen(0) && srv.one_thread();
            port = srv.port();
            io.run_for(20s);
        }
        destroyed = true;
        std::this_thread::sleep_for(50ms); // the thread goes on after its io_context
    });
    struct joiner {
        std::thread& t;
        ~joiner() { t.join(); }
    } join_at_end{server_thread};
    asio::io_context cio;
    REQUIRE(run_until(cio, [&] { return port != 0; }));
    REQUIRE(listening);
    auto group = connect_clients(cio, port, 3);
    REQUIRE(run_until(cio, [&] { return group.all_open(); }));
    CHECK_FALSE(group.clients[0]->send_text("burst"));
    REQUIRE(run_until(cio, [&] { return destroyed.load(); }));
    CHECK(broadcast_stopped);
}

// Two threads run the io_context: a burst's handler may run on the other thread
// while this one still adds to it. Nothing may be lost, duplicated or reordered,
// a close sent after the messages comes after them, and sends from a thread that
// runs no io_context are posted as before.
TEST_CASE("two-thread server: batched broadcasts arrive once each and in order", "[server][tcp][broadcast][threads]") {
    running_server rs({}, 2);
    REQUIRE_FALSE(rs.srv.one_thread());
    constexpr int n = 12, senders = 4, per_sender = 60;
    std::atomic<int> from_senders{0};
    rs.srv.on_message([&](auto&, const message& m) {
        rs.srv.broadcast(m);
        // The last message: every client is closed from an io thread (its close
        // frame is queued behind what was broadcast).
        if (++from_senders == senders * per_sender)
            for (auto& c : rs.srv.clients().snapshot()) c->close(close_code::going_away, "done");
    });
    rs.start();
    std::thread second([&] { rs.io.run_for(60s); });
    asio::io_context cio;
    auto group = connect_clients(cio, rs.srv.port(), n);
    auto& ev = group.ev;
    auto& clients = group.clients;
    REQUIRE(run_until(cio, [&] { return group.all_open() && rs.srv.connection_count() == n; }));
    for (auto& c : rs.srv.clients().snapshot()) CHECK_FALSE(c->send_text("from outside"));
    for (int k = 0; k < per_sender; ++k)
        for (int s = 0; s < senders; ++s) clients[s]->send_text(std::to_string(s) + ":" + std::to_string(k));
    REQUIRE(run_until(cio, [&] {
        for (auto& e : ev) if (e->closed == 0) return false;
        return true;
    }));
    rs.work.reset();
    asio::post(rs.io, [&] { rs.srv.stop(); });
    second.join();
    for (int i = 0; i < n; ++i) {
        INFO("client " << i);
        std::lock_guard<std::mutex> lock(ev[i]->m);
        CHECK(ev[i]->last_code == close_code::going_away);
        REQUIRE(ev[i]->messages.size() == senders * per_sender + 1); // each exactly once, before the close
        CHECK(ev[i]->messages.front() == "from outside");
        std::vector<int> next(senders, 0);
        for (std::size_t k = 1; k < ev[i]->messages.size(); ++k) {
            const std::string& m = ev[i]->messages[k];
            const int s = std::stoi(m.substr(0, m.find(':')));
            CHECK(m == std::to_string(s) + ":" + std::to_string(next[s]++)); // each sender's order kept
        }
    }
}

#if DUPLEX_HAS_DEFLATE
// Broadcasts from a thread of the application while connections open on the server's two
// threads: a connection still in its handshake is in clients() already, and takes the
// compressed copy only once permessage-deflate is settled (under ThreadSanitizer this
// caught a read of the connection's deflate state racing with the handshake).
TEST_CASE("compressed broadcasts from another thread while connections open, on two threads",
          "[server][tcp][broadcast][threads][rfc7692]") {
    server_options o;
    o.connection.deflate.enabled = true;
    o.connection.deflate.server_no_context_takeover = true;
    o.connection.deflate.threshold = 0;
    running_server rs(o, 2);
    rs.start();
    std::thread second([&] { rs.io.run_for(60s); });
    std::atomic<bool> done{false};
    std::atomic<int> broadcasts{0};
    std::thread broadcaster([&] {
        while (!done) {
            rs.srv.broadcast(opcode::text, "tick tick tick tick tick tick tick tick " + std::to_string(broadcasts++));
            std::this_thread::sleep_for(200us);
        }
    });
    constexpr int n = 20;
    asio::io_context cio;
    client_group<> g;
    for (int i = 0; i < n; ++i) {
        g.ev.push_back(std::make_unique<client_events>());
        auto cfg = client_config(*g.ev.back());
        cfg->connection.deflate.enabled = i % 2 == 0; // half of them compress
        g.clients.push_back(connect(cio, rs.srv.port(), cfg));
    }
    REQUIRE(run_until(cio, [&] { return g.all_open(); }));
    REQUIRE(run_until(cio, [&] {
        for (auto& e : g.ev) if (e->count() < 20) return false;
        return true;
    }));
    done = true;
    broadcaster.join();
    for (int i = 0; i < n; ++i) {
        INFO("client " << i);
        CHECK(g.clients[i]->protocol().deflate_parameters().enabled == (i % 2 == 0));
        CHECK(g.ev[i]->error_list().empty());
        std::lock_guard<std::mutex> lock(g.ev[i]->m);
        int last = -1;
        for (const auto& m : g.ev[i]->messages) { // in order, each once, whole
            REQUIRE(m.rfind("tick tick tick tick tick tick tick tick ", 0) == 0);
            const int k = std::stoi(m.substr(40));
            CHECK(k > last);
            last = k;
        }
    }
    for (auto& c : g.clients) c->close();
    REQUIRE(run_until(cio, [&] {
        for (auto& e : g.ev) if (e->closed == 0) return false;
        return true;
    }));
    rs.work.reset();
    asio::post(rs.io, [&] { rs.srv.stop(); });
    second.join();
}
#endif

// A timer on the server's io_context broadcasts a numbered tick: every client gets
// them in order, none skipped or repeated once it is open.
template <class T>
static void interval_push_scenario() {
    basic_running_server<T> rs;
    asio::steady_timer timer(rs.io);
    std::atomic<int> ticks{0};
    std::atomic<bool> timer_stopped{false};
    std::function<void()> tick = [&] {
        rs.srv.broadcast(opcode::text, "tick " + std::to_string(++ticks));
        timer.expires_after(20ms);
        timer.async_wait([&](std::error_code ec) { if (!ec) tick(); });
    };
    rs.start();
    asio::post(rs.io, tick);
    asio::io_context cio;
    constexpr int n = 3;
    auto group = connect_clients<T>(cio, rs.srv.port(), n);
    auto& ev = group.ev;
    auto& clients = group.clients;
    REQUIRE(run_until(cio, [&] {
        for (auto& e : ev) if (e->count() < 3) return false;
        return true;
    }));
    // Stopped on its own thread, and waited for: the timer must not outlive that.
    asio::post(rs.io, [&] { timer.cancel(); timer_stopped = true; });
    REQUIRE(run_until(cio, [&] { return timer_stopped.load(); }));
    for (int i = 0; i < n; ++i) {
        INFO("client " << i);
        std::lock_guard<std::mutex> lock(ev[i]->m);
        const auto& got = ev[i]->messages;
        REQUIRE(got.size() >= 3);
        REQUIRE(got[0].rfind("tick ", 0) == 0);
        const int first = std::stoi(got[0].substr(5));
        for (std::size_t k = 0; k < got.size(); ++k) CHECK(got[k] == "tick " + std::to_string(first + static_cast<int>(k)));
        CHECK(ev[i]->errors.empty());
    }
    for (auto& c : clients) c->close();
    REQUIRE(run_until(cio, [&] {
        for (auto& e : ev) if (e->closed == 0) return false;
        return true;
    }));
}

TEST_CASE("interval push: a timer broadcasts to every client", "[server][tcp]") { interval_push_scenario<over_tcp>(); }
#ifdef DUPLEX_HAS_TLS
TEST_CASE("interval push over TLS: a timer broadcasts to every client", "[server][tls]") {
    interval_push_scenario<over_tls>();
}
#endif

// n connections open at once, each echoing `per` messages, then all close.
template <class T>
static void many_connections_scenario(int n, std::chrono::milliseconds limit) {
    rlimit rl{};
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    REQUIRE(rl.rlim_cur >= static_cast<rlim_t>(2 * n + 100));

    basic_running_server<T> rs;
    rs.srv.on_message([](auto& c, const message& m) { c.send(m); });
    rs.start();
    asio::io_context cio;
    constexpr int per = 5;
    client_events e;
    auto cfg = client_config<T>(e);
    cfg->on_open = [&e](auto& c) {
        ++e.opened;
        for (int i = 0; i < per; ++i) c.send_text("m" + std::to_string(i));
    };
    std::vector<std::shared_ptr<basic_client_conn<T>>> clients;
    for (int i = 0; i < n; ++i) clients.push_back(connect<T>(cio, rs.srv.port(), cfg));
    REQUIRE(run_until(cio, [&] { return e.count() == static_cast<std::size_t>(n * per); }, limit));
    CHECK(e.opened == n);
    CHECK(rs.srv.connection_count() == static_cast<std::size_t>(n)); // all open at once
    T::check_secure(*clients.front());
    T::check_secure(*clients.back());
    for (auto& c : clients) c->close();
    REQUIRE(run_until(cio, [&] { return e.closed == n; }, limit));
    {
        std::lock_guard<std::mutex> lock(e.m);
        CHECK(e.close_codes == std::map<std::uint16_t, int>{{close_code::normal, n}});
        CHECK(e.errors.empty());
    }
    const auto end = std::chrono::steady_clock::now() + 5s;
    while (rs.srv.connection_count() != 0 && std::chrono::steady_clock::now() < end) std::this_thread::sleep_for(1ms);
    CHECK(rs.srv.connection_count() == 0);
    const server_stats s = rs.srv.stats();
    CHECK(s.handshake_failures.empty());
    CHECK(s.closes_by_code == std::map<std::uint16_t, std::uint64_t>{{close_code::normal, static_cast<std::uint64_t>(n)}});
}

TEST_CASE("1,000 connections echo at once", "[server][tcp][load]") { many_connections_scenario<over_tcp>(1000, 30000ms); }
#ifdef DUPLEX_HAS_TLS
TEST_CASE("1000 connections echo at once over TLS", "[server][tls][load]") {
    many_connections_scenario<over_tls>(1000, 30000ms);
}
#endif

template <class T>
static void graceful_stop_scenario() {
    asio::io_context io;
    typename T::server_type srv(io, {}, T::accept());
    REQUIRE_FALSE(srv.listen(0));
    const auto port = srv.port();
    std::thread t([&] { io.run_for(20s); }); // returns by itself once everything closed
    asio::io_context cio;
    client_events e;
    std::vector<std::shared_ptr<basic_client_conn<T>>> clients;
    for (int i = 0; i < 10; ++i) clients.push_back(connect<T>(cio, port, client_config<T>(e)));
    REQUIRE(run_until(cio, [&] { return e.opened == 10 && srv.connection_count() == 10; }));
    const auto t0 = std::chrono::steady_clock::now();
    srv.stop();
    REQUIRE(run_until(cio, [&] { return e.closed == 10; }));
    {
        std::lock_guard<std::mutex> lock(e.m);
        CHECK(e.close_codes == std::map<std::uint16_t, int>{{close_code::going_away, 10}}); // all ten got 1001
        CHECK(e.errors.empty());
    }
    t.join();
    CHECK(std::chrono::steady_clock::now() - t0 < 5s); // io.run() returned: nothing left behind
    const server_stats s = srv.stats();
    CHECK(s.open_connections == 0);
    CHECK(s.closes_by_code == std::map<std::uint16_t, std::uint64_t>{{close_code::going_away, 10}}); // every one got 1001
    asio::ip::tcp::socket sock(cio);
    std::error_code ec;
    sock.connect({asio::ip::make_address("127.0.0.1"), port}, ec);
    CHECK(ec); // no longer listening
}

TEST_CASE("graceful stop closes every client with 1001", "[server][tcp][rfc6455][7.4.1]") {
    graceful_stop_scenario<over_tcp>();
}
#ifdef DUPLEX_HAS_TLS
TEST_CASE("graceful stop over TLS closes every client with 1001", "[server][tls][rfc6455][7.4.1]") {
    graceful_stop_scenario<over_tls>();
}
#endif

TEST_CASE("bad input on some connections never disturbs the others", "[server][tcp][robustness]") {
    running_server rs;
    std::atomic<int> errors{0};
    rs.srv.on_message([](auto& c, const message& m) { c.send(m); });
    rs.srv.on_error([&](auto&, std::error_code) { ++errors; });
    rs.start();
    const auto port = rs.srv.port();

    asio::io_context cio;
    client_events e;
    auto cfg = client_config(e);
    constexpr int good = 20, rounds = 50;
    cfg->on_open = [&e](client_conn& c) { ++e.opened; c.send_text("0"); };
    cfg->on_message = [&e](client_conn& c, const message& m) {
        const int i = std::stoi(m.str());
        {
            std::lock_guard<std::mutex> lock(e.m);
            e.messages.push_back(m.str());
        }
        if (i + 1 < rounds) c.send_text(std::to_string(i + 1));
    };
    std::vector<std::shared_ptr<client_conn>> clients;
    for (int i = 0; i < good; ++i) clients.push_back(connect(cio, port, cfg));

    // Meanwhile, on other connections: each kind of garbage (RFC 6455 §5.2, §7.1.7).
    const std::vector<std::string> bad = {
        std::string("\x16\x03\x01\x02\x00", 5),                     // a TLS ClientHello on ws://
        upgrade + "\r\n" + std::string("\x83\x80\0\0\0\0", 6),      // reserved opcode 3
        upgrade + "\r\n" + std::string("\x81\x05hello", 7),         // unmasked client frame
        upgrade + "\r\n" + std::string("\x81\xff\x80\0\0\0\0\0\0\0", 10), // 64-bit length, top bit
        upgrade + "\r\n" + std::string("\x81\x85\0\0\0\0he", 8),    // half a frame, then gone
        upgrade,                                                    // half a handshake, then gone
        std::string(20000, 'A'),                                    // an endless header line
    };
    std::vector<std::thread> attackers;
    std::atomic<int> answered{0};
    for (const auto& b : bad)
        attackers.emplace_back([&, b] {
            raw_socket r(port);
            r.send(b);
            if (b.size() < 200 && b.find("he", b.size() - 2) != std::string::npos) return; // drop mid-frame
            if (b == upgrade) return;                                                      // drop mid-handshake
            const std::string got = r.read_all(3000ms);
            if (!got.empty()) ++answered;
        });
    REQUIRE(run_until(cio, [&] { return e.count() == good * rounds; }, 20000ms));
    for (auto& t : attackers) t.join();
    CHECK(answered == 5); // each got its 400/431 or a 1002 close
    // And the server still accepts and serves a newcomer.
    client_events late;
    auto lc = connect(cio, port, client_config(late));
    REQUIRE(run_until(cio, [&] { return late.opened == 1; }));
    lc->send_text("still here");
    REQUIRE(run_until(cio, [&] { return late.count() == 1; }));
}

TEST_CASE("a reserved opcode gets a 1002 close frame over TCP", "[server][tcp][rfc6455][5.2]") {
    running_server rs;
    rs.start();
    raw_socket r(rs.srv.port());
    r.send(upgrade + "\r\n" + std::string("\x83\x80\0\0\0\0", 6));
    const std::string got = r.read_all();
    const auto at = got.find("\r\n\r\n");
    REQUIRE(at != std::string::npos);
    CHECK(got.substr(0, 12) == "HTTP/1.1 101");
    REQUIRE(got.size() >= at + 8);
    CHECK(got[at + 4] == '\x88');
    CHECK(got.substr(at + 6, 2) == std::string("\x03\xea", 2));
}

TEST_CASE("connection limit answers 503 and accepting resumes below it", "[server][tcp][limits]") {
    server_options o;
    o.max_connections = 3;
    running_server rs(o);
    rs.start();
    asio::io_context cio;
    client_events e;
    std::vector<std::shared_ptr<client_conn>> clients;
    for (int i = 0; i < 3; ++i) clients.push_back(connect(cio, rs.srv.port(), client_config(e)));
    REQUIRE(run_until(cio, [&] { return e.opened == 3; }));
    {
        raw_socket r(rs.srv.port());
        r.send(upgrade + "\r\n");
        CHECK(r.read_all().substr(0, 12) == "HTTP/1.1 503");
    }
    clients[0]->close();
    REQUIRE(run_until(cio, [&] { return e.closed == 1 && rs.srv.connection_count() == 2; }));
    auto again = connect(cio, rs.srv.port(), client_config(e));
    REQUIRE(run_until(cio, [&] { return e.opened == 4; }));
}

TEST_CASE("origin allowlist rejects other origins with 403", "[server][tcp][security]") {
    server_options o;
    o.allowed_origins = {"https://good.example"};
    running_server rs(o);
    rs.start();
    {
        raw_socket r(rs.srv.port());
        r.send(upgrade + "Origin: https://evil.example\r\n\r\n");
        CHECK(r.read_all().substr(0, 12) == "HTTP/1.1 403");
    }
    {
        raw_socket r(rs.srv.port());
        r.send(upgrade + "Origin: https://good.example\r\n\r\n");
        CHECK(r.read_all(2000ms, "\r\n\r\n").substr(0, 12) == "HTTP/1.1 101");
    }
    {
        // Two Origin fields, the allowed one first: which one a proxy checked is unknown.
        raw_socket r(rs.srv.port());
        r.send(upgrade + "Origin: https://good.example\r\nOrigin: https://evil.example\r\n\r\n");
        CHECK(r.read_all().substr(0, 12) == "HTTP/1.1 403");
    }
    {
        raw_socket r(rs.srv.port()); // no Origin at all (not a browser): refused while a list is set
        r.send(upgrade + "\r\n");
        CHECK(r.read_all().substr(0, 12) == "HTTP/1.1 403");
    }
}

TEST_CASE("plain HTTP on the same port goes to the page hook", "[server][tcp]") {
    running_server rs;
    rs.srv.on_http([](const http_request& req, http_reply& res) {
        res.content_type = "text/html";
        res.body = req.path() == "/" ? "<h1>page</h1>" : "";
        if (req.path() != "/") res.status = 404;
    });
    rs.start();
    raw_socket a(rs.srv.port());
    a.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    const std::string page = a.read_all();
    CHECK(page.substr(0, 15) == "HTTP/1.1 200 OK");
    CHECK(page.find("<h1>page</h1>") != std::string::npos);
    raw_socket b(rs.srv.port());
    b.send("GET /nope HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK(b.read_all().substr(0, 12) == "HTTP/1.1 404");
}

// Without ::1 this fails, unless DUPLEX_NO_IPV6=1 says the machine has none.
TEST_CASE("IPv6 loopback", "[server][tcp][ipv6]") {
    asio::io_context io;
    server srv(io);
    srv.on_message([](auto& c, const message& m) { c.send(m); });
    if (const std::error_code ec = srv.listen(0, "::1")) {
        const char* no_ipv6 = std::getenv("DUPLEX_NO_IPV6");
        if (no_ipv6 != nullptr && std::string_view(no_ipv6) == "1") {
            WARN("no IPv6 loopback (listen on [::1]: " << ec.message() << "); skipped as DUPLEX_NO_IPV6=1 asks");
            SUCCEED("skipped"); // an assertion: ctest runs with --warn NoAssertions
            return;
        }
        FAIL("cannot listen on [::1]: " << ec.message() << " (set DUPLEX_NO_IPV6=1 where there is no IPv6)");
    }
    std::thread t([&] { io.run_for(10s); });
    asio::io_context cio;
    client_events e;
    asio::ip::tcp::socket s(cio);
    s.connect({asio::ip::make_address("::1"), srv.port()});
    auto cfg = client_config(e);
    cfg->request.host = "[::1]";
    cfg->on_open = [&e](client_conn& c) { ++e.opened; c.send_text("v6"); };
    auto c = std::make_shared<client_conn>(tcp_transport(std::move(s)), cfg);
    c->start_connect();
    REQUIRE(run_until(cio, [&] { return e.count() == 1; }));
    CHECK(e.messages[0] == "v6");
    c->close();
    run_until(cio, [&] { return e.closed == 1; });
    asio::post(io, [&] { srv.stop(); });
    t.join();
}

TEST_CASE("a slow consumer is cut off at its queue limit, others keep receiving", "[server][tcp][backpressure]") {
    server_options o;
    o.connection.send_queue_limit = 1 << 20; // 1 MiB
    o.connection.close_timeout = 200ms;      // its close frame can't get through either
    running_server rs(o);
    std::atomic<int> full{0};
    rs.srv.on_error([&](auto&, std::error_code ec) { if (ec == errc::send_queue_full) ++full; });
    rs.start();
    raw_socket sleeper(rs.srv.port()); // handshakes, then never reads again
    sleeper.send(upgrade + "\r\n");
    asio::io_context cio;
    client_events e;
    auto healthy = connect(cio, rs.srv.port(), client_config(e));
    REQUIRE(run_until(cio, [&] { return e.opened == 1 && rs.srv.connection_count() == 2; }));

    const std::string chunk(64 * 1024, 'x');
    constexpr int rounds = 200; // 12.5 MiB: far more than socket buffers + the limit
    int sent = 0;
    REQUIRE(run_until(cio, [&] {
        // Pace the broadcasts by what the healthy client has received.
        while (sent < rounds && static_cast<int>(e.count()) >= sent - 8) {
            asio::post(rs.io, [&] { rs.srv.broadcast(opcode::binary, chunk); });
            ++sent;
        }
        return static_cast<int>(e.count()) == rounds;
    }, 30000ms));
    const auto end = std::chrono::steady_clock::now() + 5s;
    while (rs.srv.connection_count() != 1 && std::chrono::steady_clock::now() < end) std::this_thread::sleep_for(1ms);
    CHECK(rs.srv.connection_count() == 1); // the sleeper is gone...
    CHECK(full == 1);                      // ...for the documented reason
    CHECK(healthy->ready_state() == ready_state::open);
}

TEST_CASE("running out of file descriptors pauses accepting, never the server", "[server][tcp][limits]") {
    running_server rs;
    REQUIRE_FALSE(rs.srv.listen(0)); // not started yet: connections wait in the backlog
    constexpr int n = 20;
    std::vector<std::unique_ptr<raw_socket>> clients;
    for (int i = 0; i < n; ++i) clients.push_back(std::make_unique<raw_socket>(rs.srv.port()));
    rlimit saved{};
    getrlimit(RLIMIT_NOFILE, &saved);
    int open_fds = 0;
    for (int fd = 0; fd < 4096; ++fd) open_fds += fcntl(fd, F_GETFD) != -1;
    rlimit low = saved;
    low.rlim_cur = static_cast<rlim_t>(open_fds + 5);
    REQUIRE(setrlimit(RLIMIT_NOFILE, &low) == 0);
    rs.thread = std::thread([&] { rs.io.run_for(60s); });
    std::this_thread::sleep_for(300ms); // it accepts a few, then hits EMFILE
    const std::size_t while_starved = rs.srv.connection_count();
    REQUIRE(setrlimit(RLIMIT_NOFILE, &saved) == 0);
    CHECK(while_starved < n);
    int upgraded = 0;
    for (auto& c : clients) {
        c->send(upgrade + "\r\n");
        upgraded += c->read_all(2000ms, "\r\n\r\n").substr(0, 12) == "HTTP/1.1 101";
    }
    CHECK(upgraded == n); // everyone got in once descriptors were back
}

TEST_CASE("server counters and the logging hook", "[server][tcp][stats]") {
    running_server rs;
    std::mutex m;
    std::vector<std::pair<log_level, std::string>> logs;
    rs.srv.on_message([](auto& c, const message& msg) { c.send(msg); });
    rs.srv.on_log([&](log_level l, std::string_view s) {
        std::lock_guard<std::mutex> lock(m);
        logs.emplace_back(l, std::string(s));
    });
    rs.start();
    asio::io_context cio;
    client_events e;
    auto cfg = client_config(e);
    cfg->on_open = [&e](client_conn& c) {
        ++e.opened;
        c.send_text("12345");
        c.send_binary(std::string(10, 'b'));
    };
    auto c = connect(cio, rs.srv.port(), cfg);
    REQUIRE(run_until(cio, [&] { return e.count() == 2; }));
    auto live = rs.srv.stats();
    CHECK(live.open_connections == 1);
    CHECK(live.traffic.messages_in == 2);
    CHECK(live.traffic.bytes_in == 15);
    CHECK(live.traffic.messages_out == 2);
    CHECK(c->stats().messages_out == 2);
    c->close(4000, "done");
    REQUIRE(run_until(cio, [&] { return e.closed == 1; }));
    {
        raw_socket r(rs.srv.port()); // refused: version 8
        r.send("GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n");
        CHECK(r.read_all().substr(0, 12) == "HTTP/1.1 426");
    }
    const auto end = std::chrono::steady_clock::now() + 5s;
    server_stats s;
    do s = rs.srv.stats();
    while ((s.open_connections != 0 || s.handshake_failures.empty()) && std::chrono::steady_clock::now() < end);
    CHECK(s.open_connections == 0);
    CHECK(s.accepted == 2);
    CHECK(s.traffic.messages_in == 2);
    CHECK(s.traffic.bytes_out == 15);
    CHECK(s.closes_by_code[4000] == 1);
    CHECK(s.handshake_failures[make_error_code(errc::bad_version).message()] == 1);
    std::lock_guard<std::mutex> lock(m);
    bool logged_refusal = false;
    for (auto& [level, text] : logs) logged_refusal |= level == log_level::info && text.find("426") != std::string::npos;
    CHECK(logged_refusal);
}

TEST_CASE("graceful stop cuts off a peer that never answers the 1001 at close_timeout",
          "[server][tcp][rfc6455][7.1.1][7.4.1][timeout]") {
    server_options o;
    o.connection.close_timeout = 300ms;
    asio::io_context io;
    server srv(io, o);
    std::mutex m;
    std::vector<std::error_code> errors;
    srv.on_error([&](auto&, std::error_code ec) {
        std::lock_guard<std::mutex> lock(m);
        errors.push_back(ec);
    });
    REQUIRE_FALSE(srv.listen(0));
    const auto port = srv.port();
    std::thread t([&] { io.run_for(20s); }); // returns by itself once everything closed
    asio::io_context cio;
    client_events e;
    auto polite = connect(cio, port, client_config(e));
    raw_socket mute(port); // upgrades, then never reads again nor answers the close
    mute.send(upgrade + "\r\n");
    REQUIRE(mute.read_all(2000ms, "\r\n\r\n").substr(0, 12) == "HTTP/1.1 101");
    REQUIRE(run_until(cio, [&] { return e.opened == 1 && srv.connection_count() == 2; }));

    const auto t0 = std::chrono::steady_clock::now();
    srv.stop();
    REQUIRE(run_until(cio, [&] { return e.closed == 1 && srv.connection_count() == 0; }, 3000ms));
    const auto took = std::chrono::steady_clock::now() - t0;
    CHECK(e.last_code == close_code::going_away);
    CHECK(took >= 295ms); // the mute one lasted until its close timeout...
    CHECK(took < 2s);     // ...and not much longer
    t.join();             // io.run() returned: nothing left behind
    CHECK(mute.closed_within(1000ms));
    const server_stats s = srv.stats();
    CHECK(s.open_connections == 0);
    // The polite one echoed the 1001; the mute one was cut (1006).
    CHECK(s.closes_by_code == std::map<std::uint16_t, std::uint64_t>{{close_code::going_away, 1}, {close_code::abnormal, 1}});
    std::lock_guard<std::mutex> lock(m);
    REQUIRE(errors.size() == 1);
    CHECK(errors[0] == errc::close_timeout);
}

TEST_CASE("a request dribbled in byte by byte is cut at handshake_timeout", "[server][tcp][timeout][rfc6455][10.4]") {
    server_options o;
    o.connection.handshake_timeout = 300ms;
    running_server rs(o);
    std::atomic<int> opens{0};
    rs.srv.on_open([&](auto&) { ++opens; });
    rs.start();
    const std::string request = upgrade + "\r\n";
    const auto t0 = std::chrono::steady_clock::now(); // before connecting: the server's clock starts later
    raw_socket r(rs.srv.port());
    r.s.set_option(asio::ip::tcp::no_delay(true));
    std::size_t sent = 0;
    bool cut = false;
    // One byte every 20 ms: each comes long before 300 ms, the whole would take ~3 s.
    while (!cut && sent < request.size() && std::chrono::steady_clock::now() - t0 < 3s) {
        r.send(request.substr(sent++, 1));
        cut = r.closed_within(20ms);
    }
    const auto took = std::chrono::steady_clock::now() - t0;
    REQUIRE(cut);
    CHECK(sent < request.size()); // the request never got in whole
    CHECK(took >= 295ms);
    CHECK(took < 1500ms);
    const auto end = std::chrono::steady_clock::now() + 2s;
    server_stats s;
    do s = rs.srv.stats();
    while ((s.open_connections != 0 || s.handshake_failures.empty()) && std::chrono::steady_clock::now() < end);
    CHECK(s.open_connections == 0);
    REQUIRE(s.handshake_failures.size() == 1);
    const auto& [reason, count] = *s.handshake_failures.begin();
    CHECK(reason == make_error_code(errc::handshake_timeout).message());
    CHECK(reason.find("timed out") != std::string::npos);
    CHECK(count == 1);
    CHECK(s.closes_by_code.empty());
    CHECK(opens == 0);
}

TEST_CASE("a refused Origin gets 403 and is never opened", "[server][tcp][security][rfc6455][10.2][4.2.2]") {
    server_options o;
    o.allowed_origins = {"https://good.example"};
    running_server rs(o);
    std::atomic<int> opens{0}, closes{0};
    rs.srv.on_open([&](auto&) { ++opens; });
    rs.srv.on_close([&](auto&, std::uint16_t, std::string_view) { ++closes; });
    rs.start();
    {
        raw_socket r(rs.srv.port());
        r.send(upgrade + "Origin: https://evil.example\r\n\r\n");
        const std::string got = r.read_all();
        CHECK(got.substr(0, 12) == "HTTP/1.1 403");
        CHECK(got.find("Sec-WebSocket-Accept") == std::string::npos);
    }
    // A duplex client sending the same Origin: it is told why (a non-101 status).
    asio::io_context cio;
    client_events e;
    auto cfg = client_config(e);
    cfg->request.origin = "https://good.example.evil.example"; // exact match only
    std::vector<std::error_code> client_errors;
    cfg->on_error = [&](client_conn&, std::error_code ec) { client_errors.push_back(ec); };
    auto c = connect(cio, rs.srv.port(), cfg);
    REQUIRE(run_until(cio, [&] { return e.closed == 1; }));
    CHECK(e.opened == 0);
    REQUIRE(client_errors.size() == 1);
    CHECK(client_errors[0] == errc::bad_status);

    const auto end = std::chrono::steady_clock::now() + 2s;
    server_stats s;
    do s = rs.srv.stats();
    while ((s.open_connections != 0 || s.handshake_failures.empty() ||
            s.handshake_failures.begin()->second < 2) && std::chrono::steady_clock::now() < end);
    CHECK(s.open_connections == 0);
    CHECK(s.accepted == 2);
    CHECK(s.handshake_failures == std::map<std::string, std::uint64_t>{{make_error_code(errc::forbidden_origin).message(), 2}});
    CHECK(s.closes_by_code.empty()); // no connection was ever opened...
    CHECK(s.traffic.messages_in == 0);
    CHECK(opens == 0);               // ...nor shown to the application
    CHECK(closes == 0);
}

TEST_CASE("a server destroyed with connections open closes them with 1001, and nothing runs into it after",
          "[server][tcp]") {
    // On one io_context with the clients: what the server leaves behind (its connections,
    // a posted stop()) runs after it is gone. ASan catches a use of the dead server.
    asio::io_context io(1);
    client_events e;
    std::shared_ptr<client_conn> c;
    const bool stop_first = GENERATE(false, true);
    INFO("stop() before the destructor: " << stop_first);
    {
        server srv(io);
        srv.on_message([](auto& conn, const message& m) { conn.send(m); });
        REQUIRE_FALSE(srv.listen(0));
        c = connect(io, srv.port(), client_config(e));
        REQUIRE(run_until(io, [&] { return e.opened == 1 && srv.connection_count() == 1; }));
        if (stop_first) srv.stop(); // posted: runs once the server is gone
    }
    REQUIRE(run_until(io, [&] { return e.closed == 1; }));
    CHECK(e.last_code == close_code::going_away);
    CHECK(e.error_list().empty());
}

TEST_CASE("listen_or_throw throws duplex::error when the port is taken", "[server][tcp]") {
    asio::io_context io;
    asio::ip::tcp::acceptor holder(io, {asio::ip::make_address("127.0.0.1"), 0}); // listening
    const auto taken = holder.local_endpoint().port();
    server srv(io);
    CHECK_THROWS_AS(srv.listen_or_throw(taken), duplex::error);
    try {
        srv.listen_or_throw(taken);
        FAIL("listen_or_throw did not throw");
    } catch (const std::system_error& ex) { // duplex::error is one
        CHECK(ex.code() == asio::error::address_in_use);
        CHECK(std::string(ex.what()) == "listen on 127.0.0.1:" + std::to_string(taken) + ": " + ex.code().message());
    }
    // An IPv6 address is named in brackets (this one does not parse).
    CHECK_THROWS_WITH(srv.listen_or_throw(80, "::zz"), Catch::Matchers::StartsWith("listen on [::zz]:80: "));
    CHECK(srv.listen(taken) == asio::error::address_in_use); // the error_code overload agrees
    CHECK(srv.port() == 0);                                  // not listening anywhere
    CHECK_THROWS_AS(srv.listen_or_throw(0, "not an address"), duplex::error);
    CHECK_NOTHROW(srv.listen_or_throw(0)); // still usable afterwards
    CHECK(srv.port() != 0);
    CHECK(srv.port() != taken);
}

TEST_CASE("on_handshake({}) and on_handshake(nullptr) remove the hook", "[server][tcp]") {
    running_server rs;
    int calls = 0;
    rs.srv.on_handshake([&](const http_request&, handshake_decision& d) {
        ++calls;
        d.reject(403);
    });
    const bool clear_with_braces = GENERATE(true, false);
    if (clear_with_braces) rs.srv.on_handshake({});
    else rs.srv.on_handshake(nullptr);
    rs.start();
    asio::io_context cio;
    client_events e;
    auto c = connect(cio, rs.srv.port(), client_config(e));
    REQUIRE(run_until(cio, [&] { return e.opened == 1 || e.closed == 1; }));
    CHECK(e.opened == 1);
    CHECK(calls == 0);
    c->close();
    REQUIRE(run_until(cio, [&] { return e.closed == 1; }));
}

TEST_CASE("a second listen() fails and leaves the first listening socket alone", "[server][tcp]") {
    asio::io_context io;
    server srv(io);
    srv.on_message([](auto& c, const message& m) { c.send(m); });
    REQUIRE_FALSE(srv.listen(0));
    const std::uint16_t port = srv.port();
    CHECK(srv.listen(0) == asio::error::already_open);
    CHECK(srv.listen(port) == asio::error::already_open);
    CHECK_THROWS_AS(srv.listen_or_throw(0), duplex::error);
    CHECK(srv.port() == port); // still there, and still accepting:
    client_events e;
    auto c = connect(io, port, client_config(e));
    REQUIRE(run_until(io, [&] { return e.opened == 1; }));
    c->send_text("still here");
    REQUIRE(run_until(io, [&] { return e.count() == 1; }));
    CHECK(e.messages[0] == "still here");
    c->close();
    REQUIRE(run_until(io, [&] { return e.closed == 1; }));
}

TEST_CASE("the handshake hook may switch to another subprotocol the client offered", "[server][tcp][rfc6455][4.2.2]") {
    server_options o;
    o.subprotocols = {"v1.duplex"};
    running_server rs(o);
    std::mutex m;
    std::string preselected, server_side;
    rs.srv.on_handshake([&](const http_request&, handshake_decision& d) {
        std::lock_guard<std::mutex> lock(m);
        preselected = d.subprotocol;
        d.subprotocol = "v2.duplex";
    });
    rs.srv.on_open([&](auto& c) {
        std::lock_guard<std::mutex> lock(m);
        server_side = c.subprotocol();
    });
    rs.start();
    asio::io_context cio;
    client_events e;
    auto cfg = client_config(e);
    cfg->request.subprotocols = {"v1.duplex", "v2.duplex"};
    auto c = connect(cio, rs.srv.port(), cfg);
    REQUIRE(run_until(cio, [&] { return e.opened == 1 || e.closed == 1; }));
    REQUIRE(e.opened == 1);
    CHECK(c->subprotocol() == "v2.duplex");
    {
        std::lock_guard<std::mutex> lock(m);
        CHECK(preselected == "v1.duplex"); // the server's own choice came first
        CHECK(server_side == "v2.duplex");
    }
    c->close();
    REQUIRE(run_until(cio, [&] { return e.closed == 1; }));
}

// What python-websockets' process_request(connection, request) gives: the hook sees who
// asks, and what it learns (here: the user a token names) stays with the connection.
TEST_CASE("the handshake hook may take the connection: its address, user_data for on_open, a limit per address",
          "[server][tcp][security]") {
    std::mutex m;
    std::map<std::string, int> open_per_address; // guarded by m
    std::vector<std::string> seen_addresses, opened_users, closed_addresses;
    int refused_by_limit = 0;
    running_server rs; // after what its handlers use: its thread stops first
    rs.srv.on_handshake([&](server::connection& c, const http_request& req, handshake_decision& d) {
        CHECK(c.ready_state() == ready_state::connecting);
        CHECK(c.send_text("too early") == errc::not_open); // nothing goes out before the 101
        const std::string address = c.remote_address();
        const std::string host = address.substr(0, address.rfind(':'));
        std::lock_guard<std::mutex> lock(m);
        seen_addresses.push_back(address);
        const std::string user = req.query_param("user");
        if (user.empty()) return d.reject(401);
        if (open_per_address[host] >= 2) {
            ++refused_by_limit;
            return d.reject(429, "too many connections from your address\n");
        }
        c.user_data() = user;
    });
    rs.srv.on_open([&](server::connection& c) {
        const std::string address = c.remote_address();
        std::lock_guard<std::mutex> lock(m);
        ++open_per_address[address.substr(0, address.rfind(':'))];
        opened_users.push_back(std::any_cast<std::string>(c.user_data()));
    });
    rs.srv.on_close([&](server::connection& c, std::uint16_t, std::string_view) {
        const std::string address = c.remote_address(); // still known in on_close
        std::lock_guard<std::mutex> lock(m);
        closed_addresses.push_back(address);
        --open_per_address[address.substr(0, address.rfind(':'))];
    });
    rs.start();

    asio::io_context cio;
    const auto open_as = [&](client_events& e, const std::string& target) {
        auto cfg = client_config(e);
        cfg->request.target = target;
        auto c = connect(cio, rs.srv.port(), cfg);
        REQUIRE(run_until(cio, [&] { return e.opened == 1 || e.closed == 1; }));
        return c;
    };
    client_events alice, bob, carol, anonymous;
    auto a = open_as(alice, "/?user=alice");
    auto b = open_as(bob, "/?user=b%C3%B6b"); // decoded: "böb"
    auto c = open_as(carol, "/?user=carol");  // a third from 127.0.0.1: over the limit of 2
    auto n = open_as(anonymous, "/");
    CHECK(alice.opened == 1);
    CHECK(bob.opened == 1);
    CHECK(carol.opened == 0);
    CHECK(anonymous.opened == 0);
    CHECK(carol.error_list() == std::vector<std::string>{make_error_code(errc::bad_status).message()});
    CHECK(c->response().status == 429);
    CHECK(n->response().status == 401);
    {
        std::lock_guard<std::mutex> lock(m);
        CHECK(opened_users == std::vector<std::string>{"alice", "b\xC3\xB6" "b"});
        CHECK(refused_by_limit == 1);
        REQUIRE(seen_addresses.size() == 4);
        for (const auto& address : seen_addresses) CHECK(address.rfind("127.0.0.1:", 0) == 0);
    }
    // Below the limit again once one closes.
    a->close();
    REQUIRE(run_until(cio, [&] { return alice.closed == 1; }));
    REQUIRE(run_until(cio, [&] {
        std::lock_guard<std::mutex> lock(m);
        return open_per_address["127.0.0.1"] == 1;
    }));
    client_events carol2;
    auto c2 = open_as(carol2, "/?user=carol");
    CHECK(carol2.opened == 1);
    {
        std::lock_guard<std::mutex> lock(m);
        CHECK(opened_users.back() == "carol");
    }
    b->close();
    c2->close();
    REQUIRE(run_until(cio, [&] { return bob.closed == 1 && carol2.closed == 1; }));
    REQUIRE(run_until(cio, [&] {
        std::lock_guard<std::mutex> lock(m);
        return closed_addresses.size() == 3;
    }));
    std::lock_guard<std::mutex> lock(m);
    for (const auto& address : closed_addresses) CHECK(address.rfind("127.0.0.1:", 0) == 0);
    CHECK(open_per_address["127.0.0.1"] == 0);
}

// §4.2.2 /subprotocol/ must be one the client listed, and a client fails the
// connection on any other (§4.1): the server must not answer 101 with it.
TEST_CASE("the handshake hook cannot make the server answer with a subprotocol the client did not offer",
          "[server][tcp][rfc6455][4.2.2][4.1]") {
    const bool client_offers_one = GENERATE(true, false);
    CAPTURE(client_offers_one);
    running_server rs;
    rs.srv.on_handshake([](const http_request&, handshake_decision& d) { d.subprotocol = "not-offered"; });
    rs.start();
    {
        raw_socket r(rs.srv.port());
        r.send(upgrade + (client_offers_one ? "Sec-WebSocket-Protocol: v1.duplex\r\n" : "") + "\r\n");
        std::string head = r.read_all(2000ms, "\r\n\r\n");
        head = head.substr(0, head.find("\r\n\r\n"));
        INFO(head);
        const std::string status = head.substr(0, 12);
        CHECK((status == "HTTP/1.1 101" || status == "HTTP/1.1 500")); // header dropped, or refused
        std::transform(head.begin(), head.end(), head.begin(), [](unsigned char ch) { return std::tolower(ch); });
        CHECK(head.find("sec-websocket-protocol") == std::string::npos);
    }
    // A duplex client: it opens without a subprotocol, or is refused by the server;
    // it never has to fail the connection itself (errc::bad_subprotocol).
    asio::io_context cio;
    client_events e;
    auto cfg = client_config(e);
    if (client_offers_one) cfg->request.subprotocols = {"v1.duplex"};
    std::vector<std::error_code> client_errors;
    cfg->on_error = [&](client_conn&, std::error_code ec) { client_errors.push_back(ec); };
    auto c = connect(cio, rs.srv.port(), cfg);
    REQUIRE(run_until(cio, [&] { return e.opened == 1 || e.closed == 1; }));
    if (e.opened == 1) {
        CHECK(c->subprotocol().empty());
        CHECK(client_errors.empty());
        c->close();
        REQUIRE(run_until(cio, [&] { return e.closed == 1; }));
    } else {
        REQUIRE(client_errors.size() == 1);
        INFO(client_errors[0].message());
        CHECK(client_errors[0] == errc::bad_status);
    }
}

// serve() must not let an exception escape: on a server with strands the next accept
// is armed after it, and would never be. The dropped connection must not stay in the hub.
template <class T>
void check_drops_one_and_goes_on(const std::string& expected_log, bool log_hook_throws = false) {
    basic_running_server<T> rs; // a default io_context: strands, accept after serve()
    std::mutex m;
    std::vector<std::string> logs;
    rs.srv.on_message([](auto& c, const message& msg) { c.send(msg); });
    rs.srv.on_log([&, log_hook_throws](log_level, std::string_view s) {
        {
            std::lock_guard<std::mutex> lock(m);
            logs.emplace_back(s);
        }
        if (log_hook_throws) throw std::runtime_error("the log hook failed too"); // ignored
    });
    rs.start();
    {
        raw_socket r(rs.srv.port());
        r.send(upgrade + "\r\n");
        CHECK(r.closed_within(5000ms)); // dropped: its socket went with the exception
    }
    asio::io_context cio;
    client_events e;
    auto cfg = client_config(e);
    cfg->on_open = [&e](client_conn& c) {
        ++e.opened;
        c.send_text("still accepting");
    };
    auto c = connect(cio, rs.srv.port(), cfg);
    REQUIRE(run_until(cio, [&] { return e.count() == 1; }));
    CHECK(e.messages[0] == "still accepting");
    CHECK(rs.srv.connection_count() == 1); // the dropped one is not left in the hub
    c->close();
    REQUIRE(run_until(cio, [&] { return e.closed == 1; }));
    std::lock_guard<std::mutex> lock(m);
    bool logged = false;
    for (auto& s : logs) logged |= s.find(expected_log) != std::string::npos;
    CHECK(logged);
}

struct over_throwing_factory { // the first transport cannot be made
    using transport = tcp_transport;
    using server_type = server;
    static std::atomic<int>& made() {
        static std::atomic<int> n{0};
        return n;
    }
    static std::atomic<bool>& throw_int() { // throw 42, not a std::exception
        static std::atomic<bool> b{false};
        return b;
    }
    static server_type::transport_factory accept() {
        made() = 0;
        return [](asio::ip::tcp::socket s) {
            if (made()++ == 0) {
                if (throw_int()) throw 42;
                throw std::runtime_error("no transport for this one");
            }
            return tcp_transport(std::move(s));
        };
    }
};

TEST_CASE("a connection that cannot be set up is dropped and the server goes on accepting",
          "[server][tcp][robustness][threads]") {
    SECTION("the transport factory throws") {
        over_throwing_factory::throw_int() = false;
        check_drops_one_and_goes_on<over_throwing_factory>("dropped a new connection: no transport for this one");
        CHECK(over_throwing_factory::made() == 2);
    }
    SECTION("the transport factory throws something that is not a std::exception") {
        over_throwing_factory::throw_int() = true;
        check_drops_one_and_goes_on<over_throwing_factory>("dropped a new connection: unknown exception");
        over_throwing_factory::throw_int() = false;
        CHECK(over_throwing_factory::made() == 2);
    }
    SECTION("the transport factory throws, and so does the log hook") {
        over_throwing_factory::throw_int() = false;
        check_drops_one_and_goes_on<over_throwing_factory>("dropped a new connection: no transport for this one", true);
        CHECK(over_throwing_factory::made() == 2);
    }
    SECTION("the connection's start throws, after it joined the hub") {
        struct reset_failing_starts { // a failed REQUIRE must not leave it set for the next test
            ~reset_failing_starts() { write_recording_tcp::failing_starts() = 0; }
        } reset;
        write_recording_tcp::failing_starts() = 1;
        check_drops_one_and_goes_on<over_recorded_tcp>("dropped a new connection: no start for this one");
        CHECK(write_recording_tcp::failing_starts() == 0);
    }
}

// ---- large frames: read into place, written at once ----------------------------
//
// A frame's payload past placed_read_min is read straight into its message (two
// buffers per read: the message, then a little of the read buffer for what
// follows), and a large message sent from its own handler with nothing queued is
// written from the caller's bytes. Both paths only exist over real sockets.

namespace {

std::string masked_frame(opcode op, std::string_view payload, bool fin = true) {
    client_frame_writer w;
    std::string out(w.frame_size(payload.size()), '\0');
    w.write(reinterpret_cast<std::uint8_t*>(&out[0]), op, payload.data(), payload.size(), fin);
    return out;
}

struct received_message {
    opcode op;
    std::string data;
    std::uint16_t close_code = 0;
};

// Reads and parses server frames until `count` messages (control frames count
// one each) or the limit. Plain poll()/recv() on the descriptor: another thread
// may be sending on it meanwhile (dribble), and Asio's socket object is not
// for two threads at once.
std::vector<received_message> read_messages(raw_socket& r, std::size_t count, std::chrono::milliseconds limit = 10000ms) {
    std::vector<received_message> out;
    client_frame_parser parser(frame_parser_options{});
    std::string current;
    std::vector<std::uint8_t> buf(256 * 1024);
    const int fd = r.s.native_handle();
    const auto end = std::chrono::steady_clock::now() + limit;
    while (out.size() < count && std::chrono::steady_clock::now() < end) {
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, 10) <= 0) continue;
        const ssize_t n = ::recv(fd, buf.data(), buf.size(), MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) continue;
        if (n <= 0) break;
        std::uint8_t* at = buf.data();
        std::size_t left = static_cast<std::size_t>(n);
        while (left > 0) {
            std::size_t used = 0;
            const parse_event ev = parser.parse(at, left, used);
            at += used;
            left -= used;
            if (ev.kind == parse_event::kind_t::error) return out;
            if (ev.kind == parse_event::kind_t::control) {
                out.push_back({ev.op, std::string(reinterpret_cast<const char*>(ev.data), ev.size), ev.close_code});
            } else if (ev.kind == parse_event::kind_t::data) {
                if (ev.message_begin) current.clear();
                current.append(reinterpret_cast<const char*>(ev.data), ev.size);
                if (ev.message_end) out.push_back({ev.op, current});
            }
        }
    }
    return out;
}

// Sends bytes in pieces of pseudo-random sizes (1 B to 96 KiB) with short
// pauses, so that reads end anywhere: inside headers, payloads, UTF-8 sequences.
// Returns false if the bytes could not all be sent (the server closed first).
bool dribble(raw_socket& r, const std::string& bytes, std::uint32_t seed, std::size_t max_piece = 96 * 1024) {
    const int fd = r.s.native_handle();
    std::size_t at = 0;
    while (at < bytes.size()) {
        seed = seed * 1664525u + 1013904223u;
        std::size_t piece = std::min<std::size_t>(bytes.size() - at, 1 + (seed >> 8) % max_piece);
        while (piece > 0) {
            const ssize_t n = ::send(fd, bytes.data() + at, piece, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
                pollfd p{fd, POLLOUT, 0};
                ::poll(&p, 1, 10);
                continue;
            }
            if (n <= 0) return false;
            at += static_cast<std::size_t>(n);
            piece -= static_cast<std::size_t>(n);
        }
        if ((seed & 7) == 0) std::this_thread::sleep_for(1ms);
    }
    return true;
}

std::string pattern(std::size_t n, std::uint32_t seed) {
    std::string s(n, '\0');
    for (auto& c : s) {
        seed = seed * 1664525u + 1013904223u;
        c = static_cast<char>(seed >> 24);
    }
    return s;
}

// Valid UTF-8 of about n bytes whose 2-, 3- and 4-byte sequences land on every offset.
std::string utf8_text(std::size_t n) {
    const std::string pieces[] = {"a", "\xC3\xA9", "\xE2\x82\xAC", "\xF0\x9F\x98\x80", "bc"};
    std::string s;
    for (std::size_t i = 0; s.size() < n; ++i) s += pieces[(i * 7 + i / 5) % 5];
    return s;
}

} // namespace

namespace {
// TCP that counts the reads into two buffers (placed reads) and the writes of a
// header and a payload from the caller's bytes (write-through), so the tests can
// show that both paths run, not only that the bytes come out right.
struct path_counting_tcp : tcp_transport {
    static std::atomic<int>& pair_reads() {
        static std::atomic<int> n{0};
        return n;
    }
    static std::atomic<int>& writes_through() {
        static std::atomic<int> n{0};
        return n;
    }
    explicit path_counting_tcp(asio::ip::tcp::socket s) : tcp_transport(std::move(s)) {}
    template <class Buffers, class Handler>
    void async_read_some(const Buffers& buffers, Handler&& h) {
        if constexpr (std::is_same_v<Buffers, std::array<asio::mutable_buffer, 2>>) ++pair_reads();
        tcp_transport::async_read_some(buffers, std::forward<Handler>(h));
    }
    template <class ConstBuffers>
    std::size_t try_write_some(const ConstBuffers& buffers, std::error_code& ec) {
        if constexpr (std::is_same_v<ConstBuffers, std::array<asio::const_buffer, 2>>) ++writes_through();
        return tcp_transport::try_write_some(buffers, ec);
    }
};
struct over_path_counting_tcp {
    using transport = path_counting_tcp;
    using server_type = basic_server<path_counting_tcp>;
    static server_type::transport_factory accept() {
        return [](asio::ip::tcp::socket s) { return path_counting_tcp(std::move(s)); };
    }
};
} // namespace

TEST_CASE("large frames in any split are read into place and echoed intact", "[server][tcp][rfc6455][5.4]") {
    path_counting_tcp::pair_reads() = 0;
    path_counting_tcp::writes_through() = 0;
    basic_running_server<over_path_counting_tcp> rs;
    rs.srv.on_message([](auto& c, const message& m) { c.send(m); });
    rs.start();
    raw_socket r(rs.srv.port());
    r.send(upgrade + "\r\n");
    REQUIRE(r.read_all(5000ms, "\r\n\r\n").substr(0, 12) == "HTTP/1.1 101");

    // §5.4: fragments of any size, a control frame between two of them, and
    // messages on both sides of placed_read_min (4 KiB) and placed_read_max (256 KiB).
    const std::string big = pattern(100 * 1024, 1);
    const std::string text = utf8_text(300 * 1024);
    const std::string huge = pattern(600 * 1024, 2);
    const std::string just_over = pattern(5000, 3), just_under = pattern(4095, 4), ascii(65536, 'q');
    std::string wire = masked_frame(opcode::binary, big);
    wire += masked_frame(opcode::text, std::string_view(text).substr(0, 70000), false);
    wire += masked_frame(opcode::ping, "between fragments");
    wire += masked_frame(opcode::continuation, std::string_view(text).substr(70000, 5), false);
    wire += masked_frame(opcode::continuation, std::string_view(text).substr(70005, 130000), false);
    wire += masked_frame(opcode::continuation, std::string_view(text).substr(200005), true);
    wire += masked_frame(opcode::binary, just_over);
    wire += masked_frame(opcode::binary, just_under);
    wire += masked_frame(opcode::binary, huge);
    wire += masked_frame(opcode::binary, "");
    wire += masked_frame(opcode::text, ascii);
    // Rounds 0-2 dribble; round 3 writes all at once, so reads into place find the
    // next frames waiting behind the current one (they go to the spill).
    for (std::uint32_t round = 0; round < 4; ++round) {
        INFO("round " << round);
        bool sent = false;
        std::thread sender([&] { sent = dribble(r, wire, 7 + round, round < 3 ? 96 * 1024 : wire.size() + 1); });
        const auto got = read_messages(r, 8);
        sender.join();
        CHECK(sent);
        REQUIRE(got.size() == 8);
        CHECK((got[0].op == opcode::binary && got[0].data == big)); // echoed before the ping comes
        CHECK(got[1].op == opcode::pong);                            // §5.5.2, amid the fragments
        CHECK(got[1].data == "between fragments");
        CHECK((got[2].op == opcode::text && got[2].data == text));
        CHECK((got[3].op == opcode::binary && got[3].data == just_over));
        CHECK((got[4].op == opcode::binary && got[4].data == just_under));
        CHECK((got[5].op == opcode::binary && got[5].data == huge));
        CHECK((got[6].op == opcode::binary && got[6].data.empty()));
        CHECK((got[7].op == opcode::text && got[7].data == ascii));
    }
    // Both fast paths ran: some payload was read into place, and echoes of 16 KiB or
    // more went out from the message's own bytes.
    CHECK(path_counting_tcp::pair_reads() > 0);
    CHECK(path_counting_tcp::writes_through() > 0);
}

TEST_CASE("a bad byte or too big a message inside a frame read into place fails that connection",
          "[server][tcp][rfc6455][8.1][10.4]") {
    server_options o;
    o.connection.max_message_size = 200 * 1024;
    running_server rs(o);
    std::atomic<int> messages{0};
    rs.srv.on_message([&](auto& c, const message& m) { ++messages; c.send(m); });
    rs.start();
    struct bad_case { const char* name; std::string wire; std::uint16_t code; };
    std::string bad_text = utf8_text(150 * 1024);
    bad_text[100 * 1024] = '\xFF'; // §8.1: never valid UTF-8, deep inside a placed read
    std::string wire_too_big = masked_frame(opcode::binary, pattern(150 * 1024, 5), false);
    wire_too_big += masked_frame(opcode::continuation, pattern(60 * 1024, 6), true); // 210 KiB in all
    const bad_case cases[] = {
        {"invalid UTF-8", masked_frame(opcode::text, bad_text), 1007},
        {"message over max_message_size", wire_too_big, 1009},
    };
    for (const auto& bc : cases) {
        INFO(bc.name);
        raw_socket r(rs.srv.port());
        r.send(upgrade + "\r\n");
        REQUIRE(r.read_all(5000ms, "\r\n\r\n").substr(0, 12) == "HTTP/1.1 101");
        const std::string good = pattern(50 * 1024, 9);
        REQUIRE(dribble(r, masked_frame(opcode::binary, good), 10));
        std::thread sender([&] { dribble(r, bc.wire, 11); }); // may end early: the server closes
        const auto got = read_messages(r, 2);
        sender.join();
        REQUIRE(got.size() == 2);
        CHECK(got[0].data == good);
        CHECK(got[1].op == opcode::close);
        CHECK(got[1].close_code == bc.code);
    }
    CHECK(messages == 2); // only the good ones
}

TEST_CASE("large messages written at once to a peer that reads late arrive whole and in order",
          "[server][tcp][backpressure]") {
    running_server rs;
    rs.srv.on_message([](auto& c, const message& m) {
        // From the handler, with nothing queued: the first goes out from m's bytes
        // until the socket buffer is full; the rest, and the others, are queued.
        for (std::uint32_t i = 0; i < 3; ++i) c.send_binary(pattern(2 * 1024 * 1024, i) + m.str());
        c.send_text("done");
    });
    rs.start();
    raw_socket r(rs.srv.port());
    r.send(upgrade + "\r\n");
    REQUIRE(r.read_all(5000ms, "\r\n\r\n").substr(0, 12) == "HTTP/1.1 101");
    r.send(masked_frame(opcode::text, "go"));
    std::this_thread::sleep_for(300ms); // the server's writes fill the socket buffers meanwhile
    const auto got = read_messages(r, 4, 20000ms);
    REQUIRE(got.size() == 4);
    for (std::uint32_t i = 0; i < 3; ++i) CHECK(got[i].data == pattern(2 * 1024 * 1024, i) + "go");
    CHECK(got[3].data == "done");
}

// ---- behind a load balancer: the PROXY protocol (server_options::proxy_protocol) ----

namespace {

// A server with proxy_protocol that records each opened connection's remote_address()
// and echoes.
template <class T>
struct proxied_server {
    std::mutex m;
    std::vector<std::string> addresses; // remote_address() in on_open
    std::vector<std::string> logs;
    basic_running_server<T> rs; // last: its thread stops before the handlers' data goes
    static server_options options(std::chrono::milliseconds handshake_timeout) {
        server_options o;
        o.proxy_protocol = true;
        o.connection.handshake_timeout = handshake_timeout;
        return o;
    }
    explicit proxied_server(std::chrono::milliseconds handshake_timeout = 5000ms) : rs(options(handshake_timeout)) {
        rs.srv.on_open([this](auto& c) {
            std::lock_guard<std::mutex> lock(m);
            addresses.push_back(c.remote_address());
        });
        rs.srv.on_message([](auto& c, const message& msg) { c.send(msg); });
        rs.srv.on_log([this](log_level, std::string_view s) {
            std::lock_guard<std::mutex> lock(m);
            logs.emplace_back(s);
        });
        rs.start();
    }
    std::vector<std::string> opened() {
        std::lock_guard<std::mutex> lock(m);
        return addresses;
    }
    // The server's counters once no connection is open and `failures` were refused.
    server_stats settled(std::uint64_t failures) {
        const auto end = std::chrono::steady_clock::now() + 5s;
        server_stats s;
        auto refused = [&] {
            std::uint64_t n = 0;
            for (const auto& f : s.handshake_failures) n += f.second;
            return n;
        };
        do s = rs.srv.stats();
        while ((s.open_connections != 0 || refused() < failures) && std::chrono::steady_clock::now() < end);
        return s;
    }
};

std::string proxy_v2_tcp6_with_tlv() {
    std::string h("\r\n\r\n\0\r\nQUIT\n\x21\x21\x00\x2c", 16);
    const std::uint8_t body[44] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, // 2001:db8::1
                                   0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01,             // ::1
                                   0x1F, 0x90, 0x00, 0x50,                                     // 8080 -> 80
                                   0xEA, 0x00, 0x05, 0x01, 'v', 'p', 'c', 'e'};                // an AWS TLV
    h.append(reinterpret_cast<const char*>(body), sizeof body);
    return h;
}

// The upgrade through `r` (after `before`, in the same write), answered with 101.
void check_upgrade(raw_socket& r, const std::string& before) {
    r.send(before + upgrade + "\r\n");
    const std::string answer = r.read_all(5000ms, "\r\n\r\n");
    REQUIRE(answer.substr(0, 12) == "HTTP/1.1 101");
    REQUIRE(answer.size() == answer.find("\r\n\r\n") + 4); // nothing behind it yet
}
// One message through an open connection comes back.
void check_echo(raw_socket& r) {
    r.send(masked_frame(opcode::text, "through the balancer"));
    const auto got = read_messages(r, 1, 5000ms);
    REQUIRE(got.size() == 1);
    CHECK(got[0].data == "through the balancer");
}
void check_upgrade_and_echo(raw_socket& r, const std::string& before) {
    check_upgrade(r, before);
    check_echo(r);
}

} // namespace

TEST_CASE("PROXY protocol v1 and v2: remote_address() is the client the balancer names",
          "[server][tcp][proxy_protocol]") {
    proxied_server<over_tcp> ps;
    const std::uint16_t port = ps.rs.srv.port();
    {
        raw_socket r(port); // v1, header and request in one write
        check_upgrade_and_echo(r, "PROXY TCP4 192.0.2.1 198.51.100.7 56324 443\r\n");
    }
    {
        raw_socket r(port); // v2 over IPv6, with a TLV
        check_upgrade_and_echo(r, proxy_v2_tcp6_with_tlv());
    }
    {
        raw_socket r(port); // v2 LOCAL (a health check): the connection's own address stands
        check_upgrade_and_echo(r, std::string("\r\n\r\n\0\r\nQUIT\n\x20\x00\x00\x00", 16));
    }
    {
        raw_socket r(port); // v1 UNKNOWN: the same
        check_upgrade_and_echo(r, "PROXY UNKNOWN\r\n");
    }
    const auto a = ps.opened();
    REQUIRE(a.size() == 4);
    CHECK(a[0] == "192.0.2.1:56324");
    CHECK(a[1] == "[2001:db8::1]:8080");
    CHECK(a[2].rfind("127.0.0.1:", 0) == 0);
    CHECK(a[3].rfind("127.0.0.1:", 0) == 0);
    CHECK(ps.settled(0).handshake_failures.empty());
}

TEST_CASE("PROXY protocol: a header in pieces is read to its end and no further",
          "[server][tcp][proxy_protocol]") {
    proxied_server<over_tcp> ps;
    for (const std::string& header : {std::string("PROXY TCP6 2001:db8::7 ::1 40000 443\r\n"), proxy_v2_tcp6_with_tlv()}) {
        raw_socket r(ps.rs.srv.port());
        r.s.set_option(asio::ip::tcp::no_delay(true));
        // A byte at a time, each its own segment: every peek sees a part, every part is taken.
        for (char c : header) {
            r.send(std::string(1, c));
            std::this_thread::sleep_for(2ms);
        }
        check_upgrade_and_echo(r, "");
    }
    const auto a = ps.opened();
    REQUIRE(a.size() == 2);
    CHECK(a[0] == "[2001:db8::7]:40000");
    CHECK(a[1] == "[2001:db8::1]:8080");
}

TEST_CASE("PROXY protocol: a connection without a valid header is closed unanswered, the others go on",
          "[server][tcp][proxy_protocol][robustness]") {
    proxied_server<over_tcp> ps(300ms);
    const std::uint16_t port = ps.rs.srv.port();
    raw_socket good(port); // opened first, used after the bad ones
    check_upgrade(good, "PROXY TCP4 203.0.113.9 198.51.100.7 1000 443\r\n");
    const std::vector<std::string> bad = {
        upgrade + "\r\n",                                          // no header: a client that bypassed the balancer
        "PROXY TCP4 192.0.2.300 198.51.100.7 1 2\r\n" + upgrade,    // an address that is none
        std::string("\r\n\r\n\0\r\nQUIT\n\x22\x11\x00\x0c", 16),    // v2 with command 2
        "PROXY TCP4 192.0.2.1 198.51.100.7 1 2",                   // no CRLF, then silence: handshake_timeout
    };
    for (const std::string& bytes : bad) {
        INFO(bytes);
        raw_socket r(port);
        r.send(bytes);
        const auto t0 = std::chrono::steady_clock::now();
        CHECK(r.read_all(3000ms).empty()); // nothing answered, then EOF
        CHECK(std::chrono::steady_clock::now() - t0 < 2500ms);
    }
    check_echo(good);
    server_stats s = ps.settled(4);
    CHECK(s.handshake_failures[make_error_code(errc::bad_proxy_header).message()] == 3);
    CHECK(s.handshake_failures[make_error_code(errc::handshake_timeout).message()] == 1);
    CHECK(ps.opened() == std::vector<std::string>{"203.0.113.9:1000"});
    std::lock_guard<std::mutex> lock(ps.m);
    std::size_t logged = 0;
    for (const auto& l : ps.logs) logged += l.find("valid PROXY protocol header") != std::string::npos;
    CHECK(logged == 3);
}

#ifdef DUPLEX_HAS_TLS
TEST_CASE("PROXY protocol over TLS: the header comes before the TLS handshake, which starts on the next byte",
          "[server][tls][proxy_protocol]") {
    proxied_server<over_tls> ps;
    asio::io_context cio;
    client_events e;
    auto cfg = client_config<over_tls>(e);
    cfg->on_open = [&e](basic_client_conn<over_tls>& c) {
        ++e.opened;
        over_tls::check_secure(c);
        c.send_text("secure");
    };
    asio::ip::tcp::socket s(cio);
    s.connect({asio::ip::make_address("127.0.0.1"), ps.rs.srv.port()});
    asio::write(s, asio::buffer(proxy_v2_tcp6_with_tlv())); // what HAProxy's send-proxy-v2 writes first
    auto c = std::make_shared<basic_client_conn<over_tls>>(over_tls::client_transport(std::move(s)), cfg);
    c->start_connect();
    REQUIRE(run_until(cio, [&] { return e.count() == 1; }));
    CHECK(e.messages[0] == "secure");
    CHECK(ps.opened() == std::vector<std::string>{"[2001:db8::1]:8080"});
    c->close();
    run_until(cio, [&] { return e.closed == 1; });
}
#endif

TEST_CASE("proxy_protocol needs a transport with a TCP socket under it", "[server][proxy_protocol]") {
    asio::io_context io;
    server_options o;
    o.proxy_protocol = true;
    CHECK_THROWS_AS(basic_server<memory_transport>(io, o, [](asio::ip::tcp::socket) -> memory_transport { throw 1; }),
                    std::invalid_argument);
    o.proxy_protocol = false;
    CHECK_NOTHROW(basic_server<memory_transport>(io, o, [](asio::ip::tcp::socket) -> memory_transport { throw 1; }));
}

// backpressure_policy::drop_oldest over TCP: a reader that stops reading for a while
// stays connected, holds at most its queue limit, and then gets the latest messages in
// order; every message is either received or counted as dropped.
TEST_CASE("drop_oldest: a slow reader keeps up with the latest messages, in order", "[server][tcp][backpressure]") {
    server_options o;
    o.connection.send_queue_limit = 256 * 1024;
    o.connection.backpressure = backpressure_policy::drop_oldest;
    running_server rs(o);
    rs.start();
    raw_socket sleeper(rs.srv.port());
    sleeper.send(upgrade + "\r\n");
    REQUIRE(sleeper.read_all(5000ms, "\r\n\r\n").substr(0, 12) == "HTTP/1.1 101");
    const auto end = std::chrono::steady_clock::now() + 5s;
    while (rs.srv.connection_count() != 1 && std::chrono::steady_clock::now() < end) std::this_thread::sleep_for(1ms);

    constexpr int ticks = 2000; // 16 KiB each, 32 MiB: far more than socket buffers and the limit
    const auto tick = [](int i) { return std::to_string(i) + std::string(16 * 1024, '.'); };
    std::promise<void> sent;
    asio::post(rs.io, [&] {
        for (int i = 0; i < ticks; ++i) rs.srv.broadcast(opcode::text, tick(i));
        sent.set_value();
    });
    REQUIRE(sent.get_future().wait_for(20s) == std::future_status::ready);
    const std::uint64_t dropped = rs.srv.stats().traffic.messages_dropped;
    CHECK(dropped > 0);
    CHECK(dropped < ticks);
    const auto got = read_messages(sleeper, ticks - dropped, 20000ms);
    REQUIRE(got.size() == ticks - dropped); // everything not dropped arrives
    CHECK(got.back().data == tick(ticks - 1));          // the latest gets through
    int last = -1;
    bool ordered = true;
    for (const auto& m : got) {
        const int n = std::stoi(m.data);
        ordered = ordered && n > last && m.data == tick(n);
        last = n;
    }
    CHECK(ordered);
    CHECK(rs.srv.connection_count() == 1); // still open
    CHECK(read_messages(sleeper, 1, 200ms).empty()); // and nothing more came
}
