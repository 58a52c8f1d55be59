// The buffers of one gathered write: a growable array of asio::const_buffer
// that Asio takes as a buffer sequence (begin/end). 16 bytes in every
// connection instead of a std::vector's 24, and one container type less for
// every file that uses a server to compile.
#pragma once
#include <cstddef>
#include <cstdint>

#include <asio/buffer.hpp>

#include "plain_vector.hpp"

namespace duplex::detail {

// What Asio is given: a view of a buffer_list (Asio copies buffer sequences into
// its operations; copying this copies two pointers, never the buffers).
struct buffer_span {
    const asio::const_buffer* first;
    const asio::const_buffer* last;
    const asio::const_buffer* begin() const noexcept { return first; }
    const asio::const_buffer* end() const noexcept { return last; }
};

class buffer_list {
public:
    const asio::const_buffer* begin() const noexcept { return list_.begin(); }
    const asio::const_buffer* end() const noexcept { return list_.end(); }
    /// Valid until the list changes.
    buffer_span span() const noexcept { return {begin(), end()}; }
    bool empty() const noexcept { return list_.empty(); }
    std::size_t size() const noexcept { return list_.size(); }

    void clear() noexcept { list_.clear(); }
    /// Room for n buffers, so that n push_backs cannot throw.
    void reserve(std::size_t n) { list_.reserve(n); }
    void push_back(const void* data, std::size_t size) { list_.push_back(asio::const_buffer(data, size)); }
    /// Drops the first n bytes (what a partial write took).
    void consume(std::size_t n) noexcept {
        std::size_t done = 0;
        while (done < list_.size() && n >= list_[done].size()) n -= list_[done++].size();
        list_.erase_front(done);
        if (!list_.empty()) list_[0] += n;
    }
    /// Frees the array (an idle connection keeps none).
    void release() noexcept { list_.release(); }

private:
    plain_vector<asio::const_buffer, std::uint32_t> list_;
};

} // namespace duplex::detail
