// Slow consumers, measured: a duplex server broadcasts to 1,000 clients of which
// 100 never read (raw sockets that handshake, then never read again), with
// send_queue_limit lowered to 256 KiB. The clients run in a child process, so the
// RSS measured (/proc/self/statm of the server process) is the server's alone.
// Checks: the 900 readers receive every broadcast exactly once and in order, the
// 100 sleepers are cut with send_queue_full (1008), and the server's RSS peak stays
// under a bound derived from the configuration:
//   idle + connections x per_connection + sleepers x send_queue_limit + window x size + slack
// Environment: DUPLEX_SLOW_CLIENTS (1000), DUPLEX_SLOW_SLEEPERS (100),
// DUPLEX_SLOW_MESSAGES (192 broadcasts of 32 KiB: more than a sleeper's kernel buffers,
// up to ~4 MiB on Linux, plus its queue limit).
#include <duplex/server.hpp>

#include <malloc.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include <cinttypes>
#include <memory>
#include <optional>
#include <vector>

#include "soak_util.hpp"

using namespace std::chrono_literals;
using sclock = soak::clock;

namespace {

constexpr std::size_t max_clients = 4096;
const long total_clients = soak::env_long("DUPLEX_SLOW_CLIENTS", 1000);
const long sleepers = std::min(soak::env_long("DUPLEX_SLOW_SLEEPERS", 100), total_clients - 1);
const long readers = total_clients - sleepers;
const long messages = soak::env_long("DUPLEX_SLOW_MESSAGES", 192);
constexpr std::size_t message_size = 32 * 1024;
constexpr std::size_t send_queue_limit = 256 * 1024;
// Broadcasts ahead of the slowest reader. The server counts a batch as buffered until
// its whole write completes, and a reader already has the first messages of a batch by
// then: under load a reader's queue reached 7 x 32 KiB with a window of 4. Window 1 keeps
// it at a few messages, far under the limit.
constexpr long window = 1;
// Server-side cost of one open connection, as the bound assumes it: the 16 KiB read
// buffer, the connection object with its protocol state, parser and send queue, the
// retained upgrade request, Asio's socket and strand state. Measured: ~20 KiB.
constexpr std::size_t per_connection = 32 * 1024;
constexpr std::size_t slack = std::size_t(16) << 20; // allocator arenas of 2 server threads, fragmentation

// Shared between the server (parent) and the clients (child) process.
struct shared_state {
    std::atomic<std::uint16_t> port{0};
    std::atomic<int> readers_open{0}, sleepers_open{0}, readers_closed{0};
    std::atomic<int> go_close{0}, child_failures{0};
    std::atomic<std::uint64_t> received[max_clients];
    std::atomic<std::uint64_t> out_of_order{0};
};

using client_conn = duplex::basic_connection<duplex::role::client, duplex::tcp_transport>;

bool wait_for(const std::function<bool()>& cond, std::chrono::milliseconds limit) {
    const auto end = sclock::now() + limit;
    while (!cond()) {
        if (sclock::now() >= end) return false;
        std::this_thread::sleep_for(1ms);
    }
    return true;
}

// ---------------------------------------------------------------- the clients (child)

int run_clients(shared_state& sh) {
    if (!wait_for([&] { return sh.port.load() != 0; }, 30s)) return 10;
    const std::uint16_t port = sh.port.load();
    asio::io_context io;
    std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work{io.get_executor()};
    std::vector<std::shared_ptr<client_conn>> conns;
    for (long i = 0; i < readers; ++i) {
        auto cfg = std::make_shared<duplex::endpoint_config<client_conn>>();
        cfg->request.host = "127.0.0.1";
        cfg->connection.ping_interval = 0ms; // the server does the heartbeat
        cfg->on_open = [&sh](client_conn&) { ++sh.readers_open; };
        cfg->on_message = [&sh, i](client_conn&, const duplex::message& m) {
            // "b:<seq>:" + padding; seq must be exactly the count so far.
            const std::uint64_t seq = std::strtoull(std::string(m.data.substr(2, 12)).c_str(), nullptr, 10);
            if (seq != sh.received[i].load() || m.data.size() != message_size) ++sh.out_of_order;
            ++sh.received[i];
        };
        cfg->on_close = [&sh](client_conn&, std::uint16_t, std::string_view) { ++sh.readers_closed; };
        asio::ip::tcp::socket s(asio::make_strand(io)); // 2 threads run io: one strand per connection
        std::error_code ec;
        s.connect({asio::ip::make_address("127.0.0.1"), port}, ec);
        if (ec) return 11;
        auto c = std::make_shared<client_conn>(duplex::tcp_transport(std::move(s)), cfg);
        c->start_connect();
        conns.push_back(std::move(c));
    }
    std::vector<std::thread> threads;
    for (int i = 0; i < 2; ++i) threads.emplace_back([&] { io.run(); });
    std::vector<std::unique_ptr<soak::raw_socket>> sleeping;
    for (long i = 0; i < sleepers; ++i) {
        auto s = std::make_unique<soak::raw_socket>();
        std::string head;
        const auto deadline = sclock::now() + 20s;
        // A small receive buffer: the kernel holds less for it (the server's send buffer still grows).
        if (!s->connect(port, 4096) || s->send_all(soak::upgrade_request(), deadline) != soak::raw_socket::io::ok ||
            s->read_until(head, "\r\n\r\n", deadline) != soak::raw_socket::io::ok || head.compare(0, 12, "HTTP/1.1 101") != 0)
            ++sh.child_failures;
        else
            ++sh.sleepers_open; // and never reads again
        sleeping.push_back(std::move(s));
    }
    int rc = 0;
    if (!wait_for([&] { return sh.go_close.load() != 0; }, 150s)) rc = 12;
    for (auto& c : conns) asio::post(c->get_executor(), [c] { c->close(); });
    if (!wait_for([&] { return sh.readers_closed.load() == readers; }, 20s)) rc = 13;
    work.reset();
    io.stop();
    for (auto& t : threads) t.join();
    conns.clear();
    sleeping.clear();
    return rc;
}

} // namespace

