// The buffers of one gathered write: a growable array of asio::const_buffer
// that Asio takes as a buffer sequence (begin/end). 16 bytes in every
// connection instead of a std::vector's 24, and one container type less for
// every file that uses a server to compile.
#pragma once
#include <algorithm>
#include <cstddef>
#include <cstdint>

#include <asio/buffer.hpp>

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
    buffer_list() noexcept = default;
    buffer_list(const buffer_list&) = delete;
    buffer_list& operator=(const buffer_list&) = delete;
    ~buffer_list() { delete[] data_; }

    const asio::const_buffer* begin() const noexcept { return data_; }
    const asio::const_buffer* end() const noexcept { return data_ + size_; }
    /// Valid until the list changes.
    buffer_span span() const noexcept { return {begin(), end()}; }
    bool empty() const noexcept { return size_ == 0; }
    std::size_t size() const noexcept { return size_; }

    void clear() noexcept { size_ = 0; }
    /// Room for n buffers, so that n push_backs cannot throw.
    void reserve(std::size_t n) {
        while (capacity_ < n) grow();
    }
    void push_back(const void* data, std::size_t size) {
        if (size_ == capacity_) grow();
        data_[size_++] = asio::const_buffer(data, size);
    }
    /// Drops the first n bytes (what a partial write took).
    void consume(std::size_t n) noexcept {
        std::uint32_t done = 0;
        while (done < size_ && n >= data_[done].size()) n -= data_[done++].size();
        if (done != 0) {
            std::copy(data_ + done, data_ + size_, data_); // a memmove: a buffer is two words
            size_ -= done;
        }
        if (size_ != 0) data_[0] += n;
    }
    /// Frees the array (an idle connection keeps none).
    void release() noexcept {
        delete[] data_;
        data_ = nullptr;
        size_ = capacity_ = 0;
    }

private:
    void grow() {
        const std::uint32_t cap = capacity_ ? 2 * capacity_ : 8;
        auto* bigger = new asio::const_buffer[cap];
        std::copy(data_, data_ + size_, bigger);
        delete[] data_;
        data_ = bigger;
        capacity_ = cap;
    }

    asio::const_buffer* data_ = nullptr; // owned (no unique_ptr<T[]> to compile for one member)
    std::uint32_t size_ = 0;
    std::uint32_t capacity_ = 0;
};

} // namespace duplex::detail
