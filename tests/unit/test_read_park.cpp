// TCP read waits parked in one epoll set per io_context (detail/read_park.hpp),
// edge-triggered: a parked wait completes like Asio's own (no error once bytes or EOF
// are there, operation_aborted when the socket closes), no edge is lost between a
// short read and the next wait, io_context::run() keeps going only while something
// is parked, and the set lets go of what it holds when the io_context goes.
#include <catch2/catch.hpp>

#include <duplex/server.hpp>

#ifdef DUPLEX_HAS_READ_PARK
#include <asio/connect.hpp>
#include <asio/read.hpp>
#include <asio/strand.hpp>
#include <asio/write.hpp>

#include <array>
#include <string>

#include <atomic>
#include <memory>
#include <thread>
#include <vector>

using namespace duplex;
using namespace std::chrono_literals;

namespace {

// A connected loopback pair: `near` in a tcp_transport, `far` a plain socket.
struct socket_pair {
    tcp_transport near;
    asio::ip::tcp::socket far;
};

socket_pair connect_pair(asio::io_context& io, const asio::any_io_executor& ex) {
    asio::ip::tcp::acceptor acceptor(io, {asio::ip::make_address("127.0.0.1"), 0});
    asio::ip::tcp::socket far(io);
    far.connect(acceptor.local_endpoint());
    asio::ip::tcp::socket near(ex);
    acceptor.accept(near);
    return {tcp_transport(std::move(near)), std::move(far)};
}

// What a parked wait reports, and an owner whose lifetime the wait holds.
struct waiter {
    int calls = 0;
    std::error_code ec;
    void done(std::error_code e, std::size_t) {
        ++calls;
        ec = e;
    }
};

detail::read_park& park_of(asio::io_context& io) { return detail::read_park::of(io.get_executor()); }

// One loopback pair on a one-thread io_context, and a waiter for `near`'s parked waits.
struct one_pair {
    asio::io_context io{1};
    socket_pair p = connect_pair(io, io.get_executor());
    std::shared_ptr<waiter> w = std::make_shared<waiter>();
    void park() { p.near.async_wait_readable(detail::complete_with<&waiter::done>(w.get(), w)); }
};

// Closes `t` and runs `io`: the wait parked there ends with operation_aborted, as
// `w`'s call number `calls`.
void close_ends_wait(asio::io_context& io, tcp_transport& t, const waiter& w, int calls) {
    t.close();
    io.restart();
    io.run_for(5s);
    CHECK(w.calls == calls);
    CHECK(w.ec == asio::error::operation_aborted);
}

} // namespace

TEST_CASE_METHOD(one_pair, "a parked read wait completes once bytes come, and io.run() then returns", "[read_park][tcp]") {
    park();
    CHECK(park_of(io).parked() == 1);
    CHECK(w.use_count() == 2); // the parked wait holds its owner

    asio::write(p.far, asio::buffer("x", 1));
    io.run_for(5s); // returns as soon as nothing is pending: the set's own wait is not kept
    CHECK(io.stopped());
    CHECK(w->calls == 1);
    CHECK_FALSE(w->ec);
    CHECK(park_of(io).parked() == 0);
    CHECK(w.use_count() == 1);

    // Read until short; the next wait stays parked (no epoll_ctl: the socket stays in
    // the set, edge-triggered) until the next bytes raise a new edge.
    char buf[8];
    std::error_code ec;
    CHECK(p.near.read_some_now(asio::buffer(buf), ec) == 1);
    CHECK(buf[0] == 'x');
    park();
    CHECK(park_of(io).parked() == 1);
    CHECK(park_of(io).sockets() == 1);
    io.restart();
    io.run_for(50ms);
    CHECK(w->calls == 1); // no bytes, no wake
    asio::write(p.far, asio::buffer("y", 1));
    io.restart();
    io.run_for(5s);
    CHECK(w->calls == 2);
    CHECK_FALSE(w->ec);
}

