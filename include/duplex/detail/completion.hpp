// The one completion-handler type of every asynchronous operation duplex starts.
// Asio instantiates its operation classes (and their allocator, executor and
// work-tracking machinery) once per handler type. A lambda per call site made
// every translation unit that uses a server compile dozens of copies of that;
// with one type, each kind of operation is compiled once.
#pragma once
#include <cstddef>
#include <memory>
#include <system_error>
#include <utility>

namespace duplex::detail {

struct completion {
    // The object called; it owns the object while the operation is pending, unless
    // made without an owner (then it only points: an aliasing shared_ptr of nothing).
    // One pointer pair, not an owner and a pointer: every pending operation is 8 bytes
    // smaller, and an idle connection's read wait falls into a smaller malloc chunk.
    std::shared_ptr<void> target;
    void (*call)(void* object, std::error_code, std::size_t);

    // post/dispatch call h(), waits h(ec), reads and writes h(ec, n).
    void operator()() const { call(target.get(), {}, 0); }
    void operator()(std::error_code ec) const { call(target.get(), ec, 0); }
    void operator()(std::error_code ec, std::size_t n) const { call(target.get(), ec, n); }
};

// completion that calls (object->*Member)(ec, n); `owner` (if any) keeps it alive.
template <auto Member, class T>
completion complete_with(T* object, std::shared_ptr<void> owner = {}) {
    void* const p = object;
    if (owner.get() != p) owner = std::shared_ptr<void>(owner, p); // usually owner is object already
    return {std::move(owner), [](void* q, std::error_code ec, std::size_t n) { (static_cast<T*>(q)->*Member)(ec, n); }};
}

} // namespace duplex::detail
