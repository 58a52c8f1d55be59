// A move-only std::function for completion handlers (which are often move-only).
// It owns its model with a plain pointer: std::unique_ptr compiled some 25
// functions more at -O0 in every file that uses a connection.
#pragma once
#include <type_traits>
#include <utility>

namespace duplex::detail {

template <class Signature>
class unique_function;

template <class R, class... Args>
class unique_function<R(Args...)> {
public:
    unique_function() noexcept = default;
    template <class F>
    unique_function(F&& f) : impl_(new model<std::decay_t<F>>(std::forward<F>(f))) {}
    unique_function(unique_function&& other) noexcept : impl_(std::exchange(other.impl_, nullptr)) {}
    unique_function& operator=(unique_function&& other) noexcept {
        if (this != &other) {
            delete impl_;
            impl_ = std::exchange(other.impl_, nullptr);
        }
        return *this;
    }
    unique_function(const unique_function&) = delete;
    unique_function& operator=(const unique_function&) = delete;
    ~unique_function() { delete impl_; }

    explicit operator bool() const noexcept { return impl_ != nullptr; }
    R operator()(Args... args) { return impl_->call(std::forward<Args>(args)...); }

private:
    struct concept_t {
        virtual ~concept_t() = default;
        virtual R call(Args&&... args) = 0;
    };
    template <class F>
    struct model final : concept_t {
        explicit model(F&& f) : f_(std::move(f)) {}
        explicit model(const F& f) : f_(f) {}
        R call(Args&&... args) override { return f_(std::forward<Args>(args)...); }
        F f_;
    };
    concept_t* impl_ = nullptr;
};

} // namespace duplex::detail
