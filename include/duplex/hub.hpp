// A set of connections and encode-once broadcast: the frame is built once and
// every receiver's send queue holds a reference to it, written with gather I/O.
#pragma once
#include <cstdint>
#include <cstring>
#include <string>
#include <memory>
#include <mutex>
#include <string_view>
#include <vector>

#include "connection/send_queue.hpp"
#include "core/frame.hpp"
#include "detail/shared_set.hpp"
#if DUPLEX_HAS_DEFLATE
#include "extensions/permessage_deflate.hpp"
#endif

namespace duplex {

namespace detail {
inline std::vector<std::uint8_t> server_frame(opcode op, const void* payload, std::size_t size, bool rsv1) {
    std::vector<std::uint8_t> wire(frame_header_size(size, false) + size);
    const std::size_t header = write_frame_header(wire.data(), op, true, size, nullptr, rsv1);
    if (size != 0) std::memcpy(wire.data() + header, payload, size);
    return wire;
}
} // namespace detail

/// Encodes a server frame once, for sending to many connections.
inline std::shared_ptr<const prepared_message> prepare_message(opcode op, std::string_view payload) {
    auto wire = detail::server_frame(op, payload.data(), payload.size(), false);
    const std::size_t header = wire.size() - payload.size();
    return std::make_shared<const prepared_message>(op, std::move(wire), header);
}

#if DUPLEX_HAS_DEFLATE
/// Encodes a server frame once and, when `deflate` has every receiver's compressor start
/// afresh for each message (enabled and server_no_context_takeover, as a server's
/// options impose it), also compresses it once (RFC 7692 §7.2.1): receivers that
/// negotiated permessage-deflate get the compressed frame, the others the plain one.
/// Not compressed: text or binary under `deflate.threshold` bytes, and a message that
/// would not shrink. basic_server::prepare_message and broadcast use this.
inline std::shared_ptr<const prepared_message> prepare_message(opcode op, std::string_view payload,
                                                               const deflate_options& deflate) {
    if (!deflate.enabled || !deflate.server_no_context_takeover || is_control(op) || payload.size() < deflate.threshold)
        return prepare_message(op, payload);
    deflate_params agreed;
    agreed.enabled = agreed.server_no_context_takeover = true;
    agreed.server_max_window_bits = detail::clamp_window_bits(deflate.server_max_window_bits);
    deflate_codec codec(role::server, agreed, deflate); // zlib's setup: about 1 us of the 4 us a 76-byte chat line takes
    std::string compressed;
    if (codec.compress(payload.data(), payload.size(), compressed) || compressed.size() >= payload.size())
        return prepare_message(op, payload);
    auto shrunk = detail::server_frame(op, compressed.data(), compressed.size(), true);
    const std::size_t shrunk_header = shrunk.size() - compressed.size();
    auto wire = detail::server_frame(op, payload.data(), payload.size(), false);
    const std::size_t header = wire.size() - payload.size();
    return std::make_shared<const prepared_message>(
        op, std::move(wire), header, std::make_shared<const prepared_message>(op, std::move(shrunk), shrunk_header),
        agreed.server_max_window_bits);
}
#endif

/// A thread-safe set of connections (a room, or all clients of a server).
template <class Connection>
class hub {
public:
    using connection_ptr = std::shared_ptr<Connection>;

    void add(connection_ptr c) {
        std::lock_guard<std::mutex> lock(mutex_);
        members_.insert(std::move(c));
    }
    void remove(const connection_ptr& c) {
        std::lock_guard<std::mutex> lock(mutex_);
        members_.erase(c.get());
    }
    bool contains(const connection_ptr& c) const {
        std::lock_guard<std::mutex> lock(mutex_);
        return members_.contains(c.get());
    }
    std::size_t size() const {
        std::lock_guard<std::mutex> lock(mutex_);
        return members_.size();
    }
    /// A copy of the members, to iterate without holding the hub's lock.
    std::vector<connection_ptr> snapshot() const {
        std::lock_guard<std::mutex> lock(mutex_);
        std::vector<connection_ptr> out(members_.size());
        std::size_t n = 0;
        for (const auto& m : members_)
            if (m) out[n++] = std::static_pointer_cast<Connection>(m);
        return out;
    }
    /// Calls f(Connection&) for each member, under the hub's lock (f must not add or remove).
    template <class F>
    void for_each(F&& f) const {
        std::lock_guard<std::mutex> lock(mutex_);
        for (const auto& m : members_)
            if (m) f(*static_cast<Connection*>(m.get()));
    }

    /// Sends one prepared frame to every open member. Returns how many took it
    /// (a member that is closing, or over its send-queue limit, does not).
    std::size_t broadcast(const std::shared_ptr<const prepared_message>& m) const {
        std::size_t sent = 0;
        for_each([&](Connection& c) { sent += !c.send(m); });
        return sent;
    }
    std::size_t broadcast(opcode op, std::string_view payload) const { return broadcast(prepare_message(op, payload)); }
    std::size_t broadcast_text(std::string_view text) const { return broadcast(opcode::text, text); }

private:
    mutable std::mutex mutex_;
    detail::shared_set members_; // of Connection
};

} // namespace duplex
