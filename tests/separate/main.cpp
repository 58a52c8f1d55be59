// Separate-compilation proof, file 1 of 3: the server side and main(). Built with
// DUPLEX_SEPARATE_COMPILATION, so basic_connection, basic_server and basic_protocol
// are not compiled here (check_symbols.cmake checks the object file). It includes
// server.hpp alone: that header declares its own specializations extern.
#include <duplex/server.hpp>

#include <cstdio>
#include <string>

// peer.cpp: a client that sends `text` and returns what it received back.
std::string run_client(asio::io_context& io, std::uint16_t port, const std::string& text);

int main() {
    asio::io_context io;
    duplex::server server(io);
    server.on_message([](duplex::server::connection& c, const duplex::message& m) { c.send(m); });
    if (auto ec = server.listen(0)) {
        std::fprintf(stderr, "listen: %s\n", ec.message().c_str());
        return 1;
    }
    const std::string reply = run_client(io, server.port(), "hello, separately");
    server.stop();
    io.run_for(std::chrono::seconds(2));
    std::printf("echoed: %s\n", reply.c_str());
    return reply == "hello, separately" ? 0 : 1;
}
