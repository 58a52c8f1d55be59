// A received message as user code sees it.
#pragma once
#include <string>
#include <string_view>

#include "../core/opcode.hpp"

namespace duplex {

/// A whole message (or, when streaming, one piece of it). The bytes are only
/// valid during the callback that receives it: copy them (`str()`) to keep them.
struct message {
    opcode op = opcode::text;
    std::string_view data;
    bool last = true; ///< false for all but the last piece of a streamed message

    bool is_text() const noexcept { return op == opcode::text; }
    bool is_binary() const noexcept { return op == opcode::binary; }
    std::string_view text() const noexcept { return data; }
    std::string str() const { return std::string(data); }
};

} // namespace duplex
