// Sole ownership of one heap object, with only the members duplex uses. At -O0
// std::unique_ptr<T> compiles 25-50 functions per type T (its tuple storage,
// deleter, swap, ...) in every file that includes a server; this compiles a few.
#pragma once
#include <utility>

namespace duplex::detail {

template <class T>
class owned {
public:
    owned() noexcept = default;
    owned(const owned&) = delete;
    owned& operator=(const owned&) = delete;
    owned(owned&& other) noexcept : p_(other.p_) { other.p_ = nullptr; }
    owned& operator=(owned&& other) noexcept {
        if (this != &other) {
            delete p_;
            p_ = other.p_;
            other.p_ = nullptr;
        }
        return *this;
    }
    ~owned() { delete p_; }

    /// Makes the object (throws what new and T's constructor throw).
    template <class... Args>
    T& emplace(Args&&... args) {
        reset();
        p_ = new T(std::forward<Args>(args)...);
        return *p_;
    }
    /// Frees the object and takes ownership of p (which may be null).
    void reset(T* p = nullptr) noexcept {
        delete p_;
        p_ = p;
    }

    T* get() const noexcept { return p_; }
    T& operator*() const noexcept { return *p_; }
    T* operator->() const noexcept { return p_; }
    explicit operator bool() const noexcept { return p_ != nullptr; }

private:
    T* p_ = nullptr;
};

} // namespace duplex::detail
