// Compile-time benchmark (c): a minimal asynchronous WebSocket echo server on Boost.Beast.
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>

#include <cstdlib>
#include <memory>

namespace beast = boost::beast;
namespace net = boost::asio;
using tcp = net::ip::tcp;

namespace {
struct session : std::enable_shared_from_this<session> {
    explicit session(tcp::socket s) : ws(std::move(s)) {}
    void start() {
        ws.async_accept([self = shared_from_this()](beast::error_code ec) {
            if (!ec) self->read();
        });
    }
    void read() {
        ws.async_read(buffer, [self = shared_from_this()](beast::error_code ec, std::size_t) {
            if (ec) return;
            self->ws.text(self->ws.got_text());
            self->ws.async_write(self->buffer.data(), [self](beast::error_code ec2, std::size_t) {
                if (ec2) return;
                self->buffer.consume(self->buffer.size());
                self->read();
            });
        });
    }
    beast::websocket::stream<beast::tcp_stream> ws;
    beast::flat_buffer buffer;
};

void accept(tcp::acceptor& a) {
    a.async_accept([&a](beast::error_code ec, tcp::socket s) {
        if (ec) return;
        std::make_shared<session>(std::move(s))->start();
        accept(a);
    });
}
} // namespace

int main(int argc, char** argv) {
    const auto port = static_cast<unsigned short>(argc > 1 ? std::atoi(argv[1]) : 9001);
    net::io_context io;
    tcp::acceptor acceptor(io, {net::ip::make_address("127.0.0.1"), port});
    accept(acceptor);
    net::signal_set signals(io, SIGINT, SIGTERM);
    signals.async_wait([&](beast::error_code, int) { acceptor.close(); io.stop(); });
    io.run();
}
