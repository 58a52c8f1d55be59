// duplex::client against duplex::server over loopback TCP (and TLS): every run is
// bounded in time (run_until) and every server listens on 127.0.0.1 (or ::1), port 0.
#include <catch2/catch.hpp>

#include <duplex/client.hpp>
#include <duplex/server.hpp>
#ifdef DUPLEX_HAS_TLS
#include <duplex/transport/tls.hpp>
#endif
#include "tls_fixture.hpp"

#include <asio/read.hpp>
#include <asio/write.hpp>

#include <array>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

using namespace std::chrono_literals;

namespace {

// Runs io until pred() holds; false if it did not within `limit` (or io ran out of work).
template <class Pred>
bool run_until(asio::io_context& io, Pred pred, std::chrono::milliseconds limit = 10s) {
    const auto end = std::chrono::steady_clock::now() + limit;
    io.restart();
    while (!pred()) {
        const auto now = std::chrono::steady_clock::now();
        if (now >= end) return false;
        if (io.run_one_for(end - now) == 0 && io.stopped()) return pred();
    }
    return true;
}

// What a client reported.
struct events {
    int opens = 0;
    std::vector<duplex::opcode> ops;
    std::vector<std::string> messages;
    std::vector<std::error_code> errors;
    int closes = 0;
    std::uint16_t close_code = 0;
    std::string close_reason;
};

void record(duplex::client& c, events& e) {
    c.on_open([&e] { ++e.opens; });
    c.on_message([&e](const duplex::message& m) {
        e.ops.push_back(m.op);
        e.messages.push_back(m.str());
    });
    c.on_error([&e](std::error_code ec) { e.errors.push_back(ec); });
    c.on_close([&e](std::uint16_t code, std::string_view reason) {
        ++e.closes;
        e.close_code = code;
        e.close_reason = std::string(reason);
    });
}

// What a server reported, for any transport.
struct server_events {
    int opens = 0;
    std::vector<std::error_code> errors;
    std::vector<std::uint16_t> close_codes;
    std::string subprotocol;
};

template <class Server>
void echo_and_record(Server& s, server_events& e) {
    s.on_open([&e](auto& c) {
        ++e.opens;
        e.subprotocol = c.subprotocol();
    });
    s.on_message([](auto& c, const duplex::message& m) {
        if (m.is_text() && m.text() == "close please") c.close(4001, "bye");
        else c.send(m);
    });
    s.on_error([&e](auto&, std::error_code ec) { e.errors.push_back(ec); });
    s.on_close([&e](auto&, std::uint16_t code, std::string_view) { e.close_codes.push_back(code); });
}

std::string ws_url(std::uint16_t port, const std::string& path = "/") {
    return "ws://127.0.0.1:" + std::to_string(port) + path;
}

// A TCP listener that accepts and never answers (a stuck handshake).
struct silent_listener {
    asio::ip::tcp::acceptor acceptor;
    asio::ip::tcp::socket peer;
    bool accepted = false;
    explicit silent_listener(asio::io_context& io)
        : acceptor(io, asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)), peer(io) {
        acceptor.async_accept(peer, [this](std::error_code ec) { accepted = !ec; });
    }
    std::uint16_t port() const { return acceptor.local_endpoint().port(); }
};

// A hand-written peer for answers duplex's own server never gives: it accepts one
// connection, reads the request head into `request`, then writes each chunk of
// script(request) in turn (one write each, in order) and keeps the socket open.
struct scripted_peer {
    asio::ip::tcp::acceptor acceptor;
    asio::ip::tcp::socket peer;
    std::string request;
    std::function<std::vector<std::string>(const std::string& request)> script;
    std::vector<std::string> chunks;
    std::size_t written = 0;
    bool done = false; // every chunk written

    scripted_peer(asio::io_context& io, std::function<std::vector<std::string>(const std::string&)> s)
        : acceptor(io, asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)), peer(io), script(std::move(s)) {
        acceptor.async_accept(peer, [this](std::error_code ec) {
            if (!ec) read_head();
        });
    }
    std::uint16_t port() const { return acceptor.local_endpoint().port(); }

    // The Sec-WebSocket-Key (or any field) of the request, empty if absent.
    std::string field(const std::string& name) const {
        const auto at = request.find("\r\n" + name + ": ");
        if (at == std::string::npos) return {};
        const auto begin = at + name.size() + 4;
        return request.substr(begin, request.find("\r\n", begin) - begin);
    }

private:
    void read_head() {
        auto buf = std::make_shared<std::array<char, 512>>();
        peer.async_read_some(asio::buffer(*buf), [this, buf](std::error_code ec, std::size_t n) {
            if (ec) return;
            request.append(buf->data(), n);
            const auto end = request.find("\r\n\r\n");
            if (end == std::string::npos) return read_head();
            chunks = script(request.substr(0, end + 4));
            write_next();
        });
    }
    void write_next() {
        if (written == chunks.size()) {
            done = true;
            return;
        }
        asio::async_write(peer, asio::buffer(chunks[written]), [this](std::error_code ec, std::size_t) {
            if (ec) return;
            ++written;
            write_next();
        });
    }
};

// An HTTP CONNECT proxy (RFC 9110 §9.3.6) for the tests. It keeps each request head it
// gets; then it answers `refusal` and closes, or hangs up without a word (`hang_up`),
// or connects to the request's host:port (an IP address), answers `established` and
// relays bytes both ways until either side ends, keeping the first bytes that went
// from the client to the server in `client_bytes`.
//
// With `socks5` it is a SOCKS5 proxy instead (RFC 1928): it wants username/password
// (RFC 1929) when `socks_user` is set, keeps each CONNECT as "host:port" in `requests`
// (a name as sent, an address in text form), and answers `socks_reply` (0: success).
struct test_proxy {
    asio::ip::tcp::acceptor acceptor;
    std::string refusal;
    bool hang_up = false;
    std::string established = "HTTP/1.1 200 Connection established\r\n\r\n";
    bool dribble = false; // its answers one byte per write
    bool socks5 = false;
    std::string socks_user, socks_password;
    std::uint8_t socks_reply = 0;
    std::vector<std::string> requests;
    std::string client_bytes; // the first 4 KiB the client sent through a tunnel
    int tunnels = 0;

    explicit test_proxy(asio::io_context& io)
        : acceptor(io, asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)) {
        accept();
    }
    std::uint16_t port() const { return acceptor.local_endpoint().port(); }
    std::string url() const { return "http://127.0.0.1:" + std::to_string(port()); }

private:
    struct session : std::enable_shared_from_this<session> {
        test_proxy& proxy;
        asio::ip::tcp::socket down, up;
        std::string head;
        std::array<char, 16384> from_client{}, from_server{};
        session(test_proxy& p, asio::ip::tcp::socket s) : proxy(p), down(std::move(s)), up(down.get_executor()) {}

        void start() {
            if (proxy.socks5) socks_greeting();
            else read_head();
        }

        // Reads exactly n bytes from the client into `head`, then calls next().
        void read_exact(std::size_t n, std::function<void()> next) {
            head.assign(n, '\0');
            asio::async_read(down, asio::buffer(&head[0], n), [self = shared_from_this(), next](std::error_code ec, std::size_t) {
                if (ec) return self->end();
                next();
            });
        }
        // Writes `bytes` (one write, or one byte per write with `dribble`), then next()
        // (null: hangs up).
        void answer(std::string bytes, std::function<void()> next) {
            auto out = std::make_shared<std::string>(std::move(bytes));
            const std::size_t piece = proxy.dribble ? 1 : out->size();
            asio::async_write(down, asio::buffer(out->data(), piece), [self = shared_from_this(), out, piece, next](std::error_code ec, std::size_t) {
                if (ec) return self->end();
                if (piece < out->size()) return self->answer(out->substr(piece), next);
                if (next) next();
                else self->end();
            });
        }
        std::uint8_t byte(std::size_t i) const { return static_cast<std::uint8_t>(head[i]); }
        void socks_greeting() {
            read_exact(2, [this] {
                read_exact(byte(1), [this] {
                    const bool wants_password = !proxy.socks_user.empty();
                    const char method = wants_password ? '\x02' : '\x00';
                    if (head.find(method) == std::string::npos) return answer(std::string("\x05\xff", 2), nullptr);
                    answer(std::string("\x05") + method, [this, wants_password] {
                        if (wants_password) socks_password();
                        else socks_request();
                    });
                });
            });
        }
        void socks_password() {
            read_exact(2, [this] {
                read_exact(byte(1) + 1u, [this] {
                    const std::string user = head.substr(0, head.size() - 1);
                    read_exact(byte(head.size() - 1), [this, user] {
                        const bool ok = user == proxy.socks_user && head == proxy.socks_password;
                        answer(std::string(ok ? "\x01\x00" : "\x01\x01", 2), ok ? std::function<void()>([this] { socks_request(); }) : nullptr);
                    });
                });
            });
        }
        void socks_request() {
            read_exact(4, [this] {
                const std::uint8_t type = byte(3);
                const auto with_port = [this](std::string host) {
                    const auto port = static_cast<std::uint16_t>(byte(head.size() - 2) << 8 | byte(head.size() - 1));
                    proxy.requests.push_back(host + ":" + std::to_string(port));
                    if (proxy.socks_reply != 0)
                        return answer(std::string("\x05") + char(proxy.socks_reply) + std::string("\x00\x01\0\0\0\0\0\0", 8), nullptr);
                    std::error_code ec;
                    auto address = asio::ip::make_address(host, ec);
                    if (ec) address = asio::ip::make_address("127.0.0.1"); // the tests' names are all local
                    up.async_connect({address, port}, [self = shared_from_this()](std::error_code ec2) {
                        if (ec2) return self->end();
                        ++self->proxy.tunnels;
                        self->answer(std::string("\x05\x00\x00\x01\x7f\x00\x00\x01\x00\x00", 10), [self] {
                            self->pump(self->down, self->up, self->from_client, true);
                            self->pump(self->up, self->down, self->from_server, false);
                        });
                    });
                };
                if (type == 0x01) {
                    read_exact(6, [this, with_port] {
                        asio::ip::address_v4::bytes_type b;
                        for (std::size_t i = 0; i < 4; ++i) b[i] = byte(i);
                        with_port(asio::ip::address_v4(b).to_string());
                    });
                } else if (type == 0x04) {
                    read_exact(18, [this, with_port] {
                        asio::ip::address_v6::bytes_type b;
                        for (std::size_t i = 0; i < 16; ++i) b[i] = byte(i);
                        with_port(asio::ip::address_v6(b).to_string());
                    });
                } else if (type == 0x03) {
                    read_exact(1, [this, with_port] {
                        read_exact(byte(0) + 2u, [this, with_port] { with_port(head.substr(0, head.size() - 2)); });
                    });
                } else {
                    end();
                }
            });
        }

        void read_head() {
            down.async_read_some(asio::buffer(from_client), [self = shared_from_this()](std::error_code ec, std::size_t n) {
                if (ec) return;
                self->head.append(self->from_client.data(), n);
                const auto end = self->head.find("\r\n\r\n");
                if (end == std::string::npos) return self->read_head();
                self->proxy.requests.push_back(self->head.substr(0, end + 4));
                if (self->proxy.hang_up) return self->end();
                if (!self->proxy.refusal.empty()) {
                    asio::async_write(self->down, asio::buffer(self->proxy.refusal),
                                      [self](std::error_code, std::size_t) { self->end(); });
                    return;
                }
                self->connect_upstream();
            });
        }
        void connect_upstream() {
            // "CONNECT host:port HTTP/1.1": the authority between the two spaces.
            const std::string& h = head;
            const auto sp1 = h.find(' '), sp2 = h.find(' ', sp1 + 1);
            std::string authority = h.substr(sp1 + 1, sp2 - sp1 - 1);
            const auto colon = authority.rfind(':');
            std::string host = authority.substr(0, colon);
            if (!host.empty() && host.front() == '[') host = host.substr(1, host.size() - 2);
            std::error_code ec;
            const auto address = asio::ip::make_address(host, ec);
            if (ec) return end();
            const asio::ip::tcp::endpoint target(address, static_cast<std::uint16_t>(std::stoi(authority.substr(colon + 1))));
            up.async_connect(target, [self = shared_from_this()](std::error_code ec2) {
                if (ec2) return self->end();
                ++self->proxy.tunnels;
                self->answer(self->proxy.established, [self] {
                    self->pump(self->down, self->up, self->from_client, true);
                    self->pump(self->up, self->down, self->from_server, false);
                });
            });
        }
        void pump(asio::ip::tcp::socket& from, asio::ip::tcp::socket& to, std::array<char, 16384>& buf, bool client_side) {
            from.async_read_some(asio::buffer(buf), [self = shared_from_this(), &from, &to, &buf, client_side](std::error_code ec, std::size_t n) {
                if (ec) return self->end();
                if (client_side && self->proxy.client_bytes.size() < 4096) self->proxy.client_bytes.append(buf.data(), n);
                asio::async_write(to, asio::buffer(buf.data(), n), [self, &from, &to, &buf, client_side](std::error_code ec2, std::size_t) {
                    if (ec2) return self->end();
                    self->pump(from, to, buf, client_side);
                });
            });
        }
        void end() {
            std::error_code ignored;
            down.close(ignored);
            up.close(ignored);
        }
    };
    void accept() {
        acceptor.async_accept([this](std::error_code ec, asio::ip::tcp::socket s) {
            if (ec) return;
            std::make_shared<session>(*this, std::move(s))->start();
            accept();
        });
    }
};