TEST_CASE_METHOD(one_pair, "bytes that came while nothing waited, or a read that filled its buffer, end the next wait at once",
                 "[read_park][tcp]") {
    park();
    asio::write(p.far, asio::buffer("abc", 3));
    io.run_for(5s);
    REQUIRE(w->calls == 1);
    char buf[8];
    std::error_code ec;
    CHECK(p.near.read_some_now(asio::buffer(buf), ec) == 3); // short: all of it
    // More bytes come while the socket's owner does something else: their edge is
    // kept, and the next wait completes without waiting for another.
    asio::write(p.far, asio::buffer("de", 2));
    park();
    CHECK(park_of(io).parked() == 1);
    io.restart();
    io.run_for(5s); // the edge wakes it
    REQUIRE(w->calls == 2);
    // Another socket's wait keeps the set watched; this one's edge comes while it
    // does not wait, and the entry keeps it.
    auto q = connect_pair(io, io.get_executor());
    auto w2 = std::make_shared<waiter>();
    q.near.async_wait_readable(detail::complete_with<&waiter::done>(w2.get(), w2));
    asio::write(p.far, asio::buffer("fgh", 3));
    io.restart();
    for (int i = 0; i < 100 && io.poll() == 0; ++i) std::this_thread::sleep_for(1ms);
    park();
    CHECK(park_of(io).parked() == 1); // q's only: this one is ready and completes through the executor
    io.restart();
    io.poll();
    REQUIRE(w->calls == 3);
    CHECK(w2->calls == 0);
    // Two bytes into a buffer of two: there may be more, and no edge will say so.
    CHECK(p.near.read_some_now(asio::buffer(buf, 2), ec) == 2);
    CHECK(std::string(buf, 2) == "de");
    park();
    io.restart();
    io.run_for(5s);
    REQUIRE(w->calls == 4);
    CHECK(p.near.read_some_now(asio::buffer(buf), ec) == 3);
    CHECK(std::string(buf, 3) == "fgh");
    park(); // now short: it waits
    io.restart();
    io.run_for(50ms);
    CHECK(w->calls == 4);
    CHECK(park_of(io).parked() == 2);
    q.near.close();
    close_ends_wait(io, p.near, *w, 5);
}

TEST_CASE_METHOD(one_pair, "after the peer's FIN every wait ends at once: EOF stays to be read", "[read_park][tcp]") {
    park();
    asio::write(p.far, asio::buffer("last", 4));
    p.far.shutdown(asio::ip::tcp::socket::shutdown_send); // the bytes and the FIN, one edge or two
    io.run_for(5s);
    REQUIRE(w->calls == 1);
    char buf[8];
    std::error_code ec;
    std::size_t got = p.near.read_some_now(asio::buffer(buf), ec); // short, the FIN behind it
    if (got == 0 && ec == asio::error::would_block) { // the FIN's edge came first: wait for the bytes'
        park();
        io.restart();
        io.run_for(5s);
        got = p.near.read_some_now(asio::buffer(buf), ec);
    }
    CHECK(got == 4);
    for (int i = 0; i < 2; ++i) { // no new edge will come, yet each wait ends
        park();
        io.restart();
        io.run_for(5s);
        CHECK(p.near.read_some_now(asio::buffer(buf), ec) == 0);
        CHECK(ec == asio::error::eof);
    }
}

