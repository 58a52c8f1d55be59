// The server on a Unix domain socket (unix_server.hpp, transport/unix.hpp): the same
// connection code as over TCP, so these tests check what differs: the socket file
// (a stale one replaced, a live one or any other file left alone, removed at stop),
// Linux's abstract namespace, remote_address(), reads parked in their own epoll set,
// and what rides on the accepted socket (the 503 at max_connections, the PROXY header).
// Clients are duplex client connections on connected Unix sockets, or raw sockets.
#include <catch2/catch.hpp>

#include "run_until.hpp"

#include <duplex/unix_server.hpp>

#if defined(ASIO_HAS_LOCAL_SOCKETS)
#include <asio/read.hpp>
#include <asio/write.hpp>

#include <algorithm>
#include <atomic>
#include <functional>
#include <future>
#include <fstream>
#include <mutex>
#include <optional>
#include <sstream>
#include <thread>
#include <vector>

#include <sys/stat.h>
#include <unistd.h>

using namespace duplex;
using namespace std::chrono_literals;
using local_socket = asio::local::stream_protocol::socket;
using unix_client = basic_connection<role::client, unix_transport>;

namespace {

// A path of its own for each use, in the temporary directory.
std::string temp_socket_path(const char* tag) {
    static std::atomic<int> n{0};
    return "/tmp/duplex-test-" + std::to_string(::getpid()) + "-" + tag + "-" + std::to_string(n++) + ".sock";
}

bool is_socket_file(const std::string& path) {
    struct stat st {};
    return ::lstat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode);
}
bool exists(const std::string& path) {
    struct stat st {};
    return ::lstat(path.c_str(), &st) == 0;
}

// "@name" as the endpoint Asio wants (a leading NUL), any other path as it is.
asio::local::stream_protocol::endpoint endpoint_of(std::string path) {
    if (!path.empty() && path[0] == '@') path[0] = '\0';
    return asio::local::stream_protocol::endpoint(path);
}

// A unix_server running on its own thread.
struct running_unix_server {
    asio::io_context io;
    std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work{io.get_executor()};
    unix_server srv;
    std::thread thread;

    explicit running_unix_server(server_options o = {}, int concurrency_hint = 1) : io(concurrency_hint), srv(io, std::move(o)) {}
    void start(const std::string& path, int threads = 1) {
        REQUIRE_FALSE(srv.listen(path));
        thread = std::thread([this, threads] {
            std::vector<std::thread> more;
            for (int i = 1; i < threads; ++i) more.emplace_back([this] { io.run_for(60s); });
            io.run_for(60s);
            for (auto& t : more) t.join();
        });
    }
    ~running_unix_server() {
        work.reset();
        asio::post(io, [this] { srv.stop(); });
        if (thread.joinable()) thread.join();
    }
};

struct client_events {
    std::atomic<int> opened{0}, closed{0};
    std::atomic<std::uint16_t> last_code{0};
    std::mutex m;
    std::vector<std::string> messages;
    std::vector<std::string> errors; // on_error's, and on_close's code
    std::size_t count() {
        std::lock_guard<std::mutex> lock(m);
        return messages.size();
    }
};

std::shared_ptr<unix_client> connect_unix(asio::io_context& io, const std::string& path, client_events& e,
                                          std::function<void(unix_client&)> on_open = {}) {
    auto cfg = std::make_shared<endpoint_config<unix_client>>();
    cfg->request.host = "localhost";
    cfg->on_open = [&e, on_open](unix_client& c) {
        ++e.opened;
        if (on_open) on_open(c);
    };
    cfg->on_message = [&e](unix_client&, const message& m) {
        std::lock_guard<std::mutex> lock(e.m);
        e.messages.push_back(m.str());
    };
    cfg->on_error = [&e](unix_client&, std::error_code ec) {
        std::lock_guard<std::mutex> lock(e.m);
        e.errors.push_back(ec.message());
    };
    cfg->on_close = [&e](unix_client&, std::uint16_t code, std::string_view reason) {
        {
            std::lock_guard<std::mutex> lock(e.m);
            e.errors.push_back("closed " + std::to_string(code) + " " + std::string(reason));
        }
        e.last_code = code;
        ++e.closed;
    };
    local_socket s(io);
    s.connect(endpoint_of(path));
    auto c = std::make_shared<unix_client>(unix_transport(std::move(s)), std::move(cfg));
    c->start_connect();
    return c;
}

