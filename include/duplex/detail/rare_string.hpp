// A string most connections never set (the subprotocol, the peer's close
// reason, the address for log lines): one pointer until it is set, instead of
// std::string's 32 bytes in every connection.
#pragma once
#include <string>
#include <string_view>

#include "owned.hpp"

namespace duplex::detail {

class rare_string {
public:
    const std::string& get() const noexcept {
        static const std::string empty;
        return s_ ? *s_ : empty;
    }
    void assign(std::string_view v) {
        if (v.empty()) s_.reset();
        else if (s_) s_->assign(v.data(), v.size());
        else s_.emplace(v);
    }

private:
    owned<std::string> s_;
};

} // namespace duplex::detail
