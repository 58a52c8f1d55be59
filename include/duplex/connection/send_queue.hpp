// The outgoing byte queue of one connection: frames are appended to a pending
// batch while the previous batch is being written, so one gathered write
// carries every frame queued in the meantime (no allocation once warm). An
// idle queue is one null pointer: its batches live in a block made by the
// first send and freed by release_buffers().
#pragma once
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <utility>
#include <vector>

#include "../core/opcode.hpp"
#include "../detail/owned.hpp"
#include "../detail/plain_vector.hpp"

namespace duplex {

/// A frame encoded once (unmasked, as a server sends it) and shared by every
/// receiver of a broadcast: the queue holds a reference, never a copy.
class prepared_message {
public:
    opcode op() const noexcept { return op_; }
    /// The whole frame as it goes on the wire (header + payload).
    const std::uint8_t* wire_data() const noexcept { return wire_.data(); }
    std::size_t wire_size() const noexcept { return wire_.size(); }
    /// The payload alone (a client re-frames it with its own mask).
    const std::uint8_t* payload() const noexcept { return wire_.data() + header_size_; }
    std::size_t payload_size() const noexcept { return wire_.size() - header_size_; }
    /// The same message compressed once (permessage-deflate, RSV1 set), or null: what a
    /// server sends instead to a receiver whose compressor starts afresh for every
    /// message (no context takeover, so a stream made apart from its own fits in) with a
    /// window of at least compressed_window_bits(). See prepare_message in hub.hpp.
    const std::shared_ptr<const prepared_message>& compressed() const noexcept { return compressed_; }
    int compressed_window_bits() const noexcept { return compressed_window_bits_; }

    prepared_message(opcode op, std::vector<std::uint8_t> wire, std::size_t header_size,
                     std::shared_ptr<const prepared_message> compressed = nullptr, int compressed_window_bits = 0)
        : op_(op), compressed_window_bits_(compressed_window_bits), header_size_(header_size), wire_(std::move(wire)),
          compressed_(std::move(compressed)) {}

private:
    opcode op_;
    int compressed_window_bits_;
    std::size_t header_size_;
    std::vector<std::uint8_t> wire_;
    std::shared_ptr<const prepared_message> compressed_;
};

namespace detail {
/// A growable byte array that, unlike std::vector or std::string, does not
/// zero-fill what it grows into: every byte appended is written right after
/// (memset was a fifth of the instructions of a 64 KiB echo).
class byte_buffer {
public:
    std::uint8_t* data() noexcept { return data_.get(); }
    const std::uint8_t* data() const noexcept { return data_.get(); }
    std::size_t size() const noexcept { return size_; }
    std::size_t capacity() const noexcept { return capacity_; }

    /// Grows by n bytes (uninitialised) and returns where they start.
    std::uint8_t* grow(std::size_t n) {
        if (size_ + n > capacity_) reallocate(std::max(size_ + n, capacity_ * 2 < 256 ? 256 : capacity_ * 2));
        std::uint8_t* at = data_.get() + size_;
        size_ += n;
        return at;
    }
    /// Sets the size; what it grows into is uninitialised.
    void resize(std::size_t n) {
        if (n > capacity_) reallocate(std::max(n, capacity_ * 2));
        size_ = n;
    }
    /// Room for n bytes in all, so that bytes may be written past size() first
    /// and taken in with grow() after.
    void reserve(std::size_t n) {
        if (n > capacity_) reallocate(std::max(n, capacity_ * 2)); // doubling: a message read
                                                                   // into place is copied O(1) times
    }
    void shrink_by(std::size_t n) noexcept { size_ -= n; }
    void clear() noexcept { size_ = 0; }
    void release() noexcept {
        data_.reset();
        size_ = capacity_ = 0;
    }

private:
    void reallocate(std::size_t cap) {
        std::unique_ptr<std::uint8_t[]> bigger(new std::uint8_t[cap]);
        if (size_ != 0) std::memcpy(bigger.get(), data_.get(), size_);
        data_ = std::move(bigger);
        capacity_ = cap;
    }

    std::unique_ptr<std::uint8_t[]> data_;
    std::size_t size_ = 0;
    std::size_t capacity_ = 0;
};
} // namespace detail

/// Not thread-safe: the protocol guards it with its send mutex.
class send_queue {
public:
    /// A contiguous run to write: either `size` bytes at `offset` in the
    /// batch's own buffer, or a whole shared prepared frame.
    struct segment {
        std::size_t offset = 0;
        std::size_t size = 0;
        std::shared_ptr<const prepared_message> shared;
    };
    /// The runs of a batch (detail/plain_vector.hpp).
    using segment_list = detail::plain_vector<segment>;

    struct batch {
        detail::byte_buffer bytes;
        segment_list segments;
        std::size_t total = 0;

        const std::uint8_t* data(const segment& s) const noexcept {
            return s.shared ? s.shared->wire_data() : bytes.data() + s.offset;
        }
        bool empty() const noexcept { return total == 0; }
    };

    /// Reserves `n` bytes at the end of the pending batch and returns where to
    /// write them. The pointer is valid until the next append.
    std::uint8_t* append(std::size_t n) { return append_to(batches().pending, n); }

    void append(std::shared_ptr<const prepared_message> m) {
        const std::size_t n = m->wire_size();
        batch& b = batches().pending;
        b.segments.push_back(segment{0, n, std::move(m)});
        b.total += n;
    }

    /// Gives back bytes reserved by the last append that were not used.
    void shrink_last(std::size_t unused) noexcept {
        batch& b = batches_->pending;
        b.bytes.shrink_by(unused);
        b.segments.back().size -= unused;
        b.total -= unused;
    }