// The 101 that answers the peer's request (Sec-WebSocket-Accept from its key).
std::string switching_protocols(const scripted_peer& p) {
    return "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           "Sec-WebSocket-Accept: " + duplex::accept_key(p.field("Sec-WebSocket-Key")) + "\r\n\r\n";
}

// Listens `s` on ::1, port 0. True when the caller should return: no ::1 here and
// DUPLEX_NO_IPV6=1 says so (a warning, and an assertion, as ctest runs with
// --warn NoAssertions). Without DUPLEX_NO_IPV6=1 a missing ::1 fails the test, as
// "IPv6 loopback" in test_server_tcp.cpp does.
template <class Server>
bool skip_without_ipv6(Server& s) {
    const std::error_code ec = s.listen(0, "::1");
    if (!ec) return false;
    const char* no_ipv6 = std::getenv("DUPLEX_NO_IPV6");
    if (no_ipv6 != nullptr && std::string_view(no_ipv6) == "1") {
        WARN("no IPv6 loopback (listen on [::1]: " << ec.message() << "); skipped as DUPLEX_NO_IPV6=1 asks");
        SUCCEED("skipped");
        return true;
    }
    FAIL("cannot listen on [::1]: " << ec.message() << " (set DUPLEX_NO_IPV6=1 where there is no IPv6)");
    return true;
}

std::string pattern(std::size_t n, bool text) {
    std::string s(n, '\0');
    for (std::size_t i = 0; i < n; ++i) s[i] = text ? static_cast<char>('a' + i % 26) : static_cast<char>(i * 7 + 3);
    return s;
}

} // namespace

TEST_CASE("client: open, round trips of every length class, client-initiated close", "[client]") {
    asio::io_context io;
    duplex::server server(io);
    server_events se;
    echo_and_record(server, se);
    REQUIRE_FALSE(server.listen(0));

    duplex::client client(io);
    events e;
    record(client, e);
    CHECK(client.ready_state() == duplex::ready_state::closed); // nothing started yet
    REQUIRE_FALSE(client.connect(ws_url(server.port(), "/echo?x=1")));
    CHECK(client.ready_state() == duplex::ready_state::connecting);
    CHECK(client.send_text("too early") == duplex::errc::not_open);
    CHECK(client.connect(ws_url(server.port())) == std::errc::operation_in_progress);
    CHECK(client.url() == ws_url(server.port(), "/echo?x=1"));

    REQUIRE(run_until(io, [&] { return e.opens == 1; }));
    CHECK(client.ready_state() == duplex::ready_state::open);
    CHECK(client.subprotocol().empty());

    const std::size_t sizes[] = {0, 1, 125, 126, 127, 65535, 65536, 4 * 1024 * 1024};
    std::vector<std::pair<duplex::opcode, std::string>> sent;
    for (std::size_t n : sizes) {
        sent.emplace_back(duplex::opcode::text, pattern(n, true));
        sent.emplace_back(duplex::opcode::binary, pattern(n, false));
    }
    for (const auto& [op, data] : sent) {
        if (op == duplex::opcode::text) REQUIRE_FALSE(client.send_text(data));
        else REQUIRE_FALSE(client.send_binary(data));
    }
    CHECK(client.buffered_amount() > 8 * 1024 * 1024); // nothing written yet: the loop has not run
    REQUIRE(run_until(io, [&] { return e.messages.size() == sent.size(); }));
    for (std::size_t i = 0; i < sent.size(); ++i) {
        INFO("message " << i << " of " << sent[i].second.size() << " bytes");
        CHECK(e.ops[i] == sent[i].first);
        CHECK(e.messages[i] == sent[i].second); // Catch prints huge strings badly; sizes first
    }
    // A fragmented message and send(message) come back whole.
    REQUIRE_FALSE(client.send_fragment(duplex::opcode::text, "frag", false));
    REQUIRE_FALSE(client.send_fragment(duplex::opcode::continuation, "mented", true));
    REQUIRE_FALSE(client.send(duplex::message{duplex::opcode::binary, "msg", true}));
    REQUIRE(run_until(io, [&] { return e.messages.size() == sent.size() + 2; }));
    CHECK(e.messages[sent.size()] == "fragmented");
    CHECK(e.ops[sent.size() + 1] == duplex::opcode::binary);
    CHECK(e.messages[sent.size() + 1] == "msg");
    CHECK(client.buffered_amount() == 0);

    REQUIRE_FALSE(client.close(1000, "done"));
    CHECK(client.ready_state() == duplex::ready_state::closing);
    CHECK(client.send_text("late") == duplex::errc::closed);
    REQUIRE(run_until(io, [&] { return e.closes == 1 && se.close_codes.size() == 1; }));
    CHECK(e.close_code == 1000); // the server's echo of our close frame
    CHECK(se.close_codes[0] == 1000);
    CHECK(e.errors.empty());
    CHECK(se.errors.empty());
    CHECK(client.ready_state() == duplex::ready_state::closed);
    CHECK(client.close() == duplex::errc::closed);
    CHECK(e.opens == 1);
}

TEST_CASE("client: server-initiated close, then reconnect from on_close", "[client]") {
    asio::io_context io;
    duplex::server server(io);
    server_events se;
    echo_and_record(server, se);
    REQUIRE_FALSE(server.listen(0));

    duplex::client client(io);
    events e;
    record(client, e);
    client.on_open([&] {
        ++e.opens;
        client.send_text("close please");
    });
    client.on_close([&](std::uint16_t code, std::string_view reason) {
        ++e.closes;
        e.close_code = code;
        e.close_reason = std::string(reason);
        if (e.closes == 1) CHECK_FALSE(client.connect(ws_url(server.port())));
    });
    REQUIRE_FALSE(client.connect(ws_url(server.port())));
    REQUIRE(run_until(io, [&] { return e.closes == 2 && se.close_codes.size() == 2; }));
    CHECK(e.opens == 2);
    CHECK(e.close_code == 4001);
    CHECK(e.close_reason == "bye");
    CHECK(se.close_codes == std::vector<std::uint16_t>{4001, 4001});
    CHECK(e.errors.empty());
    CHECK(se.errors.empty());
    CHECK(client.ready_state() == duplex::ready_state::closed);
}