using duplex_test::run_until;

// Everything a blocking raw socket reads until EOF or `limit`.
std::string read_to_eof(local_socket& s, std::chrono::milliseconds limit = 5000ms) {
    std::string out;
    char buf[4096];
    s.non_blocking(true);
    const auto end = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < end) {
        std::error_code ec;
        const std::size_t n = s.read_some(asio::buffer(buf), ec);
        if (ec == asio::error::would_block) {
            std::this_thread::sleep_for(1ms);
            continue;
        }
        out.append(buf, n);
        if (ec) break;
    }
    return out;
}

const std::string upgrade_request =
    "GET / HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

using unix_park = detail::basic_read_park<local_socket>;

} // namespace

TEST_CASE("unix_server: echo over a Unix domain socket, idle connections parked in their own set",
          "[server][unix]") {
    const std::string path = temp_socket_path("echo");
    running_unix_server rs;
    std::mutex m;
    std::vector<std::string> peers;
    std::vector<std::string> credentials;
    rs.srv.on_open([&](auto& c) {
        std::lock_guard<std::mutex> lock(m);
        peers.push_back(c.remote_address());
#if defined(SO_PEERCRED)
        std::error_code ec;
        const peer_credentials who = peer_credentials_of(c.transport(), ec);
        credentials.push_back(ec ? ec.message() : std::to_string(who.pid) + " " + std::to_string(who.uid) + " " + std::to_string(who.gid));
#endif
    });
    std::vector<std::string> server_errors;
    rs.srv.on_error([&](auto&, std::error_code ec) {
        std::lock_guard<std::mutex> lock(m);
        server_errors.push_back(ec.message());
    });
    rs.srv.on_message([](auto& c, const message& msg) { c.send(msg); });
    rs.start(path);
    CHECK(rs.srv.path() == path);
    CHECK(is_socket_file(path));

    asio::io_context cio;
    constexpr int n = 20;
    std::vector<std::unique_ptr<client_events>> ev;
    std::vector<std::shared_ptr<unix_client>> clients;
    const std::string big(1 << 20, 'b'); // read into place (more than the read buffer)
    for (int i = 0; i < n; ++i) {
        ev.push_back(std::make_unique<client_events>());
        clients.push_back(connect_unix(cio, path, *ev.back(), [i, &big](unix_client& c) {
            c.send_text("hello " + std::to_string(i));
            c.send_binary(std::string("\0\1\2", 3));
            if (i == 0) c.send_binary(big);
        }));
    }
    REQUIRE(run_until(cio, [&] {
        for (int i = 0; i < n; ++i) if (ev[i]->count() < (i == 0 ? 3u : 2u)) return false;
        return true;
    }));
    for (int i = 0; i < n; ++i) {
        INFO("client " << i);
        CHECK(ev[i]->messages[0] == "hello " + std::to_string(i));
        CHECK(ev[i]->messages[1] == std::string("\0\1\2", 3));
    }
    CHECK(ev[0]->messages[2].size() == big.size());
    CHECK((ev[0]->messages[2] == big)); // as a bool: with -s, Catch would print 2 MiB (for 40 s under ASan)
    {
        std::lock_guard<std::mutex> lock(m);
        REQUIRE(peers.size() == n);
        for (const auto& p : peers) CHECK(p == "unix:"); // clients bind no path
#if defined(SO_PEERCRED)
        // The clients are this process: SO_PEERCRED names it.
        const std::string us = std::to_string(::getpid()) + " " + std::to_string(::getuid()) + " " + std::to_string(::getgid());
        REQUIRE(credentials.size() == n);
        for (const auto& who : credentials) CHECK(who == us);
#endif
    }
    // Idle now: every server connection's read waits in the Unix sockets' epoll set.
#ifdef DUPLEX_HAS_READ_PARK
    auto& park = unix_park::of(rs.io.get_executor());
    const bool all_parked = run_until(cio, [&] { return park.parked() == n; }, 5000ms);
    for (auto& e : ev) {
        std::lock_guard<std::mutex> lock(e->m);
        for (const auto& what : e->errors) UNSCOPED_INFO("client: " << what);
    }
    {
        std::lock_guard<std::mutex> lock(m);
        for (const auto& what : server_errors) UNSCOPED_INFO("server: " << what);
    }
    CHECK(all_parked);
    CHECK(park.sockets() == n);
    CHECK(detail::read_park::of(rs.io.get_executor()).sockets() == 0); // TCP's set has none of them
#if defined(SO_PEERCRED)
    {
        // Parked, the socket is out of Asio's reactor: its credentials are still there.
        std::promise<std::string> seen;
        asio::post(rs.io, [&] { // the connections' executor (a one-thread server)
            auto conns = rs.srv.clients().snapshot();
            std::error_code ec;
            const peer_credentials who = peer_credentials_of(conns.front()->transport(), ec);
            seen.set_value(ec ? ec.message() : std::to_string(who.pid) + " " + std::to_string(who.uid));
        });
        CHECK(seen.get_future().get() == std::to_string(::getpid()) + " " + std::to_string(::getuid()));
    }
#endif
#endif
    // ...and wakes to echo.
    REQUIRE_FALSE(clients[7]->send_text("again"));
    REQUIRE(run_until(cio, [&] { return ev[7]->count() == 3; }));
    CHECK(ev[7]->messages[2] == "again");
    const auto stats = rs.srv.stats();
    CHECK(stats.accepted == n);
    CHECK(stats.open_connections == n);
    for (auto& c : clients) c->close();
    REQUIRE(run_until(cio, [&] {
        for (auto& e : ev) if (e->closed == 0) return false;
        return true;
    }));
    for (auto& e : ev) CHECK(e->last_code == 1000);
}

