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
    std::shared_ptr<void> owner; // keeps `object` alive while the operation is pending (may be empty)
    void* object;
    void (*call)(void* object, std::error_code, std::size_t);

    // post/dispatch call h(), waits h(ec), reads and writes h(ec, n).
    void operator()() const { call(object, {}, 0); }
    void operator()(std::error_code ec) const { call(object, ec, 0); }
    void operator()(std::error_code ec, std::size_t n) const { call(object, ec, n); }
};

// completion that calls (object->*Member)(ec, n); `owner` keeps it alive.
template <auto Member, class T>
completion complete_with(T* object, std::shared_ptr<void> owner = {}) {
    return {std::move(owner), object, [](void* p, std::error_code ec, std::size_t n) { (static_cast<T*>(p)->*Member)(ec, n); }};
}

} // namespace duplex::detail