TEST_CASE("client: connect() from on_error waits for on_close; from on_close it reconnects", "[client]") {
    // on_close comes exactly once per successful connect(): a reconnect from on_error must
    // not swallow the on_close of the connection that failed.
    asio::io_context io;
    duplex::server server(io);
    server_events se;
    echo_and_record(server, se);
    REQUIRE_FALSE(server.listen(0));
    std::uint16_t closed_port = 0;
    {
        asio::ip::tcp::acceptor a(io, asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
        closed_port = a.local_endpoint().port();
    }
    duplex::client client(io);
    events e;
    record(client, e);
    std::error_code from_error, from_close;
    client.on_error([&](std::error_code ec) {
        e.errors.push_back(ec);
        from_error = client.connect(ws_url(server.port()));
    });
    client.on_close([&](std::uint16_t code, std::string_view) {
        ++e.closes;
        e.close_code = code;
        if (e.closes == 1) from_close = client.connect(ws_url(server.port()));
    });
    REQUIRE_FALSE(client.connect(ws_url(closed_port)));
    REQUIRE(run_until(io, [&] { return e.opens == 1; }));
    CHECK(from_error == std::errc::operation_in_progress);
    CHECK_FALSE(from_close);
    CHECK(e.closes == 1);
    CHECK(e.close_code == 1006);
    REQUIRE(e.errors.size() == 1);
    CHECK(e.errors[0] == asio::error::connection_refused);
    client.close();
    REQUIRE(run_until(io, [&] { return e.closes == 2; }));
}

TEST_CASE("client: subprotocol negotiation, Origin and extra headers", "[client]") {
    asio::io_context io;
    duplex::server_options so;
    so.subprotocols = {"superchat", "chat"};
    duplex::server server(io, so);
    server_events se;
    echo_and_record(server, se);
    std::string origin, auth;
    server.on_handshake([&](const duplex::http_request& req, duplex::handshake_decision&) {
        origin = std::string(req.origin());
        auth = std::string(req.header("Authorization"));
    });
    REQUIRE_FALSE(server.listen(0));

    SECTION("chat offered, chat chosen") {
        duplex::client client(io);
        events e;
        record(client, e);
        duplex::client_options o;
        o.subprotocols = {"chat"};
        o.origin = "https://app.example";
        o.headers = {{"Authorization", "Bearer t0ken"}};
        REQUIRE_FALSE(client.connect(ws_url(server.port()), o));
        CHECK(client.subprotocol().empty()); // not before the handshake
        REQUIRE(run_until(io, [&] { return e.opens == 1; }));
        CHECK(client.subprotocol() == "chat");
        CHECK(se.subprotocol == "chat");
        CHECK(origin == "https://app.example");
        CHECK(auth == "Bearer t0ken");
        client.close();
        REQUIRE(run_until(io, [&] { return e.closes == 1; }));
        CHECK(e.close_code == 1000);
    }
    SECTION("nothing offered: none chosen") {
        duplex::client client(io);
        events e;
        record(client, e);
        REQUIRE_FALSE(client.connect(ws_url(server.port())));
        REQUIRE(run_until(io, [&] { return e.opens == 1; }));
        CHECK(client.subprotocol().empty());
        CHECK(se.subprotocol.empty());
        CHECK(origin.empty());
        client.close();
        REQUIRE(run_until(io, [&] { return e.closes == 1; }));
    }
    SECTION("no timeouts at all (0 disables them)") {
        duplex::client client(io);
        events e;
        record(client, e);
        duplex::client_options o;
        o.connect_timeout = 0ms;
        o.connection.handshake_timeout = 0ms;
        REQUIRE_FALSE(client.connect(ws_url(server.port()), o));
        REQUIRE(run_until(io, [&] { return e.opens == 1 || e.closes == 1; }));
        CHECK(e.opens == 1);
        CHECK(e.errors.empty());
        client.close();
        REQUIRE(run_until(io, [&] { return e.closes == 1; }));
    }
    SECTION("invalid request options are refused at once") {
        duplex::client client(io);
        duplex::client_options o;
        o.subprotocols = {"not a token"};
        CHECK(client.connect(ws_url(server.port()), o) == std::errc::invalid_argument);
        o.subprotocols = {};
        o.headers = {{"X-Bad", "a\r\nInjected: 1"}};
        CHECK(client.connect(ws_url(server.port()), o) == std::errc::invalid_argument);
        CHECK(client.ready_state() == duplex::ready_state::closed);
    }
}

TEST_CASE("client: failures before the connection opens", "[client]") {
    asio::io_context io;
    duplex::client client(io);
    events e;
    record(client, e);

    SECTION("bad URLs are refused at once, with nothing reported") {
        CHECK(client.connect("http://127.0.0.1/") == duplex::errc::bad_url);
        CHECK(client.connect("ws://user@127.0.0.1/") == duplex::errc::bad_url);
        CHECK_THROWS_AS(client.connect_or_throw("ws://[::1/"), duplex::error);
        CHECK(client.ready_state() == duplex::ready_state::closed);
        io.restart();
        io.run_for(20ms);
        CHECK(e.errors.empty());
        CHECK(e.closes == 0);
    }
    SECTION("closed port: on_error, then on_close(1006)") {
        std::uint16_t port = 0;
        {
            asio::ip::tcp::acceptor a(io, asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
            port = a.local_endpoint().port();
        }
        REQUIRE_FALSE(client.connect(ws_url(port)));
        REQUIRE(run_until(io, [&] { return e.closes == 1; }));
        REQUIRE(e.errors.size() == 1);
        CHECK(e.errors[0] == asio::error::connection_refused);
        CHECK(e.close_code == 1006);
        CHECK(e.opens == 0);
        CHECK(client.ready_state() == duplex::ready_state::closed);
    }
    SECTION("handshake rejected with 403: errc::bad_status") {
        duplex::server server(io);
        server.on_handshake([](const duplex::http_request&, duplex::handshake_decision& d) { d.reject(403, "go away"); });
        REQUIRE_FALSE(server.listen(0));
        REQUIRE_FALSE(client.connect(ws_url(server.port())));
        REQUIRE(run_until(io, [&] { return e.closes == 1; }));
        REQUIRE(e.errors.size() == 1);
        CHECK(e.errors[0] == duplex::errc::bad_status);
        CHECK(e.errors[0] == duplex::condition::handshake_failed);
        CHECK(e.close_code == 1006);
        // The status in on_close's reason, with the standard phrase, not the server's text.
        CHECK(e.close_reason == "HTTP 403 Forbidden");
        CHECK(client.connection_ptr()->response().status == 403);
        CHECK(e.opens == 0);
        CHECK(client.ready_state() == duplex::ready_state::closed);
    }
    SECTION("a status with no standard phrase, and a dropped handshake, in on_close's reason") {
        duplex::server server(io);
        server.on_handshake([](const duplex::http_request&, duplex::handshake_decision& d) { d.reject(499, "x"); });
        REQUIRE_FALSE(server.listen(0));
        REQUIRE_FALSE(client.connect(ws_url(server.port())));
        REQUIRE(run_until(io, [&] { return e.closes == 1; }));
        CHECK(e.close_reason == "HTTP 499");
        // A server that takes the request and closes without answering: no status to tell.
        asio::ip::tcp::acceptor mute(io, asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
        asio::ip::tcp::socket peer(io);
        mute.async_accept(peer, [&](std::error_code) {
            asio::post(io, [&] { peer.close(); });
        });
        REQUIRE_FALSE(client.connect(ws_url(mute.local_endpoint().port())));
        REQUIRE(run_until(io, [&] { return e.closes == 2; }));
        CHECK(e.close_code == 1006);
        CHECK(e.close_reason == "handshake failed");
    }
    SECTION("close() right after connect(): errc::closed, then 1006") {
        duplex::server server(io);
        int server_opens = 0;
        server.on_open([&](auto&) { ++server_opens; });
        REQUIRE_FALSE(server.listen(0));
        REQUIRE_FALSE(client.connect(ws_url(server.port())));
        REQUIRE_FALSE(client.close());
        CHECK(e.closes == 0); // reported later, from the io_context, never inside close()
        REQUIRE(run_until(io, [&] { return e.closes == 1; }));
        REQUIRE(e.errors.size() == 1);
        CHECK(e.errors[0] == duplex::errc::closed);
        CHECK(e.close_code == 1006);
        CHECK(client.ready_state() == duplex::ready_state::closed);
        io.restart();
        io.run_for(50ms);
        CHECK(e.closes == 1);
        CHECK(e.opens == 0);
        CHECK(server_opens == 0);
    }
    SECTION("close() while the server has not answered the handshake") {
        silent_listener silent(io);
        REQUIRE_FALSE(client.connect(ws_url(silent.port())));
        REQUIRE(run_until(io, [&] { return silent.accepted && client.connection_ptr() != nullptr; }));
        CHECK(client.ready_state() == duplex::ready_state::connecting);
        REQUIRE_FALSE(client.close());
        REQUIRE(run_until(io, [&] { return e.closes == 1; }));
        REQUIRE(e.errors.size() == 1);
        CHECK(e.errors[0] == duplex::errc::closed);
        CHECK(e.close_code == 1006);
        CHECK(client.ready_state() == duplex::ready_state::closed);
    }
    SECTION("connect timeout covers the handshake") {
        silent_listener silent(io);
        duplex::client_options o;
        o.connect_timeout = 300ms;
        const auto t0 = std::chrono::steady_clock::now();
        REQUIRE_FALSE(client.connect(ws_url(silent.port()), o));
        REQUIRE(run_until(io, [&] { return e.closes == 1; }));
        const auto took = std::chrono::steady_clock::now() - t0;
        CHECK(took >= 250ms);
        CHECK(took < 3s);
        REQUIRE(e.errors.size() == 1);
        CHECK(e.errors[0] == duplex::errc::handshake_timeout);
        CHECK(e.errors[0] == duplex::condition::timeout);
        CHECK(e.close_code == 1006);
    }
}

// RFC 9110 §15.2: "A client MUST be able to parse one or more 1xx responses
// received prior to a final response, even if the client does not expect one."
TEST_CASE("client: interim 1xx answers before the 101 are read past (RFC 9110 §15.2)", "[client][rfc9110]") {
    asio::io_context io;
    duplex::client client(io);
    events e;
    record(client, e);
    const std::string interim = "HTTP/1.1 100 Continue\r\n\r\n"
                                "HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n";
    const std::string hi = std::string("\x81\x02hi", 4); // a text frame, unmasked (server to client)
    // A peer that answers with chunks() (called once the request came, so that
    // switching_protocols(*peer) has its key); runs until a message or on_close.
    std::unique_ptr<scripted_peer> peer;
    const auto run = [&](std::function<std::vector<std::string>()> chunks) {
        peer = std::make_unique<scripted_peer>(io, [chunks](const std::string&) { return chunks(); });
        REQUIRE_FALSE(client.connect(ws_url(peer->port())));
        REQUIRE(run_until(io, [&] { return e.messages.size() == 1 || e.closes == 1; }));
    };
    const auto opens = [&] {
        CHECK(e.errors.empty());
        CHECK(e.opens == 1);
        CHECK(e.messages == std::vector<std::string>{"hi"});
        CHECK(client.ready_state() == duplex::ready_state::open);
    };
    const auto fails_with = [&](std::vector<std::string> chunks, duplex::errc expected) {
        run([chunks] { return chunks; });
        REQUIRE(e.errors.size() == 1);
        CHECK(e.errors[0] == expected);
        CHECK(e.opens == 0);
    };

    SECTION("two interim answers, the 101 and a frame in one write") {
        run([&] { return std::vector<std::string>{interim + switching_protocols(*peer) + hi}; });
        opens();
    }
    SECTION("the same, one byte per write") {
        run([&] {
            std::vector<std::string> bytes;
            for (char c : interim + switching_protocols(*peer) + hi) bytes.emplace_back(1, c);
            return bytes;
        });
        opens();
    }
    SECTION("an interim answer, then a refusal: errc::bad_status") {
        fails_with({"HTTP/1.1 100 Continue\r\n\r\n", "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n"},
                   duplex::errc::bad_status);
    }
    SECTION("a malformed interim answer: errc::bad_http_response") {
        fails_with({"HTTP/1.1 1x0 Continue\r\n\r\n"}, duplex::errc::bad_http_response);
    }
    SECTION("a bare LF in an answer: errc::bad_http_response, the server's fault") {
        fails_with({"HTTP/1.1 100 Continue\n\n"}, duplex::errc::bad_http_response);
        CHECK(e.errors[0].message() == "malformed HTTP response");
    }
}

// Connects to `address` with `o`, echoes a text and a 70,000-byte message through the
// (proxied) connection, closes with 1000 (the server's close is the first it records).
void echo_through(asio::io_context& io, duplex::client& client, events& e, server_events& se, const std::string& address,
                  const duplex::client_options& o) {
    REQUIRE_FALSE(client.connect(address, o));
    REQUIRE(run_until(io, [&] { return e.opens == 1 || e.closes == 1; }));
    INFO((e.errors.empty() ? std::string("no error") : e.errors[0].message()));
    REQUIRE(e.opens == 1);
    REQUIRE_FALSE(client.send_text("via proxy"));
    REQUIRE_FALSE(client.send_binary(pattern(70000, false)));
    REQUIRE(run_until(io, [&] { return e.messages.size() == 2; }));
    CHECK(e.messages[0] == "via proxy");
    CHECK(e.messages[1] == pattern(70000, false));
    REQUIRE_FALSE(client.close());
    REQUIRE(run_until(io, [&] { return e.closes == 1 && se.close_codes.size() == 1; }));
    CHECK(e.close_code == 1000);
    CHECK(e.errors.empty());
}

// Connects to `address` with `o`; the proxy says no: on_error with `expected` (one error),
// then on_close(1006), and the server never saw the connection.
void fails_through_proxy(asio::io_context& io, duplex::client& client, events& e, const server_events& se,
                         const std::string& address, const duplex::client_options& o, std::error_code expected) {
    REQUIRE_FALSE(client.connect(address, o));
    REQUIRE(run_until(io, [&] { return e.closes == 1; }));
    REQUIRE(e.errors.size() == 1);
    INFO(e.errors[0].message());
    CHECK(e.errors[0] == expected);
    CHECK(e.close_code == 1006);
    CHECK(e.opens == 0);
    CHECK(se.opens == 0);
}

// RFC 9110 §9.3.6: the client asks the proxy for a tunnel with CONNECT host:port; any
// 2xx opens it, and the WebSocket handshake then runs through it unchanged.
TEST_CASE("client: through an HTTP CONNECT proxy (RFC 9110 §9.3.6)", "[client][proxy]") {
    asio::io_context io;
    duplex::server server(io);
    server_events se;
    echo_and_record(server, se);
    std::string host_header;
    server.on_handshake([&](const duplex::http_request& req, duplex::handshake_decision&) {
        host_header = std::string(req.header("Host"));
    });
    REQUIRE_FALSE(server.listen(0));
    const std::string authority = "127.0.0.1:" + std::to_string(server.port());
    test_proxy proxy(io);
    duplex::client client(io);
    events e;
    record(client, e);
    duplex::client_options o;
    o.proxy = proxy.url();

    // Opens through the proxy, echoes a text and a 70,000-byte message, closes with 1000.
    const auto round_trip = [&] {
        echo_through(io, client, e, se, ws_url(server.port(), "/chat"), o);
        CHECK(proxy.tunnels == 1);
        REQUIRE(proxy.requests.size() == 1);
        CHECK(proxy.requests[0].rfind("CONNECT " + authority + " HTTP/1.1\r\n", 0) == 0);
        CHECK(proxy.requests[0].find("\r\nHost: " + authority + "\r\n") != std::string::npos);
        CHECK(host_header == authority); // the upgrade request is the direct one
        CHECK(proxy.client_bytes.rfind("GET /chat HTTP/1.1\r\n", 0) == 0);
    };

    SECTION("ws:// through the tunnel, no credentials") {
        round_trip();
        CHECK(proxy.requests[0].find("Proxy-Authorization") == std::string::npos);
    }
    SECTION("Basic credentials from the URL, percent-decoded, and extra CONNECT fields") {
        o.proxy = "http://al%40ice:p%3Ass%20w@127.0.0.1:" + std::to_string(proxy.port()) + "/";
        o.proxy_headers = {{"X-Trace", "7"}};
        round_trip();
        CHECK(proxy.requests[0].find("\r\nProxy-Authorization: Basic " + duplex::base64_encode("al@ice:p:ss w") + "\r\n") !=
              std::string::npos);
        CHECK(proxy.requests[0].find("\r\nX-Trace: 7\r\n") != std::string::npos);
    }
    SECTION("an interim 100 first, then HTTP/1.0 200 with a Content-Length the client ignores") {
        proxy.established = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.0 200 OK\r\nContent-Length: 10\r\n\r\n";
        round_trip();
    }
    SECTION("the same answers, one byte per write") {
        proxy.established = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.0 200 OK\r\nContent-Length: 10\r\n\r\n";
        proxy.dribble = true;
        round_trip();
    }

    // The proxy says no (or nothing): on_error with why, then on_close(1006).
    const auto refused = [&](std::error_code expected) {
        fails_through_proxy(io, client, e, se, ws_url(server.port()), o, expected);
        CHECK(e.errors[0] == duplex::condition::handshake_failed);
        CHECK(proxy.tunnels == 0);
    };
    SECTION("407: errc::proxy_auth_required") {
        proxy.refusal = "HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"p\"\r\n"
                        "Content-Length: 0\r\n\r\n";
        refused(duplex::errc::proxy_auth_required);
    }
    SECTION("403: errc::proxy_refused") {
        proxy.refusal = "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n";
        refused(duplex::errc::proxy_refused);
    }
    SECTION("the proxy hangs up without an answer: errc::proxy_refused") {
        proxy.hang_up = true;
        refused(duplex::errc::proxy_refused);
    }
    SECTION("bytes behind the 200 before the client spoke: errc::bad_proxy_response") {
        proxy.established = "HTTP/1.1 200 OK\r\n\r\nHTTP/1.1 101 Switching Protocols\r\n\r\n";
        REQUIRE_FALSE(client.connect(ws_url(server.port()), o));
        REQUIRE(run_until(io, [&] { return e.closes == 1; }));
        REQUIRE(e.errors.size() == 1);
        CHECK(e.errors[0] == duplex::errc::bad_proxy_response);
        CHECK(e.opens == 0);
    }
    SECTION("an answer that is not HTTP: errc::bad_proxy_response") {
        proxy.refusal = "SSH-2.0-OpenSSH_9.2\r\n\r\n";
        refused(duplex::errc::bad_proxy_response);
    }
    SECTION("an answer over the header size limit: errc::header_too_large") {
        proxy.refusal = "HTTP/1.1 200 OK\r\nX-Padding: " + std::string(20000, 'a') + "\r\n\r\n";
        REQUIRE_FALSE(client.connect(ws_url(server.port()), o));
        REQUIRE(run_until(io, [&] { return e.closes == 1; }));
        REQUIRE(e.errors.size() == 1);
        CHECK(e.errors[0] == duplex::errc::header_too_large);
        CHECK(e.errors[0].message() == "HTTP header is larger than the limit");
        CHECK(proxy.tunnels == 0);
    }
    SECTION("a proxy that never answers: connect_timeout") {
        silent_listener silent(io);
        o.proxy = "127.0.0.1:" + std::to_string(silent.port()); // the scheme may be left out
        o.connect_timeout = 300ms;
        REQUIRE_FALSE(client.connect(ws_url(server.port()), o));
        REQUIRE(run_until(io, [&] { return e.closes == 1; }));
        CHECK(silent.accepted);
        REQUIRE(e.errors.size() == 1);
        CHECK(e.errors[0] == duplex::errc::handshake_timeout);
    }
    SECTION("what cannot be a proxy is refused by connect() at once") {
        for (const char* bad : {"https://127.0.0.1:3128", "socks4://127.0.0.1:1080", "http://127.0.0.1:3128/path",
                                "http://:3128", "http://127.0.0.1:0", "http://%zz@127.0.0.1:3128", "http://@127.0.0.1"}) {
            INFO(bad);
            o.proxy = bad;
            CHECK(client.connect(ws_url(server.port()), o) == duplex::errc::bad_proxy_url);
        }
        o.proxy = proxy.url();
        o.proxy_headers = {{"X-Bad", "a\r\nInjected: 1"}};
        CHECK(client.connect(ws_url(server.port()), o) == std::errc::invalid_argument);
        io.restart();
        io.run_for(20ms);
        CHECK(e.errors.empty());
        CHECK(e.closes == 0);
        CHECK(proxy.requests.empty());
    }
}

// RFC 1928: greeting, method, (RFC 1929 username/password), CONNECT, reply; then the
// WebSocket handshake runs through the tunnel.
TEST_CASE("client: through a SOCKS5 proxy (RFC 1928, RFC 1929)", "[client][proxy][socks5]") {
    asio::io_context io;
    duplex::server server(io);
    server_events se;
    echo_and_record(server, se);
    REQUIRE_FALSE(server.listen(0));
    const std::string port = std::to_string(server.port());
    test_proxy proxy(io);
    proxy.socks5 = true;
    duplex::client client(io);
    events e;
    record(client, e);
    duplex::client_options o;
    o.proxy = "socks5://127.0.0.1:" + std::to_string(proxy.port());

    SECTION("no authentication; the server's address is sent as an IPv4 address") {
        echo_through(io, client, e, se, ws_url(server.port()), o);
        REQUIRE(proxy.requests.size() == 1);
        CHECK(proxy.requests[0] == "127.0.0.1:" + port);
        CHECK(proxy.tunnels == 1);
        CHECK(proxy.client_bytes.rfind("GET / HTTP/1.1\r\n", 0) == 0);
    }
    SECTION("username/password, percent-decoded; a host name goes to the proxy unresolved") {
        proxy.socks_user = "al@ice";
        proxy.socks_password = "s3 cret";
        o.proxy = "socks5h://al%40ice:s3%20cret@127.0.0.1:" + std::to_string(proxy.port());
        echo_through(io, client, e, se, "ws://localhost:" + port + "/", o);
        REQUIRE(proxy.requests.size() == 1);
        CHECK(proxy.requests[0] == "localhost:" + port); // the proxy resolves it (RFC 1928 §5, type 3)
    }
    SECTION("every answer of the proxy one byte per write") {
        proxy.socks_user = "u";
        proxy.socks_password = "p";
        proxy.dribble = true;
        o.proxy = "socks5://u:p@127.0.0.1:" + std::to_string(proxy.port());
        echo_through(io, client, e, se, ws_url(server.port()), o);
        CHECK(proxy.tunnels == 1);
    }

    const auto refused = [&](std::error_code expected) {
        fails_through_proxy(io, client, e, se, ws_url(server.port()), o, expected);
    };
    SECTION("credentials wanted, none given: errc::proxy_auth_required (method 0xFF)") {
        proxy.socks_user = "u";
        proxy.socks_password = "p";
        refused(duplex::errc::proxy_auth_required);
        CHECK(proxy.requests.empty());
    }
    SECTION("wrong password: errc::proxy_auth_required (RFC 1929 status)") {
        proxy.socks_user = "u";
        proxy.socks_password = "p";
        o.proxy = "socks5://u:wrong@127.0.0.1:" + std::to_string(proxy.port());
        refused(duplex::errc::proxy_auth_required);
        CHECK(proxy.requests.empty());
    }
    SECTION("the proxy's reasons: connection refused (5) as the system error, not allowed (2) as proxy_refused") {
        proxy.socks_reply = 0x05;
        refused(std::make_error_code(std::errc::connection_refused));
        REQUIRE(proxy.requests.size() == 1);
    }
    SECTION("not allowed by the proxy's rules: errc::proxy_refused") {
        proxy.socks_reply = 0x02;
        refused(duplex::errc::proxy_refused);
    }
    SECTION("what a SOCKS5 proxy URL cannot be") {
        for (const char* bad : {"socks4://127.0.0.1:1080", "socks5://user@127.0.0.1:1080", "socks5://:pw@127.0.0.1"}) {
            INFO(bad);
            o.proxy = bad;
            CHECK(client.connect(ws_url(server.port()), o) == duplex::errc::bad_proxy_url);
        }
        o.proxy = "socks5://127.0.0.1:1080";
        CHECK(client.connect("ws://" + std::string(256, 'a') + ":1/", o) == std::errc::invalid_argument); // names up to 255 bytes
    }
}

TEST_CASE("reconnect_delay: doubles from initial_delay up to max_delay, drawn into [half, all]", "[client][reconnect]") {
    duplex::reconnect_options r;
    r.initial_delay = 1000ms;
    r.max_delay = 30000ms;
    const std::uint32_t lowest = 0, highest = 0xffffffffu;
    CHECK(duplex::detail::reconnect_delay(r, 1, lowest) == 500ms);
    CHECK(duplex::detail::reconnect_delay(r, 1, highest) <= 1000ms);
    CHECK(duplex::detail::reconnect_delay(r, 2, lowest) == 1000ms);
    CHECK(duplex::detail::reconnect_delay(r, 5, lowest) == 8000ms);
    CHECK(duplex::detail::reconnect_delay(r, 6, lowest) == 15000ms); // 32 s, capped at 30
    CHECK(duplex::detail::reconnect_delay(r, 1000000, highest) <= 30000ms); // no overflow
    CHECK(duplex::detail::reconnect_delay(r, 1000000, lowest) == 15000ms);
    CHECK(duplex::detail::reconnect_delay(r, 3, 1000) == 2000ms + 1000ms); // 4 s: 2 s + 1000 % 2001 ms
    r.initial_delay = 0ms; // at least 1 ms, and max_delay at least that
    r.max_delay = 0ms;
    CHECK(duplex::detail::reconnect_delay(r, 1, highest) >= 1ms);
    CHECK(duplex::detail::reconnect_delay(r, 7, highest) <= 1ms);
}

TEST_CASE("client: automatic reconnect with backoff (client_options::reconnect)", "[client][reconnect]") {
    asio::io_context io;
    server_events se;
    const auto make_server = [&](std::uint16_t port) {
        auto s = std::make_unique<duplex::server>(io);
        echo_and_record(*s, se);
        REQUIRE_FALSE(s->listen(port));
        return s;
    };
    auto server = make_server(0);
    const std::uint16_t port = server->port();
    duplex::client client(io);
    events e;
    record(client, e);
    std::vector<std::pair<unsigned, std::chrono::milliseconds>> waits; // what on_reconnecting said
    client.on_reconnecting([&](unsigned n, std::chrono::milliseconds d) { waits.emplace_back(n, d); });
    duplex::client_options o;
    o.reconnect.enabled = true;
    o.reconnect.initial_delay = 40ms;
    o.reconnect.max_delay = 100ms;
    const auto open_first = [&] {
        REQUIRE_FALSE(client.connect(ws_url(port), o));
        REQUIRE(run_until(io, [&] { return e.opens == 1; }));
    };
    const auto settle = [&](std::chrono::milliseconds t) {
        io.restart();
        io.run_for(t);
    };

    SECTION("the server goes away: attempts after growing waits, until max_attempts") {
        o.reconnect.max_attempts = 3;
        open_first();
        server->stop(); // 1001 to the client, and the port refuses from now on
        const auto t0 = std::chrono::steady_clock::now();
        REQUIRE(run_until(io, [&] { return e.closes == 4; })); // the connection, then 3 refused attempts
        const auto took = std::chrono::steady_clock::now() - t0;
        settle(300ms);
        CHECK(e.closes == 4); // given up: no 4th attempt
        CHECK(e.opens == 1);
        REQUIRE(waits.size() == 3);
        CHECK(waits[0].first == 1);
        CHECK(waits[1].first == 2);
        CHECK(waits[2].first == 3);
        CHECK((waits[0].second >= 20ms && waits[0].second <= 40ms));  // 40 ms, drawn into [half, all]
        CHECK((waits[1].second >= 40ms && waits[1].second <= 80ms));  // doubled
        CHECK((waits[2].second >= 50ms && waits[2].second <= 100ms)); // capped at max_delay
        CHECK(took >= waits[0].second + waits[1].second + waits[2].second); // each attempt after its wait
        REQUIRE(e.errors.size() == 3);
        for (const auto& ec : e.errors) CHECK(ec == asio::error::connection_refused);
        CHECK(client.ready_state() == duplex::ready_state::closed);
    }
    SECTION("the server comes back on its port: the client reconnects, and the backoff starts over") {
        open_first();
        server->stop();
        REQUIRE(run_until(io, [&] { return waits.size() == 2; })); // one attempt refused, the next one waits
        server = make_server(port);
        REQUIRE(run_until(io, [&] { return e.opens == 2; }));
        REQUIRE_FALSE(client.send_text("back again"));
        REQUIRE(run_until(io, [&] { return e.messages.size() == 1; }));
        CHECK(e.messages[0] == "back again");
        CHECK(client.url() == ws_url(port));
        REQUIRE_FALSE(client.send_text("close please")); // the server closes with 4001
        REQUIRE(run_until(io, [&] { return waits.size() == 3; }));
        CHECK(e.close_code == 4001);
        CHECK(waits[2].first == 1); // counted from 1 again after an open connection
        REQUIRE(run_until(io, [&] { return e.opens == 3; }));
        REQUIRE_FALSE(client.close());
        REQUIRE(run_until(io, [&] { return e.closes == 4; }));
        settle(150ms);
        CHECK(waits.size() == 3);
    }
    SECTION("close(): before the end, no reconnect; during the wait, it stops") {
        open_first();
        REQUIRE_FALSE(client.close());
        REQUIRE(run_until(io, [&] { return e.closes == 1; }));
        settle(150ms);
        CHECK(waits.empty());
        CHECK(e.opens == 1);

        REQUIRE_FALSE(client.connect(ws_url(port), o));
        REQUIRE(run_until(io, [&] { return e.opens == 2; }));
        REQUIRE_FALSE(client.send_text("close please"));
        REQUIRE(run_until(io, [&] { return waits.size() == 1; }));
        CHECK(client.ready_state() == duplex::ready_state::closed);
        CHECK_FALSE(client.close()); // stops the wait
        CHECK(client.close() == duplex::errc::closed); // nothing left to stop
        settle(200ms);
        CHECK(e.opens == 2);
        CHECK(se.opens == 2);
    }
    SECTION("connect() from on_close takes over; close() from on_reconnecting stops") {
        bool again = true;
        client.on_close([&](std::uint16_t, std::string_view) {
            ++e.closes;
            if (again) REQUIRE_FALSE(client.connect(ws_url(port, "/mine"), o));
            again = false;
        });
        open_first();
        REQUIRE_FALSE(client.send_text("close please"));
        REQUIRE(run_until(io, [&] { return e.opens == 2; }));
        CHECK(waits.empty()); // the application's own connect() came first
        CHECK(client.url() == ws_url(port, "/mine"));
        client.on_reconnecting([&](unsigned n, std::chrono::milliseconds d) {
            waits.emplace_back(n, d);
            CHECK_FALSE(client.close());
        });
        REQUIRE_FALSE(client.send_text("close please"));
        REQUIRE(run_until(io, [&] { return waits.size() == 1; }));
        settle(200ms);
        CHECK(e.opens == 2);
    }
    SECTION("destroying the client during the wait: nothing more is reported, io.run() returns") {
        o.reconnect.initial_delay = 20s; // a wait the destructor must cancel
        o.reconnect.max_delay = 20s;
        auto c = std::make_unique<duplex::client>(io);
        events ce;
        record(*c, ce);
        c->on_reconnecting([&](unsigned n, std::chrono::milliseconds d) { waits.emplace_back(n, d); });
        REQUIRE_FALSE(c->connect(ws_url(port), o));
        REQUIRE(run_until(io, [&] { return ce.opens == 1; }));
        REQUIRE_FALSE(c->send_text("close please"));
        REQUIRE(run_until(io, [&] { return waits.size() == 1; }));
        c.reset();
        server->stop();
        const auto t0 = std::chrono::steady_clock::now();
        io.restart();
        io.run_for(10s); // returns as soon as nothing is left to do
        CHECK(std::chrono::steady_clock::now() - t0 < 5s);
        CHECK(ce.opens == 1);
        CHECK(ce.closes == 1);
    }
}

// RFC 6455 §4.1: "the server might redirect the client using a 3xx status code (but
// clients are not required to follow them)". Browsers do not; with max_redirects the
// client does, within the same connect().
TEST_CASE("client: redirects, followed up to client_options::max_redirects (RFC 6455 §4.1)", "[client][redirect]") {
    asio::io_context io;
    // The server redirected to: echoes, closes on "bye", keeps what each request carried.
    duplex::server final_server(io);
    std::vector<std::string> final_seen; // "path|Authorization|X-Trace"
    final_server.on_handshake([&](const duplex::http_request& req, duplex::handshake_decision&) {
        final_seen.push_back(std::string(req.path()) + "|" + std::string(req.header("Authorization")) + "|" +
                             std::string(req.header("X-Trace")));
    });
    final_server.on_message([](auto& c, const duplex::message& m) {
        if (m.is_text() && m.text() == "bye") c.close(4001, "bye");
        else c.send(m);
    });
    REQUIRE_FALSE(final_server.listen(0));
    const std::string final_url = ws_url(final_server.port(), "/final");
    // The first server redirects, by path (duplex's own refusals carry the Location).
    duplex::server first(io);
    std::vector<std::string> first_seen; // "path|Authorization"
    first.on_handshake([&](const duplex::http_request& req, duplex::handshake_decision& d) {
        const std::string path(req.path());
        first_seen.push_back(path + "|" + std::string(req.header("Authorization")));
        const auto redirect = [&d](int status, std::string location) {
            d.reject(status);
            d.headers.emplace_back("Location", std::move(location));
        };
        if (path == "/old") redirect(301, "/new"); // the same origin: Authorization goes along
        else if (path == "/new") redirect(308, "http://127.0.0.1:" + std::to_string(final_server.port()) + "/final");
        else if (path == "/loop") redirect(302, "/loop");
        else if (path == "/ftp") redirect(307, "ftp://127.0.0.1/x");
        else if (path == "/nowhere") d.reject(302); // no Location
        else if (path == "/denied") d.reject(403);
    });
    REQUIRE_FALSE(first.listen(0));
    const auto first_url = [&](const std::string& path) { return ws_url(first.port(), path); };

    duplex::client client(io);
    events e;
    record(client, e);
    duplex::client_options o;
    o.headers = {{"Authorization", "Bearer s3cret"}, {"X-Trace", "t1"}};
    // Connects to `url`, which must fail with `expected` (one on_error, then on_close 1006).
    const auto fails = [&](const std::string& url, duplex::errc expected) {
        e = events{};
        REQUIRE_FALSE(client.connect(url, o));
        REQUIRE(run_until(io, [&] { return e.closes == 1; }));
        REQUIRE(e.errors.size() == 1);
        INFO(url << ": " << e.errors[0].message());
        CHECK(e.errors[0] == expected);
        CHECK(e.close_code == 1006);
        CHECK(e.opens == 0);
    };

    SECTION("by default, as browsers: a redirect fails with bad_status, and the answer can be read") {
        fails(first_url("/old"), duplex::errc::bad_status);
        const auto c = client.connection_ptr();
        REQUIRE(c);
        CHECK(c->response().status == 301);
        CHECK(c->response().header("Location") == "/new");
        CHECK(first_seen.size() == 1);
        CHECK(final_seen.empty());
    }
    SECTION("two hops, then open: nothing reported but on_open; credentials stay with their origin") {
        o.max_redirects = 2;
        REQUIRE_FALSE(client.connect(first_url("/old"), o));
        CHECK(client.ready_state() == duplex::ready_state::connecting);
        REQUIRE(run_until(io, [&] { return e.opens == 1 || e.closes == 1; }));
        CHECK(e.errors.empty());
        REQUIRE(e.opens == 1);
        CHECK(client.url() == final_url);
        CHECK(first_seen == std::vector<std::string>{"/old|Bearer s3cret", "/new|Bearer s3cret"});
        CHECK(final_seen == std::vector<std::string>{"/final||t1"}); // another port: no Authorization
        REQUIRE_FALSE(client.send_text("after two redirects"));
        REQUIRE(run_until(io, [&] { return e.messages.size() == 1; }));
        CHECK(e.messages[0] == "after two redirects");
        REQUIRE_FALSE(client.close());
        REQUIRE(run_until(io, [&] { return e.closes == 1; }));
        CHECK(e.close_code == 1000);
        CHECK(e.errors.empty());
    }
    SECTION("a reconnect starts again from the URL given to connect()") {
        o.max_redirects = 2;
        o.reconnect.enabled = true;
        o.reconnect.initial_delay = 20ms;
        o.reconnect.max_attempts = 1;
        REQUIRE_FALSE(client.connect(first_url("/old"), o));
        REQUIRE(run_until(io, [&] { return e.opens == 1; }));
        REQUIRE_FALSE(client.send_text("bye")); // the server closes: not our close(), so it reconnects
        REQUIRE(run_until(io, [&] { return e.opens == 2; }));
        CHECK(e.close_code == 4001);
        CHECK(first_seen.size() == 4); // /old and /new, twice
        CHECK(final_seen.size() == 2);
        CHECK(client.url() == final_url);
        client.close();
        REQUIRE(run_until(io, [&] { return e.closes == 2; }));
    }
    SECTION("past max_redirects: errc::too_many_redirects") {
        o.max_redirects = 3;
        fails(first_url("/loop"), duplex::errc::too_many_redirects);
        CHECK(first_seen.size() == 4); // the first request, then 3 redirects followed
        o.max_redirects = 1;
        fails(first_url("/old"), duplex::errc::too_many_redirects); // /old -> /new -> (a second one)
        CHECK(final_seen.empty());
    }
    SECTION("a Location that is missing or no ws(s)/http(s) URL: errc::bad_redirect") {
        o.max_redirects = 5;
        fails(first_url("/ftp"), duplex::errc::bad_redirect);
        fails(first_url("/nowhere"), duplex::errc::bad_redirect);
    }
    SECTION("a refusal that is not a redirect stays errc::bad_status") {
        o.max_redirects = 5;
        fails(first_url("/denied"), duplex::errc::bad_status);
        CHECK(client.connection_ptr()->response().status == 403);
    }
    SECTION("close() while a redirect is followed: on_error(closed), on_close 1006, nothing opens") {
        o.max_redirects = 2;
        REQUIRE_FALSE(client.connect(first_url("/old"), o));
        REQUIRE(run_until(io, [&] { return first_seen.size() == 2; })); // the second hop's request came
        REQUIRE_FALSE(client.close());
        REQUIRE(run_until(io, [&] { return e.closes == 1; }));
        REQUIRE(e.errors.size() == 1);
        CHECK(e.errors[0] == duplex::errc::closed);
        CHECK(e.opens == 0);
        run_until(io, [] { return false; }, 100ms);
        CHECK(final_seen.empty());
        CHECK(e.closes == 1);
    }
}

// close() may come from any thread, also just as a reconnect wait ends. Whatever the
// timing, once it returned no new attempt may start: the server, which refuses every
// upgrade, sees at most the one already under way. Each round closes at another moment
// of a 1 ms backoff loop; a reconnect that slipped past close() would go on for ever.
TEST_CASE("client: close() from another thread stops reconnecting, whenever it comes", "[client][reconnect][threads]") {
    asio::io_context server_io;
    duplex::server server(server_io);
    std::atomic<int> handshakes{0};
    server.on_handshake([&](const duplex::http_request&, duplex::handshake_decision& d) {
        ++handshakes;
        d.reject(503);
    });
    REQUIRE_FALSE(server.listen(0));
    std::thread server_thread([&] { server_io.run_for(30s); });
    duplex::client_options o;
    o.reconnect.enabled = true;
    o.reconnect.initial_delay = 1ms;
    o.reconnect.max_delay = 1ms;
    for (int round = 0; round < 40; ++round) {
        INFO("round " << round);
        asio::io_context io;
        auto work = asio::make_work_guard(io);
        duplex::client client(io);
        std::atomic<int> reconnect_waits{0};
        client.on_reconnecting([&](unsigned, std::chrono::milliseconds) { ++reconnect_waits; });
        REQUIRE_FALSE(client.connect(ws_url(server.port()), o));
        std::thread io_thread([&] { io.run_for(5s); });
        const auto until = std::chrono::steady_clock::now() + 5s;
        while (reconnect_waits < 1 + round % 4 && std::chrono::steady_clock::now() < until) std::this_thread::yield();
        std::this_thread::sleep_for(std::chrono::microseconds(37 * round % 1000)); // somewhere in a cycle
        client.close();
        const int after_close = handshakes;
        std::this_thread::sleep_for(30ms); // 30 cycles of the loop, had it gone on
        CHECK(handshakes - after_close <= 1);
        work.reset();
        io.stop();
        io_thread.join();
    }
    asio::post(server_io, [&] { server.stop(); });
    server_thread.join();
}

TEST_CASE("client: destroying the client closes with 1001 and silences its handlers", "[client]") {
    asio::io_context io;
    duplex::server server(io);
    server_events se;
    echo_and_record(server, se);
    REQUIRE_FALSE(server.listen(0));

    events e;
    auto client = std::make_unique<duplex::client>(io);
    record(*client, e);
    REQUIRE_FALSE(client->connect(ws_url(server.port())));
    REQUIRE(run_until(io, [&] { return e.opens == 1; }));
    client.reset();
    REQUIRE(run_until(io, [&] { return se.close_codes.size() == 1; }));
    CHECK(se.close_codes[0] == 1001);
    io.restart();
    io.run_for(50ms);
    CHECK(e.closes == 0);
    CHECK(e.errors.empty());

    SECTION("also while connecting") {
        events e2;
        auto c2 = std::make_unique<duplex::client>(io);
        record(*c2, e2);
        REQUIRE_FALSE(c2->connect(ws_url(server.port())));
        c2.reset();
        io.restart();
        io.run_for(100ms);
        CHECK(e2.opens == 0);
        CHECK(e2.closes == 0);
        CHECK(e2.errors.empty());
    }
}

TEST_CASE("client: on_message may destroy the client or replace itself while it runs", "[client]") {
    // The handler's captures must outlive its own call (ASan catches a use after free).
    asio::io_context io;
    duplex::server server(io);
    server_events se;
    echo_and_record(server, se);
    REQUIRE_FALSE(server.listen(0));

    SECTION("it destroys the client") {
        auto client = std::make_unique<duplex::client>(io);
        std::string seen;
        std::string big_capture(64, 'x'); // stored outside the std::function's small buffer
        client->on_open([&] { client->send_text("bye"); });
        client->on_message([&client, &seen, big_capture](const duplex::message& m) {
            client.reset();
            seen = std::string(m.text()) + big_capture.substr(0, 1); // after the reset
        });
        REQUIRE_FALSE(client->connect(ws_url(server.port())));
        REQUIRE(run_until(io, [&] { return !seen.empty(); }));
        CHECK(seen == "byex");
        REQUIRE(run_until(io, [&] { return se.close_codes.size() == 1; }));
        CHECK(se.close_codes[0] == 1001);
    }
    SECTION("it replaces itself") {
        duplex::client client(io);
        std::vector<std::string> seen;
        std::string tag(64, 'a');
        client.on_open([&] { client.send_text("one"); });
        client.on_message([&client, &seen, tag](const duplex::message& m) {
            client.on_message([&seen](const duplex::message& m2) { seen.push_back("second:" + m2.str()); });
            seen.push_back("first:" + m.str() + tag.substr(0, 1)); // after the replacement
            client.send_text("two");
        });
        REQUIRE_FALSE(client.connect(ws_url(server.port())));
        REQUIRE(run_until(io, [&] { return seen.size() == 2; }));
        CHECK(seen == std::vector<std::string>{"first:onea", "second:two"});
        client.close();
        REQUIRE(run_until(io, [&] { return client.ready_state() == duplex::ready_state::closed; }));
    }
}

TEST_CASE("client: close() refuses a code that may not be sent, also before the connection exists",
          "[client][rfc6455][7.4]") {
    asio::io_context io;
    duplex::server server(io);
    server_events se;
    echo_and_record(server, se);
    REQUIRE_FALSE(server.listen(0));
    duplex::client client(io);
    events e;
    record(client, e);
    REQUIRE_FALSE(client.connect(ws_url(server.port())));
    CHECK(client.close(999) == duplex::errc::bad_close_code); // before TCP is up
    CHECK(client.close(1006) == duplex::errc::bad_close_code);
    REQUIRE(run_until(io, [&] { return e.opens == 1; })); // the refused close() changed nothing
    CHECK(client.close(999) == duplex::errc::bad_close_code);
    CHECK(client.ready_state() == duplex::ready_state::open);
    CHECK_FALSE(client.close(4000, "done"));
    REQUIRE(run_until(io, [&] { return e.closes == 1; }));
    REQUIRE(se.close_codes.size() == 1);
    CHECK(se.close_codes[0] == 4000);
}

TEST_CASE("client: a bracketed IPv6 URL reaches a server listening on ::1", "[client][ipv6]") {
    asio::io_context io;
    duplex::server server(io);
    server_events se;
    echo_and_record(server, se);
    std::string host_header;
    server.on_handshake([&](const duplex::http_request& req, duplex::handshake_decision&) {
        host_header = std::string(req.header("Host"));
    });
    if (skip_without_ipv6(server)) return;
    const std::string port = std::to_string(server.port());
    const std::string address = "ws://[::1]:" + port + "/v6?q=1";

    duplex::client client(io);
    events e;
    record(client, e);
    REQUIRE_FALSE(client.connect(address));
    CHECK(client.url() == address); // brackets kept in the normal form
    REQUIRE(run_until(io, [&] { return e.opens == 1 || e.closes == 1; }));
    INFO((e.errors.empty() ? std::string("no error") : e.errors[0].message()));
    REQUIRE(e.opens == 1);
    CHECK(host_header == "[::1]:" + port); // RFC 3986 §3.2.2: an IPv6 literal in brackets
    std::error_code ec;
    const auto peer = client.connection_ptr()->transport().socket().remote_endpoint(ec);
    REQUIRE_FALSE(ec);
    CHECK(peer.address() == asio::ip::make_address("::1"));
    CHECK(peer.port() == server.port());

    REQUIRE_FALSE(client.send_text("over v6"));
    REQUIRE_FALSE(client.send_binary(pattern(70000, false)));
    REQUIRE(run_until(io, [&] { return e.messages.size() == 2; }));
    CHECK(e.ops[0] == duplex::opcode::text);
    CHECK(e.messages[0] == "over v6");
    CHECK(e.ops[1] == duplex::opcode::binary);
    CHECK(e.messages[1] == pattern(70000, false));
    REQUIRE_FALSE(client.close());
    REQUIRE(run_until(io, [&] { return e.closes == 1 && se.close_codes.size() == 1; }));
    CHECK(e.close_code == 1000);
    CHECK(se.close_codes[0] == 1000);
    CHECK(e.errors.empty());
    CHECK(se.errors.empty());
}

#ifdef DUPLEX_HAS_TLS

namespace {

using duplex_test::certs;
using duplex_test::test_certs;
using duplex_test::trusting;

std::string wss_url(const std::string& host, std::uint16_t port) {
    return "wss://" + host + ":" + std::to_string(port) + "/";
}

// Connects, echoes one text and one binary message, closes with 1000. With
// `tls_version`, stores the TLS version negotiated (TLS1_2_VERSION...).
void check_round_trip(asio::io_context& io, const std::string& address, duplex::client_options o,
                      server_events& se, int* tls_version = nullptr) {
    duplex::client client(io);
    events e;
    record(client, e);
    const std::size_t closes_before = se.close_codes.size();
    REQUIRE_FALSE(client.connect(address, o));
    REQUIRE(run_until(io, [&] { return e.opens == 1 || e.closes == 1; }));
    INFO((e.errors.empty() ? std::string("no error") : e.errors[0].message()));
    REQUIRE(e.opens == 1);
    if (tls_version != nullptr) {
        duplex::tls_transport* tls = client.connection_ptr()->transport().tls();
        REQUIRE(tls != nullptr);
        *tls_version = SSL_version(tls->stream().native_handle());
    }
    REQUIRE_FALSE(client.send_text("over tls"));
    REQUIRE_FALSE(client.send_binary(pattern(100000, false)));
    REQUIRE(run_until(io, [&] { return e.messages.size() == 2; }));
    CHECK(e.messages[0] == "over tls");
    CHECK(e.messages[1] == pattern(100000, false));
    REQUIRE_FALSE(client.close());
    REQUIRE(run_until(io, [&] { return e.closes == 1 && se.close_codes.size() == closes_before + 1; }));
    CHECK(e.close_code == 1000);
    CHECK(se.close_codes.back() == 1000);
    CHECK(e.errors.empty()); // a TCP cut after the close handshake is not an error
}

// A client context that speaks only `version` (TLS1_VERSION, TLS1_1_VERSION...). At
// security level 0, so that OpenSSL 3 itself allows TLS 1.0/1.1 (SHA-1 signatures) and
// a refusal comes from the server; the minimum is set too, over any system default.
std::shared_ptr<asio::ssl::context> client_speaking_only(int version) {
    auto ctx = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_client);
    SSL_CTX_set_security_level(ctx->native_handle(), 0);
    REQUIRE(SSL_CTX_set_min_proto_version(ctx->native_handle(), version) == 1);
    REQUIRE(SSL_CTX_set_max_proto_version(ctx->native_handle(), version) == 1);
    return ctx;
}

const char* tls_name(int version) {
    switch (version) {
    case TLS1_VERSION: return "TLS 1.0";
    case TLS1_1_VERSION: return "TLS 1.1";
    case TLS1_2_VERSION: return "TLS 1.2";
    case TLS1_3_VERSION: return "TLS 1.3";
    default: return "?";
    }
}

// The SNI host names a TLS server received (RFC 6066 §3), one entry per ClientHello:
// the name, or no_sni when the ClientHello had none. Set on the server's context with
// log_sni(); OpenSSL calls the servername callback for every ClientHello.
constexpr const char* no_sni = "<no SNI>";
struct sni_log {
    std::vector<std::string> names;
};

int record_sni(SSL* ssl, int*, void* arg) {
    const char* name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    static_cast<sni_log*>(arg)->names.emplace_back(name != nullptr ? name : no_sni);
    return SSL_TLSEXT_ERR_OK;
}

void log_sni(asio::ssl::context& server_ctx, sni_log& log) {
    SSL_CTX_set_tlsext_servername_callback(server_ctx.native_handle(), record_sni);
    SSL_CTX_set_tlsext_servername_arg(server_ctx.native_handle(), &log);
}

} // namespace

TEST_CASE("client: wss:// against a duplex TLS server with a self-signed certificate", "[client][tls]") {
    const test_certs& tc = certs();
    asio::io_context io;
    auto server_ctx = std::make_shared<asio::ssl::context>(duplex::make_server_tls_context(tc.cert, tc.key));
    duplex::tls_server server(io, {}, duplex::tls_accept(server_ctx));
    server_events se;
    echo_and_record(server, se);
    REQUIRE_FALSE(server.listen(0));

    SECTION("verification on, certificate not trusted: a clear verification error") {
        duplex::client client(io);
        events e;
        record(client, e);
        REQUIRE_FALSE(client.connect(wss_url("127.0.0.1", server.port())));
        REQUIRE(run_until(io, [&] { return e.closes == 1; }));
        REQUIRE(e.errors.size() == 1);
        INFO(e.errors[0].message());
        CHECK(e.errors[0].category() == asio::error::get_ssl_category());
        CHECK(e.errors[0].message().find("certificate verify failed") != std::string::npos);
        CHECK(e.close_code == 1006);
        CHECK(e.close_reason == "TLS: self-signed certificate"); // which check failed, in OpenSSL's words
        CHECK(e.opens == 0);
        CHECK(se.opens == 0);
        // The server learns why from the client's alert (RFC 8446 §6.2).
        REQUIRE(run_until(io, [&] { return !server.stats().handshake_failures.empty(); }));
        const auto failures = server.stats().handshake_failures;
        REQUIRE(failures.size() == 1);
        INFO(failures.begin()->first);
        CHECK(failures.begin()->first.find("alert unknown ca") != std::string::npos);
    }
    SECTION("the certificate trusted through a custom context: works, by IP and by name") {
        duplex::client_options o;
        o.tls_context = trusting(tc.cert);
        check_round_trip(io, wss_url("127.0.0.1", server.port()), o, se);
        check_round_trip(io, wss_url("localhost", server.port()), o, se); // ::1 refused, then 127.0.0.1
        CHECK(se.errors.empty());
    }
    SECTION("insecure_no_verify: works with any certificate") {
        duplex::client_options o;
        o.verify = duplex::tls_verify::insecure_no_verify;
        check_round_trip(io, wss_url("127.0.0.1", server.port()), o, se);
        CHECK(se.errors.empty());
    }
    SECTION("insecure_no_verify and a refused upgrade: the reason is the HTTP status, not the unchecked certificate") {
        server.on_handshake([](const duplex::http_request&, duplex::handshake_decision& d) { d.reject(403); });
        duplex::client client(io);
        events e;
        record(client, e);
        duplex::client_options o;
        o.verify = duplex::tls_verify::insecure_no_verify;
        REQUIRE_FALSE(client.connect(wss_url("127.0.0.1", server.port()), o));
        REQUIRE(run_until(io, [&] { return e.closes == 1; }));
        CHECK(e.close_reason == "HTTP 403 Forbidden");
        CHECK(client.connection_ptr()->transport().verify_error().empty());
    }
    SECTION("an address with a zone cannot be checked against a certificate: refused, not unchecked") {
        asio::ip::tcp::socket s(io);
        duplex::tls_transport t(std::move(s), trusting(tc.cert));
        CHECK(t.set_client_host("fe80::1%1", duplex::tls_verify::peer));
        CHECK_FALSE(t.set_client_host("127.0.0.1", duplex::tls_verify::peer));
        CHECK_FALSE(t.set_client_host("localhost", duplex::tls_verify::peer));
    }
    SECTION("a TLS server survives garbage instead of a ClientHello and keeps serving") {
        asio::ip::tcp::socket raw(io);
        raw.connect(asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), server.port()));
        const std::string garbage = "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\n";
        asio::write(raw, asio::buffer(garbage));
        char buf[512];
        std::error_code read_ec;
        bool ended = false;
        std::function<void()> read_more = [&] {
            raw.async_read_some(asio::buffer(buf), [&](std::error_code ec, std::size_t) {
                if (ec) {
                    read_ec = ec;
                    ended = true;
                } else {
                    read_more(); // a TLS alert may come first
                }
            });
        };
        read_more();
        REQUIRE(run_until(io, [&] { return ended; }));
        CHECK((read_ec == asio::error::eof || read_ec == asio::error::connection_reset));
        CHECK(se.opens == 0);

        duplex::client_options o;
        o.verify = duplex::tls_verify::insecure_no_verify;
        check_round_trip(io, wss_url("127.0.0.1", server.port()), o, se);
        REQUIRE(run_until(io, [&] { return server.connection_count() == 0; }));
    }
    SECTION("ws:// to a TLS server fails, and so does wss:// to a plain server") {
        duplex::client client(io);
        events e;
        record(client, e);
        duplex::client_options o;
        o.connect_timeout = 3s;
        REQUIRE_FALSE(client.connect(ws_url(server.port()), o));
        REQUIRE(run_until(io, [&] { return e.closes == 1; }));
        CHECK(e.errors.size() == 1);
        CHECK(e.close_code == 1006);
        CHECK(e.opens == 0);

        duplex::server plain(io);
        REQUIRE_FALSE(plain.listen(0));
        duplex::client c2(io);
        events e2;
        record(c2, e2);
        o.verify = duplex::tls_verify::insecure_no_verify;
        REQUIRE_FALSE(c2.connect(wss_url("127.0.0.1", plain.port()), o));
        REQUIRE(run_until(io, [&] { return e2.closes == 1; }));
        REQUIRE(e2.errors.size() == 1);
        CHECK(e2.errors[0].category() == asio::error::get_ssl_category());
        CHECK(e2.close_code == 1006);
    }
}

