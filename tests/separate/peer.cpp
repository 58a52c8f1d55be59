// Separate-compilation proof, file 2 of 3: the client side.
#include <duplex/client.hpp>

#include <chrono>
#include <string>

std::string run_client(asio::io_context& io, std::uint16_t port, const std::string& text) {
    duplex::client ws(io);
    std::string reply;
    bool done = false;
    ws.on_open([&] { ws.send_text(text); });
    ws.on_message([&](const duplex::message& m) {
        reply = m.str();
        ws.close();
    });
    ws.on_close([&](std::uint16_t, std::string_view) { done = true; });
    if (ws.connect("ws://127.0.0.1:" + std::to_string(port) + "/")) return {};
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!done && std::chrono::steady_clock::now() < deadline) io.run_one_for(std::chrono::milliseconds(100));
    return reply;
}
