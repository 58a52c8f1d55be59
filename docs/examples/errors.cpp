// docs/errors.md: duplex's error codes, their conditions, close codes and HTTP
// statuses, the throwing overloads, and one error live (a message over the limit).
#include <duplex/client.hpp>
#include <duplex/server.hpp>

#include <cstdio>
#include <string>

int main() {
    int failures = 0;
    const auto expect = [&](bool ok, const char* what) {
        std::printf("%s %s\n", ok ? "ok  " : "FAIL", what);
        failures += !ok;
    };

    // [codes]
    std::error_code ec = duplex::errc::message_too_big;                  // a std::error_code
    expect(ec.category().name() == std::string("duplex"), "category \"duplex\"");
    expect(ec == duplex::condition::protocol_violation, "message_too_big is a protocol violation");
    expect(duplex::close_code_for(duplex::errc::message_too_big) == 1009, "closes with 1009");
    expect(duplex::close_code_for(duplex::errc::invalid_utf8) == 1007, "bad UTF-8 closes with 1007");
    expect(duplex::close_code_for(duplex::errc::send_queue_full) == 1008, "send_queue_full closes with 1008");
    expect(duplex::http_status_for(duplex::errc::forbidden_origin) == 403, "forbidden_origin answers 403");
    expect(duplex::http_status_for(duplex::errc::bad_version) == 426, "bad_version answers 426");
    expect(std::error_code(duplex::errc::ping_timeout) == duplex::condition::timeout, "ping_timeout is a timeout");
    // [codes]

    // [throwing]
    try {
        duplex::throw_if(duplex::errc::bad_url); // what the *_or_throw overloads do
    } catch (const duplex::error& e) {           // a std::system_error
        expect(e.code() == duplex::errc::bad_url, e.what());
    }
    // [throwing]

    // [live]
    asio::io_context io;
    duplex::server_options options;
    options.connection.max_message_size = 1024;
    duplex::server server(io, options);
    std::error_code server_error;
    server.on_error([&](duplex::server::connection&, std::error_code e) { server_error = e; });
    if (server.listen(0)) return 1;

    duplex::client ws(io);
    std::uint16_t close_code = 0;
    ws.on_open([&] { ws.send_text(std::string(2000, 'x')); });
    ws.on_close([&](std::uint16_t code, std::string_view) {
        close_code = code;
        server.stop();
    });
    ws.connect_or_throw("ws://127.0.0.1:" + std::to_string(server.port()) + "/");
    io.run_for(std::chrono::seconds(5));
    expect(server_error == duplex::errc::message_too_big, "server: on_error(message_too_big)");
    expect(close_code == duplex::close_code::message_too_big, "client: closed with 1009");
    expect(ws.send_text("late") == duplex::errc::closed, "sending after the close: errc::closed");
    // [live]
    return failures == 0 ? 0 : 1;
}
