// Counts by key for server_stats: the server tallies closes by code and refused
// handshakes by error here, and stats() turns them into its std::maps. Updating
// the maps on every close compiled their trees (some 170 functions at -O0) into
// every file that includes a server; a plain array is a few. There are a handful
// of distinct keys in practice, so a linear search is fine.
#pragma once
#include <cstddef>
#include <cstdint>
#include <system_error>

#include "plain_vector.hpp"

namespace duplex::detail {

class tally {
public:
    struct entry {
        int key = 0;
        const std::error_category* category = nullptr; // null for plain numbers
        std::uint64_t count = 0;
    };

    void add(int key, const std::error_category* category = nullptr) {
        for (entry& e : entries_) {
            if (e.key == key && e.category == category) {
                ++e.count;
                return;
            }
        }
        entries_.push_back({key, category, 1});
    }
    void add(std::error_code ec) { add(ec.value(), &ec.category()); }

    const entry* begin() const noexcept { return entries_.begin(); }
    const entry* end() const noexcept { return entries_.end(); }

private:
    plain_vector<entry> entries_;
};

} // namespace duplex::detail
