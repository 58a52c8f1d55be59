// The lock of each connection's send queue: 4 bytes instead of std::mutex's
// 40, in every connection. Taking and releasing it uncontended is one atomic
// operation each, as with std::mutex; a contended waiter spins briefly, then
// sleeps on a futex. The design is the three-state futex mutex of Drepper's
// "Futexes Are Tricky" (as in Rust's standard library). std::mutex elsewhere.
#pragma once
#include <atomic>
#include <cstdint>
#include <mutex>

#if defined(__linux__)
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

namespace duplex::detail {

#if defined(__linux__) && defined(SYS_futex) // time64-only 32-bit targets have no SYS_futex
class small_mutex {
public:
    small_mutex() = default;
    small_mutex(const small_mutex&) = delete;
    small_mutex& operator=(const small_mutex&) = delete;

    void lock() noexcept {
        std::uint32_t s = unlocked;
        if (!state_.compare_exchange_strong(s, locked, std::memory_order_acquire, std::memory_order_relaxed))
            lock_contended();
    }
    bool try_lock() noexcept {
        std::uint32_t s = unlocked;
        return state_.compare_exchange_strong(s, locked, std::memory_order_acquire, std::memory_order_relaxed);
    }
    void unlock() noexcept {
        if (state_.exchange(unlocked, std::memory_order_release) == contended) wake_one();
    }

private:
    static constexpr std::uint32_t unlocked = 0, locked = 1, contended = 2; // contended: someone may sleep

    void lock_contended() noexcept {
        std::uint32_t s = spin();
        if (s == unlocked &&
            state_.compare_exchange_strong(s, locked, std::memory_order_acquire, std::memory_order_relaxed))
            return;
        for (;;) {
            // Marked contended, so that the unlock wakes us; taking it from unlocked locks it.
            if (s != contended && state_.exchange(contended, std::memory_order_acquire) == unlocked) return;
            syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&state_), FUTEX_WAIT_PRIVATE, contended, nullptr,
                    nullptr, 0); // returns at once if it is no longer contended
            s = spin();
        }
    }
    // Waits a little while it is locked without sleepers: sections under this lock are short.
    std::uint32_t spin() noexcept {
        for (int i = 0;; ++i) {
            const std::uint32_t s = state_.load(std::memory_order_relaxed);
            if (s != locked || i == 100) return s;
#if defined(__x86_64__) || defined(__i386__)
            __builtin_ia32_pause();
#endif
        }
    }
    void wake_one() noexcept {
        syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&state_), FUTEX_WAKE_PRIVATE, 1, nullptr, nullptr, 0);
    }

    std::atomic<std::uint32_t> state_{unlocked};
    static_assert(sizeof(std::atomic<std::uint32_t>) == sizeof(std::uint32_t), "a futex is a plain 32-bit word");
};
#else
using small_mutex = std::mutex;
#endif

} // namespace duplex::detail
