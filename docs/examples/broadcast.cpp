// docs/broadcast.md: rooms as hubs, encode-once broadcast, and server.broadcast to
// every client. Three clients: two in room "a", one in room "b". Exits 0 on success.
#include <duplex/client.hpp>
#include <duplex/hub.hpp>
#include <duplex/server.hpp>

#include <any>
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <vector>

int main() {
    asio::io_context io;
    duplex::server server(io);

    // [rooms]
    using room = duplex::hub<duplex::server::connection>;
    std::map<std::string, room> rooms; // one io thread: map not locked
    server.on_open([&](duplex::server::connection& c) {
        // The request is freed once on_open returns: keep what later handlers need.
        room* r = &rooms[std::string(c.request().path())];
        r->add(c.shared_from_this());
        c.user_data() = r;
    });
    server.on_close([&](duplex::server::connection& c, std::uint16_t, std::string_view) {
        std::any_cast<room*>(c.user_data())->remove(c.shared_from_this());
    });
    server.on_message([&](duplex::server::connection& c, const duplex::message& m) {
        // The frame is encoded once (and compressed once, when the server's options say so);
        // every member's send queue holds a reference to it.
        std::any_cast<room*>(c.user_data())->broadcast(server.prepare_message(m.op, m.data));
    });
    // [rooms]
    if (server.listen(0)) return 1;
    const std::string base = "ws://127.0.0.1:" + std::to_string(server.port());

    struct member {
        std::unique_ptr<duplex::client> ws;
        std::vector<std::string> got;
    };
    std::vector<member> members(3);
    const char* paths[] = {"/a", "/a", "/b"};
    int open = 0;
    for (int i = 0; i < 3; ++i) {
        auto& m = members[i];
        m.ws = std::make_unique<duplex::client>(io);
        m.ws->on_message([&m](const duplex::message& msg) { m.got.push_back(msg.str()); });
        m.ws->on_open([&] {
            if (++open < 3) return;
            members[0].ws->send_text("hi room a"); // everyone is in: talk
        });
        m.ws->connect_or_throw(base + paths[i]);
    }

    const auto done_when = [&](auto pred) {
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
        while (!pred() && std::chrono::steady_clock::now() < deadline) io.run_one_for(std::chrono::milliseconds(50));
    };
    done_when([&] { return members[1].got.size() == 1; });

    // [everyone]
    const std::size_t receivers = server.broadcast(duplex::opcode::text, "to everyone");
    // Or encode once, send many times, to any connections:
    auto note = duplex::prepare_message(duplex::opcode::text, "prepared");
    for (auto& c : server.clients().snapshot()) c->send(note);
    // [everyone]
    done_when([&] { return members[2].got.size() == 2; });

    for (auto& m : members) m.ws->close();
    done_when([&] { return server.connection_count() == 0; });
    server.stop();
    io.run_for(std::chrono::seconds(1));

    for (int i = 0; i < 3; ++i) {
        std::printf("client %d (%s):", i, paths[i]);
        for (auto& s : members[i].got) std::printf(" [%s]", s.c_str());
        std::printf("\n");
    }
    const std::vector<std::string> in_a = {"hi room a", "to everyone", "prepared"};
    const std::vector<std::string> in_b = {"to everyone", "prepared"};
    return receivers == 3 && members[0].got == in_a && members[1].got == in_a && members[2].got == in_b ? 0 : 1;
}