TEST_CASE("unix_server on two threads (strands): a broadcast reaches every client once", "[server][unix][broadcast][threads]") {
    const std::string path = temp_socket_path("chat");
    running_unix_server rs({}, ASIO_CONCURRENCY_HINT_DEFAULT);
    rs.srv.on_message([&](auto&, const message& msg) { rs.srv.broadcast(msg); });
    rs.start(path, 2);
    REQUIRE_FALSE(rs.srv.one_thread());
    asio::io_context cio;
    constexpr int n = 5;
    std::vector<std::unique_ptr<client_events>> ev;
    std::vector<std::shared_ptr<unix_client>> clients;
    for (int i = 0; i < n; ++i) {
        ev.push_back(std::make_unique<client_events>());
        clients.push_back(connect_unix(cio, path, *ev.back()));
    }
    REQUIRE(run_until(cio, [&] {
        for (auto& e : ev) if (e->opened == 0) return false;
        return rs.srv.connection_count() == n;
    }));
    std::vector<std::string> sent;
    for (int i = 0; i < n; ++i) {
        sent.push_back("from " + std::to_string(i));
        REQUIRE_FALSE(clients[i]->send_text(sent.back()));
    }
    REQUIRE(run_until(cio, [&] {
        for (auto& e : ev) if (e->count() < sent.size()) return false;
        return true;
    }));
    cio.run_for(50ms); // time for a duplicate to show up
    for (auto& e : ev) {
        std::lock_guard<std::mutex> lock(e->m);
        auto got = e->messages;
        std::sort(got.begin(), got.end());
        CHECK(got == sent);
    }
}

