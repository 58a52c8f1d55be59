// Boost.Beast under test (Debian libboost-dev 1.74): echo or broadcast, one
// io_context thread, no compression, 127.0.0.1. Echo is Beast's idiomatic
// async read -> write -> read loop (websocket_server_async.cpp); broadcast
// follows Beast's websocket-chat-multi example: a shared room, and per session
// a queue of shared_ptr<const std::string> written one after another.
//   beast_server PORT echo|broadcast
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <unordered_set>
#include <vector>

namespace beast = boost::beast;
namespace websocket = beast::websocket;
namespace net = boost::asio;
using tcp = net::ip::tcp;

class session;

struct room {
    std::unordered_set<session*> members;
    void send(const std::string& text, bool binary);
};

class session : public std::enable_shared_from_this<session> {
public:
    session(tcp::socket socket, room* r) : ws_(std::move(socket)), room_(r) {}
    ~session() {
        if (room_ && joined_) room_->members.erase(this);
    }

    void run() {
        ws_.set_option(websocket::stream_base::timeout::suggested(beast::role_type::server));
        ws_.async_accept(beast::bind_front_handler(&session::on_accept, shared_from_this()));
    }

    // Broadcast: queue a frame shared by every receiver.
    void deliver(const std::shared_ptr<const std::string>& m, bool binary) {
        queue_.push_back({m, binary});
        if (queue_.size() > 1) return; // a write is already in progress
        write_next();
    }

private:
    void on_accept(beast::error_code ec) {
        if (ec) return;
        if (room_) room_->members.insert(this), joined_ = true;
        read();
    }
    void read() {
        ws_.async_read(buffer_, beast::bind_front_handler(&session::on_read, shared_from_this()));
    }
    void on_read(beast::error_code ec, std::size_t) {
        if (ec) return;
        if (room_) {
            room_->send(beast::buffers_to_string(buffer_.data()), ws_.got_binary());
            buffer_.consume(buffer_.size());
            return read();
        }
        ws_.text(ws_.got_text());
        ws_.async_write(buffer_.data(), beast::bind_front_handler(&session::on_echo_write, shared_from_this()));
    }
    void on_echo_write(beast::error_code ec, std::size_t) {
        if (ec) return;
        buffer_.consume(buffer_.size());
        read();
    }
    void write_next() {
        ws_.binary(queue_.front().binary);
        ws_.async_write(net::buffer(*queue_.front().data),
                        beast::bind_front_handler(&session::on_queue_write, shared_from_this()));
    }
    void on_queue_write(beast::error_code ec, std::size_t) {
        if (ec) return;
        queue_.erase(queue_.begin());
        if (!queue_.empty()) write_next();
    }

    struct item {
        std::shared_ptr<const std::string> data;
        bool binary;
    };
    websocket::stream<beast::tcp_stream> ws_;
    beast::flat_buffer buffer_;
    room* room_;
    bool joined_ = false;
    std::vector<item> queue_;
};

void room::send(const std::string& text, bool binary) {
    auto m = std::make_shared<const std::string>(text);
    // As in Beast's chat example: weak references first, so a session that
    // closes during the loop is not touched.
    std::vector<std::weak_ptr<session>> v;
    v.reserve(members.size());
    for (auto* s : members) v.emplace_back(s->weak_from_this());
    for (const auto& wp : v)
        if (auto sp = wp.lock()) sp->deliver(m, binary);
}

class listener : public std::enable_shared_from_this<listener> {
public:
    listener(net::io_context& io, tcp::endpoint ep, room* r) : io_(io), acceptor_(io), room_(r) {
        acceptor_.open(ep.protocol());
        acceptor_.set_option(net::socket_base::reuse_address(true));
        acceptor_.bind(ep);
        acceptor_.listen(net::socket_base::max_listen_connections);
    }
    void run() { accept(); }

private:
    void accept() {
        acceptor_.async_accept(io_, beast::bind_front_handler(&listener::on_accept, shared_from_this()));
    }
    void on_accept(beast::error_code ec, tcp::socket socket) {
        if (!ec) {
            socket.set_option(tcp::no_delay(true));
            std::make_shared<session>(std::move(socket), room_)->run();
        }
        accept();
    }
    net::io_context& io_;
    tcp::acceptor acceptor_;
    room* room_;
};

int main(int argc, char** argv) {
    if (argc < 3) {
        std::fprintf(stderr, "usage: beast_server PORT echo|broadcast\n");
        return 2;
    }
    const auto port = static_cast<unsigned short>(std::atoi(argv[1]));
    const std::string mode = argv[2];
    net::io_context io(1);
    room r;
    std::make_shared<listener>(io, tcp::endpoint(net::ip::make_address("127.0.0.1"), port),
                               mode == "broadcast" ? &r : nullptr)->run();
    std::printf("beast_server %s listening on 127.0.0.1:%u\n", mode.c_str(), port);
    std::fflush(stdout);
    io.run();
}
