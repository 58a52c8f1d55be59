// A program that uses duplex the way a user's project does. Built by the CMake packaging
// tests (tests/cmake/) through FetchContent, find_package and pkg-config; it returns
// non-zero when something does not work. DUPLEX_EXPECT_TLS / DUPLEX_EXPECT_DEFLATE are set
// by the test to 0 or 1: whether duplex was configured with those components, so the test
// checks that the target (or .pc file) passes DUPLEX_HAS_TLS / DUPLEX_HAS_DEFLATE along
// when they are 1, and does not define them when they are 0.
#include <duplex/client.hpp>
#include <duplex/core/error.hpp>
#include <duplex/server.hpp>

// Asio's usage requirements (its include path and ASIO_STANDALONE) must come with duplex.
// Checked before <asio.hpp>, which defines ASIO_STANDALONE itself when it finds no Boost.
#ifndef ASIO_STANDALONE
#error "duplex's usage requirements must define ASIO_STANDALONE (Asio::asio / pkg-config Cflags)"
#endif
#include <asio.hpp>

#include <cstdio>
#include <string>

#if defined(DUPLEX_EXPECT_TLS) && DUPLEX_EXPECT_TLS
#if !defined(DUPLEX_HAS_TLS) || DUPLEX_HAS_TLS != 1
#error "duplex was installed with TLS but DUPLEX_HAS_TLS=1 did not reach the consumer"
#endif
#include <openssl/opensslv.h> // OpenSSL's include path must come along too
#elif defined(DUPLEX_EXPECT_TLS) && defined(DUPLEX_HAS_TLS)
#error "duplex was installed without TLS but DUPLEX_HAS_TLS reached the consumer"
#endif
#if defined(DUPLEX_EXPECT_DEFLATE) && DUPLEX_EXPECT_DEFLATE
#if !defined(DUPLEX_HAS_DEFLATE) || DUPLEX_HAS_DEFLATE != 1
#error "duplex was installed with deflate but DUPLEX_HAS_DEFLATE=1 did not reach the consumer"
#endif
#include <zlib.h>
#elif defined(DUPLEX_EXPECT_DEFLATE) && defined(DUPLEX_HAS_DEFLATE)
#error "duplex was installed without deflate but DUPLEX_HAS_DEFLATE reached the consumer"
#endif

int main() {
    int failures = 0;
    if (duplex::close_code_for(duplex::errc::invalid_utf8) != 1007) {
        std::fprintf(stderr, "close_code_for(invalid_utf8) = %u, expected 1007\n",
                     static_cast<unsigned>(duplex::close_code_for(duplex::errc::invalid_utf8)));
        ++failures;
    }
    const std::error_code ec = duplex::errc::invalid_utf8;
    if (ec.category().name() != std::string("duplex")) {
        std::fprintf(stderr, "error category is '%s', expected 'duplex'\n", ec.category().name());
        ++failures;
    }
    asio::io_context io;                 // something from Asio that needs its headers and threads
    bool ran = false;
    asio::post(io, [&] { ran = true; });
    io.run();
    if (!ran) {
        std::fprintf(stderr, "asio::io_context did not run the posted handler\n");
        ++failures;
    }
#if defined(DUPLEX_EXPECT_DEFLATE) && DUPLEX_EXPECT_DEFLATE
    if (zlibVersion() == nullptr) ++failures; // links against zlib
#endif

    // The point of it all: a short echo server and one message round trip.
    {
        asio::io_context ws_io;
        // Both ends ask for permessage-deflate: it is negotiated exactly when duplex was
        // built with zlib; without, the client offers nothing and the server accepts nothing.
        duplex::server_options so;
        so.connection.deflate.enabled = true;
        duplex::server server(ws_io, so);
        int server_deflate = -1, offered = -1;
        server.on_open([&](auto& conn) {
            server_deflate = conn.protocol().deflate_enabled();
            offered = !conn.request().header("Sec-WebSocket-Extensions").empty();
        });
        server.on_message([](auto& conn, const duplex::message& m) { conn.send(m); });
        if (auto ec = server.listen(0)) {
            std::fprintf(stderr, "listen: %s\n", ec.message().c_str());
            return 1;
        }
        duplex::client client(ws_io);
        std::string echoed;
        int client_deflate = -1;
        client.on_open([&] {
            client_deflate = client.connection_ptr()->protocol().deflate_enabled();
            client.send_text("round trip");
        });
        client.on_message([&](const duplex::message& m) {
            echoed = m.str();
            client.close();
        });
        client.on_close([&](std::uint16_t, std::string_view) { server.stop(); });
        duplex::client_options co;
        co.connection.deflate.enabled = true;
        client.connect_or_throw("ws://127.0.0.1:" + std::to_string(server.port()) + "/", co);
        ws_io.run_for(std::chrono::seconds(10));
        if (echoed != "round trip") {
            std::fprintf(stderr, "echo round trip failed: got '%s'\n", echoed.c_str());
            ++failures;
        }
#if defined(DUPLEX_HAS_DEFLATE)
        const int want_deflate = 1;
#else
        const int want_deflate = 0;
#endif
        if (offered != want_deflate || server_deflate != want_deflate || client_deflate != want_deflate) {
            std::fprintf(stderr, "permessage-deflate: offered %d, server %d, client %d; expected %d (built %s zlib)\n",
                         offered, server_deflate, client_deflate, want_deflate, want_deflate ? "with" : "without");
            ++failures;
        }
    }
    std::printf("duplex consumer: %s (asio %d)\n", failures ? "FAILED" : "ok", ASIO_VERSION);
    return failures ? 1 : 0;
}