// wss:// through a proxy: TLS runs end to end, so the proxy relays only ciphertext.
TEST_CASE("client: wss:// through an HTTP CONNECT proxy, TLS end to end", "[client][tls][proxy]") {
    const test_certs& tc = certs();
    asio::io_context io;
    auto server_ctx = std::make_shared<asio::ssl::context>(duplex::make_server_tls_context(tc.cert, tc.key));
    duplex::tls_server server(io, {}, duplex::tls_accept(server_ctx));
    server_events se;
    echo_and_record(server, se);
    REQUIRE_FALSE(server.listen(0));
    test_proxy proxy(io);
    duplex::client_options o;
    o.tls_context = trusting(tc.cert); // and the certificate is checked for 127.0.0.1
    o.proxy = proxy.url();
    check_round_trip(io, wss_url("127.0.0.1", server.port()), o, se);
    CHECK(proxy.tunnels == 1);
    REQUIRE(proxy.requests.size() == 1);
    CHECK(proxy.requests[0].rfind("CONNECT 127.0.0.1:" + std::to_string(server.port()) + " HTTP/1.1\r\n", 0) == 0);
    REQUIRE(proxy.client_bytes.size() > 5);
    CHECK(proxy.client_bytes[0] == 0x16); // a TLS handshake record (the ClientHello), not "GET"
    CHECK(proxy.client_bytes.find("Sec-WebSocket-Key") == std::string::npos);
    CHECK(se.errors.empty());
}

