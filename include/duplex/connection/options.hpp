// Runtime options of a connection: limits, timeouts, heartbeat, backpressure.
#pragma once
#include <chrono>
#include <cstddef>

#include "../extensions/deflate_negotiation.hpp"

namespace duplex {

namespace detail {
// t + d, or time_point::max() (never) where that would overflow: a timeout of
// milliseconds::max() asks for no timeout, not for a wrap-around into the past
// (milliseconds::max() does not fit steady_clock's 64-bit nanoseconds).
inline std::chrono::steady_clock::time_point later(std::chrono::steady_clock::time_point t,
                                                   std::chrono::milliseconds d) noexcept {
    using time_point = std::chrono::steady_clock::time_point;
    if (d.count() <= 0 || t == time_point::max()) return t;
    const auto room = std::chrono::duration_cast<std::chrono::milliseconds>(time_point::max() - t);
    return d >= room ? time_point::max() : t + d;
}
} // namespace detail

/// What happens when a send would push the queued bytes over `send_queue_limit`.
enum class backpressure_policy : std::uint8_t {
    close,  ///< the send fails with errc::send_queue_full and the connection closes with 1008
    reject, ///< the send fails with errc::send_queue_full; the connection stays open
    /// The send succeeds: the oldest whole messages still waiting (not being written) go
    /// unsent until it fits with a quarter of the limit to spare (each drop copies what
    /// stays), so a slow reader gets the latest ones (prices, positions, a clock).
    /// Control frames, fragments and messages compressed with context takeover are
    /// never dropped; when dropping cannot make room, as reject.
    /// connection_stats::messages_dropped counts them.
    drop_oldest,
};

/// Options every connection has, server or client.
struct connection_options {
    /// Largest message accepted (sum of its frames); bigger ones close with 1009.
    std::size_t max_message_size = 16 * 1024 * 1024;
    /// Largest payload of one data frame (the wire size, compressed if so); bigger
    /// frames close with 1009 (errc::frame_too_big), refused from the header alone.
    /// 0: no per-frame limit, only max_message_size applies.
    std::size_t max_frame_size = 0;
    /// Bytes that may wait in the send queue, frame headers included (buffered_amount(),
    /// like the browser's bufferedAmount), before `backpressure` applies. A message is
    /// always accepted into an empty queue.
    std::size_t send_queue_limit = 16 * 1024 * 1024;
    backpressure_policy backpressure = backpressure_policy::close;

    // Timeouts: any value up to std::chrono::milliseconds::max() (which, like one that
    // lands past the clock's range, means never).

    /// Heartbeat: ping a peer that has sent nothing for this long (0: never)...
    std::chrono::milliseconds ping_interval{20000};
    /// ...and give up on it (reported as 1006) when it stays silent this much longer
    /// (0: never give up; a silent peer is pinged again every ping_interval).
    std::chrono::milliseconds pong_timeout{20000};
    /// Close with 1001 when no message went either way for this long (0: never).
    std::chrono::milliseconds idle_timeout{0};
    /// How long to wait for the peer's answer to our close frame before cutting TCP
    /// (0: do not wait).
    std::chrono::milliseconds close_timeout{5000};
    /// How long the opening handshake may take (a slow-loris defence; 0: unbounded).
    std::chrono::milliseconds handshake_timeout{10000};

    /// permessage-deflate (RFC 7692): what a client offers and a server accepts.
    /// Off by default: with 15-bit windows zlib costs 100-230 KB per connection
    /// (benchmarks/deflate_memory). Needs duplex built with zlib (DUPLEX_HAS_DEFLATE); ignored otherwise.
    deflate_options deflate = [] {
        deflate_options d;
        d.enabled = false;
        return d;
    }();

    /// Deliver each message piece by piece as it arrives instead of whole
    /// (compressed messages are still delivered whole).
    bool stream_messages = false;
    /// Bytes read from the transport at most per read call. Pages of it that
    /// were never filled cost no memory; a large buffer means fewer reads.
    std::size_t read_buffer_size = 64 * 1024;
};

} // namespace duplex
