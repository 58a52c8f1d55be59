// Frame opcodes and endpoint roles (RFC 6455 §5.2).
#pragma once
#include <cstdint>

namespace duplex {

/// Which end of the connection this code plays. Clients mask every frame they
/// send and must receive unmasked frames; servers the other way round (§5.1).
enum class role : std::uint8_t { client, server };

enum class opcode : std::uint8_t {
    continuation = 0x0,
    text = 0x1,
    binary = 0x2,
    close = 0x8,
    ping = 0x9,
    pong = 0xA,
};

constexpr bool is_control(opcode op) noexcept { return (static_cast<std::uint8_t>(op) & 0x8) != 0; }
constexpr bool is_data(opcode op) noexcept { return op == opcode::text || op == opcode::binary; }
/// 0x3-0x7 and 0xB-0xF are reserved for future use (§5.2).
constexpr bool is_reserved(std::uint8_t op) noexcept {
    return (op >= 0x3 && op <= 0x7) || op >= 0xB;
}

} // namespace duplex