TEST_CASE("client: wss:// host name verification", "[client][tls]") {
    const test_certs& tc = certs();
    asio::io_context io;
    // The server presents a certificate for other.example; the client trusts it as a CA
    // but connects to 127.0.0.1, which the certificate does not name.
    auto server_ctx = std::make_shared<asio::ssl::context>(duplex::make_server_tls_context(tc.other_cert, tc.other_key));
    duplex::tls_server server(io, {}, duplex::tls_accept(server_ctx));
    server_events se;
    echo_and_record(server, se);
    REQUIRE_FALSE(server.listen(0));

    duplex::client client(io);
    events e;
    record(client, e);
    duplex::client_options o;
    o.tls_context = trusting(tc.other_cert);
    REQUIRE_FALSE(client.connect(wss_url("127.0.0.1", server.port()), o));
    REQUIRE(run_until(io, [&] { return e.closes == 1; }));
    REQUIRE(e.errors.size() == 1);
    INFO(e.errors[0].message());
    CHECK(e.errors[0].message().find("certificate verify failed") != std::string::npos);
    CHECK(e.opens == 0);
    CHECK(e.close_code == 1006);
    CHECK(e.close_reason == "TLS: IP address mismatch");
    CHECK(client.connection_ptr()->transport().verify_error() == "IP address mismatch");
    // By name: localhost is not other.example either.
    duplex::client named(io);
    events by_name;
    record(named, by_name);
    REQUIRE_FALSE(named.connect(wss_url("localhost", server.port()), o));
    REQUIRE(run_until(io, [&] { return by_name.closes == 1; }));
    CHECK(by_name.close_reason == "TLS: hostname mismatch");
    // The server is told with a bad_certificate alert (asio's host_name_verification callback
    // refused without a verify result of its own: OpenSSL then sent internal_error).
    REQUIRE(run_until(io, [&] {
        const auto f = server.stats().handshake_failures;
        return !f.empty() && f.begin()->second == 2; // by address, then by name
    }));
    const auto failures = server.stats().handshake_failures;
    CHECK(failures.size() == 1);
    INFO(failures.begin()->first);
    CHECK(failures.begin()->first.find("alert bad certificate") != std::string::npos);

    // The same trust with verification off connects: the failure above was the name.
    duplex::client_options insecure = o;
    insecure.verify = duplex::tls_verify::insecure_no_verify;
    check_round_trip(io, wss_url("127.0.0.1", server.port()), insecure, se);
}

