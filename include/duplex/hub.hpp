// A set of connections and encode-once broadcast: the frame is built once and
// every receiver's send queue holds a reference to it, written with gather I/O.
#pragma once
#include <cstdint>
#include <memory>
#include <mutex>
#include <string_view>
#include <vector>

#include "connection/send_queue.hpp"
#include "core/frame.hpp"
#include "detail/shared_set.hpp"

namespace duplex {

/// Encodes a server frame once, for sending to many connections.
inline std::shared_ptr<const prepared_message> prepare_message(opcode op, std::string_view payload) {
    std::vector<std::uint8_t> wire(frame_header_size(payload.size(), false) + payload.size());
    const std::size_t header = write_frame_header(wire.data(), op, true, payload.size());
    if (!payload.empty()) std::memcpy(wire.data() + header, payload.data(), payload.size());
    return std::make_shared<const prepared_message>(op, std::move(wire), header);
}

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
