// docs/tls.md: a wss:// server and client. Makes a throwaway self-signed certificate
// for 127.0.0.1 with the openssl command (exit code 77, "skipped", without it), then
// echoes one message over TLS. Needs duplex built with OpenSSL (DUPLEX_HAS_TLS).
#include <duplex/client.hpp>
#include <duplex/server.hpp>
#include <duplex/transport/tls.hpp>

#include <cstdio>
#include <cstdlib>
#include <string>

#include <unistd.h>

int main() {
    char dir_template[] = "/tmp/duplex_docs_tls_XXXXXX";
    if (!::mkdtemp(dir_template)) return 1;
    const std::string dir = dir_template, cert = dir + "/cert.pem", key = dir + "/key.pem";
    const std::string make_cert = "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost"
                                  " -addext subjectAltName=DNS:localhost,IP:127.0.0.1 -keyout " + key +
                                  " -out " + cert + " >/dev/null 2>&1";
    if (std::system(make_cert.c_str()) != 0) {
        std::puts("openssl command not available: skipped");
        return 77;
    }

    asio::io_context io;
    // [server]
    auto server_ctx = std::make_shared<asio::ssl::context>(duplex::make_server_tls_context(cert, key));
    duplex::tls_server server(io, {}, duplex::tls_accept(server_ctx));
    server.on_message([](duplex::tls_server::connection& c, const duplex::message& m) { c.send(m); });
    // [server]
    if (server.listen(0)) return 1;

    // [client]
    auto client_ctx = std::make_shared<asio::ssl::context>(duplex::make_client_tls_context());
    client_ctx->load_verify_file(cert);  // trust our self-signed certificate (a private CA)
    duplex::client_options options;
    options.tls_context = client_ctx;    // default: the system's CA store
    options.verify = duplex::tls_verify::peer; // the default: chain and host name are checked

    duplex::client ws(io);
    std::string reply;
    ws.on_open([&] { ws.send_text("over TLS"); });
    ws.on_message([&](const duplex::message& m) {
        reply = m.str();
        ws.close();
    });
    ws.on_error([](std::error_code ec) { std::printf("error: %s\n", ec.message().c_str()); });
    ws.on_close([&](std::uint16_t, std::string_view) { server.stop(); });
    ws.connect_or_throw("wss://127.0.0.1:" + std::to_string(server.port()) + "/", options);
    // [client]

    io.run_for(std::chrono::seconds(5));
    std::remove(cert.c_str());
    std::remove(key.c_str());
    ::rmdir(dir.c_str());
    std::printf("reply: %s\n", reply.c_str());
    return reply == "over TLS" ? 0 : 1;
}