TEST_CASE("a TLS server refuses TLS 1.0 and 1.1 clients: TLS 1.2 minimum (RFC 8996)",
          "[server][tls][security][rfc6455][10.6]") {
    const int version = GENERATE(TLS1_VERSION, TLS1_1_VERSION);
    CAPTURE(tls_name(version));
    const test_certs& tc = certs();
    asio::io_context io;
    duplex::client_options o;
    o.verify = duplex::tls_verify::insecure_no_verify;
    o.tls_context = client_speaking_only(version);

    // Control: a server context that still allows old versions accepts this client,
    // so the client really speaks `version` here and the refusal below is the server's.
    {
        auto lax = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_server);
        SSL_CTX_set_security_level(lax->native_handle(), 0);
        REQUIRE(SSL_CTX_set_min_proto_version(lax->native_handle(), TLS1_VERSION) == 1);
        lax->use_certificate_chain_file(tc.cert);
        lax->use_private_key_file(tc.key, asio::ssl::context::pem);
        duplex::tls_server lax_server(io, {}, duplex::tls_accept(lax));
        server_events lax_events;
        echo_and_record(lax_server, lax_events);
        REQUIRE_FALSE(lax_server.listen(0));
        int negotiated = 0;
        check_round_trip(io, wss_url("127.0.0.1", lax_server.port()), o, lax_events, &negotiated);
        CHECK(tls_name(negotiated) == std::string(tls_name(version)));
    }

    auto server_ctx = std::make_shared<asio::ssl::context>(duplex::make_server_tls_context(tc.cert, tc.key));
    duplex::tls_server server(io, {}, duplex::tls_accept(server_ctx));
    server_events se;
    echo_and_record(server, se);
    REQUIRE_FALSE(server.listen(0));
    duplex::client client(io);
    events e;
    record(client, e);
    REQUIRE_FALSE(client.connect(wss_url("127.0.0.1", server.port()), o));
    REQUIRE(run_until(io, [&] { return e.closes == 1; }));
    CHECK(e.opens == 0);
    CHECK(e.close_code == 1006);
    REQUIRE(e.errors.size() == 1);
    INFO("client: " << e.errors[0].message());
    CHECK(e.errors[0].category() == asio::error::get_ssl_category());
    // The server refused it in the TLS handshake: counted, never opened.
    REQUIRE(run_until(io, [&] { return !server.stats().handshake_failures.empty(); }));
    const auto failures = server.stats().handshake_failures;
    REQUIRE(failures.size() == 1);
    INFO("server: " << failures.begin()->first);
    CHECK(failures.begin()->first.find("unsupported protocol") != std::string::npos);
    CHECK(failures.begin()->second == 1);
    CHECK(se.opens == 0);
}

