// Every connection's next deadline (handshake, heartbeat, close, idle) in one
// heap per io_context, behind one Asio timer. A connection then carries a
// 32-byte slot instead of an asio::steady_timer (120 bytes) and the wait it
// keeps pending (about 160 more): an idle connection always has a heartbeat
// deadline, so that was paid by every one of them.
#pragma once
#include <asio/execution_context.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>

#include <chrono>
#include <cstddef>
#include <memory>
#include <mutex>

#include "../detail/completion.hpp"
#include "../detail/owned.hpp"

namespace duplex::detail {

class deadline_service;

// What a deadline does to its owner's type: `claim` returns a strong reference to
// the owner (empty once it is being destroyed); `fire` then hands it the expiry
// (posting to the owner's executor). One static table per type.
struct deadline_ops {
    std::shared_ptr<void> (*claim)(void* owner);
    void (*fire)(std::shared_ptr<void> owner);
};

// A connection's place in its io_context's deadline heap. Guarded by the
// service's mutex.
struct deadline_slot {
    static constexpr std::size_t none = ~std::size_t(0);
    deadline_service* service = nullptr;
    std::size_t index = none; // in the heap; none when not scheduled
    void* owner = nullptr;
    const deadline_ops* ops = nullptr;
};

class deadline_service final : public asio::execution_context::service {
public:
    using key_type = deadline_service; // asio::use_service finds it by type
    using clock = std::chrono::steady_clock;

    explicit deadline_service(asio::execution_context& ctx) : asio::execution_context::service(ctx) {}
    ~deadline_service() override { delete[] heap_; }

    template <class Executor>
    static deadline_service& of(const Executor& ex) {
        return asio::use_service<deadline_service>(asio::query(ex, asio::execution::context_as<asio::execution_context&>));
    }

    /// Sets (or moves) the slot's deadline. `ex` gives the Asio timer its executor
    /// the first time: any executor of this context will do, the expiry only posts.
    template <class Executor>
    void schedule(deadline_slot& s, clock::time_point when, const Executor& ex) {
        std::lock_guard<std::mutex> lock(mutex_);
        if (s.index == deadline_slot::none) {
            if (size_ == capacity_) grow();
            s.index = size_++;
            heap_[s.index] = {when, &s};
            sift_up(s.index);
        } else {
            const clock::time_point old = heap_[s.index].when;
            heap_[s.index].when = when;
            if (when < old) sift_up(s.index);
            else sift_down(s.index);
        }
        if (!timer_) timer_.emplace(ex);
        if (when < armed_at_) arm(when);
    }

    void cancel(deadline_slot& s) {
        std::lock_guard<std::mutex> lock(mutex_);
        if (s.index == deadline_slot::none) return;
        remove(s.index);
        if (size_ == 0 && timer_) { // nothing left to wait for: io.run() may return
            timer_->cancel();
            armed_at_ = clock::time_point::max();
        }
    }

    bool scheduled(const deadline_slot& s) const {
        std::lock_guard<std::mutex> lock(mutex_);
        return s.index != deadline_slot::none;
    }

private:
    struct entry {
        clock::time_point when;
        deadline_slot* slot;
    };

    void shutdown() override {
        std::lock_guard<std::mutex> lock(mutex_);
        for (std::size_t i = 0; i < size_; ++i) heap_[i].slot->index = deadline_slot::none;
        size_ = 0;
        timer_.reset();
        armed_at_ = clock::time_point::max();
    }

    void arm(clock::time_point when) { // mutex_ held
        armed_at_ = when;
        timer_->expires_at(when);
        timer_->async_wait(complete_with<&deadline_service::on_timer>(this));
    }

