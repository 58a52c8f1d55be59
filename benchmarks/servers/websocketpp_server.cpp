// WebSocket++ under test (Debian libwebsocketpp-dev 0.8.2 on Boost.Asio 1.74,
// websocketpp::config::asio = plain ws://): echo or broadcast, one thread
// running the endpoint's io_service, logging off, no compression, 127.0.0.1.
//   websocketpp_server PORT echo|broadcast
#include <websocketpp/config/asio_no_tls.hpp>
#include <websocketpp/server.hpp>

#include <cstdio>
#include <cstdlib>
#include <set>
#include <string>

using server = websocketpp::server<websocketpp::config::asio>;

int main(int argc, char** argv) {
    if (argc < 3) {
        std::fprintf(stderr, "usage: websocketpp_server PORT echo|broadcast\n");
        return 2;
    }
    const auto port = static_cast<unsigned short>(std::atoi(argv[1]));
    const std::string mode = argv[2];

    server s;
    s.clear_access_channels(websocketpp::log::alevel::all);
    s.clear_error_channels(websocketpp::log::elevel::all);
    s.init_asio();
    s.set_reuse_addr(true);
    s.set_listen_backlog(4096);
    // TCP_NODELAY once the socket is accepted (like the other servers).
    s.set_tcp_post_init_handler([&](websocketpp::connection_hdl h) {
        boost::system::error_code ignored;
        s.get_con_from_hdl(h)->get_socket().set_option(boost::asio::ip::tcp::no_delay(true), ignored);
    });

    std::set<websocketpp::connection_hdl, std::owner_less<websocketpp::connection_hdl>> clients;
    if (mode == "broadcast") {
        // As in WebSocket++'s broadcast_server example.
        s.set_open_handler([&](websocketpp::connection_hdl h) { clients.insert(h); });
        s.set_close_handler([&](websocketpp::connection_hdl h) { clients.erase(h); });
        s.set_message_handler([&](websocketpp::connection_hdl, server::message_ptr msg) {
            for (const auto& h : clients) {
                websocketpp::lib::error_code ec;
                s.send(h, msg->get_payload(), msg->get_opcode(), ec);
            }
        });
    } else {
        s.set_message_handler([&](websocketpp::connection_hdl h, server::message_ptr msg) {
            websocketpp::lib::error_code ec;
            s.send(h, msg->get_payload(), msg->get_opcode(), ec);
        });
    }
    s.listen(boost::asio::ip::tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), port));
    s.start_accept();
    std::printf("websocketpp_server %s listening on 127.0.0.1:%u\n", mode.c_str(), port);
    std::fflush(stdout);
    s.run();
}
