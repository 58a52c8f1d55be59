// A set of shared objects keyed by their address, for hub<Connection>. One plain
// class for every connection type: std::unordered_set<std::shared_ptr<Connection>>
// compiled some 170 functions at -O0 in every file that includes a server.
// Open addressing with linear probing, at most 3/4 full (16 B a slot: 21-43 B a
// member, against some 40 for a std::unordered_set node and its bucket); erase
// shifts the entries after the hole back, so there are no tombstones.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <utility>

namespace duplex::detail {

class shared_set {
public:
    shared_set() noexcept = default;
    shared_set(const shared_set&) = delete;
    shared_set& operator=(const shared_set&) = delete;
    ~shared_set() { delete[] slots_; }

    /// Adds p (not null); false if it is already there.
    bool insert(std::shared_ptr<void> p) {
        if (find(p.get()) != npos) return false;
        if (4 * (size_ + 1) > 3 * capacity_) rehash(capacity_ ? 2 * capacity_ : 16); // at most 3/4 full
        std::size_t i = home(p.get());
        while (slots_[i]) i = (i + 1) & (capacity_ - 1);
        slots_[i] = std::move(p);
        ++size_;
        return true;
    }

    /// Removes the entry for address p; false if there is none.
    bool erase(const void* p) noexcept {
        std::size_t hole = find(p);
        if (hole == npos) return false;
        const std::size_t mask = capacity_ - 1;
        // Move back each following entry of the run that may sit at the hole (its
        // home is not cyclically in (hole, j]), so lookups never meet a gap early.
        for (std::size_t j = (hole + 1) & mask; slots_[j]; j = (j + 1) & mask) {
            const std::size_t k = home(slots_[j].get());
            const bool stays = hole <= j ? (hole < k && k <= j) : (hole < k || k <= j);
            if (stays) continue;
            slots_[hole] = std::move(slots_[j]);
            hole = j;
        }
        slots_[hole].reset();
        --size_;
        return true;
    }

    bool contains(const void* p) const noexcept { return find(p) != npos; }
    std::size_t size() const noexcept { return size_; }

    /// Every slot, empty ones (null) included: iterate and skip those.
    const std::shared_ptr<void>* begin() const noexcept { return slots_; }
    const std::shared_ptr<void>* end() const noexcept { return slots_ + capacity_; }

private:
    static constexpr std::size_t npos = ~std::size_t(0);

    // Fibonacci hashing: the high bits of the product spread aligned addresses.
    std::size_t home(const void* p) const noexcept {
        return static_cast<std::size_t>((reinterpret_cast<std::uintptr_t>(p) * std::uint64_t(0x9E3779B97F4A7C15)) >> (64 - bits_));
    }
    std::size_t find(const void* p) const noexcept {
        if (size_ == 0) return npos;
        for (std::size_t i = home(p); slots_[i]; i = (i + 1) & (capacity_ - 1))
            if (slots_[i].get() == p) return i;
        return npos;
    }
    void rehash(std::size_t capacity) {
        std::shared_ptr<void>* old = slots_;
        const std::size_t old_capacity = capacity_;
        slots_ = new std::shared_ptr<void>[capacity]; // throws before anything changed
        capacity_ = capacity;
        bits_ = 0;
        while ((std::size_t(1) << bits_) < capacity) ++bits_;
        for (std::size_t i = 0; i < old_capacity; ++i) {
            if (!old[i]) continue;
            std::size_t j = home(old[i].get());
            while (slots_[j]) j = (j + 1) & (capacity_ - 1);
            slots_[j] = std::move(old[i]);
        }
        delete[] old;
    }

    std::shared_ptr<void>* slots_ = nullptr;
    std::size_t capacity_ = 0; // a power of two, or 0
    std::size_t size_ = 0;
    unsigned bits_ = 0; // log2(capacity_)
};

} // namespace duplex::detail
