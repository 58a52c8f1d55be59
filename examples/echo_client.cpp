// Echo client: sends each line of stdin as a text message, prints every message
// it receives, and closes cleanly (1000) at the end of stdin.
//   echo_client [--insecure] [url]      url defaults to ws://127.0.0.1:9001/
//   printf 'hello\nworld\n' | echo_client ws://127.0.0.1:9001/
#include <duplex/client.hpp>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <iostream>
#include <string>
#include <thread>

namespace {
void usage() {
    std::puts("usage: echo_client [--insecure] [url]\n"
              "  url         ws:// or wss:// URL (default ws://127.0.0.1:9001/)\n"
              "  --insecure  wss://: accept any server certificate (self-signed test servers)\n"
              "Sends each line of stdin as a text message, prints what comes back,\n"
              "closes with 1000 at end of input.");
}
} // namespace

int main(int argc, char** argv) {
    std::string address = "ws://127.0.0.1:9001/";
    duplex::client_options options;
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        if (arg == "--help" || arg == "-h") {
            usage();
            return 0;
        }
        if (arg == "--insecure") {
#ifdef DUPLEX_HAS_TLS
            options.verify = duplex::tls_verify::insecure_no_verify;
#endif
        } else if (!arg.empty() && arg[0] == '-') {
            std::fprintf(stderr, "echo_client: unknown option %s (try --help)\n", arg.c_str());
            return 2;
        } else {
            address = arg;
        }
    }

    asio::io_context io;
    duplex::client ws(io);
    std::deque<std::string> waiting; // lines read before the connection opened
    bool input_done = false;
    int status = 0;

    ws.on_open([&] {
        std::fprintf(stderr, "connected to %s%s%s\n", ws.url().c_str(), ws.subprotocol().empty() ? "" : " protocol ",
                     ws.subprotocol().c_str());
        for (const auto& line : waiting) ws.send_text(line);
        waiting.clear();
        if (input_done) ws.close(duplex::close_code::normal);
    });
    ws.on_message([](const duplex::message& m) {
        if (m.is_text()) std::printf("%.*s\n", static_cast<int>(m.data.size()), m.data.data());
        else std::printf("[binary, %zu bytes]\n", m.data.size());
        std::fflush(stdout);
    });
    ws.on_error([&](std::error_code ec) {
        std::fprintf(stderr, "echo_client: %s\n", ec.message().c_str());
        status = 1;
    });
    ws.on_close([&](std::uint16_t code, std::string_view reason) {
        std::fprintf(stderr, "closed: %u %.*s\n", code, static_cast<int>(reason.size()), reason.data());
        if (code != duplex::close_code::normal) status = 1;
    });

    if (auto ec = ws.connect(address, options)) {
        std::fprintf(stderr, "echo_client: %s: %s\n", address.c_str(), ec.message().c_str());
        return 2;
    }

    // stdin is read by a thread (it may be a terminal, a pipe or a file); each line is
    // handed to the io_context's thread, which owns the client.
    std::thread reader([&io, &ws, &waiting, &input_done] {
        std::string line;
        while (std::getline(std::cin, line)) {
            asio::post(io, [&ws, &waiting, line] {
                if (ws.ready_state() == duplex::ready_state::connecting) waiting.push_back(line);
                else ws.send_text(line);
            });
        }
        asio::post(io, [&ws, &input_done] {
            input_done = true;
            if (ws.ready_state() == duplex::ready_state::open) ws.close(duplex::close_code::normal);
        });
    });
    // The server may end the connection before stdin ends: do not wait for the reader.
    reader.detach();

    io.run(); // returns once the connection is closed
    std::fflush(stdout);
    std::exit(status); // not return: the detached reader may still post to `io`
}