TEST_CASE("unix_server replaces a stale socket file, never a live one or another file", "[server][unix]") {
    asio::io_context io(1);

    SECTION("a socket file nobody listens on (a process that died) is replaced") {
        const std::string path = temp_socket_path("stale");
        {
            local_socket left(io);
            left.open();
            left.bind(endpoint_of(path)); // bound, never listening, then closed: the file stays
        }
        REQUIRE(is_socket_file(path));
        unix_server srv(io);
        REQUIRE_FALSE(srv.listen(path));
        local_socket s(io);
        std::error_code ec;
        s.connect(endpoint_of(path), ec);
        CHECK_FALSE(ec); // this server listens there now
    }
    SECTION("a live server's socket gives address_in_use, and it goes on serving") {
        const std::string path = temp_socket_path("live");
        running_unix_server first;
        first.srv.on_message([](auto& c, const message& msg) { c.send(msg); });
        first.start(path);
        {
            unix_server second(io);
            CHECK(second.listen(path) == asio::error::address_in_use);
            CHECK_THROWS_AS(second.listen_or_throw(path), duplex::error);
            CHECK_THROWS_WITH(second.listen_or_throw(path), "listen on " + path + ": " +
                                                                 make_error_code(asio::error::address_in_use).message());
        } // its destructor must not remove the first one's file
        CHECK(is_socket_file(path));
        asio::io_context cio;
        client_events e;
        auto c = connect_unix(cio, path, e, [](unix_client& conn) { conn.send_text("still here"); });
        REQUIRE(run_until(cio, [&] { return e.count() == 1; }));
        CHECK(e.messages[0] == "still here");
    }
    SECTION("a second listen() on a listening server fails, its socket and file untouched") {
        const std::string path = temp_socket_path("again");
        const std::string other = temp_socket_path("other");
        unix_server srv(io);
        REQUIRE_FALSE(srv.listen(path));
        CHECK(srv.listen(other) == asio::error::already_open);
        CHECK(srv.listen(path) == asio::error::already_open);
        CHECK_FALSE(exists(other));
        CHECK(is_socket_file(path));
        CHECK(srv.path() == path);
        local_socket s(io);
        std::error_code ec;
        s.connect(endpoint_of(path), ec);
        CHECK_FALSE(ec); // still listening (a bound socket that does not listen refuses)
    }
    SECTION("any other file is left alone") {
        const std::string path = temp_socket_path("file");
        std::ofstream(path) << "precious";
        unix_server srv(io);
        CHECK(srv.listen(path) == asio::error::address_in_use);
        std::ifstream in(path);
        std::stringstream content;
        content << in.rdbuf();
        CHECK(content.str() == "precious");
        ::unlink(path.c_str());
    }
    SECTION("an empty path, or one too long for sockaddr_un") {
        unix_server srv(io);
        CHECK(srv.listen("") == std::errc::invalid_argument);
        CHECK(srv.listen("/tmp/" + std::string(200, 'x')) == std::errc::filename_too_long);
    }
}

TEST_CASE("unix_server: stop() and the destructor remove the socket file, if it is still theirs", "[server][unix]") {
    asio::io_context io(1);
    const std::string path = temp_socket_path("cleanup");
    {
        unix_server srv(io);
        REQUIRE_FALSE(srv.listen(path));
        REQUIRE(is_socket_file(path));
        srv.stop();
        CHECK_FALSE(exists(path));
    }
    {
        unix_server srv(io);
        REQUIRE_FALSE(srv.listen(path));
        REQUIRE(is_socket_file(path));
    }
    CHECK_FALSE(exists(path)); // the destructor
    {
        unix_server srv(io);
        REQUIRE_FALSE(srv.listen(path));
        ::unlink(path.c_str()); // someone else takes the path meanwhile
        std::ofstream(path) << "not yours";
    }
    CHECK(exists(path)); // left alone
    ::unlink(path.c_str());
    io.run_for(10ms);
}

