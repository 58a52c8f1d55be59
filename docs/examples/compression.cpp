// docs/compression.md: permessage-deflate (RFC 7692) between a duplex server and a duplex
// client. Checks that both ends negotiated it, that a 1 MiB repetitive text message comes
// back intact, that its payload crossed the wire compressed both ways (the connections'
// bytes_in counters count received payload bytes as they were on the wire), that the
// inflated size is held to max_message_size (1009), and, with a peer written by hand,
// the server's Sec-WebSocket-Extensions answer and the close codes for bad frames (1007,
// 1002). Needs duplex built with zlib (DUPLEX_HAS_DEFLATE). Exits 0 when every check passes.
#include <duplex/client.hpp>
#include <duplex/server.hpp>

#include <asio/read.hpp>
#include <asio/write.hpp>

#include <cstdio>
#include <functional>
#include <memory>
#include <string>

using namespace std::chrono_literals;

int main() {
#ifndef DUPLEX_HAS_DEFLATE
    // Without zlib the code below still compiles, but the deflate options are ignored:
    // no offer, no compression, deflate_enabled() false.
    std::puts("duplex was built without zlib (DUPLEX_HAS_DEFLATE): skipped");
    return 77;
#endif
    asio::io_context io; // server, clients and the hand-written peer: one thread
    int failures = 0;
    const auto expect = [&](bool ok, const std::string& what) {
        std::printf("%s %s\n", ok ? "ok  " : "FAIL", what.c_str());
        failures += !ok;
    };
    const auto run_until = [&](const std::function<bool()>& done) {
        const auto deadline = std::chrono::steady_clock::now() + 5s;
        while (!done() && std::chrono::steady_clock::now() < deadline) {
            if (io.stopped()) io.restart(); // it stops whenever it runs out of work
            io.run_one_for(50ms);
        }
        return done();
    };

    // [server]
    duplex::server_options options;
    options.connection.deflate.enabled = true;              // accept offers (off by default)
    options.connection.deflate.server_max_window_bits = 12; // our compressor: a 4 KiB window
    options.connection.deflate.threshold = 256;             // shorter messages go uncompressed
    options.connection.max_message_size = 2 * 1024 * 1024;  // applies to the inflated size
    duplex::server server(io, options);
    bool server_deflate = false;
    duplex::deflate_params server_agreed;
    server.on_open([&](duplex::server::connection& c) {
        server_deflate = c.protocol().deflate_enabled();      // agreed in the handshake
        server_agreed = c.protocol().deflate_parameters();    // window bits, context takeover
    });
    server.on_message([](duplex::server::connection& c, const duplex::message& m) { c.send(m); });
    // [server]
    if (auto ec = server.listen(0)) return std::fprintf(stderr, "listen: %s\n", ec.message().c_str()), 1;
    const std::string url = "ws://127.0.0.1:" + std::to_string(server.port()) + "/";

    std::string text; // 1 MiB of JSON lines: repetitive, as real traffic often is
    for (int i = 0; text.size() < 1024 * 1024; ++i)
        text += "{\"id\":" + std::to_string(i) + ",\"status\":\"ok\",\"tags\":[\"alpha\",\"beta\"]}\n";

    // [client]
    duplex::client_options copts;
    copts.connection.deflate.enabled = true;                    // offer permessage-deflate
    copts.connection.deflate.client_no_context_takeover = true; // reset our compressor per message
    duplex::client ws(io);
    bool client_deflate = false, echoed = false;
    duplex::deflate_params client_agreed;
    std::uint64_t wire_in = 0; // compressed payload bytes of the echo
    ws.on_open([&] {
        if (auto c = ws.connection_ptr()) {
            client_deflate = c->protocol().deflate_enabled();
            client_agreed = c->protocol().deflate_parameters();
        }
        ws.send_text(text); // compressed: it is over the threshold
    });
    ws.on_message([&](const duplex::message& m) {
        echoed = m.is_text() && m.data == text;
        if (auto c = ws.connection_ptr()) wire_in = c->stats().bytes_in; // payload bytes as on the wire
        ws.close();
    });
    ws.connect_or_throw(url, copts);
    // [client]
    run_until([&] { return ws.ready_state() == duplex::ready_state::closed; });
    const std::uint64_t server_wire_in = server.stats().traffic.bytes_in; // the client's message
    expect(server_deflate && client_deflate, "permessage-deflate negotiated on both ends");
    expect(server_agreed == client_agreed && client_agreed.client_no_context_takeover &&
               client_agreed.server_max_window_bits == 12,
           "both ends agree: client_no_context_takeover, server_max_window_bits=12");
    expect(echoed, "1 MiB text message echoed intact");
    std::printf("     %zu bytes of text; payload on the wire: %llu to the server, %llu back\n", text.size(),
                static_cast<unsigned long long>(server_wire_in), static_cast<unsigned long long>(wire_in));
    expect(server_wire_in > 0 && server_wire_in < text.size() && wire_in > 0 && wire_in < text.size(),
           "fewer payload bytes on the wire than in the message, both ways");

    // [bomb]
    // 8 MiB of one letter deflate to a few KiB; the server stops inflating at 2 MiB.
    duplex::client bomb(io);
    std::uint16_t bomb_code = 0;
    bomb.on_open([&] { bomb.send_text(std::string(8 * 1024 * 1024, 'a')); });
    bomb.on_close([&](std::uint16_t code, std::string_view) { bomb_code = code; });
    bomb.connect_or_throw(url, copts);
    // [bomb]
    run_until([&] { return bomb_code != 0; });
    expect(bomb_code == duplex::close_code::message_too_big, "8 MiB inflated over a 2 MiB limit: " +
                                                                 std::to_string(bomb_code));

    // A peer written by hand: the upgrade request with `extensions`, then `frame` (masked
    // with a zero key); returns everything the server sends until it closes TCP.
    const auto raw = [&](const std::string& extensions, const std::string& frame) {
        auto s = std::make_shared<asio::ip::tcp::socket>(io);
        auto in = std::make_shared<std::string>();
        auto out = std::make_shared<std::string>(
            "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n" +
            extensions + "\r\n" + frame);
        auto done = std::make_shared<bool>(false);
        s->connect({asio::ip::make_address("127.0.0.1"), server.port()});
        asio::async_write(*s, asio::buffer(*out), [s, in, out, done](std::error_code ec, std::size_t) {
            if (ec) return void(*done = true);
            asio::async_read(*s, asio::dynamic_buffer(*in), [s, in, done](std::error_code, std::size_t) { *done = true; });
        });
        run_until([&] { return *done; });
        s->close();
        return *in;
    };
    const auto close_code_of = [](const std::string& in) { // the close frame after the 101 head
        const std::size_t f = in.find("\r\n\r\n") + 4;
        if (f < 4 || in.size() < f + 4 || static_cast<unsigned char>(in[f]) != 0x88) return 0;
        return static_cast<unsigned char>(in[f + 2]) << 8 | static_cast<unsigned char>(in[f + 3]);
    };
    const std::string bad_data = std::string("\xc1\x81\0\0\0\0\xff", 7); // FIN RSV1 text; "\xff" does not inflate
    const std::string rsv1_ping = std::string("\xc9\x80\0\0\0\0", 6);    // FIN RSV1 ping

    // [answer]
    const std::string offer = duplex::make_offer(copts.connection.deflate); // what ws sent
    const std::string reply = raw("Sec-WebSocket-Extensions: " + offer + "\r\n", bad_data);
    const std::size_t at = reply.find("Sec-WebSocket-Extensions: ");
    const std::string answer = at == std::string::npos ? "" : reply.substr(at + 26, reply.find("\r\n", at) - at - 26);
    std::printf("offer:  %s\nanswer: %s\n", offer.c_str(), answer.c_str());
    // [answer]
    expect(offer == "permessage-deflate; client_no_context_takeover; client_max_window_bits", "the client's offer");
    expect(answer == "permessage-deflate; client_no_context_takeover; server_max_window_bits=12", "the server's answer");
    expect(close_code_of(reply) == duplex::close_code::invalid_payload, "data that does not inflate: 1007");
    expect(close_code_of(raw("", bad_data)) == duplex::close_code::protocol_error, "RSV1 without the extension: 1002");
    expect(close_code_of(raw("Sec-WebSocket-Extensions: " + offer + "\r\n", rsv1_ping)) ==
               duplex::close_code::protocol_error,
           "RSV1 on a ping, with the extension: 1002");

    server.stop();
    run_until([&] { return server.connection_count() == 0; });
    return failures == 0 ? 0 : 1;
}