// ---------------------------------------------------------------- the server (parent)

int main() {
    if (total_clients > static_cast<long>(max_clients)) return 2;
    const rlim_t fds = soak::raise_fd_limit();
    if (fds < static_cast<rlim_t>(total_clients + 64)) {
        std::fprintf(stderr, "slow_consumers: descriptor limit %lu too low\n", static_cast<unsigned long>(fds));
        return 1;
    }
    std::setvbuf(stdout, nullptr, _IOLBF, 0);
    void* mem = mmap(nullptr, sizeof(shared_state), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) return 1;
    auto* sh = new (mem) shared_state();
    const pid_t child = fork(); // before any thread exists
    if (child < 0) return 1;
    if (child == 0) _exit(run_clients(*sh));

    const auto t0 = sclock::now();
    bool ok = true;
    auto require = [&](bool cond, const char* what) {
        if (!cond) {
            std::fprintf(stderr, "slow_consumers: CHECK FAILED: %s\n", what);
            ok = false;
        }
    };
    std::size_t rss_idle = 0, rss_open = 0, rss_after = 0, rss_after_untrimmed = 0, peak = 0;
    std::atomic<std::uint64_t> queue_full{0}, other_errors{0};
    std::uint64_t delivered = 0;
    std::size_t left_after_cut = 0;
    {
        asio::io_context io;
        std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work{io.get_executor()};
        duplex::server_options o;
        o.connection.send_queue_limit = send_queue_limit;
        o.connection.close_timeout = 1000ms;
        duplex::server srv(io, o);
        srv.on_error([&](auto&, std::error_code ec) {
            if (ec == duplex::errc::send_queue_full) ++queue_full;
            else ++other_errors;
        });
        if (srv.listen(0, "127.0.0.1")) return 1;
        std::vector<std::thread> threads;
        for (int i = 0; i < 2; ++i) threads.emplace_back([&] { io.run(); });
        std::this_thread::sleep_for(100ms);
        malloc_trim(0);
        rss_idle = soak::rss_bytes();
        soak::rss_sampler sampler;
        sh->port = srv.port();

        require(wait_for([&] { return sh->readers_open.load() + sh->sleepers_open.load() + sh->child_failures.load() == total_clients; }, 90s),
                "every client connected");
        require(sh->child_failures.load() == 0, "every sleeper completed its handshake");
        require(wait_for([&] { return srv.connection_count() == static_cast<std::size_t>(total_clients); }, 10s), "the server has every connection");
        rss_open = soak::rss_bytes();
        std::printf("slow_consumers: %ld connections open (%ld readers, %ld never read), rss %.1f MiB (idle %.1f MiB: %.1f KiB per connection)\n",
                    total_clients, readers, sleepers, soak::mib(rss_open), soak::mib(rss_idle),
                    static_cast<double>(rss_open - std::min(rss_open, rss_idle)) / 1024.0 / static_cast<double>(total_clients));

        // Broadcast, paced by the slowest reader (never by the sleepers).
        auto slowest_reader = [&] {
            std::uint64_t m = ~std::uint64_t(0);
            for (long i = 0; i < readers; ++i) m = std::min(m, sh->received[i].load());
            return m;
        };
        const std::string padding(message_size, 'x');
        for (long n = 0; n < messages && ok; ++n) {
            if (!wait_for([&] { return static_cast<long>(slowest_reader()) >= n - window; }, 30s)) {
                require(false, "readers keep up with the broadcasts");
                break;
            }
            std::string m = "b:" + std::to_string(n) + ":";
            m += padding.substr(0, message_size - m.size());
            delivered += srv.broadcast(duplex::opcode::binary, m);
        }
        require(wait_for([&] { return static_cast<long>(slowest_reader()) == messages; }, 30s), "every reader received every broadcast");
        require(wait_for([&] { return srv.connection_count() == static_cast<std::size_t>(readers); }, 10s), "every sleeper was cut");
        left_after_cut = srv.connection_count();
        sampler.stop();
        peak = std::max(sampler.peak(), soak::rss_bytes());

        sh->go_close = 1;
        require(wait_for([&] { return srv.connection_count() == 0; }, 30s), "every reader closed");
        work.reset();
        srv.stop();
        for (auto& t : threads) t.join();
    }
    rss_after_untrimmed = soak::rss_bytes();
    malloc_trim(0);
    rss_after = soak::rss_bytes();
    int status = 0;
    waitpid(child, &status, 0);
    require(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the client process exited cleanly");

    const std::size_t bound = rss_idle + static_cast<std::size_t>(total_clients) * per_connection +
                              static_cast<std::size_t>(sleepers) * send_queue_limit + window * message_size + slack;
    const std::uint64_t expected_deliveries = static_cast<std::uint64_t>(readers) * static_cast<std::uint64_t>(messages);
    std::uint64_t got = 0;
    for (long i = 0; i < readers; ++i) got += sh->received[i].load();
    std::printf("slow_consumers: %ld broadcasts of %zu KiB (%.1f MiB), send_queue_limit %zu KiB, %.1f s\n", messages, message_size / 1024,
                soak::mib(static_cast<std::size_t>(messages) * message_size), send_queue_limit / 1024,
                std::chrono::duration<double>(sclock::now() - t0).count());
    std::printf("slow_consumers: readers received %" PRIu64 " of %" PRIu64 " (out of order or damaged: %" PRIu64 "); "
                "sleepers cut with send_queue_full: %" PRIu64 " of %ld; other errors: %" PRIu64 "; connections left after the cut: %zu\n",
                got, expected_deliveries, sh->out_of_order.load(), queue_full.load(), sleepers, other_errors.load(), left_after_cut);
    std::printf("slow_consumers: rss idle %.1f MiB, with %ld connections %.1f MiB, peak %.1f MiB, after %.1f MiB (%.1f MiB before malloc_trim)\n",
                soak::mib(rss_idle), total_clients, soak::mib(rss_open), soak::mib(peak), soak::mib(rss_after), soak::mib(rss_after_untrimmed));
    std::printf("slow_consumers: bound %.1f MiB = idle + %ld x %zu KiB + %ld x %zu KiB + %ld x %zu KiB + %zu MiB\n", soak::mib(bound),
                total_clients, per_connection / 1024, sleepers, send_queue_limit / 1024, window, message_size / 1024, slack >> 20);
    require(got == expected_deliveries && sh->out_of_order.load() == 0, "the readers received every broadcast exactly once, in order");
    require(queue_full.load() == static_cast<std::uint64_t>(sleepers), "each sleeper was cut for its send queue");
    require(other_errors.load() == 0, "no other connection failed");
    // Sanitizers add their own memory (ASan's quarantine and redzones, TSan's shadow):
    // the bound is only checked in a plain build; the figures are printed either way.
    if (!soak::sanitized) {
        require(peak <= bound, "the peak RSS stays within the bound");
        require(rss_after <= rss_idle + slack, "the RSS is back near idle once every connection closed");
    }
    std::printf("slow_consumers: %s\n", ok ? "PASSED" : "FAILED");
    return ok ? 0 : 1;
}
