// docs/transports.md: the same connection code over TCP, over a Unix domain socket and
// over the in-memory pair. Exits 0 when a message made the round trip over each.
#include <duplex/client.hpp>
#include <duplex/connection/connection.hpp>
#include <duplex/server.hpp>
#include <duplex/transport/memory.hpp>
#include <duplex/transport/tcp.hpp>
#include <duplex/unix_server.hpp>

#include <cstdio>
#include <string>
#include <unistd.h>

// A transport is any type with get_executor, async_start, async_read_some,
// async_write_some and close (transport/transport.hpp); is_transport_v checks it.
static_assert(duplex::is_transport_v<duplex::tcp_transport>);
static_assert(duplex::is_transport_v<duplex::memory_transport>);
static_assert(duplex::is_transport_v<duplex::unix_transport>);

int main() {
    asio::io_context io;
    int round_trips = 0;

    // [memory]
    using server_conn = duplex::basic_connection<duplex::role::server, duplex::memory_transport>;
    using client_conn = duplex::basic_connection<duplex::role::client, duplex::memory_transport>;

    auto server_config = std::make_shared<server_conn::config_type>();
    server_config->on_message = [](server_conn& c, const duplex::message& m) { c.send(m); };

    auto client_config = std::make_shared<client_conn::config_type>();
    client_config->request.host = "memory";   // the Host header of the upgrade request
    client_config->on_open = [](client_conn& c) { c.send_text("over memory"); };
    client_config->on_message = [&](client_conn& c, const duplex::message& m) {
        round_trips += m.text() == "over memory";
        c.close();
    };

    auto [a, b] = duplex::memory_transport::make_pair(io.get_executor(), io.get_executor());
    auto s = std::make_shared<server_conn>(std::move(a), server_config);
    auto c = std::make_shared<client_conn>(std::move(b), client_config);
    s->start_accept();  // what duplex::server does after accept
    c->start_connect(); // what duplex::client does after the TCP connect
    // [memory]

    // [tcp]
    // duplex::server is basic_server<tcp_transport>; each accepted socket becomes a
    // tcp_transport (TCP_NODELAY set), or whatever the transport factory returns.
    duplex::basic_server<duplex::tcp_transport> server(io, {}, [](asio::ip::tcp::socket socket) {
        return duplex::tcp_transport(std::move(socket));
    });
    server.on_message([](duplex::server::connection& conn, const duplex::message& m) {
        std::printf("tcp message from %s\n", conn.transport().remote_address().c_str());
        conn.send(m);
    });
    // [tcp]
    if (server.listen(0)) return 1;

    duplex::client ws(io); // a tcp_transport for ws:// (tls_or_tcp_transport when built with TLS)
    ws.on_open([&] { ws.send_text("over tcp"); });
    ws.on_message([&](const duplex::message& m) {
        round_trips += m.text() == "over tcp";
        ws.close();
    });
    ws.on_close([&](std::uint16_t, std::string_view) { server.stop(); });
    ws.connect_or_throw("ws://127.0.0.1:" + std::to_string(server.port()) + "/");

    const std::string path = "/tmp/duplex-doc-" + std::to_string(::getpid()) + ".sock";
    // [unix-server]
    duplex::unix_server local(io); // basic_server<unix_transport>
    local.on_message([](duplex::unix_server::connection& conn, const duplex::message& m) { conn.send(m); });
    if (auto ec = local.listen(path, 0660)) // owner and group may connect; "@name": no file at all
        return std::fprintf(stderr, "listen %s: %s\n", path.c_str(), ec.message().c_str()), 1;
    // [unix-server]

    // [unix-client]
    // duplex::client connects over TCP only; over a Unix socket, connect it yourself
    // and start a client connection on it, as for the in-memory pair above.
    using unix_client = duplex::basic_connection<duplex::role::client, duplex::unix_transport>;
    auto unix_config = std::make_shared<unix_client::config_type>();
    unix_config->request.host = "localhost";
    unix_config->on_open = [](unix_client& conn) { conn.send_text("over a unix socket"); };
    unix_config->on_message = [&](unix_client& conn, const duplex::message& m) {
        round_trips += m.text() == "over a unix socket";
        conn.close();
    };
    unix_config->on_close = [&](unix_client&, std::uint16_t, std::string_view) { local.stop(); }; // removes the file
    asio::local::stream_protocol::socket socket(io);
    socket.connect(asio::local::stream_protocol::endpoint(path));
    auto uc = std::make_shared<unix_client>(duplex::unix_transport(std::move(socket)), unix_config);
    uc->start_connect();
    // [unix-client]

    io.run_for(std::chrono::seconds(5));
    std::printf("round trips: %d\n", round_trips);
    return round_trips == 3 ? 0 : 1;
}
