// docs/client.md: duplex::client, shaped like the browser's WebSocket: options,
// the four handlers, and how a failed connection is reported. Exits 0 on success.
#include <duplex/client.hpp>
#include <duplex/server.hpp>

#include <cstdio>
#include <string>

int main() {
    asio::io_context io;
    duplex::server server(io);
    server.on_handshake([](const duplex::http_request& req, duplex::handshake_decision& d) {
        if (req.header("Authorization") != "Bearer secret") d.reject(401);
    });
    server.on_message([](duplex::server::connection& c, const duplex::message& m) { c.send(m); });
    if (server.listen(0)) return 1;
    const std::string url = "ws://127.0.0.1:" + std::to_string(server.port()) + "/";
    int checks = 0;
    int closes = 0;
    const auto closed = [&] { if (++closes == 2) server.stop(); };

    // [client]
    duplex::client ws(io);
    duplex::client_options options;
    options.headers = {{"Authorization", "Bearer secret"}};
    options.subprotocols = {"echo"};                     // the server chose none: subprotocol() is ""
    options.connect_timeout = std::chrono::seconds(5);   // resolve + TCP + TLS + handshake
    options.connection.ping_interval = std::chrono::seconds(10);

    ws.on_open([&] {
        ws.send_text("hello");
        ws.send_binary(std::string("\x01\x02", 2));
    });
    ws.on_message([&](const duplex::message& m) {
        std::printf("%s message of %zu bytes\n", m.is_text() ? "text" : "binary", m.data.size());
        if (m.is_binary()) ws.close(duplex::close_code::normal, "bye");
    });
    ws.on_error([](std::error_code ec) { std::printf("error: %s\n", ec.message().c_str()); });
    ws.on_close([&](std::uint16_t code, std::string_view) {
        std::printf("closed with %u\n", code); // 1000: both close frames went across
        checks += code == duplex::close_code::normal;
        closed();
    });
    if (auto ec = ws.connect(url, options)) return std::fprintf(stderr, "connect: %s\n", ec.message().c_str()), 1;
    // [client]

    // [errors]
    // Some errors come back from connect() at once; nothing else happens then.
    duplex::client bad(io);
    checks += bad.connect("http://127.0.0.1/") == duplex::errc::bad_url;
    // Everything later goes to on_error, then on_close with 1006.
    duplex::client refused(io);
    refused.on_error([&](std::error_code ec) {
        std::printf("refused: %s\n", ec.message().c_str()); // 401: errc::bad_status
        checks += ec == duplex::errc::bad_status;
    });
    refused.on_close([&](std::uint16_t code, std::string_view reason) {
        std::printf("refused closed with %u (%.*s)\n", code, int(reason.size()), reason.data());
        checks += code == duplex::close_code::abnormal && reason == "HTTP 401 Unauthorized";
        closed();
    });
    refused.connect_or_throw(url); // no Authorization header
    // [errors]

    // [proxy]
    duplex::client_options through_proxy;
    through_proxy.proxy = "http://user:secret@proxy.example:3128"; // CONNECT, Basic credentials
    // ws.connect(url, through_proxy) then works as a direct connect() does; a proxy that
    // says no is errc::proxy_auth_required (407) or errc::proxy_refused, in on_error.
    duplex::client socks(io);
    through_proxy.proxy = "socks4://127.0.0.1:1080"; // HTTP and SOCKS5 only: refused at once
    checks += socks.connect(url, through_proxy) == duplex::errc::bad_proxy_url;
    // [proxy]

    // [reconnect]
    duplex::client_options keep_trying;
    keep_trying.reconnect.enabled = true;                      // off by default
    keep_trying.reconnect.initial_delay = std::chrono::seconds(1);
    keep_trying.reconnect.max_delay = std::chrono::seconds(30);
    keep_trying.reconnect.max_attempts = 0;                    // 0: keep trying
    duplex::client resilient(io);
    resilient.on_reconnecting([](unsigned attempt, std::chrono::milliseconds delay) {
        std::printf("reconnect attempt %u in %lld ms\n", attempt, static_cast<long long>(delay.count()));
    });
    // resilient.connect(url, keep_trying) would now keep a connection up by itself.
    // [reconnect]

    io.run_for(std::chrono::seconds(5));
    return checks == 5 ? 0 : 1;
}