TEST_CASE_METHOD(one_pair, "a quiet parked socket leaves Asio's reactor and works the same outside it", "[read_park][tcp]") {
    const std::string before = p.near.remote_address();
    park();
    REQUIRE(p.near.released());
    CHECK(p.near.remote_address() == before); // getpeername on the descriptor

    // Writes that do not wait go straight to the descriptor, and it stays out.
    std::error_code ec;
    const std::array<asio::const_buffer, 2> two{asio::buffer("ab", 2), asio::buffer("cd", 2)};
    CHECK(p.near.try_write_some(two, ec) == 4);
    CHECK_FALSE(ec);
    CHECK(p.near.released());
    char got[4];
    asio::read(p.far, asio::buffer(got));
    CHECK(std::string(got, 4) == "abcd");

    // Woken; a read that does not wait reads the descriptor, then would block.
    asio::write(p.far, asio::buffer("xyz", 3));
    io.run_for(5s);
    REQUIRE(w->calls == 1);
    char buf[8];
    CHECK(p.near.read_some_now(asio::buffer(buf), ec) == 3);
    CHECK_FALSE(ec);
    CHECK(p.near.released());
    CHECK(p.near.read_some_now(asio::buffer(buf), ec) == 0);
    CHECK(ec == asio::error::would_block);

    // An asynchronous read brings it back to Asio first.
    bool read_done = false;
    p.near.async_read_some(asio::buffer(buf), [&](std::error_code e, std::size_t n) { read_done = !e && n == 1; });
    CHECK_FALSE(p.near.released());
    asio::write(p.far, asio::buffer("r", 1));
    io.restart();
    io.run_for(5s);
    CHECK(read_done);

    // So does socket(): it is Asio's again, options and all.
    park();
    REQUIRE(p.near.released());
    asio::ip::tcp::no_delay nd;
    p.near.socket().get_option(nd);
    CHECK(nd.value()); // set by the transport before it left
    CHECK_FALSE(p.near.released());
    CHECK(p.near.socket().local_endpoint().port() == p.far.remote_endpoint().port());

    close_ends_wait(io, p.near, *w, 2);
}

TEST_CASE_METHOD(one_pair, "a half-close of a released socket reaches the peer", "[read_park][tcp]") {
    park();
    REQUIRE(p.near.released());
    p.near.shutdown_send();
    char c;
    std::error_code ec;
    CHECK(p.far.read_some(asio::buffer(&c, 1), ec) == 0);
    CHECK(ec == asio::error::eof);
    CHECK(p.near.try_write_some(asio::buffer("x", 1), ec) == 0);
    CHECK(ec == asio::error::broken_pipe); // EPIPE, and no SIGPIPE
}

TEST_CASE_METHOD(one_pair, "a socket with a write in flight stays with Asio while its read is parked", "[read_park][tcp]") {
    // Fill both socket buffers so that the write cannot finish at once.
    const std::string chunk(1 << 20, 'w');
    std::error_code ec;
    for (int i = 0; i < 64 && !ec; ++i) p.near.try_write_some(asio::buffer(chunk), ec);
    REQUIRE(ec == asio::error::would_block);
    std::size_t written = 0;
    p.near.async_write_some(asio::buffer(chunk), [&](std::error_code e, std::size_t n) { written = e ? 0 : n; });
    park();
    CHECK(park_of(io).parked() == 1);
    CHECK_FALSE(p.near.released()); // releasing would abort the write
    // The peer reads: the write completes.
    std::vector<char> sink(1 << 16);
    const auto until = std::chrono::steady_clock::now() + 10s;
    while (written == 0 && std::chrono::steady_clock::now() < until) {
        p.far.read_some(asio::buffer(sink));
        io.poll();
    }
    CHECK(written > 0);
    CHECK(w->calls == 0); // still parked: nothing came to read
    // Woken; after a write that did not wait, the next park lets the socket go.
    asio::write(p.far, asio::buffer("x", 1));
    io.restart();
    io.run_for(5s);
    REQUIRE(w->calls == 1);
    char c[2];
    CHECK(p.near.read_some_now(asio::buffer(c), ec) == 1);
    CHECK(p.near.try_write_some(asio::buffer("y", 1), ec) == 1);
    park();
    CHECK(p.near.released());
    close_ends_wait(io, p.near, *w, 2);
}

TEST_CASE_METHOD(one_pair, "a parked wait sees the peer's FIN", "[read_park][tcp]") {
    park();
    p.far.shutdown(asio::ip::tcp::socket::shutdown_send);
    io.run_for(5s);
    REQUIRE(w->calls == 1);
    char c;
    std::error_code ec;
    CHECK(p.near.read_some_now(asio::buffer(&c, 1), ec) == 0);
    CHECK(ec == asio::error::eof);
}

