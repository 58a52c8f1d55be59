// A growable array for duplex's internal lists (buffers of a write, segments of a
// batch, flushes of a broadcast, counters, parked waits). std::vector<T> compiles
// some 60-110 functions per element type at -O0, in every file that uses a server;
// this compiles a handful. Elements must be default-constructible and movable;
// the capacity doubles, and only release() gives the memory back.
#pragma once
#include <cstddef>
#include <type_traits>
#include <utility>

namespace duplex::detail {

template <class T, class Size = std::size_t>
class plain_vector {
public:
    plain_vector() noexcept = default;
    plain_vector(const plain_vector&) = delete;
    plain_vector& operator=(const plain_vector&) = delete;
    plain_vector(plain_vector&& other) noexcept
        : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)),
          capacity_(std::exchange(other.capacity_, 0)) {}
    plain_vector& operator=(plain_vector&& other) noexcept {
        std::swap(data_, other.data_);
        std::swap(size_, other.size_);
        std::swap(capacity_, other.capacity_);
        return *this;
    }
    ~plain_vector() { delete[] data_; }

    T* begin() noexcept { return data_; }
    T* end() noexcept { return data_ + size_; }
    const T* begin() const noexcept { return data_; }
    const T* end() const noexcept { return data_ + size_; }
    T& operator[](std::size_t i) noexcept { return data_[i]; }
    const T& operator[](std::size_t i) const noexcept { return data_[i]; }
    T& back() noexcept { return data_[size_ - 1]; }
    std::size_t size() const noexcept { return size_; }
    bool empty() const noexcept { return size_ == 0; }
    std::size_t capacity() const noexcept { return capacity_; }

    /// Room for n elements, so that push_backs up to n cannot throw.
    void reserve(std::size_t n) {
        if (n > capacity_) regrow(n);
    }
    void push_back(T v) {
        if (size_ == capacity_) regrow(capacity_ ? 2 * std::size_t(capacity_) : 8);
        data_[size_++] = std::move(v);
    }
    /// Empties it (resetting what the elements hold), keeping the capacity.
    void clear() noexcept { erase_front(size_); }
    /// Drops the first n elements; the others move to the front.
    void erase_front(std::size_t n) noexcept {
        for (std::size_t i = n; i < size_; ++i) data_[i - n] = std::move(data_[i]);
        if constexpr (!std::is_trivially_destructible_v<T>)
            for (std::size_t i = size_ - n; i < size_; ++i) data_[i] = T{};
        size_ = static_cast<Size>(size_ - n);
    }
    /// Empties it and frees the memory.
    void release() noexcept {
        delete[] data_;
        data_ = nullptr;
        size_ = capacity_ = 0;
    }

private:
    void regrow(std::size_t cap) {
        T* bigger = new T[cap];
        for (std::size_t i = 0; i < size_; ++i) bigger[i] = std::move(data_[i]);
        delete[] data_;
        data_ = bigger;
        capacity_ = static_cast<Size>(cap);
    }

    T* data_ = nullptr; // owned (no unique_ptr<T[]> to compile)
    Size size_ = 0;
    Size capacity_ = 0;
};

} // namespace duplex::detail
