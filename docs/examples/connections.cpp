// docs/connections.md: a connection's states and handlers, seen from both ends.
// Starts a server and a client on 127.0.0.1, exchanges one message, closes, exits 0.
#include <duplex/client.hpp>
#include <duplex/server.hpp>

#include <cstdio>
#include <string>
#include <vector>

int main() {
    asio::io_context io;
    std::vector<std::string> log; // one io_context thread: no lock needed

    // [server]
    duplex::server server(io);
    server.on_open([&](duplex::server::connection& c) {
        c.user_data() = std::string(c.request().path()); // per-connection state (std::any)
        log.push_back("server open " + std::any_cast<std::string&>(c.user_data()));
    });
    server.on_message([&](duplex::server::connection& c, const duplex::message& m) {
        log.push_back("server message " + m.str()); // m.data is valid during this call only
        c.send_text("hello, " + m.str());
    });
    server.on_close([&](duplex::server::connection&, std::uint16_t code, std::string_view reason) {
        log.push_back("server close " + std::to_string(code) + " " + std::string(reason));
    });
    server.on_error([&](duplex::server::connection&, std::error_code ec) {
        log.push_back("server error " + ec.message());
    });
    // [server]
    if (auto ec = server.listen(0)) return std::fprintf(stderr, "listen: %s\n", ec.message().c_str()), 1;

    // [client]
    duplex::client ws(io);
    ws.on_open([&] {
        log.push_back(std::string("client open, state ") + duplex::to_string(ws.ready_state())); // OPEN
        ws.send_text("client");
    });
    ws.on_message([&](const duplex::message& m) {
        log.push_back("client message " + m.str());
        ws.close(duplex::close_code::normal, "done");
        log.push_back(std::string("client state ") + duplex::to_string(ws.ready_state())); // CLOSING
    });
    ws.on_close([&](std::uint16_t code, std::string_view reason) {
        log.push_back("client close " + std::to_string(code) + " " + std::string(reason));
        server.stop();
    });
    ws.connect_or_throw("ws://127.0.0.1:" + std::to_string(server.port()) + "/chat");
    log.push_back(std::string("client state ") + duplex::to_string(ws.ready_state())); // CONNECTING
    // [client]

    io.run_for(std::chrono::seconds(5));
    log.push_back(std::string("client state ") + duplex::to_string(ws.ready_state())); // CLOSED
    for (const auto& line : log) std::printf("%s\n", line.c_str());

    const std::vector<std::string> expected = {
        "client state CONNECTING", "server open /chat", "client open, state OPEN", "server message client",
        "client message hello, client", "client state CLOSING", "server close 1000 done",
        "client close 1000 ", "client state CLOSED"};
    return log == expected ? 0 : 1;
}
