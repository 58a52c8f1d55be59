// Compile-time benchmark (b): a minimal asynchronous TCP echo server on bare Asio.
#include <asio.hpp>

#include <cstdlib>
#include <memory>

namespace {
struct session : std::enable_shared_from_this<session> {
    explicit session(asio::ip::tcp::socket s) : socket(std::move(s)) {}
    void read() {
        socket.async_read_some(asio::buffer(data), [self = shared_from_this()](std::error_code ec, std::size_t n) {
            if (!ec) self->write(n);
        });
    }
    void write(std::size_t n) {
        asio::async_write(socket, asio::buffer(data, n), [self = shared_from_this()](std::error_code ec, std::size_t) {
            if (!ec) self->read();
        });
    }
    asio::ip::tcp::socket socket;
    char data[16384];
};

void accept(asio::ip::tcp::acceptor& a) {
    a.async_accept([&a](std::error_code ec, asio::ip::tcp::socket s) {
        if (ec) return;
        std::make_shared<session>(std::move(s))->read();
        accept(a);
    });
}
} // namespace

int main(int argc, char** argv) {
    const auto port = static_cast<unsigned short>(argc > 1 ? std::atoi(argv[1]) : 9001);
    asio::io_context io;
    asio::ip::tcp::acceptor acceptor(io, {asio::ip::make_address("127.0.0.1"), port});
    accept(acceptor);
    asio::signal_set signals(io, SIGINT, SIGTERM);
    signals.async_wait([&](std::error_code, int) { acceptor.close(); io.stop(); });
    io.run();
}
