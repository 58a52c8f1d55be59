// Counts by key for server_stats: the server tallies closes by code and refused
// handshakes by error here, and stats() turns them into its std::maps. Updating
// the maps on every close compiled their trees (some 170 functions at -O0) into
// every file that includes a server; a plain array is a few. There are a handful
// of distinct keys in practice, so a linear search is fine.
#pragma once
#include <cstddef>
#include <cstdint>
#include <system_error>

namespace duplex::detail {

class tally {
public:
    struct entry {
        int key;
        const std::error_category* category; // null for plain numbers
        std::uint64_t count;
    };

    tally() noexcept = default;
    tally(const tally&) = delete;
    tally& operator=(const tally&) = delete;
    ~tally() { delete[] entries_; }

    void add(int key, const std::error_category* category = nullptr) {
        for (std::size_t i = 0; i < size_; ++i) {
            if (entries_[i].key == key && entries_[i].category == category) {
                ++entries_[i].count;
                return;
            }
        }
        if (size_ == capacity_) {
            const std::size_t cap = capacity_ ? 2 * capacity_ : 8;
            entry* bigger = new entry[cap];
            for (std::size_t i = 0; i < size_; ++i) bigger[i] = entries_[i];
            delete[] entries_;
            entries_ = bigger;
            capacity_ = cap;
        }
        entries_[size_++] = {key, category, 1};
    }
    void add(std::error_code ec) { add(ec.value(), &ec.category()); }

    const entry* begin() const noexcept { return entries_; }
    const entry* end() const noexcept { return entries_ + size_; }

private:
    entry* entries_ = nullptr;
    std::size_t size_ = 0;
    std::size_t capacity_ = 0;
};

} // namespace duplex::detail
