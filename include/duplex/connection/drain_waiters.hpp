// The async_wait_drained() waits of one connection: those still waiting, with
// their low-water marks, and those completed whose handlers are about to run
// (the connection posts one completion that runs them). Linked nodes, not a
// std::vector, and one plain class for every connection type: every file that
// uses a server compiled the vector and a posted lambda per handler (~150
// functions at -O0), though few programs ever wait.
// Not thread-safe: the connection guards it with its send mutex.
#pragma once
#include <cstddef>
#include <cstdint>
#include <system_error>
#include <utility>

#include "../detail/unique_function.hpp"

namespace duplex::detail {

class drain_waiters {
public:
    using handler = unique_function<void(std::error_code)>;
    struct node {
        std::uint64_t id;
        std::size_t low_water;
        std::error_code result; // once ready
        handler call;
        node* next = nullptr;
    };

    drain_waiters() noexcept = default;
    drain_waiters(const drain_waiters&) = delete;
    drain_waiters& operator=(const drain_waiters&) = delete;
    ~drain_waiters() {
        free(waiting_);
        free(ready_);
    }

    bool any_waiting() const noexcept { return waiting_.head != nullptr; }

    /// Waits until the queue is at or under low_water; returns the wait's id.
    std::uint64_t wait(std::size_t low_water, handler h) {
        waiting_.push(new node{++last_id_, low_water, {}, std::move(h)});
        return last_id_;
    }
    /// Completes with `ec` (without waiting).
    void complete(handler h, std::error_code ec) { ready_.push(new node{0, 0, ec, std::move(h)}); }
    /// Completes wait `id` with `ec`; false if it does not wait.
    bool cancel(std::uint64_t id, std::error_code ec) {
        for (node** p = &waiting_.head; *p; p = &(*p)->next) {
            if ((*p)->id != id) continue;
            ready_.push(waiting_.unlink(p, ec));
            return true;
        }
        return false;
    }
    /// Completes the waits whose low-water mark the queue (`queued` bytes) is at or
    /// under; false if there were none.
    bool wake(std::size_t queued) {
        bool woke = false;
        for (node** p = &waiting_.head; *p;) {
            if ((*p)->low_water < queued) {
                p = &(*p)->next;
                continue;
            }
            ready_.push(waiting_.unlink(p, {}));
            woke = true;
        }
        return woke;
    }
    /// Completes every wait with `ec` (the connection ended).
    void end(std::error_code ec) {
        while (waiting_.head) ready_.push(waiting_.unlink(&waiting_.head, ec));
    }

    /// The next completed wait, in order, or null; run() it.
    node* pop_ready() noexcept {
        node* n = ready_.head;
        if (n) ready_.unlink(&ready_.head, n->result);
        return n;
    }
    /// Calls a popped node's handler, then frees it.
    static void run(node* n) {
        struct free_after {
            node* n;
            ~free_after() { delete n; }
        } guard{n};
        n->call(n->result);
    }

private:
    // A singly linked FIFO.
    struct chain {
        node* head = nullptr;
        node** tail = &head;
        void push(node* n) noexcept {
            n->next = nullptr;
            *tail = n;
            tail = &n->next;
        }
        // Takes *p (a link of this chain) out, with its result set.
        node* unlink(node** p, std::error_code ec) noexcept {
            node* n = *p;
            *p = n->next;
            if (tail == &n->next) tail = p;
            n->result = ec;
            return n;
        }
    };
    static void free(chain& c) noexcept {
        while (node* n = c.head) {
            c.head = n->next;
            delete n;
        }
    }

    chain waiting_;
    chain ready_;
    std::uint64_t last_id_ = 0;
};

} // namespace duplex::detail