TEST_CASE("closing or aborting a transport ends its parked wait with operation_aborted", "[read_park][tcp]") {
    asio::io_context io(1);
    for (bool abort : {false, true}) {
        auto p = connect_pair(io, io.get_executor());
        auto w = std::make_shared<waiter>();
        p.near.async_wait_readable(detail::complete_with<&waiter::done>(w.get(), w));
        REQUIRE(park_of(io).parked() == 1);
        if (abort) p.near.abort();
        else p.near.close();
        CHECK(park_of(io).parked() == 0);
        io.restart();
        io.run_for(5s);
        CHECK(io.stopped()); // nothing left pending
        CHECK(w->calls == 1);
        CHECK(w->ec == asio::error::operation_aborted);
        CHECK(w.use_count() == 1);
    }
}

TEST_CASE_METHOD(one_pair, "a moved transport's parked wait goes on", "[read_park][tcp]") {
    park();
    auto moved = std::make_unique<tcp_transport>(std::move(p.near));
    asio::write(p.far, asio::buffer("x", 1));
    io.run_for(5s);
    CHECK(w->calls == 1);
    CHECK_FALSE(w->ec);
    // Assigned over while parked: the old socket's wait ends aborted, the new one's
    // parked wait goes on in its new place.
    auto q = connect_pair(io, io.get_executor());
    auto w2 = std::make_shared<waiter>();
    q.near.async_wait_readable(detail::complete_with<&waiter::done>(w2.get(), w2));
    moved->async_wait_readable(detail::complete_with<&waiter::done>(w.get(), w));
    *moved = std::move(q.near);
    asio::write(q.far, asio::buffer("x", 1));
    io.restart();
    io.run_for(5s);
    CHECK(w->calls == 2);
    CHECK(w->ec == asio::error::operation_aborted);
    CHECK(w2->calls == 1);
    CHECK_FALSE(w2->ec);
    // Destroyed while parked: the wait ends as Asio ends it, aborted.
    moved->async_wait_readable(detail::complete_with<&waiter::done>(w.get(), w));
    moved.reset();
    io.restart();
    io.run_for(5s);
    CHECK(w->calls == 3);
    CHECK(w->ec == asio::error::operation_aborted);
    CHECK(park_of(io).parked() == 0);
}

TEST_CASE("destroying the io_context lets go of parked owners", "[read_park][tcp]") {
    // As a connection: it owns its transport and is kept alive by its parked wait only.
    struct owner {
        socket_pair p;
        void done(std::error_code, std::size_t) {}
    };
    std::weak_ptr<owner> seen;
    {
        asio::io_context io(1);
        auto o = std::make_shared<owner>(owner{connect_pair(io, io.get_executor())});
        o->p.near.async_wait_readable(detail::complete_with<&owner::done>(o.get(), o));
        seen = o;
        o.reset();
        CHECK_FALSE(seen.expired());
    } // the io_context's shutdown destroys the parked wait, and with it the owner and its sockets
    CHECK(seen.expired()); // LeakSanitizer would also report it
}

TEST_CASE("hundreds of parked waits woken together, in rounds of 64", "[read_park][tcp]") {
    asio::io_context io(1);
    constexpr int n = 300; // more than one epoll_wait round
    std::vector<socket_pair> pairs;
    std::vector<std::shared_ptr<waiter>> waiters;
    for (int i = 0; i < n; ++i) {
        pairs.push_back(connect_pair(io, io.get_executor()));
        waiters.push_back(std::make_shared<waiter>());
        pairs.back().near.async_wait_readable(detail::complete_with<&waiter::done>(waiters.back().get(), waiters.back()));
    }
    CHECK(park_of(io).parked() == static_cast<std::size_t>(n));
    for (auto& p : pairs) asio::write(p.far, asio::buffer("z", 1));
    io.run_for(10s);
    CHECK(io.stopped());
    int woken = 0;
    for (auto& w : waiters) woken += w->calls == 1 && !w->ec;
    CHECK(woken == n);
    CHECK(park_of(io).parked() == 0);
}