TEST_CASE("a TLS-1.2-only client connects to a TLS server", "[server][tls][security][rfc6455][10.6]") {
    const test_certs& tc = certs();
    asio::io_context io;
    auto server_ctx = std::make_shared<asio::ssl::context>(duplex::make_server_tls_context(tc.cert, tc.key));
    duplex::tls_server server(io, {}, duplex::tls_accept(server_ctx));
    server_events se;
    echo_and_record(server, se);
    REQUIRE_FALSE(server.listen(0));
    duplex::client_options o;
    o.tls_context = client_speaking_only(TLS1_2_VERSION);
    o.tls_context->load_verify_file(tc.cert);
    int negotiated = 0;
    check_round_trip(io, wss_url("127.0.0.1", server.port()), o, se, &negotiated);
    CHECK(tls_name(negotiated) == std::string("TLS 1.2"));
    CHECK(se.opens == 1);
    CHECK(se.errors.empty());
    CHECK(server.stats().handshake_failures.empty());
}

TEST_CASE("client: wss:// sends the host name as SNI", "[client][tls][sni]") {
    const test_certs& tc = certs();
    asio::io_context io;
    auto server_ctx = std::make_shared<asio::ssl::context>(duplex::make_server_tls_context(tc.cert, tc.key));
    sni_log sni;
    log_sni(*server_ctx, sni);
    duplex::tls_server server(io, {}, duplex::tls_accept(server_ctx));
    server_events se;
    echo_and_record(server, se);
    REQUIRE_FALSE(server.listen(0));

    SECTION("default options: SNI goes out though the certificate is then not trusted") {
        duplex::client client(io);
        events e;
        record(client, e);
        REQUIRE_FALSE(client.connect(wss_url("localhost", server.port())));
        REQUIRE(run_until(io, [&] { return e.closes == 1; }));
        REQUIRE(e.errors.size() == 1);
        INFO(e.errors[0].message());
        CHECK(e.errors[0].message().find("certificate verify failed") != std::string::npos);
        CHECK(sni.names == std::vector<std::string>{"localhost"});
    }
    SECTION("a trusted certificate: SNI localhost and the connection works") {
        duplex::client_options o;
        o.tls_context = trusting(tc.cert);
        check_round_trip(io, wss_url("localhost", server.port()), o, se);
        CHECK(sni.names == std::vector<std::string>{"localhost"});
        // The URL's host is lower-cased, so is the SNI name.
        check_round_trip(io, wss_url("LocalHost", server.port()), o, se);
        CHECK(sni.names == std::vector<std::string>{"localhost", "localhost"});
    }
    SECTION("insecure_no_verify sends SNI too") {
        duplex::client_options o;
        o.verify = duplex::tls_verify::insecure_no_verify;
        check_round_trip(io, wss_url("localhost", server.port()), o, se);
        CHECK(sni.names == std::vector<std::string>{"localhost"});
    }
    CHECK(se.errors.empty());
}

