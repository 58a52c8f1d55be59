// docs/server.md: server options and hooks: subprotocols, allowed origins, a handshake
// check, plain HTTP on the same port, the connection limit (503); a server behind a load
// balancer (the PROXY protocol). Exits 0 when every request got the expected answer.
#include <duplex/client.hpp>
#include <duplex/server.hpp>

#include <asio/read.hpp>
#include <asio/read_until.hpp>
#include <asio/write.hpp>

#include <cstdio>
#include <future>
#include <optional>
#include <string>
#include <thread>

int main() {
    asio::io_context io; // the server's, run by its own thread below
    std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work(io.get_executor());

    // [options]
    duplex::server_options options;
    options.max_connections = 1;                         // the next one gets 503
    options.subprotocols = {"chat.v2", "chat.v1"};       // ours, in order of preference
    options.allowed_origins = {"https://example.com"};   // others get 403
    options.connection.max_message_size = 64 * 1024;     // see connection_options
    duplex::server server(io, options);

    server.on_handshake([](const duplex::http_request& req, duplex::handshake_decision& d) {
        if (req.path() != "/chat") d.reject(404, "no such endpoint\n");
        else if (req.query_param("token") != "let me in") d.reject(401, "token missing or wrong\n"); // "?token=let+me+in"
        d.headers.emplace_back("X-Server", "duplex-docs");
    });
    server.on_http([](const duplex::http_request& req, duplex::http_reply& reply) {
        if (req.path() == "/health") reply.body = "ok\n";
        else reply.status = 404;
    });
    server.on_message([](duplex::server::connection& c, const duplex::message& m) { c.send(m); });
    // [options]
    if (auto ec = server.listen(0)) return std::fprintf(stderr, "listen: %s\n", ec.message().c_str()), 1;
    const std::uint16_t port = server.port();
    std::thread server_thread([&] { io.run_for(std::chrono::seconds(20)); });

    int failures = 0;
    const auto expect = [&](bool ok, const std::string& what) {
        std::printf("%s %s\n", ok ? "ok  " : "FAIL", what.c_str());
        failures += !ok;
    };

    // Plain HTTP on the same port.
    {
        asio::io_context cio;
        asio::ip::tcp::socket s(cio);
        s.connect({asio::ip::make_address("127.0.0.1"), port});
        asio::write(s, asio::buffer(std::string("GET /health HTTP/1.1\r\nHost: x\r\n\r\n")));
        std::string response;
        std::error_code ec;
        asio::read(s, asio::dynamic_buffer(response), ec); // the server closes after answering
        expect(response.rfind("HTTP/1.1 200", 0) == 0 && response.find("\r\n\r\nok\n") != std::string::npos,
               "GET /health: 200 ok");
    }

    // WebSocket clients on their own io_context, on this thread.
    asio::io_context cio;
    const auto run_until = [&](auto done) {
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
        while (!done() && std::chrono::steady_clock::now() < deadline) {
            if (cio.stopped()) cio.restart(); // it stops whenever it runs out of work
            cio.run_one_for(std::chrono::milliseconds(50));
        }
    };
    const std::string url = "ws://127.0.0.1:" + std::to_string(port);

    duplex::client_options good;
    good.origin = "https://example.com";
    good.subprotocols = {"chat.v1"};
    duplex::client first(cio);
    bool opened = false;
    first.on_open([&] { opened = true; });
    if (first.connect(url + "/chat?token=let+me+in", good)) return 1;
    run_until([&] { return opened; });
    expect(opened && first.subprotocol() == "chat.v1", "origin allowed, subprotocol chat.v1 agreed");

    std::string refusal;
    const auto refused = [&](const std::string& target, const duplex::client_options& o) {
        duplex::client c(cio);
        std::error_code error;
        bool closed = false;
        c.on_error([&](std::error_code ec) { error = ec; });
        c.on_close([&](std::uint16_t, std::string_view reason) {
            closed = true;
            refusal = reason; // "HTTP 401 Unauthorized": the status the server answered
        });
        if (auto ec = c.connect(url + target, o)) return ec;
        run_until([&] { return closed; });
        return error;
    };
    // The limit counts connections at once: `first` is still open.
    std::error_code ec = refused("/chat?token=let+me+in", good);
    expect(ec == duplex::errc::bad_status && refusal == "HTTP 503 Service Unavailable",
           "second connection: not 101 (" + refusal + ")");

    first.close();
    run_until([&] { return server.connection_count() == 0; });
    duplex::client_options evil = good;
    evil.origin = "https://evil.example";
    ec = refused("/chat?token=let+me+in", evil);
    expect(ec == duplex::errc::bad_status && refusal == "HTTP 403 Forbidden", "origin not allowed: " + refusal);
    ec = refused("/chat?token=guess", good);
    expect(ec == duplex::errc::bad_status && refusal == "HTTP 401 Unauthorized", "wrong token: " + refusal);
    ec = refused("/elsewhere", good);
    expect(ec == duplex::errc::bad_status && refusal == "HTTP 404 Not Found",
           "on_handshake rejected /elsewhere: " + refusal + ": " + ec.message());

    // [proxy_protocol]
    duplex::server_options behind;
    behind.proxy_protocol = true; // only the balancer can reach this port
    duplex::server balanced(io, behind);
    std::promise<std::string> client_address;
    balanced.on_open([&](duplex::server::connection& c) { client_address.set_value(c.remote_address()); });
    // [proxy_protocol]
    if (auto e = balanced.listen(0)) return std::fprintf(stderr, "listen: %s\n", e.message().c_str()), 1;
    {
        // What HAProxy's `send-proxy` writes first, then the client's own bytes.
        asio::ip::tcp::socket s(cio);
        s.connect({asio::ip::make_address("127.0.0.1"), balanced.port()});
        asio::write(s, asio::buffer(std::string(
                           "PROXY TCP4 203.0.113.7 192.0.2.10 51000 443\r\n"
                           "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                           "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")));
        std::string response;
        std::error_code e;
        asio::read_until(s, asio::dynamic_buffer(response), "\r\n\r\n", e);
        auto address = client_address.get_future();
        const bool in_time = address.wait_for(std::chrono::seconds(5)) == std::future_status::ready;
        expect(response.rfind("HTTP/1.1 101", 0) == 0 && in_time && address.get() == "203.0.113.7:51000",
               "behind a balancer: remote_address() is the client it names");
    }
    balanced.stop();

    server.stop();
    work.reset();
    server_thread.join();
    return failures == 0 ? 0 : 1;
}