    bool has_pending() const noexcept { return batches_ && !batches_->pending.empty(); }
    /// How many runs the pending batch has (the buffers its write gathers).
    std::size_t pending_segments() const noexcept { return batches_ ? batches_->pending.segments.size() : 0; }
    bool writing() const noexcept { return batches_ && !batches_->inflight.empty(); }
    /// Bytes of memory held (queued or kept for reuse); release_buffers() frees them.
    std::size_t reserved_bytes() const noexcept {
        if (!batches_) return 0;
        return sizeof(both) + batches_->pending.bytes.capacity() + batches_->inflight.bytes.capacity() +
               (batches_->pending.segments.capacity() + batches_->inflight.segments.capacity()) * sizeof(segment);
    }
    /// Bytes queued or being written: the browser's bufferedAmount.
    std::size_t buffered_amount() const noexcept {
        return batches_ ? batches_->pending.total + batches_->inflight.total : 0;
    }

    /// Moves the pending batch to the writer. Call only when has_pending() && !writing().
    const batch& begin_write() noexcept {
        std::swap(batches_->pending, batches_->inflight);
        batches_->droppable.clear(); // they were the pending batch's
        return batches_->inflight;
    }

    // ---- dropping the oldest messages (backpressure_policy::drop_oldest) ----------
    //
    // With that policy the protocol says which whole messages it queued may go unsent
    // (never control frames, fragments, compressed messages the peer's inflater must
    // see, or the rest of a frame partly written). Nothing is recorded otherwise.

    /// The last `size` bytes appended are one whole message that may be dropped.
    void add_droppable(std::size_t size) {
        both& b = batches();
        b.droppable.push_back(segment{b.pending.total - size, size, nullptr});
    }
    /// Drops droppable messages of the pending batch (never what is being written),
    /// oldest first, until `need` bytes are free or none is left. Returns how many.
    /// Copies what stays into a new batch (shared frames stay shared).
    std::size_t drop_oldest(std::size_t need) {
        if (!batches_ || batches_->droppable.empty()) return 0;
        both& b = *batches_;
        auto& messages = b.droppable;
        std::size_t count = 0, freed = 0;
        while (count < messages.size() && freed < need) freed += messages[count++].size;
        batch kept;
        const batch& old = b.pending;
        std::size_t copied = 0;       // old bytes [0, copied) handled
        std::size_t seg = 0, pos = 0; // the old segment that holds byte `copied`, and where it starts
        const auto keep = [&](std::size_t end) { // copies old [copied, end) into `kept`
            for (; seg < old.segments.size() && pos < end; pos += old.segments[seg++].size) {
                const segment& s = old.segments[seg];
                const std::size_t from = std::max(copied, pos), to = std::min(end, pos + s.size);
                if (from < to) {
                    if (s.shared && from == pos && to == pos + s.size) { // a whole prepared frame stays shared
                        kept.segments.push_back(s);
                        kept.total += s.size;
                    } else {
                        std::memcpy(append_to(kept, to - from), old.data(s) + (from - pos), to - from);
                    }
                }
                if (pos + s.size > end) break; // the segment goes on past `end`: resume here
            }
            copied = end;
        };
        for (std::size_t i = 0; i < count; ++i) {
            keep(messages[i].offset);
            copied = messages[i].offset + messages[i].size; // skipped: dropped
        }
        keep(old.total);
        // Every message left came after all the dropped ones: it moves down by `freed`.
        messages.erase_front(count);
        for (segment& m : messages) m.offset -= freed;
        b.pending = std::move(kept); // the old batch goes with `kept`
        return count;
    }
    /// The write of the in-flight batch finished.
    void end_write() noexcept { recycle(batches_->inflight); }

    /// Frees the memory kept for reuse, when nothing is queued or being written:
    /// an idle connection then holds no send memory (the next send allocates again).
    void release_buffers() noexcept {
        if (!writing() && !has_pending()) batches_.reset();
    }

    /// Drops everything (the transport is gone).
    void clear() noexcept {
        if (!batches_) return;
        recycle(batches_->pending);
        recycle(batches_->inflight);
        batches_->droppable.clear();
    }

private:
    // Keep small buffers for reuse; give back the memory of a huge one so an
    // idle connection does not hold on to its largest message.
    static void recycle(batch& b) noexcept {
        b.total = 0;
        b.segments.clear();
        if (b.bytes.capacity() > keep_capacity) b.bytes.release();
        else b.bytes.clear();
        if (b.segments.capacity() > 64) b.segments.release();
    }
    static constexpr std::size_t keep_capacity = 256 * 1024; // a batch of large messages

    // Appends n bytes to `b`'s buffer as append() does to the pending batch.
    static std::uint8_t* append_to(batch& b, std::size_t n) {
        const std::size_t at = b.bytes.size();
        std::uint8_t* out = b.bytes.grow(n);
        if (!b.segments.empty() && !b.segments.back().shared && b.segments.back().offset + b.segments.back().size == at)
            b.segments.back().size += n;
        else
            b.segments.push_back(segment{at, n, nullptr});
        b.total += n;
        return out;
    }

    struct both {
        batch pending;
        batch inflight;
        // Droppable messages of the pending batch, oldest first (drop_oldest only): each
        // a run of `size` bytes at `offset` in the batch as written (its segments in order).
        segment_list droppable;
    };
    both& batches() {
        if (!batches_) batches_.emplace();
        return *batches_;
    }
    detail::owned<both> batches_;
};

} // namespace duplex
