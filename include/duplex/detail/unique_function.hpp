// A move-only std::function for completion handlers (which are often move-only).
#pragma once
#include <memory>
#include <utility>

namespace duplex::detail {

template <class Signature>
class unique_function;

template <class R, class... Args>
class unique_function<R(Args...)> {
public:
    unique_function() = default;
    template <class F>
    unique_function(F&& f) : impl_(new model<std::decay_t<F>>(std::forward<F>(f))) {}
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
    std::unique_ptr<concept_t> impl_;
};

} // namespace duplex::detail