// RFC 6066 §3: "Literal IPv4 and IPv6 addresses are not permitted in HostName."
TEST_CASE("client: wss:// to an IP literal sends no SNI", "[client][tls][sni]") {
    const test_certs& tc = certs();
    asio::io_context io;
    auto server_ctx = std::make_shared<asio::ssl::context>(duplex::make_server_tls_context(tc.cert, tc.key));
    sni_log sni;
    log_sni(*server_ctx, sni);
    duplex::tls_server server(io, {}, duplex::tls_accept(server_ctx));
    server_events se;
    echo_and_record(server, se);

    SECTION("IPv4: 127.0.0.1, verified against the certificate's IP subjectAltName") {
        REQUIRE_FALSE(server.listen(0));
        duplex::client_options o;
        o.tls_context = trusting(tc.cert);
        check_round_trip(io, wss_url("127.0.0.1", server.port()), o, se);
        CHECK(sni.names == std::vector<std::string>{no_sni});
    }
    SECTION("IPv6: [::1]") {
        if (skip_without_ipv6(server)) return;
        duplex::client_options o;
        o.verify = duplex::tls_verify::insecure_no_verify; // the certificate names no ::1
        check_round_trip(io, wss_url("[::1]", server.port()), o, se);
        CHECK(sni.names == std::vector<std::string>{no_sni});
    }
    CHECK(se.errors.empty());
}

#endif // DUPLEX_HAS_TLS

// ---- connection attempts over several addresses (RFC 8305 §4-5) ----------------

namespace {

// A port on 127.0.0.1 that drops SYNs: a listener with a full accept queue
// (Linux drops a SYN then rather than refusing it), as a broken route would.
struct blackhole {
    asio::ip::tcp::acceptor acceptor;
    std::vector<std::unique_ptr<asio::ip::tcp::socket>> queued;
    explicit blackhole(asio::io_context& io) : acceptor(io) {
        const asio::ip::tcp::endpoint any(asio::ip::make_address("127.0.0.1"), 0);
        acceptor.open(any.protocol());
        acceptor.bind(any);
        acceptor.listen(0); // a queue of one
        // Fill the queue: connect until one attempt stays pending.
        for (int i = 0; i < 8; ++i) {
            auto s = std::make_unique<asio::ip::tcp::socket>(io);
            auto done = std::make_shared<bool>(false); // the last one completes (aborted) later
            s->async_connect(endpoint(), [done](std::error_code) { *done = true; });
            const bool connected = run_until(io, [&] { return *done; }, 300ms);
            queued.push_back(std::move(s));
            if (!connected) return;
        }
    }
    asio::ip::tcp::endpoint endpoint() const { return acceptor.local_endpoint(); }
    bool dropping() const { return !queued.empty() && queued.size() < 8; }
};

// Whether the blackhole works on this kernel; if not, the case says so and cannot run.
bool can_run(const blackhole& hole) {
    if (hole.dropping()) return true;
    WARN("this kernel does not drop SYNs on a full accept queue; the case cannot run");
    return false;
}

// A port that refuses at once (nothing listens on it any more).
asio::ip::tcp::endpoint refused_endpoint(asio::io_context& io) {
    asio::ip::tcp::acceptor a(io, asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    return a.local_endpoint();
}

struct race_result {
    bool called = false;
    std::error_code ec;
    asio::ip::tcp::endpoint peer;
};

std::shared_ptr<duplex::detail::connect_race> start_race(asio::io_context& io,
                                                         std::vector<asio::ip::tcp::endpoint> endpoints,
                                                         std::chrono::milliseconds delay, race_result& r) {
    auto race = std::make_shared<duplex::detail::connect_race>(
        io.get_executor(), std::move(endpoints), delay, [&r](std::error_code ec, asio::ip::tcp::socket s) {
            r.called = true;
            r.ec = ec;
            std::error_code ignored;
            if (!ec) r.peer = s.remote_endpoint(ignored);
        });
    race->start();
    return race;
}

} // namespace

TEST_CASE("connect race: families alternate, each in resolver order (RFC 8305 §4)", "[client][rfc8305]") {
    using ep = asio::ip::tcp::endpoint;
    const auto v4a = ep(asio::ip::make_address("192.0.2.1"), 1), v4b = ep(asio::ip::make_address("192.0.2.2"), 1);
    const auto v6a = ep(asio::ip::make_address("2001:db8::1"), 1), v6b = ep(asio::ip::make_address("2001:db8::2"), 1),
               v6c = ep(asio::ip::make_address("2001:db8::3"), 1);
    CHECK(duplex::detail::interleave_families({v6a, v6b, v6c, v4a, v4b}) ==
          std::vector<ep>{v6a, v4a, v6b, v4b, v6c});
    CHECK(duplex::detail::interleave_families({v4a, v6a, v6b}) == std::vector<ep>{v4a, v6a, v6b});
    CHECK(duplex::detail::interleave_families({v4b, v4a}) == std::vector<ep>{v4b, v4a});
    CHECK(duplex::detail::interleave_families({}).empty());
}

TEST_CASE("connect race: an address that drops SYNs costs the attempt delay, not the timeout",
          "[client][rfc8305]") {
    asio::io_context io;
    blackhole hole(io);
    if (!can_run(hole)) return;
    asio::ip::tcp::acceptor good(io, asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));

    SECTION("the next address starts after the delay and wins") {
        race_result r;
        const auto t0 = std::chrono::steady_clock::now();
        auto race = start_race(io, {hole.endpoint(), good.local_endpoint()}, 100ms, r);
        REQUIRE(run_until(io, [&] { return r.called; }, 5s));
        CHECK_FALSE(r.ec);
        CHECK(r.peer == good.local_endpoint());
        CHECK(race->attempts() == 2);
        CHECK(std::chrono::steady_clock::now() - t0 >= 100ms); // not before the delay
    }
    SECTION("with no delay, attempts are sequential: the second waits for the first") {
        race_result r;
        auto race = start_race(io, {hole.endpoint(), good.local_endpoint()}, 0ms, r);
        CHECK_FALSE(run_until(io, [&] { return r.called; }, 700ms)); // the SYN is still unanswered
        CHECK(race->attempts() == 1);
        race->cancel();
        CHECK_FALSE(run_until(io, [&] { return r.called; }, 100ms)); // cancel(): never called
    }
    SECTION("cancel() stops pending attempts, and the handler never runs") {
        race_result r;
        auto race = start_race(io, {hole.endpoint(), hole.endpoint()}, 50ms, r);
        REQUIRE(run_until(io, [&] { return race->attempts() == 2; }, 2s));
        race->cancel();
        CHECK_FALSE(run_until(io, [&] { return r.called; }, 300ms));
        CHECK(race.use_count() == 1); // no operation holds it any more
    }
}

TEST_CASE("connect race: an attempt delay under 10 ms counts as 10 ms (RFC 8305 §5)", "[client][rfc8305]") {
    asio::io_context io;
    blackhole hole(io);
    if (!can_run(hole)) return;
    asio::ip::tcp::acceptor good(io, asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    race_result r;
    const auto t0 = std::chrono::steady_clock::now();
    auto race = start_race(io, {hole.endpoint(), good.local_endpoint()}, 1ms, r);
    REQUIRE(run_until(io, [&] { return r.called; }, 5s));
    CHECK_FALSE(r.ec);
    CHECK(std::chrono::steady_clock::now() - t0 >= 10ms);
}

TEST_CASE("connect race: a refused address starts the next at once; all refused reports the error",
          "[client][rfc8305]") {
    asio::io_context io;
    asio::ip::tcp::acceptor good(io, asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    const auto refused = refused_endpoint(io);
    {
        race_result r;
        auto race = start_race(io, {refused, good.local_endpoint()}, 10s, r); // the delay never runs out
        REQUIRE(run_until(io, [&] { return r.called; }, 5s));
        CHECK_FALSE(r.ec);
        CHECK(r.peer == good.local_endpoint());
        CHECK(race->attempts() == 2);
    }
    {
        race_result r;
        auto race = start_race(io, {refused, refused}, 10s, r);
        REQUIRE(run_until(io, [&] { return r.called; }, 5s));
        CHECK(r.ec == asio::error::connection_refused);
        CHECK(race->attempts() == 2);
    }
}

TEST_CASE("client: a connection made through the attempts to \"localhost\" (smoke test)", "[client][rfc8305]") {
    // "localhost" commonly resolves to ::1 and 127.0.0.1; a server on 127.0.0.1
    // only is reached either way (::1 refuses at once).
    asio::io_context io;
    duplex::server server(io);
    server_events se;
    echo_and_record(server, se);
    REQUIRE_FALSE(server.listen(0, "127.0.0.1"));
    duplex::client_options o;
    o.connect_attempt_delay = 100ms;
    duplex::client client(io);
    events e;
    record(client, e);
    REQUIRE_FALSE(client.connect("ws://localhost:" + std::to_string(server.port()) + "/", o));
    REQUIRE(run_until(io, [&] { return e.opens == 1 || e.closes == 1; }));
    INFO((e.errors.empty() ? std::string("no error") : e.errors[0].message()));
    REQUIRE(e.opens == 1);
    REQUIRE_FALSE(client.close());
    REQUIRE(run_until(io, [&] { return e.closes == 1; }));
}

TEST_CASE("client: connect_timeout, close() and destruction while TCP attempts are pending", "[client][rfc8305]") {
    // Attempts that never get an answer are stopped by each way of ending the
    // connect; under ASan's leak checker, nothing of them may stay behind.
    asio::io_context io;
    blackhole hole(io);
    if (!can_run(hole)) return;
    const std::string url = "ws://127.0.0.1:" + std::to_string(hole.endpoint().port()) + "/";
    SECTION("connect_timeout fires mid-race: handshake_timeout, then 1006") {
        duplex::client_options o;
        o.connect_timeout = 300ms;
        duplex::client client(io);
        events e;
        record(client, e);
        REQUIRE_FALSE(client.connect(url, o));
        REQUIRE(run_until(io, [&] { return e.closes == 1; }, 5s));
        REQUIRE(e.errors.size() == 1);
        CHECK(e.errors[0] == duplex::errc::handshake_timeout);
        CHECK(e.close_code == 1006);
        CHECK(e.opens == 0);
    }
    SECTION("close() mid-race") {
        duplex::client client(io);
        events e;
        record(client, e);
        REQUIRE_FALSE(client.connect(url));
        run_until(io, [] { return false; }, 200ms); // resolved, the SYN sent and unanswered
        REQUIRE_FALSE(client.close());
        REQUIRE(run_until(io, [&] { return e.closes == 1; }, 5s));
        CHECK(e.close_code == 1006);
        CHECK(e.opens == 0);
    }
    SECTION("the client destroyed mid-race") {
        events e;
        {
            duplex::client client(io);
            record(client, e);
            REQUIRE_FALSE(client.connect(url));
            run_until(io, [] { return false; }, 200ms);
        }
        run_until(io, [] { return false; }, 200ms); // the posted abandon() runs and stops the attempt
        CHECK(e.closes == 0); // its handlers are silenced
    }
    SECTION("the client and then its io_context destroyed mid-race, nothing run in between") {
        // What is left (the attempt, its race, their sockets) is freed with the
        // io_context's pending handlers; a cycle between them would leak, which
        // ASan's leak checker reports when the test binary exits.
        events e;
        {
            asio::io_context other;
            auto client = std::make_unique<duplex::client>(other);
            record(*client, e);
            REQUIRE_FALSE(client->connect(url));
            run_until(other, [] { return false; }, 200ms);
            client.reset(); // posts abandon() to `other`, which never runs it
        }
        CHECK(e.closes == 0);
    }
}