    void on_timer(std::error_code ec, std::size_t) {
        if (ec == asio::error::operation_aborted) return; // re-armed or cancelled
        // Expired owners are fired outside the lock, in rounds of up to 64: the last
        // reference to one may go in fire, and its destructor takes the lock.
        struct due_owner {
            std::shared_ptr<void> owner;
            void (*fire)(std::shared_ptr<void>) = nullptr;
        };
        due_owner due[64];
        bool more = true;
        while (more) {
            std::size_t n = 0;
            {
                std::lock_guard<std::mutex> lock(mutex_);
                if (!timer_) return; // shut down
                const auto now = clock::now();
                while (n < 64 && size_ > 0 && heap_[0].when <= now) {
                    deadline_slot* s = heap_[0].slot;
                    remove(0);
                    if (auto owner = s->ops->claim(s->owner)) due[n++] = {std::move(owner), s->ops->fire};
                }
                more = n == 64;
                if (!more) {
                    armed_at_ = clock::time_point::max();
                    if (size_ > 0) arm(heap_[0].when);
                }
            }
            for (std::size_t i = 0; i < n; ++i) due[i].fire(std::move(due[i].owner));
        }
    }

    // A binary min-heap on `when`; every move updates the slot's index.
    void place(std::size_t i, entry e) {
        heap_[i] = e;
        e.slot->index = i;
    }
    void sift_up(std::size_t i) {
        const entry e = heap_[i];
        while (i > 0) {
            const std::size_t parent = (i - 1) / 2;
            if (!(e.when < heap_[parent].when)) break;
            place(i, heap_[parent]);
            i = parent;
        }
        place(i, e);
    }
    void sift_down(std::size_t i) {
        const entry e = heap_[i];
        const std::size_t n = size_;
        while (true) {
            std::size_t child = 2 * i + 1;
            if (child >= n) break;
            if (child + 1 < n && heap_[child + 1].when < heap_[child].when) ++child;
            if (!(heap_[child].when < e.when)) break;
            place(i, heap_[child]);
            i = child;
        }
        place(i, e);
    }
    void remove(std::size_t i) {
        heap_[i].slot->index = deadline_slot::none;
        const std::size_t last = --size_;
        if (i != last) {
            const clock::time_point removed = heap_[i].when;
            place(i, heap_[last]);
            if (heap_[i].when < removed) sift_up(i);
            else sift_down(i);
        }
        if (capacity_ > 64 && size_ < capacity_ / 4) resize(capacity_ / 2); // after a crowd left
    }
    // A plain array rather than std::vector: every file that uses a server compiles
    // this, and a vector of one more element type is some 60 more functions at -O0.
    // Growing by half rather than doubling: the heap holds an entry per connection,
    // and at 10,000 of them doubling left a third of it unused (6 B per connection).
    void grow() { resize(capacity_ ? capacity_ + capacity_ / 2 : 64); }
    void resize(std::size_t cap) {
        entry* fresh = new entry[cap];
        for (std::size_t i = 0; i < size_; ++i) fresh[i] = heap_[i];
        delete[] heap_;
        heap_ = fresh;
        capacity_ = cap;
    }

    mutable std::mutex mutex_;
    entry* heap_ = nullptr; // owned (plain pointers: fewer functions to compile than unique_ptr)
    std::size_t size_ = 0;
    std::size_t capacity_ = 0;
    detail::owned<asio::steady_timer> timer_; // made on first use: it needs an executor
    clock::time_point armed_at_ = clock::time_point::max();
};

// A connection's deadline: set, moved, cleared; removed from the heap when the
// connection goes (so the heap never points at a dead one).
class deadline {
public:
    template <class Owner, class Executor>
    deadline(Owner* owner, const Executor& ex) {
        slot_.service = &deadline_service::of(ex);
        slot_.owner = owner;
        static constexpr deadline_ops ops{
            [](void* p) -> std::shared_ptr<void> { return static_cast<Owner*>(p)->weak_from_this().lock(); },
            [](std::shared_ptr<void> p) { Owner::on_deadline(std::move(p)); }};
        slot_.ops = &ops;
    }
    deadline(const deadline&) = delete;
    deadline& operator=(const deadline&) = delete;
    ~deadline() { slot_.service->cancel(slot_); }

    template <class Executor>
    void set(std::chrono::steady_clock::time_point when, const Executor& ex) { slot_.service->schedule(slot_, when, ex); }
    void clear() { slot_.service->cancel(slot_); }
    /// Set and not expired yet.
    bool pending() const { return slot_.service->scheduled(slot_); }

private:
    deadline_slot slot_;
};

} // namespace duplex::detail
