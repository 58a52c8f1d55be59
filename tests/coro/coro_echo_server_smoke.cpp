// Smoke test of examples/coro/coro_echo_server, run as a program: started on port 0, it
// prints its address; a duplex::client checks one text and one binary echo, then the
// server gets a signal while the connection is still open and must close it with 1001 and
// exit with status 0. Done twice, with SIGINT and with SIGTERM. Every wait is bounded (the
// server is killed on any failure). Exits 0 when every check passes.
//   coro_echo_server_smoke <path to coro_echo_server>
#include <duplex/client.hpp>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <thread>

#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace {

using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

int failures = 0;
void expect(bool ok, const std::string& what) {
    std::printf("%s %s\n", ok ? "ok  " : "FAIL", what.c_str());
    std::fflush(stdout);
    failures += !ok;
}

// The server process and the read end of its stdout. Killed if still running at the end.
struct child {
    pid_t pid = -1;
    int out = -1;
    std::string output; // everything it printed so far

    child() = default;
    child(const child&) = delete;
    child& operator=(const child&) = delete;
    ~child() {
        if (pid > 0) {
            ::kill(pid, SIGKILL);
            ::waitpid(pid, nullptr, 0);
        }
        if (out >= 0) ::close(out);
    }
};

bool spawn(const char* path, child& c) {
    int fds[2];
    if (::pipe(fds) != 0) return false;
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
    posix_spawn_file_actions_addclose(&actions, fds[0]);
    posix_spawn_file_actions_addclose(&actions, fds[1]);
    char* argv[] = {const_cast<char*>(path), const_cast<char*>("0"), nullptr};
    const int rc = ::posix_spawn(&c.pid, path, &actions, nullptr, argv, environ);
    posix_spawn_file_actions_destroy(&actions);
    ::close(fds[1]);
    c.out = fds[0];
    if (rc != 0) {
        c.pid = -1;
        std::fprintf(stderr, "cannot start %s: %s\n", path, std::strerror(rc));
        return false;
    }
    return true;
}

// Reads the child's stdout until `enough(output)`, EOF or the deadline.
bool read_until(child& c, steady::time_point deadline, const std::function<bool(const std::string&)>& enough) {
    while (!enough(c.output)) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - steady::now()).count();
        if (left <= 0) return false;
        pollfd p{c.out, POLLIN, 0};
        const int n = ::poll(&p, 1, static_cast<int>(left));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;
        char buf[4096];
        const ssize_t got = ::read(c.out, buf, sizeof buf);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) return enough(c.output); // EOF: it has exited
        c.output.append(buf, static_cast<std::size_t>(got));
    }
    return true;
}

// Waits for the child to exit, until the deadline; true with its wait status.
bool wait_exit(child& c, steady::time_point deadline, int& status) {
    for (;;) {
        const pid_t r = ::waitpid(c.pid, &status, WNOHANG);
        if (r == c.pid) {
            c.pid = -1;
            return true;
        }
        if (r < 0 && errno != EINTR) return false;
        if (steady::now() >= deadline) return false;
        std::this_thread::sleep_for(5ms);
    }
}

void run(const char* path, int sig, const std::string& sig_name) {
    std::printf("-- stopped with %s\n", sig_name.c_str());
    const auto started = steady::now();
    child server;
    if (!spawn(path, server)) return expect(false, "coro_echo_server starts");

    // "coro_echo_server listening on ws://127.0.0.1:PORT\n", once its signal handler is in.
    const std::string marker = "listening on ws://127.0.0.1:";
    const bool printed = read_until(server, steady::now() + 10s, [&](const std::string& s) {
        const auto at = s.find(marker);
        return at != std::string::npos && s.find('\n', at) != std::string::npos;
    });
    const int port = printed ? std::atoi(server.output.c_str() + server.output.find(marker) + marker.size()) : 0;
    expect(port > 0 && port < 65536, "port 0: it prints the port it got (" + std::to_string(port) + ")");
    if (port <= 0 || port >= 65536) return;

    asio::io_context io;
    duplex::client ws(io);
    const std::string text = "hello, coroutine";
    const std::string binary("\x00\x01\xfe\xff binary", 11);
    bool text_ok = false, binary_ok = false, signalled = false;
    std::uint16_t close_code = 0;
    std::string close_reason;
    steady::time_point signal_time{};
    ws.on_open([&] { ws.send_text(text); });
    ws.on_message([&](const duplex::message& m) {
        if (m.is_text()) {
            text_ok = m.data == text;
            ws.send_binary(binary);
            return;
        }
        binary_ok = m.is_binary() && m.data == binary;
        // The connection stays open: the signal must close it.
        signal_time = steady::now();
        signalled = ::kill(server.pid, sig) == 0;
    });
    ws.on_error([](std::error_code ec) { std::printf("     client error: %s\n", ec.message().c_str()); });
    ws.on_close([&](std::uint16_t code, std::string_view reason) {
        close_code = code;
        close_reason.assign(reason);
    });
    if (auto ec = ws.connect("ws://127.0.0.1:" + std::to_string(port) + "/", {}))
        return expect(false, "connect: " + ec.message());
    const auto deadline = steady::now() + 10s;
    while (close_code == 0 && steady::now() < deadline) {
        if (io.stopped()) io.restart();
        io.run_one_for(50ms);
    }
    expect(text_ok, "text message echoed");
    expect(binary_ok, "binary message echoed with its bytes and type");
    expect(signalled, sig_name + " sent with the connection open");
    expect(close_code == duplex::close_code::going_away,
           "the client sees " + std::to_string(close_code) + " (" + close_reason + "), 1001 expected");

    int status = 0;
    const bool exited = signalled && wait_exit(server, steady::now() + 5s, status);
    const auto stop_ms = std::chrono::duration_cast<std::chrono::milliseconds>(steady::now() - signal_time).count();
    expect(exited, "the server exits within 5 s of " + sig_name + " (" + std::to_string(stop_ms) + " ms)");
    if (exited)
        expect(WIFEXITED(status) && WEXITSTATUS(status) == 0,
               "exit status 0 (wait status " + std::to_string(status) + ")");

    // Its session coroutine printed how the connection ended before main() returned.
    read_until(server, steady::now() + 2s, [](const std::string&) { return false; }); // to EOF
    // "127.0.0.1:<client port> closed: 1001 ...": the peer's address is still known then.
    const auto line = server.output.find("\n127.0.0.1:");
    const auto closed = server.output.find(" closed: 1001", line);
    expect(line != std::string::npos && closed != std::string::npos &&
               server.output.find('\n', line + 1) > closed,
           "its coroutine reports the peer's address and the close with 1001");
    std::printf("     server printed:\n%s", server.output.c_str());
    std::printf("     %lld ms in all\n",
                static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(steady::now() - started).count()));
}

} // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: coro_echo_server_smoke <path to coro_echo_server>\n");
        return 2;
    }
    ::signal(SIGPIPE, SIG_IGN);
    run(argv[1], SIGINT, "SIGINT");
    run(argv[1], SIGTERM, "SIGTERM");
    return failures == 0 ? 0 : 1;
}