TEST_CASE("parked waits on strands of a two-thread io_context", "[read_park][tcp][threads]") {
    asio::io_context io(2);
    constexpr int n = 40, rounds = 25;
    struct peer {
        socket_pair p;
        asio::strand<asio::io_context::executor_type> strand;
        std::atomic<int> woken{0};
        std::atomic<bool> inside{false}; // two handlers at once on one strand would be a bug
        bool overlap = false;
        void done(std::error_code ec, std::size_t) {
            if (inside.exchange(true)) overlap = true;
            if (!ec) {
                char buf[8];
                std::error_code rec;
                p.near.read_some_now(asio::buffer(buf), rec);
                if (woken.fetch_add(1) + 1 < rounds) p.near.async_wait_readable(detail::complete_with<&peer::done>(this));
            }
            inside = false;
        }
    };
    std::vector<std::unique_ptr<peer>> peers;
    for (int i = 0; i < n; ++i) {
        auto strand = asio::make_strand(io);
        peers.push_back(std::unique_ptr<peer>(new peer{connect_pair(io, strand), strand}));
        peer* q = peers.back().get();
        asio::post(q->strand, [q] { q->p.near.async_wait_readable(detail::complete_with<&peer::done>(q)); });
    }
    auto guard = asio::make_work_guard(io);
    std::thread t1([&] { io.run(); }), t2([&] { io.run(); });
    // Each round: one byte to every peer once the previous byte was taken.
    for (int r = 0; r < rounds; ++r) {
        const auto until = std::chrono::steady_clock::now() + 10s;
        for (auto& q : peers) {
            while (q->woken.load() < r && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(100us);
            asio::write(q->p.far, asio::buffer("r", 1));
        }
    }
    const auto until = std::chrono::steady_clock::now() + 10s;
    for (auto& q : peers)
        while (q->woken.load() < rounds && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(1ms);
    guard.reset();
    io.stop();
    t1.join();
    t2.join();
    int done = 0, overlaps = 0;
    for (auto& q : peers) {
        done += q->woken.load() == rounds;
        overlaps += q->overlap;
    }
    CHECK(done == n);
    CHECK(overlaps == 0);
}

TEST_CASE("an idle server connection waits parked, and wakes to echo", "[read_park][server][tcp]") {
    asio::io_context io(1);
    server srv(io);
    srv.on_message([](auto& c, const message& m) { c.send(m); });
    REQUIRE_FALSE(srv.listen(0));
    constexpr int n = 20;
    using client_conn = basic_connection<role::client, tcp_transport>;
    std::vector<std::shared_ptr<client_conn>> clients;
    int echoed = 0, opened = 0;
    auto cfg = std::make_shared<client_conn::config_type>();
    cfg->request.host = "127.0.0.1";
    cfg->on_open = [&](auto&) { ++opened; };
    cfg->on_message = [&](auto&, const message& m) {
        if (m.data == "wake") ++echoed;
    };
    for (int i = 0; i < n; ++i) {
        asio::ip::tcp::socket s(io);
        s.connect({asio::ip::make_address("127.0.0.1"), srv.port()});
        clients.push_back(std::make_shared<client_conn>(tcp_transport(std::move(s)), cfg));
        clients.back()->start_connect();
    }
    // Once open and quiet, every connection of both ends waits parked (2 per pair).
    // (While the handshakes go on, both ends wait parked too: open first.)
    const auto until = std::chrono::steady_clock::now() + 10s;
    while ((opened < n || park_of(io).parked() < 2 * n) && std::chrono::steady_clock::now() < until) io.run_for(10ms);
    REQUIRE(opened == n);
    CHECK(park_of(io).parked() == 2 * n);
    CHECK(park_of(io).sockets() == 2 * n);
    CHECK(srv.connection_count() == n);
    for (auto& c : clients) CHECK_FALSE(c->send_text("wake"));
    while (echoed < n && std::chrono::steady_clock::now() < until + 10s) io.run_for(10ms);
    CHECK(echoed == n);
    for (auto& c : clients) c->close();
    srv.stop();
    io.run_for(10s);
    CHECK(io.stopped()); // nothing parked is left behind to keep run() going
    CHECK(park_of(io).parked() == 0);
}

#else
TEST_CASE("read_park is Linux-only", "[read_park]") { SUCCEED("not built on this platform"); }
#endif
