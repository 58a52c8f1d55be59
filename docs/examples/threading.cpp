// docs/threading.md: one io_context run by several threads; sending from a thread
// that is not the io_context's; running code on a connection's strand. Exits 0 on success.
#include <duplex/client.hpp>
#include <duplex/server.hpp>

#include <atomic>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

int main() {
    asio::io_context io;
    duplex::server server(io);
    std::atomic<int> in_handler{0}, overlaps{0};

    // [strand]
    // Each connection's handlers run one at a time (on its strand); handlers of
    // different connections may run at the same time on different threads.
    server.on_message([&](duplex::server::connection& c, const duplex::message& m) {
        if (in_handler.fetch_add(1) > 0) ++overlaps; // only possible across connections
        c.send(m);
        --in_handler;
    });
    // [strand]
    if (server.listen(0)) return 1;

    // [threads]
    std::vector<std::thread> threads;
    auto work = asio::make_work_guard(io);
    for (int i = 0; i < 4; ++i) threads.emplace_back([&] { io.run_for(std::chrono::seconds(10)); });
    // [threads]

    // Clients: each on its own io_context thread; they count their echoes.
    constexpr int clients = 4, messages = 50;
    std::atomic<int> echoes{0}, closed{0};
    std::vector<std::unique_ptr<asio::io_context>> cios;
    std::vector<std::unique_ptr<duplex::client>> wss;
    std::vector<std::thread> client_threads;
    for (int i = 0; i < clients; ++i) {
        cios.push_back(std::make_unique<asio::io_context>());
        wss.push_back(std::make_unique<duplex::client>(*cios.back()));
        auto& ws = *wss.back();
        auto got = std::make_shared<int>(0);
        ws.on_message([&, got](const duplex::message&) {
            ++echoes;
            if (++*got == messages) ws.close();
        });
        ws.on_close([&](std::uint16_t, std::string_view) { ++closed; });
        ws.connect_or_throw("ws://127.0.0.1:" + std::to_string(server.port()) + "/");
        client_threads.emplace_back([&io = *cios.back()] { io.run_for(std::chrono::seconds(10)); });
    }

    // [foreign-thread]
    // send*, close, buffered_amount and ready_state may be called from any thread:
    // here, the main thread, once every client is connected.
    while (server.connection_count() < clients) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    for (auto& ws : wss)
        while (ws->ready_state() != duplex::ready_state::open) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    // To run code on a connection's strand (ordered with its handlers), post to its executor:
    std::atomic<int> posted{0};
    for (auto& c : server.clients().snapshot())
        asio::post(c->get_executor(), [c, &posted] { posted += c->ready_state() == duplex::ready_state::open; });
    while (posted < clients) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    for (int i = 0; i < messages; ++i)
        for (auto& ws : wss) ws->send_text("message " + std::to_string(i));
    // [foreign-thread]

    for (auto& t : client_threads) t.join();
    server.stop();
    work.reset();
    for (auto& t : threads) t.join();
    std::printf("echoes %d, closed %d, posted %d, handlers overlapping across connections %d times\n", echoes.load(),
                closed.load(), posted.load(), overlaps.load());
    return echoes == clients * messages && closed == clients && posted == clients ? 0 : 1;
}
