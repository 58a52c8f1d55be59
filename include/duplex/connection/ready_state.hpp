// The connection states user code sees: the browser's WebSocket.readyState.
#pragma once
#include <cstdint>

namespace duplex {

/// Mirrors `WebSocket.readyState` (0-3). Finer bookkeeping (who sent close
/// first, whether the handshake completed) stays inside the protocol.
enum class ready_state : std::uint8_t {
    connecting = 0, ///< opening handshake in progress
    open = 1,       ///< messages flow both ways
    closing = 2,    ///< a close frame was sent or received
    closed = 3,     ///< the transport is closed
};

constexpr const char* to_string(ready_state s) noexcept {
    switch (s) {
    case ready_state::connecting: return "CONNECTING";
    case ready_state::open: return "OPEN";
    case ready_state::closing: return "CLOSING";
    case ready_state::closed: return "CLOSED";
    }
    return "?";
}

} // namespace duplex