TEST_CASE("unix_server: listen(path, mode) sets the socket file's mode before anyone can connect", "[server][unix]") {
    asio::io_context io(1);
    const auto mode_of = [](const std::string& p) {
        struct stat st {};
        REQUIRE(::stat(p.c_str(), &st) == 0);
        return static_cast<int>(st.st_mode & 07777);
    };
    for (const int mode : {0600, 0666, 0660}) { // 0666 also shows the umask (022 or 002) was overridden
        INFO("mode " << std::oct << mode);
        const std::string path = temp_socket_path("mode");
        unix_server srv(io);
        REQUIRE_FALSE(srv.listen(path, mode));
        CHECK(mode_of(path) == mode);
        local_socket s(io);
        std::error_code ec;
        s.connect(endpoint_of(path), ec);
        CHECK_FALSE(ec); // and listening (as root here, so the mode does not refuse this test)
    }
}

#ifdef __linux__
TEST_CASE("unix_server in Linux's abstract namespace: no file at all", "[server][unix]") {
    const std::string name = "@duplex-test-" + std::to_string(::getpid());
    running_unix_server rs;
    rs.srv.on_message([](auto& c, const message& msg) { c.send(msg); });
    rs.start(name);
    CHECK(rs.srv.path() == name);
    CHECK_FALSE(exists(name.substr(1)));
    asio::io_context cio;
    client_events e;
    auto c = connect_unix(cio, name, e, [](unix_client& conn) { conn.send_text("abstract"); });
    REQUIRE(run_until(cio, [&] { return e.count() == 1; }));
    CHECK(e.messages[0] == "abstract");
    unix_server second(cio);
    CHECK(second.listen(name) == asio::error::address_in_use); // never "stale": no file to test
}
#endif

TEST_CASE("unix_server: the 503 past max_connections and the PROXY header work on the accepted socket",
          "[server][unix][limits][proxy_protocol]") {
    SECTION("past max_connections, 503") {
        const std::string path = temp_socket_path("limit");
        server_options o;
        o.max_connections = 1;
        running_unix_server rs(o);
        rs.start(path);
        asio::io_context cio;
        client_events e;
        auto c = connect_unix(cio, path, e);
        REQUIRE(run_until(cio, [&] { return e.opened == 1; }));
        local_socket raw(cio);
        raw.connect(endpoint_of(path));
        // The server answers at accept, without reading, then closes: the request may
        // meet a closed socket (EPIPE), the answer is there to read all the same.
        std::error_code write_error;
        asio::write(raw, asio::buffer(upgrade_request), write_error);
        const std::string answer = read_to_eof(raw);
        CHECK(answer.rfind("HTTP/1.1 503", 0) == 0);
        CHECK(rs.srv.stats().refused == 1);
    }
    SECTION("HAProxy's send-proxy to a unix@ server: remote_address() is the client it names") {
        const std::string path = temp_socket_path("proxy");
        server_options o;
        o.proxy_protocol = true;
        running_unix_server rs(o);
        std::mutex m;
        std::string peer;
        rs.srv.on_open([&](auto& c) {
            std::lock_guard<std::mutex> lock(m);
            peer = c.remote_address();
            c.send_text("hi");
        });
        rs.start(path);
        asio::io_context cio;
        local_socket raw(cio);
        raw.connect(endpoint_of(path));
        asio::write(raw, asio::buffer("PROXY TCP4 192.0.2.7 198.51.100.1 40000 443\r\n" + upgrade_request));
        std::string got;
        char buf[512];
        while (got.find("hi") == std::string::npos) {
            std::error_code ec;
            const std::size_t k = raw.read_some(asio::buffer(buf), ec);
            REQUIRE_FALSE(ec);
            got.append(buf, k);
        }
        CHECK(got.rfind("HTTP/1.1 101", 0) == 0);
        std::lock_guard<std::mutex> lock(m);
        CHECK(peer == "192.0.2.7:40000");
    }
}

#endif
