// Compile-time benchmark (d): a minimal WebSocket echo server on WebSocket++ (Boost.Asio).
#include <websocketpp/config/asio_no_tls.hpp>
#include <websocketpp/server.hpp>

#include <cstdlib>

using server_t = websocketpp::server<websocketpp::config::asio>;

int main(int argc, char** argv) {
    const auto port = static_cast<unsigned short>(argc > 1 ? std::atoi(argv[1]) : 9001);
    server_t server;
    server.clear_access_channels(websocketpp::log::alevel::all);
    server.init_asio();
    server.set_reuse_addr(true);
    server.set_message_handler([&server](websocketpp::connection_hdl hdl, server_t::message_ptr msg) {
        server.send(hdl, msg->get_payload(), msg->get_opcode());
    });
    server.listen(boost::asio::ip::address::from_string("127.0.0.1"), port);
    server.start_accept();
    boost::asio::signal_set signals(server.get_io_service(), SIGINT, SIGTERM);
    signals.async_wait([&](const boost::system::error_code&, int) { server.stop_listening(); server.stop(); });
    server.run();
}
