// libFuzzer target: the send queue under backpressure_policy::drop_oldest. The input is
// a script of sends on one protocol (server or client role, a small queue limit):
// whole text messages, shared broadcast frames, pings, fragmented messages (never
// dropped), and the writer taking what is queued. Everything taken is fed to a peer
// protocol of the other role. Whatever was dropped, the peer reads whole, valid frames
// (RFC 6455 §5.2, §5.4: no fragment of another message in between); the messages it gets
// come in the order sent; each whole message sent is either received or counted as
// dropped; every fragmented message and every ping arrives; and the queue stays within
// its limit when a message goes in (a larger one only alone).
#include <duplex/connection/protocol.hpp>
#include <duplex/hub.hpp> // prepare_message

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "fuzz_check.hpp"

namespace {

using namespace duplex;

struct recorder {
    std::vector<std::string> messages;
    std::vector<std::string> pings;
    std::vector<std::string> errors;
    void on_message(opcode, std::string_view data, bool last) {
        FUZZ_CHECK(last);
        messages.emplace_back(data);
    }
    void on_ping(std::string_view p) { pings.emplace_back(p); }
    void on_pong(std::string_view) {}
    void on_close_frame(std::uint16_t, std::string_view) {}
    void on_protocol_error(std::error_code ec) { errors.push_back(ec.message()); }
};

// Takes everything queued, as the writer would (a whole batch, then done with it).
template <role R>
void take(basic_protocol<R>& p, std::string& wire) {
    std::lock_guard<send_mutex> lock(p.mutex());
    send_queue& q = p.queue();
    if (!q.has_pending()) return;
    const auto& b = q.begin_write();
    for (const auto& s : b.segments) wire.append(reinterpret_cast<const char*>(b.data(s)), s.size);
    q.end_write();
}

// The bytes of a frame of `payload` bytes (§5.2; a client's carries a masking key).
std::size_t framed(std::size_t payload, role r) {
    return payload + (payload < 126 ? 2 : payload < 65536 ? 4 : 10) + (r == role::client ? 4 : 0);
}

// "<number>:" then filler: the number tells the order, the filler the size.
std::string body(int number, std::size_t size) {
    std::string s = std::to_string(number) + ":";
    s.append(size, static_cast<char>('a' + number % 26));
    return s;
}

template <role R>
void run(fuzz_input& in, std::size_t limit) {
    constexpr role peer_role = R == role::server ? role::client : role::server;
    connection_options o;
    o.send_queue_limit = limit;
    o.backpressure = backpressure_policy::drop_oldest;
    o.max_message_size = 1 << 20;
    basic_protocol<R> sender(o);
    basic_protocol<peer_role> peer(o);
    const auto t0 = std::chrono::steady_clock::now();
    sender.open(t0);
    peer.open(t0);

    std::string wire;
    int number = 0;            // of the next message
    std::size_t whole_sent = 0; // whole messages accepted (droppable)
    std::vector<std::string> must_arrive; // fragmented messages: never dropped
    int pings = 0;
    bool broken = false;        // a fragment was refused half-way: the stream ends there
    while (in.n > 0 && !broken) {
        const std::uint8_t op = in.byte();
        const std::size_t size = std::size_t(in.byte()) * (op & 0x80 ? 32 : 2);
        const std::size_t before = sender.buffered_amount();
        std::size_t accepted = 0; // a whole message's frame size, when one went in
        switch (op % 8) {
        case 0:
        case 1:
        case 2: {
            const std::string m = body(number, size);
            if (!sender.send_text(m)) accepted = framed(m.size(), R), ++number, ++whole_sent;
            else FUZZ_CHECK(before > 0); // refused only when others wait that cannot go
            break;
        }
        case 3: {
            const std::string m = body(number, size);
            if (!sender.send(prepare_message(opcode::text, m))) accepted = framed(m.size(), R), ++number, ++whole_sent;
            else FUZZ_CHECK(before > 0);
            break;
        }
        case 4:
            if (!sender.ping(std::to_string(pings))) ++pings;
            break;
        case 5: { // a fragmented message of 1-4 pieces
            const std::string m = body(number, size);
            const std::size_t pieces = 1 + in.byte() % 4;
            const std::size_t step = m.size() / pieces + 1;
            bool started = false;
            for (std::size_t at = 0; at < m.size(); at += step) {
                const bool fin = at + step >= m.size();
                const std::string piece = m.substr(at, step);
                if (sender.send_fragment(started ? opcode::continuation : opcode::text, piece.data(), piece.size(), fin)) {
                    broken = started; // refused before it began: nothing was sent
                    break;
                }
                started = true;
                if (fin) {
                    must_arrive.push_back(m);
                    ++number;
                }
            }
            break;
        }
        default:
            take(sender, wire);
            break;
        }
        // A whole message goes in within the limit, or alone past it (all else dropped,
        // or nothing was waiting). Control frames are never held back: they alone may
        // take the queue past it.
        if (accepted) FUZZ_CHECK(sender.buffered_amount() <= limit || sender.buffered_amount() == accepted);
    }
    take(sender, wire);
    recorder r;
    peer.receive(reinterpret_cast<std::uint8_t*>(wire.data()), wire.size(), r, t0);
    FUZZ_CHECK(r.errors.empty());

    const std::uint64_t dropped = sender.stats().messages_dropped;
    if (!broken) FUZZ_CHECK(r.messages.size() + dropped == whole_sent + must_arrive.size());
    int last = -1;
    std::size_t next_fragmented = 0;
    for (const auto& m : r.messages) {
        const int n = std::stoi(m);
        FUZZ_CHECK(n > last); // in the order sent
        last = n;
        if (next_fragmented < must_arrive.size() && m == must_arrive[next_fragmented]) ++next_fragmented;
    }
    FUZZ_CHECK(next_fragmented == must_arrive.size()); // every fragmented message, whole
    FUZZ_CHECK(r.pings.size() == static_cast<std::size_t>(pings));
    for (int i = 0; i < pings; ++i) FUZZ_CHECK(r.pings[static_cast<std::size_t>(i)] == std::to_string(i));
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    fuzz_input in{data, size};
    const std::uint8_t flags = in.byte();
    const std::size_t limit = 256 + std::size_t(flags >> 1) * 64; // 256 B .. 8.4 KB
    if (flags & 1) run<role::client>(in, limit);
    else run<role::server>(in, limit);
    return 0;
}
