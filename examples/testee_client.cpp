// Autobahn|Testsuite testee (fuzzingserver mode): runs every case one at a time,
// echoing each message until the fuzzing server closes, then asks for the report.
//   testee_client [base-url] [agent]      defaults: ws://127.0.0.1:9001 duplex
// Start the fuzzing server first, e.g.
//   docker run -it --rm -v $PWD/autobahn:/config -p 9001:9001 crossbario/autobahn-testsuite
//       wstest -m fuzzingserver -s /config/fuzzingserver.json
#include <duplex/client.hpp>

#include <cstdio>
#include <functional>
#include <string>

namespace {

struct testee {
    asio::io_context io;
    std::string base;
    duplex::client_options options;

    // Connects to base + path, hands every message to `on_message`, and returns once
    // the connection has closed. False when it could not be opened.
    bool run(const std::string& path, const std::function<void(duplex::client&, const duplex::message&)>& on_message,
             bool report_errors) {
        duplex::client ws(io);
        bool opened = false;
        ws.on_open([&] { opened = true; });
        ws.on_message([&](const duplex::message& m) { on_message(ws, m); });
        ws.on_error([&](std::error_code ec) {
            if (report_errors || !opened) std::fprintf(stderr, "testee_client: %s%s: %s\n", base.c_str(), path.c_str(), ec.message().c_str());
        });
        if (auto ec = ws.connect(base + path, options)) {
            std::fprintf(stderr, "testee_client: %s%s: %s\n", base.c_str(), path.c_str(), ec.message().c_str());
            return false;
        }
        io.restart();
        io.run(); // until the connection has closed
        return opened;
    }
};

} // namespace

int main(int argc, char** argv) {
    testee t;
    t.base = "ws://127.0.0.1:9001";
    std::string agent = "duplex";
    int positional = 0;
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        if (arg == "--help" || arg == "-h") {
            std::puts("usage: testee_client [base-url] [agent]\n"
                      "  Runs every Autobahn testsuite case against a fuzzing server.\n"
                      "  base-url  the fuzzing server (default ws://127.0.0.1:9001)\n"
                      "  agent     the name in the report (default duplex; letters, digits, '-', '_', '.')");
            return 0;
        }
        if (positional == 0) t.base = arg;
        else if (positional == 1) agent = arg;
        ++positional;
    }
    while (!t.base.empty() && t.base.back() == '/') t.base.pop_back();
    for (char ch : agent) {
        const bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                        ch == '-' || ch == '_' || ch == '.';
        if (!ok) {
            std::fprintf(stderr, "testee_client: agent name '%s' has characters a URL query cannot hold as is\n", agent.c_str());
            return 2;
        }
    }

    auto& c = t.options.connection;
    c.max_message_size = 128 * 1024 * 1024;
    c.send_queue_limit = 512 * 1024 * 1024;
    c.read_buffer_size = 64 * 1024;
    c.ping_interval = std::chrono::milliseconds(0);
    c.close_timeout = std::chrono::seconds(10);
    c.handshake_timeout = std::chrono::seconds(60);
    t.options.connect_timeout = std::chrono::seconds(60);

    int count = -1;
    t.run("/getCaseCount", [&](duplex::client&, const duplex::message& m) {
        try {
            count = std::stoi(m.str());
        } catch (const std::exception&) {
            count = -1;
        }
    }, true);
    if (count < 0) {
        std::fprintf(stderr, "testee_client: no case count from %s/getCaseCount\n", t.base.c_str());
        return 1;
    }
    std::printf("%d cases\n", count);

    // A case may end in a failed connection on purpose (that is what many cases
    // test), but every case must open: one that cannot is a broken run.
    const auto echo = [](duplex::client& ws, const duplex::message& m) { ws.send(m); };
    int unopened = 0;
    for (int n = 1; n <= count; ++n) {
        std::printf("case %d/%d\n", n, count);
        std::fflush(stdout);
        if (!t.run("/runCase?case=" + std::to_string(n) + "&agent=" + agent, echo, false)) {
            std::fprintf(stderr, "testee_client: case %d never opened\n", n);
            ++unopened;
        }
    }

    if (!t.run("/updateReports?agent=" + agent, [](duplex::client&, const duplex::message&) {}, true)) return 1;
    std::puts("reports updated");
    return unopened == 0 ? 0 : 1;
}
